#!/usr/bin/python3
"""Benchmark: what raw logging costs an IMAP server (never pass/fail).

    python3 bench/run.py [--quick] [--module-dir DIR] [--rounds N]
                         [--clients N] [--seconds S] [--seed N]
                         [--variants V,...] [--workloads W,...] [--json FILE]

For each workload (long sessions, short-session mix) it starts one private
Dovecot (tests/integration/dovecot_fixture.py) on 127.0.0.1 per variant
(none, core, ext-split, ext-sealed, ext-transcript, ext-chunks, ext-bare,
ext-unselected, ext-control, ext-control-redis; --variants picks some, none
always runs), each
with its own bench/loadgen.py clients, and lets the variants take turns:
in each round every variant runs the same window of commands (about
--seconds of work for "none") while the others idle. Instances and logs
live on a tmpfs, so the figures show CPU cost, not disk speed. First,
bench/sink-bench measures the write path alone.
"""

import argparse
import contextlib
import ctypes
import json
import math
import os
import pathlib
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))
from dovecot_fixture import DOVECOT_BIN, PLUGIN_SO, Dovecot, User, line_under_test  # noqa: E402
from redis_server import Redis  # noqa: E402
import loadgen  # noqa: E402

VARIANTS = ("none", "core", "ext-split", "ext-sealed", "ext-transcript", "ext-chunks",
            "ext-bare", "ext-unselected", "ext-control", "ext-control-redis")
# ext-sealed: split, timestamps as default, sealed to this public key (made
# by age-keygen; its private half was not kept: the logs are not read).
SEAL_RECIPIENT = "age1sw4qyr40lmrjyssk5maffaz43z4x0kjf809xvzjv48a2mqqyd5zqgm5xmw"
WORKLOADS = ("long", "short")
MAIL_UID = 65534
TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.1
OTHER_LOAD_MAX = 0.05  # a window disturbed by other work more than this is flagged
# Commands per client in the warm-up window; windows are whole multiples of
# STEP (the short mix runs whole 4-command sessions).
WARM_UP_COMMANDS = {"long": 300, "short": 40}
STEP = {"long": 1, "short": 4}
TRIM_CHUNK = 1 << 20  # log pages are freed per MiB, every 5th poll
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
# imap-login in "performance mode", and kept even when idle (the long
# sessions leave it idle for minutes): the master's reaped-children CPU
# (cutime+cstime) then grows only by the imap processes we measure.
COMMON_CONF = "service imap-login {\n  service_count = 0\n  process_min_avail = 1\n}\n"


def variant_config(variant: str, logdir: pathlib.Path, redis_port: int = 0) -> dict:
    """Dovecot fixture kwargs for one variant (redis_port: ext-control-redis's
    server)."""
    ext = "$mail_plugins rawlog_ext"
    if variant == "none":
        return {"extra_conf": COMMON_CONF}
    if variant == "core":
        return {"extra_conf": COMMON_CONF + f"protocol imap {{\n  rawlog_dir = {logdir}\n}}\n"}
    if variant == "ext-unselected":
        return {"mail_plugins": ext, "extra_conf": COMMON_CONF}
    if variant == "ext-control":
        # doveadm rawlog (issue #15): a control dict in which the users are
        # not enabled; each session looks itself up once and logs nothing.
        ctl = logdir.parent / "control-dict"
        ctl.mkdir(exist_ok=True)
        os.chown(ctl, 65534, 65534)
        (ctl / "control").write_text("shared/rawlog-ext/enabled/someone-else\n"
                                     "4102444800 0\n")
        os.chown(ctl / "control", 65534, 65534)
        if line_under_test() == "2.3":
            return {"mail_plugins": ext, "extra_conf": COMMON_CONF,
                    "plugin": {"rawlog_ext_dir": str(logdir),
                               "rawlog_ext_control_dict": f"file:{ctl}/control"}}
        return {"mail_plugins": ext, "plugin": {"rawlog_ext_dir": str(logdir)},
                "extra_conf": COMMON_CONF + "rawlog_ext_control {\n  dict file {\n"
                              f"    path = {ctl}/control\n  }}\n}}\n"}
    if variant == "ext-control-redis":
        # The same in Redis: one loopback round trip per lookup. The
        # driver's own timeout stays at its default: Redis answers.
        if line_under_test() == "2.3":
            return {"mail_plugins": ext, "extra_conf": COMMON_CONF,
                    "plugin": {"rawlog_ext_dir": str(logdir),
                               "rawlog_ext_control_dict":
                               f"redis:host=127.0.0.1:port={redis_port}"}}
        return {"mail_plugins": ext, "plugin": {"rawlog_ext_dir": str(logdir)},
                "extra_conf": COMMON_CONF + "rawlog_ext_control {\n  dict redis {\n"
                              f"    redis_host = 127.0.0.1\n    redis_port = {redis_port}\n"
                              "  }\n}\n"}
    plugin = {"rawlog_ext_dir": str(logdir)}
    if variant == "ext-sealed":
        plugin["rawlog_ext_seal_recipients"] = SEAL_RECIPIENT
    if variant == "ext-transcript":
        plugin["rawlog_ext_format"] = "transcript"
    if variant == "ext-chunks":
        plugin["rawlog_ext_timestamps"] = "chunks"
    if variant == "ext-bare":  # the wire bytes alone: rawlog_ext's cheapest setting
        plugin["rawlog_ext_timestamps"] = "no"
    return {"mail_plugins": ext, "plugin": plugin, "extra_conf": COMMON_CONF}


# -- /proc sampling ------------------------------------------------------------

def proc_stat(pid) -> tuple | None:
    """(comm, state, ppid, utime+stime, cutime+cstime) in ticks, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    f = tail.split()
    return (head.partition("(")[2], f[0], int(f[1]),
            int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))


def proc_fields(path: str, keys: tuple) -> dict:
    """"Key: number ..." lines of /proc/PID/status or /proc/PID/io."""
    out = {}
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def children(master: int, strangers: set | None = None) -> dict[int, tuple]:
    """Children of master. Pids in strangers (not master's at the last scan)
    are not read again; a pid is not reused between two polls."""
    kids, others = {}, set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        if strangers is not None and name in strangers:
            others.add(name)
        elif (st := proc_stat(name)) and st[2] == master:
            kids[int(name)] = st
        else:
            others.add(name)
    if strangers is not None:
        strangers.clear()
        strangers.update(others)
    return kids


class LogTrimmer:
    """Punches holes into the growing log files; their sizes stay.

    On this VM kind, memory the guest has not used for a few seconds is
    handed back to the host and costs several times more to fault in again
    than a recycled page. Logs are the only thing here that grows by GBs:
    without this, a logging variant pays for the VM's memory rather than for
    its writes, and its figures swung 4x between rounds. Freed log pages are
    reused at once, as with a page cache that writes back to a disk.
    """

    def __init__(self, logdir: pathlib.Path):
        self.logdir = logdir
        self.punched = {}  # name -> (fd, bytes freed so far)

    def trim(self) -> None:
        for entry in os.scandir(self.logdir):
            end = entry.stat().st_size & ~(TRIM_CHUNK - 1)
            fd, done = self.punched.get(entry.name, (None, 0))
            if end <= done:
                continue
            if fd is None:
                fd = os.open(entry.path, os.O_WRONLY)
            if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               done, end - done):
                raise OSError(ctypes.get_errno(), f"fallocate {entry.path}")
            self.punched[entry.name] = (fd, end)

    def close(self) -> None:
        for fd, _ in self.punched.values():
            os.close(fd)
        self.punched.clear()


def schedstat_ns(pid: int) -> int | None:
    """CPU time of a (single-threaded) process in ns, or None if gone."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Monitor:
    """Follows the imap processes of one Dovecot master during a window.

    CPU: a window of the long sessions has the same imap processes at both
    ends, read in ns (/proc/PID/schedstat); one of the short mix starts and
    ends with none, and the processes it had were reaped by the master,
    whose cutime+cstime then include all of theirs. Polling is for peak
    memory and fds only.
    """

    def __init__(self, master: int, long_sessions: bool):
        self.master = master
        self.long = long_sessions
        self.peak = {}        # pid -> {"VmHWM": kib, "RssAnon": kib}
        self.fds = {}         # pid -> fewest fds seen
        self.others = {}      # non-imap children, to notice unexpected exits
        self.strangers = set()

    def imap_pids(self) -> list[int]:
        return [p for p, st in children(self.master).items() if st[0] == "imap"]

    def snapshot(self) -> dict:
        """The counters a window's figures are differences of."""
        live = {}
        for pid in self.imap_pids():
            ns = schedstat_ns(pid)
            syscw = proc_fields(f"/proc/{pid}/io", ("syscw",)).get("syscw")
            if ns is not None:
                live[pid] = (ns, syscw)
        own = proc_stat(self.master)
        return {"live": live, "reaped_ticks": own[4], "tree": self.tree_ticks()}

    @staticmethod
    def imap_cpu_s(before: dict, after: dict, long: bool) -> tuple[float, list[str]]:
        """imap CPU between two snapshots, and what made it inexact. The
        long sessions' processes live on: only they count (an auth process
        retired meanwhile lands in the reaped CPU too). The short ones have
        all exited: the reaped CPU is theirs."""
        cpu = 0.0 if long else (after["reaped_ticks"] - before["reaped_ticks"]) / TICK
        cpu += sum(ns - before["live"].get(pid, (0, 0))[0]
                   for pid, (ns, _) in after["live"].items()) / 1e9
        gone = [f"imap[{pid}] exited during the window (its CPU is not counted)"
                for pid in before["live"] if pid not in after["live"]]
        return cpu, gone

    @staticmethod
    def writes(before: dict, after: dict) -> int | None:
        """Write syscalls of the processes alive at both ends."""
        both = [(before["live"][p][1], w) for p, (_, w) in after["live"].items()
                if p in before["live"]]
        if not both or any(a is None or b is None for a, b in both):
            return None
        return sum(b - a for a, b in both)

    def tree_ticks(self) -> int:
        """CPU of the whole instance so far: master, live and reaped children."""
        own = proc_stat(self.master)
        return own[3] + own[4] + sum(st[3] for st in children(self.master).values())

    def wait_no_imap(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while pids := self.imap_pids():
            if time.monotonic() > end:
                raise TimeoutError(f"imap processes still running: {pids}")
            time.sleep(0.05)

    def poll(self) -> None:
        for pid, st in children(self.master, self.strangers).items():
            if st[0] != "imap":
                if st[0] != "dovecot":  # "dovecot": forked, not yet exec'd
                    self.others[pid] = st[0]
                continue
            peak = self.peak.setdefault(pid, {})
            for k, v in proc_fields(f"/proc/{pid}/status", ("VmHWM", "RssAnon")).items():
                peak[k] = max(peak.get(k, 0), v)
            # Short sessions are caught at random points of their lives, so
            # fds are only counted for the long ones.
            if self.long and st[1] != "Z":
                with contextlib.suppress(OSError):
                    n = len(os.listdir(f"/proc/{pid}/fd"))
                    self.fds[pid] = min(self.fds.get(pid, n), n)

    def vanished_others(self) -> list[str]:
        live = children(self.master)
        return sorted(f"{c}[{p}] exited" for p, c in self.others.items() if p not in live)


def cpu_busy_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def wait_quiet(limit: float = 0.10, timeout: float = 120) -> float:
    """Waits (up to timeout) until the machine is idle: the CPU picture is
    only fair when nothing else runs. Returns the last busy share seen."""
    end = time.monotonic() + timeout
    while True:
        a = cpu_busy_ticks()
        time.sleep(1)
        b = cpu_busy_ticks()
        busy = (b[0] - a[0]) / max(1, b[1] - a[1])
        if busy <= limit or time.monotonic() > end:
            return busy


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# -- one measurement -------------------------------------------------------------

@contextlib.contextmanager
def signals_held():
    """Cleanup must finish even if Ctrl-C (or SIGTERM, SIGHUP) comes again:
    they wait until it is done."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Instance:
    """One variant's private Dovecot and its clients, kept for a whole
    workload: the variants take turns in short windows, so a slow spell of
    the (virtual) machine hits all of them alike instead of the one that
    happened to run then."""

    def __init__(self, root: pathlib.Path, args, variant: str, workload: str):
        self.variant, self.workload = variant, workload
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"{variant}-{workload}-", dir=root))
        self.work.chmod(0o755)
        self.logdir = self.work / "logs"
        self.logdir.mkdir(mode=0o755)
        os.chown(self.logdir, MAIL_UID, MAIL_UID)
        self.trimmer = LogTrimmer(self.logdir)
        self.log_offset = 0   # of Dovecot's log, up to the last complete line
        self.dc = self.clients = self.redis = None
        users = [f"bench{i + 1}" for i in range(args.clients)]
        try:
            if variant == "ext-control-redis":
                self.redis = Redis(self.work)
                self.redis.start()
                # A user that is not one of the clients: they stay off.
                self.redis.cli("SET", "rawlog-ext/enabled/someone-else", "4102444800 0")
            self.dc = Dovecot(self.work / "dovecot", users=[User(u) for u in users],
                              protocols=("imap",), module_dir=args.module_dir,
                              **variant_config(variant, self.logdir,
                                               self.redis.port if self.redis else 0))
            self.dc.start()
            self.clients = loadgen.Clients(self.dc.imap_port, users, workload, args.seed)
            self.clients.start()
            if workload == "short":
                # The set-up sessions are gone before the first window.
                Monitor(self.dc.master_pid, False).wait_no_imap(15)
        except BaseException:
            self.close()
            raise

    def problems(self) -> list[str]:
        """Dovecot's Error/Fatal/Panic/Warning lines since the last call."""
        text = self.dc.log()
        end = text.rfind("\n", self.log_offset) + 1
        new, self.log_offset = text[self.log_offset:end], max(self.log_offset, end)
        return [line for line in new.splitlines()
                if any(k in line for k in ("Error:", "Fatal:", "Panic:", "Warning:"))]

    def log_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.logdir.iterdir())

    def window(self, commands: int) -> dict:
        """Every client runs its next commands; what that cost."""
        mon = Monitor(self.dc.master_pid, self.workload == "long")
        log0 = self.log_bytes()
        self0, busy0 = sum(os.times()[:2]), cpu_busy_ticks()
        redis0 = self.redis_ticks()
        before = mon.snapshot()
        self.clients.go(commands)
        polls = 0
        while not self.clients.done():
            mon.poll()
            polls += 1
            if polls % 5 == 0 and self.workload == "long":
                self.trimmer.trim()
            time.sleep(POLL)
        res = self.clients.collect()
        if self.workload == "short":
            mon.wait_no_imap(15)  # their CPU is then all in the master's
        after = mon.snapshot()
        self1, busy1 = sum(os.times()[:2]), cpu_busy_ticks()
        if self.workload == "long":
            log_bytes = self.log_bytes() - log0
        else:
            # The short sessions' logs are closed: counted and removed, so
            # the directory does not grow by thousands of files per round.
            log_bytes = 0
            for p in self.logdir.iterdir():
                log_bytes += p.stat().st_size
                p.unlink()
        cpu, inexact = Monitor.imap_cpu_s(before, after, self.workload == "long")
        writes = Monitor.writes(before, after) if self.workload == "long" else None
        done = sum(r["commands"] for r in res)
        elapsed = max(r["elapsed"] for r in res)
        machine = max(1, busy1[1] - busy0[1])
        # Whatever the machine did beyond this Dovecot, its clients and this
        # script is someone else's load: reported, as it skews the figures.
        redis_ticks = self.redis_ticks() - redis0
        ours = ((after["tree"] - before["tree"]) + (self1 - self0) * TICK +
                sum(r["client_cpu_s"] for r in res) * TICK + redis_ticks)
        peaks = mon.peak.values()
        return {
            "variant": self.variant, "workload": self.workload, "commands": done,
            "seconds": elapsed, "cmds_per_s": done / elapsed,
            "sessions": sum(r["sessions"] for r in res),
            "imap_cpu_s": cpu, "imap_cpu_ms_per_1k": cpu * 1e6 / done,
            "client_cpu_ms_per_1k": sum(r["client_cpu_s"] for r in res) * 1e6 / done,
            # ext-control-redis: redis-server's CPU (not in imap's).
            "redis_cpu_ms_per_1k": redis_ticks / TICK * 1e6 / done if self.redis else None,
            "machine_busy": (busy1[0] - busy0[0]) / machine,
            "other_load": max(0.0, (busy1[0] - busy0[0] - ours) / machine),
            "log_bytes": log_bytes,
            "wire_bytes": sum(r["wire_in"] + r["wire_out"] for r in res),
            "imap_processes_seen": len(mon.peak),
            "peak_rss_kib": max((p.get("VmHWM", 0) for p in peaks), default=None),
            "peak_anon_kib": max((p.get("RssAnon", 0) for p in peaks), default=None),
            "fds": median(mon.fds.values()),
            "writes_per_cmd": writes / done if writes is not None else None,
            "problems": (self.problems() + mon.vanished_others() + inexact)[:20],
        }

    def redis_ticks(self) -> int:
        st = proc_stat(self.redis.proc.pid) if self.redis and self.redis.proc else None
        return st[3] if st else 0

    def close(self) -> list[str]:
        """Stops everything; the problems Dovecot logged at the end."""
        problems = []
        with signals_held():
            for step in (self.trimmer.close,
                         self.clients.stop if self.clients else None,
                         (lambda: problems.extend(self.problems())) if self.dc else None,
                         self.dc.stop if self.dc else None,
                         self.redis.stop if self.redis else None,
                         lambda: shutil.rmtree(self.work, ignore_errors=True)):
                if step is None:
                    continue
                try:
                    step()
                except Exception as e:  # the others must still be stopped
                    problems.append(f"cleanup: {e}")
        return problems


def report_problems(r: dict) -> None:
    for what in r["problems"][:5]:
        print(f"    WARNING: {r['variant']}: {what}")


def sink_bench(root: pathlib.Path, module_dir: str) -> str:
    """Runs bench/sink-bench (the write path alone, no Dovecot) from the
    build tree the module comes from; its report, or why not."""
    binary = pathlib.Path(module_dir).parent.parent / "bench" / "sink-bench"
    module = pathlib.Path(module_dir) / PLUGIN_SO
    if not binary.exists():
        return (f"write path alone: skipped, no {binary} "
                f"(make bench/sink-bench in the build directory)")
    if binary.stat().st_mtime < module.stat().st_mtime:
        return f"write path alone: skipped, {binary} is older than the module (rebuild it)"
    ran = subprocess.run([str(binary), str(root)], capture_output=True, text=True)
    if ran.returncode != 0:
        return f"write path alone: failed: {ran.stderr.strip()[-200:]}"
    return ran.stdout.rstrip()


# -- set-up, output ----------------------------------------------------------------

@contextlib.contextmanager
def tmpfs_root():
    """A private tmpfs (mounted here), else a dir in /dev/shm; removed after."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-bench-", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=50%",
                              "rawlog-ext-bench", str(path)],
                             stderr=subprocess.DEVNULL).returncode == 0
    if not mounted:
        path.rmdir()
        path = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-bench-", dir="/dev/shm"))
    path.chmod(0o755)
    try:
        yield path, mounted
    finally:
        with signals_held():
            if mounted and subprocess.run(["umount", str(path)]).returncode != 0:
                subprocess.run(["umount", "-l", str(path)])
            shutil.rmtree(path, ignore_errors=True)


def fs_type(path: pathlib.Path) -> str:
    best, fstype = "", "?"
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt, typ = line.split()[1:3]
            if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) > len(best):
                best, fstype = mnt, typ
    return fstype


def machine_info() -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run([DOVECOT_BIN, "--version"], capture_output=True,
                             text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "dovecot": version}


# key, header, width, format of the value, comparison with none
COLUMNS = [
    ("cmds_per_s", "cmds/s", 16, "{:.0f}", "ratio"),
    ("imap_cpu_ms_per_1k", "CPU ms/1k cmds", 17, "{:.1f}", "ratio"),
    ("log_bytes", "logged MB", 16, "{:.1f}", "wire"),
    ("peak_rss_kib", "peak RSS KiB", 16, "{:.0f}", "delta"),
    ("peak_anon_kib", "peak anon KiB", 15, "{:.0f}", "delta"),
    ("fds", "fds", 9, "{:.0f}", "delta"),
    ("writes_per_cmd", "writes/cmd", 14, "{:.1f}", "delta"),
    ("machine_busy", "busy", 6, "{:.0%}", None),
    ("other_load", "other", 7, "{:.0%}", None),
]


def summarize(runs: list[dict], workloads, variants) -> dict:
    """Medians over rounds; ratios and deltas against none of the same
    round (so slow drift of the machine cancels out), then their median."""
    out = {}
    for wl in workloads:
        base = {r["round"]: r for r in runs if r["workload"] == wl and r["variant"] == "none"}
        for v in variants:
            mine = [r for r in runs if r["workload"] == wl and r["variant"] == v]
            s = {}
            for key in [c[0] for c in COLUMNS] + ["client_cpu_ms_per_1k", "wire_bytes",
                                                   "sessions", "commands"]:
                s[key] = median(r[key] for r in mine)
                pairs = [(m[key], b[key]) for m in mine
                         if (b := base.get(m["round"])) is not None
                         and m[key] is not None and b[key] is not None]
                ratios = [m / b for m, b in pairs if b]
                s[key + "_ratio"] = median(ratios)
                s[key + "_delta"] = median(m - b for m, b in pairs)
                if key in ("cmds_per_s", "imap_cpu_ms_per_1k"):
                    s[key + "_spread"] = spread(ratios)
            s["log_per_wire"] = median(r["log_bytes"] / r["wire_bytes"] for r in mine)
            if v == "ext-sealed":
                # What sealing adds to the same split log, round by round.
                split = {r["round"]: r for r in runs
                         if r["workload"] == wl and r["variant"] == "ext-split"}
                key = "imap_cpu_ms_per_1k"
                pairs = [(m[key], o[key]) for m in mine
                         if (o := split.get(m["round"])) is not None
                         and m[key] is not None and o[key]]
                s["cpu_over_split_ratio"] = median(m / o for m, o in pairs)
                s["cpu_over_split_delta"] = median(m - o for m, o in pairs)
                s["cpu_over_split_spread"] = spread([m / o for m, o in pairs])
            out[f"{wl}/{v}"] = s
    return out


MIN_ROUNDS_FOR_SPREAD = 6


def spread(values: list) -> dict | None:
    """How far a median of per-round ratios can be trusted within this run:
    the middle half of the rounds, and a distribution-free 95% interval of
    the median (order statistics: the true median lies between the k-th
    smallest and the k-th largest value with at least 95% probability).
    It covers the noise of this run, not drift between runs."""
    n = len(values)
    if n < MIN_ROUNDS_FOR_SPREAD:
        return None
    # Largest k with P(Binomial(n, 1/2) < k) <= 2.5% (k >= 1 from n = 6 on).
    k, below = 0, 0.0
    while (below := below + math.comb(n, k) / 2 ** n) <= 0.025:
        k += 1
    v = sorted(values)
    q = statistics.quantiles(v, n=4)
    return {"iqr": (q[0], q[2]), "ci95": (v[k - 1], v[n - k])}


def cell(s: dict, key: str, fmt: str, how: str | None) -> str:
    val = s[key]
    if val is None:
        return "n/a"
    text = fmt.format(val / 1e6 if key == "log_bytes" else val)
    if how == "ratio":
        return f"{text} ({s[key + '_ratio']:.3f}x)"
    if how == "wire":
        return f"{text} ({s['log_per_wire']:.2f}/w)"
    if how == "delta":
        return f"{text} ({s[key + '_delta']:+.{1 if '.1' in fmt else 0}f})"
    return text


def print_table(summary: dict, workload: str, args) -> None:
    title = {"long": "Long sessions: login once; APPEND x2, SELECT, FETCH 1:* (FLAGS ENVELOPE), "
                     "FETCH headers, FETCH BODY.PEEK[] x3, STORE, EXPUNGE, NOOP",
             "short": "Short-session mix: connect, LOGIN, SELECT, FETCH header, LOGOUT"}
    print(f"\n{title[workload]}\n{args.clients} clients, each variant in turn runs the same "
          f"window of commands, median of {args.rounds} rounds (about {args.seconds:g} s each)")
    head = f"{'variant':17}" + "".join(f"{h:>{w}}" for _, h, w, _, _ in COLUMNS)
    print(head + "\n" + "-" * len(head))
    for v in args.variants:
        s = summary[f"{workload}/{v}"]
        print(f"{v:17}" + "".join(f"{cell(s, k, fmt, how):>{w}}"
                                   for k, _, w, fmt, how in COLUMNS))
    print(f"load generator CPU (none): "
          f"{summary[f'{workload}/none']['client_cpu_ms_per_1k']:.1f} ms/1k cmds")
    lines = []
    for v in args.variants[1:]:  # all but none, always first
        s = summary[f"{workload}/{v}"]
        parts = []
        for key, name in (("cmds_per_s", "cmds/s"), ("imap_cpu_ms_per_1k", "CPU")):
            if sp := s[key + "_spread"]:
                parts.append(f"{name} {sp['iqr'][0]:.3f}-{sp['iqr'][1]:.3f} "
                             f"[{sp['ci95'][0]:.3f}-{sp['ci95'][1]:.3f}]")
        if parts:
            lines.append(f"  {v:17}" + "   ".join(parts))
    if lines:
        print("spread of the per-round ratios to none: middle half of the rounds "
              "[95% interval of the median, within this run]")
        print("\n".join(lines))
    sealed = summary.get(f"{workload}/ext-sealed")
    if sealed and sealed.get("cpu_over_split_ratio") is not None:
        sp = sealed["cpu_over_split_spread"]
        print(f"ext-sealed over ext-split (same rounds): imap CPU "
              f"{sealed['cpu_over_split_ratio']:.3f}x, "
              f"{sealed['cpu_over_split_delta']:+.1f} ms/1k cmds"
              + (f", middle half {sp['iqr'][0]:.3f}-{sp['iqr'][1]:.3f} "
                 f"[{sp['ci95'][0]:.3f}-{sp['ci95'][1]:.3f}]" if sp else ""))


LEGEND = """\
(x) ratio to none, (+) difference to none, both per round then median; (/w) log bytes
per byte on the wire. cmds/s = the window's commands over its time (until the last
client was done). CPU = imap processes' CPU in the window (long sessions: in ns from
/proc/PID/schedstat; short mix: the master's reaped children) per 1000 commands.
peak RSS = highest VmHWM, peak anon = highest RssAnon of any imap process (polled every
{poll:g} s). fds = fewest open fds of a long-session imap process during the window;
writes/cmd = write-family syscalls (/proc/PID/io syscw) of the long sessions' imap
processes per command, socket writes included. busy = whole machine; other = its share
used by anything but this Dovecot, its clients and the harness (should be ~0%). Logs
were on {fs}: the CPU picture, not disk speed; log pages were freed as they filled
(sizes are exact)."""


def pick(ap, flag: str, value: str | None, known: tuple, always: str | None = None) -> tuple:
    """The named subset of known, in known's order (always included)."""
    if value is None:
        return known
    names = {n.strip() for n in value.split(",") if n.strip()}
    if unknown := names - set(known):
        ap.error(f"{flag}: unknown {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    if not names - {always}:
        ap.error(f"{flag}: nothing to run (known: {', '.join(known)})")
    return tuple(n for n in known if n in names or n == always)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of 2 s windows")
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR")
                    or str(REPO / "build" / "src" / ".libs"))
    ap.add_argument("--rounds", type=int,
                    help="windows per variant and workload (12, or the next whole number "
                         "of rotations of the variants' order; --quick 3)")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float,
                    help="about this long per window, for \"none\" (5, --quick 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", metavar="V,...",
                    help=f"only these (none is always run): {','.join(VARIANTS)}")
    ap.add_argument("--workloads", metavar="W,...", help=f"only these: {','.join(WORKLOADS)}")
    ap.add_argument("--json", metavar="FILE", help="also write all results there")
    args = ap.parse_args()
    args.variants = pick(ap, "--variants", args.variants, VARIANTS, always="none")
    args.workloads = pick(ap, "--workloads", args.workloads, WORKLOADS)
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if args.rounds is None:
        n = len(args.variants)  # whole rotations: each variant as often first
        args.rounds = 3 if args.quick else -(-12 // n) * n
    args.module_dir = str(pathlib.Path(args.module_dir).absolute())
    if not (pathlib.Path(args.module_dir) / PLUGIN_SO).exists():
        sys.exit(f"{PLUGIN_SO} not in {args.module_dir}: build it first, or pass "
                 f"--module-dir / RAWLOG_EXT_MODULE_DIR")
    if os.geteuid() != 0:
        sys.exit("run as root: the private Dovecot needs its mail users (uid 65534)")
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every finally: below runs.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: sys.exit(128 + n))

    machine = machine_info()
    command = shlex.join(sys.orig_argv)
    print(f"command:  {command}")
    print(f"machine:  {machine['nproc']} CPUs ({machine['cpu_model']}), "
          f"{machine['mem_gib']} GiB, Linux {machine['kernel']}")
    print(f"dovecot:  {machine['dovecot']}; module {args.module_dir}/{PLUGIN_SO}")
    runs = []
    with tmpfs_root() as (root, mounted):
        fstype = fs_type(root)
        where = f"a tmpfs mounted at {root}" if mounted else f"{root} ({fstype})"
        print(f"storage:  mailboxes and logs on {where} (CPU picture, not disk)")
        print(f"workload: seed {args.seed}; per workload one Dovecot per variant, all up at "
              f"once, taking turns in windows of {args.seconds:g} s", flush=True)
        wait_quiet()
        write_path = sink_bench(root, args.module_dir)
        print(write_path, flush=True)
        for wl in args.workloads:
            instances = {}
            try:
                for v in args.variants:
                    instances[v] = Instance(root, args, v, wl)
                # A VM's first minutes of load are slower (memory not
                # faulted in yet), and each instance's first window too.
                # The warm-up also sizes the windows: about --seconds of
                # work for "none". Every variant does the same windows, so
                # in round k all of them run the same commands.
                warm = {}
                for v, inst in instances.items():
                    warm[v] = inst.window(WARM_UP_COMMANDS[wl])
                    report_problems(warm[v])
                rate = warm["none"]["cmds_per_s"] / args.clients
                commands = max(STEP[wl], round(rate * args.seconds / STEP[wl]) * STEP[wl])
                print(f"  {wl}: {len(instances)} instances up; warm-up (discarded): " +
                      ", ".join(f"{v} {r['cmds_per_s']:.0f}" for v, r in warm.items()) +
                      f" cmds/s; windows of {commands} commands per client", flush=True)
                for rnd in range(args.rounds):
                    # Rotated, so no variant always runs first or last.
                    k = rnd % len(args.variants)
                    order = args.variants[k:] + args.variants[:k]
                    for v in order:
                        if (busy := wait_quiet()) > 0.10:
                            print(f"  WARNING: machine still {busy:.0%} busy with other work")
                        r = instances[v].window(commands)
                        r["round"] = rnd + 1
                        runs.append(r)
                        print(f"  round {rnd + 1} {wl:5} {v:17} {r['cmds_per_s']:7.0f} cmds/s "
                              f"{r['imap_cpu_ms_per_1k']:7.1f} CPU ms/1k cmds, other load "
                              f"{r['other_load']:4.0%}", flush=True)
                        if r["other_load"] > OTHER_LOAD_MAX:
                            print(f"    WARNING: other work took {r['other_load']:.0%} "
                                  f"of the machine in this window")
                        report_problems(r)
            finally:
                for inst in instances.values():
                    for what in inst.close():
                        print(f"    WARNING: {inst.variant}: {what}")
    summary = summarize(runs, args.workloads, args.variants)
    for wl in args.workloads:
        print_table(summary, wl, args)
    print("\n" + LEGEND.format(poll=POLL, fs=fstype))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "machine": machine, "storage": fstype,
                       "settings": {k: getattr(args, k) for k in
                                    ("rounds", "clients", "seconds", "seed", "module_dir",
                                     "variants", "workloads")},
                       "summary": summary, "runs": runs,
                       "write_path": write_path}, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
