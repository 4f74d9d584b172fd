#!/usr/bin/python3
"""Benchmark: what raw logging costs an IMAP server (never pass/fail).

    python3 bench/run.py [--quick] [--module-dir DIR] [--rounds N]
                         [--clients N] [--seconds S] [--seed N] [--json FILE]

For each workload (long sessions, short-session mix) it starts one private
Dovecot (tests/integration/dovecot_fixture.py) on 127.0.0.1 per variant
(none, core, ext-split, ext-transcript, ext-chunks, ext-unselected), each
with its bench/loadgen.py clients logged in, and lets the variants take
turns: in each round every variant runs alone for --seconds while the
others idle. Instances and logs live on a tmpfs, so the figures show CPU
cost, not disk speed. First, bench/sink-bench measures the write path
alone.
"""

import argparse
import contextlib
import ctypes
import json
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
from dovecot_fixture import DOVECOT_BIN, PLUGIN_SO, Dovecot, User  # noqa: E402
import loadgen  # noqa: E402

VARIANTS = ("none", "core", "ext-split", "ext-transcript", "ext-chunks", "ext-unselected")
WORKLOADS = ("long", "short")
MAIL_UID = 65534
TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.1
OTHER_LOAD_MAX, RETRIES = 0.05, 3  # a measurement disturbed by others is repeated
TRIM_CHUNK = 1 << 20  # log pages are freed per MiB, every 5th poll
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
# imap-login in "performance mode" never exits, so the master's reaped-
# children CPU (cutime+cstime) grows only by the imap processes we measure.
COMMON_CONF = "service imap-login {\n  service_count = 0\n}\n"


def variant_config(variant: str, logdir: pathlib.Path) -> dict:
    """Dovecot fixture kwargs for one variant."""
    ext = "$mail_plugins rawlog_ext"
    if variant == "none":
        return {"extra_conf": COMMON_CONF}
    if variant == "core":
        return {"extra_conf": COMMON_CONF + f"protocol imap {{\n  rawlog_dir = {logdir}\n}}\n"}
    if variant == "ext-unselected":
        return {"mail_plugins": ext, "extra_conf": COMMON_CONF}
    plugin = {"rawlog_ext_dir": str(logdir)}
    if variant == "ext-transcript":
        plugin["rawlog_ext_format"] = "transcript"
    if variant == "ext-chunks":
        plugin["rawlog_ext_timestamps"] = "chunks"
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


class Monitor:
    """Follows the imap processes of one Dovecot master while clients run.

    CPU is exact: an exited imap process is reaped by the master, whose
    cutime+cstime then include it (summed by the kernel in ns, so even the
    short sessions' few ms count); live ones are read directly. Polling is
    for peak memory, fds and write syscalls only.
    """

    def __init__(self, master: int, long_sessions: bool):
        self.master = master
        self.long = long_sessions
        self.peak = {}        # pid -> {"VmHWM": kib, "RssAnon": kib}
        self.fds = {}         # pid -> fewest fds seen mid-window
        self.syscw = {}       # pid -> [first, last] write syscall count
        self.polled_cpu = {}  # pid -> last utime+stime (cross-check only)
        self.others = {}      # non-imap children, to notice unexpected exits
        self.strangers = set()

    def imap_pids(self) -> list[int]:
        return [p for p, st in children(self.master).items() if st[0] == "imap"]

    def imap_cpu(self) -> int:
        """Ticks used so far by imap processes, exited or alive."""
        return proc_stat(self.master)[4] + sum(
            st[3] for st in children(self.master).values() if st[0] == "imap")

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

    def poll(self, count_fds: bool) -> None:
        for pid, st in children(self.master, self.strangers).items():
            if st[0] != "imap":
                if st[0] != "dovecot":  # "dovecot": forked, not yet exec'd
                    self.others[pid] = st[0]
                continue
            self.polled_cpu[pid] = st[3]
            peak = self.peak.setdefault(pid, {})
            for k, v in proc_fields(f"/proc/{pid}/status", ("VmHWM", "RssAnon")).items():
                peak[k] = max(peak.get(k, 0), v)
            if not self.long or st[1] == "Z":
                continue
            # Short sessions are caught at random points of their lives, so
            # fds and syscalls are only counted for the long ones.
            if (w := proc_fields(f"/proc/{pid}/io", ("syscw",)).get("syscw")) is not None:
                self.syscw.setdefault(pid, [w, w])[1] = w
            if count_fds:
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
def no_sigint():
    """Cleanup must finish even if Ctrl-C is pressed again."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class Instance:
    """One variant's private Dovecot and its logged-in clients, kept for a
    whole workload: the variants take turns in short windows, so a slow
    spell of the (virtual) machine hits all of them alike instead of the
    one that happened to run then."""

    def __init__(self, root: pathlib.Path, args, variant: str, workload: str):
        self.variant, self.workload = variant, workload
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"{variant}-{workload}-", dir=root))
        self.work.chmod(0o755)
        self.logdir = self.work / "logs"
        self.logdir.mkdir(mode=0o755)
        os.chown(self.logdir, MAIL_UID, MAIL_UID)
        self.trimmer = LogTrimmer(self.logdir)
        self.problems_seen = 0
        self.dc = self.clients = None
        users = [f"bench{i + 1}" for i in range(args.clients)]
        try:
            self.dc = Dovecot(self.work / "dovecot", users=[User(u) for u in users],
                              protocols=("imap",), module_dir=args.module_dir,
                              **variant_config(variant, self.logdir))
            self.dc.start()
            self.clients = loadgen.Clients(self.dc.imap_port, users, workload, args.seed)
            self.clients.start()
            if workload == "short":
                # The set-up sessions are gone before the first window.
                Monitor(self.dc.master_pid, False).wait_no_imap(15)
        except BaseException:
            self.close()
            raise

    def log_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.logdir.iterdir())

    def begin(self, seconds: float) -> dict:
        """Opens a window: lets the clients run for seconds."""
        mon = Monitor(self.dc.master_pid, self.workload == "long")
        w = {"mon": mon, "seconds": seconds, "log0": self.log_bytes(),
             "cpu0": mon.imap_cpu(), "tree0": mon.tree_ticks()}
        w["end"] = self.clients.go(seconds)
        return w

    def poll(self, w: dict, count_fds: bool) -> None:
        w["mon"].poll(count_fds)

    def finish(self, w: dict) -> dict:
        """What the window cost. "ours" (CPU of this instance and its
        clients, in ticks) is for the caller's other-load figure."""
        mon, seconds = w["mon"], w["seconds"]
        res = self.clients.collect()
        cpu1, tree1 = mon.imap_cpu(), mon.tree_ticks()
        lines = self.dc.log().splitlines()
        problems = [line for line in lines[self.problems_seen:]
                    if any(k in line for k in ("Error:", "Fatal:", "Panic:", "Warning:"))]
        self.problems_seen = len(lines)
        problems += mon.vanished_others()

        in_window = sum(r["commands_in_window"] for r in res)
        total = sum(r["commands_total"] for r in res)
        cpu = (cpu1 - w["cpu0"]) / TICK
        peaks = mon.peak.values()
        writes = sum(last - first for first, last in mon.syscw.values())
        return {
            "variant": self.variant, "workload": self.workload, "seconds": seconds,
            "cmds_per_s": in_window / seconds,
            "commands_in_window": in_window, "commands_total": total,
            "sessions": sum(r["sessions"] for r in res),
            "imap_cpu_s": cpu, "imap_cpu_ms_per_1k": cpu * 1e6 / max(1, total),
            "client_cpu_ms_per_1k": sum(r["client_cpu_s"] for r in res) * 1e6 / max(1, total),
            "ours": (tree1 - w["tree0"]) + sum(r["client_cpu_s"] for r in res) * TICK,
            "log_bytes": self.log_bytes() - w["log0"],
            "wire_bytes": sum(r["wire_in"] + r["wire_out"] for r in res),
            "imap_processes_seen": len(mon.peak),
            "peak_rss_kib": max((p.get("VmHWM", 0) for p in peaks), default=None),
            "peak_anon_kib": max((p.get("RssAnon", 0) for p in peaks), default=None),
            "fds": median(mon.fds.values()),
            "writes_per_cmd": writes / in_window if mon.syscw and in_window else None,
            "problems": problems[:20],
        }


    def close(self) -> None:
        with no_sigint():
            self.trimmer.close()
            if self.clients is not None:
                self.clients.stop()
            if self.dc is not None:
                self.dc.stop()
            shutil.rmtree(self.work, ignore_errors=True)


def run_window(inst: Instance, seconds: float) -> dict:
    """One window of inst while the other instances idle."""
    self0, busy0 = sum(os.times()[:2]), cpu_busy_ticks()
    w = inst.begin(seconds)
    # fds: the fewest per process over the middle second of the window,
    # i.e. what the session holds, not a mail file open for a moment.
    mid, polls = w["end"] - seconds / 2, 0
    while (now := time.monotonic()) < w["end"]:
        inst.poll(w, count_fds=abs(now - mid) <= 0.5)
        polls += 1
        if polls % 5 == 0:
            inst.trimmer.trim()
        time.sleep(max(0.0, min(POLL, w["end"] - time.monotonic())))
    r = inst.finish(w)
    self1, busy1 = sum(os.times()[:2]), cpu_busy_ticks()
    machine = max(1, busy1[1] - busy0[1])
    # Whatever the machine did beyond this Dovecot, its clients and this
    # script is someone else's load: reported, as it skews the figures.
    ours = r.pop("ours") + (self1 - self0) * TICK
    r["machine_busy"] = (busy1[0] - busy0[0]) / machine
    r["other_load"] = max(0.0, (busy1[0] - busy0[0] - ours) / machine)
    return r


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
        with no_sigint():
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


def summarize(runs: list[dict]) -> dict:
    """Medians over rounds; ratios and deltas against none of the same
    round (so slow drift of the machine cancels out), then their median."""
    out = {}
    for wl in WORKLOADS:
        base = [r for r in runs if r["workload"] == wl and r["variant"] == "none"]
        for v in VARIANTS:
            mine = [r for r in runs if r["workload"] == wl and r["variant"] == v]
            s = {}
            for key in [c[0] for c in COLUMNS] + ["client_cpu_ms_per_1k", "wire_bytes",
                                                   "sessions", "commands_total"]:
                s[key] = median(r[key] for r in mine)
                pairs = [(m[key], b[key]) for m, b in zip(mine, base)
                         if m[key] is not None and b[key] is not None]
                s[key + "_ratio"] = median(m / b for m, b in pairs if b)
                s[key + "_delta"] = median(m - b for m, b in pairs)
            s["log_per_wire"] = median(r["log_bytes"] / r["wire_bytes"] for r in mine)
            out[f"{wl}/{v}"] = s
    return out


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
    print(f"\n{title[workload]}\n{args.clients} clients, {args.seconds:g} s per variant "
          f"per round, median of {args.rounds} rounds")
    head = f"{'variant':15}" + "".join(f"{h:>{w}}" for _, h, w, _, _ in COLUMNS)
    print(head + "\n" + "-" * len(head))
    for v in VARIANTS:
        s = summary[f"{workload}/{v}"]
        print(f"{v:15}" + "".join(f"{cell(s, k, fmt, how):>{w}}"
                                   for k, _, w, fmt, how in COLUMNS))
    print(f"load generator CPU (none): "
          f"{summary[f'{workload}/none']['client_cpu_ms_per_1k']:.1f} ms/1k cmds")


LEGEND = """\
(x) ratio to none, (+) difference to none, both per round then median; (/w) log bytes per
byte on the wire. CPU = utime+stime of all imap processes (live ones and the master's reaped
children) in the window per 1000 commands. peak RSS = highest VmHWM, peak anon = highest RssAnon of any
imap process (polled every {poll:g} s). fds = open fds of a long-session imap process in the
middle of the window; writes/cmd = write-family syscalls (/proc/PID/io syscw) of the imap
processes per command, socket writes included. busy = whole machine; other = its share used
by anything but this Dovecot, the clients and the harness (should be ~0%). Logs were on {fs}:
the CPU picture, not disk speed; log pages were freed as they filled (sizes are exact)."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of 2 s windows")
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR")
                    or str(REPO / "build" / "src" / ".libs"))
    ap.add_argument("--rounds", type=int, help="windows per variant and workload (12, --quick 3)")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, help="per window (5, --quick 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write all results there")
    args = ap.parse_args()
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if args.rounds is None:
        args.rounds = 3 if args.quick else 12
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
        for wl in WORKLOADS:
            instances = {}
            try:
                for v in VARIANTS:
                    instances[v] = Instance(root, args, v, wl)
                # A VM's first minutes of load are slower (memory not
                # faulted in yet), and each instance's first window too.
                warm = [run_window(inst, min(5.0, args.seconds))
                        for inst in instances.values()]
                print(f"  {wl}: {len(instances)} instances up; warm-up (discarded): " +
                      ", ".join(f"{r['variant']} {r['cmds_per_s']:.0f}" for r in warm),
                      flush=True)
                for rnd in range(args.rounds):
                    # Rotated, so no variant always runs first or last.
                    order = VARIANTS[rnd % len(VARIANTS):] + VARIANTS[:rnd % len(VARIANTS)]
                    for v in order:
                        for attempt in range(RETRIES + 1):
                            if (busy := wait_quiet()) > 0.10:
                                print(f"  WARNING: machine still {busy:.0%} busy with other work")
                            r = run_window(instances[v], args.seconds)
                            if r["other_load"] <= OTHER_LOAD_MAX or attempt == RETRIES:
                                break
                            print(f"  (repeated: other work took {r['other_load']:.0%} "
                                  f"of the machine)", flush=True)
                        r["round"] = rnd + 1
                        runs.append(r)
                        print(f"  round {rnd + 1} {wl:5} {v:15} {r['cmds_per_s']:7.0f} cmds/s "
                              f"{r['imap_cpu_ms_per_1k']:7.1f} CPU ms/1k cmds, other load "
                              f"{r['other_load']:4.0%}", flush=True)
                        for what in r["problems"][:5]:
                            print(f"    WARNING: {what}")
            finally:
                for inst in instances.values():
                    inst.close()
    summary = summarize(runs)
    for wl in WORKLOADS:
        print_table(summary, wl, args)
    print("\n" + LEGEND.format(poll=POLL, fs=fstype))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "machine": machine, "storage": fstype,
                       "settings": {k: getattr(args, k) for k in
                                    ("rounds", "clients", "seconds", "seed", "module_dir")},
                       "summary": summary, "runs": runs,
                       "write_path": write_path}, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
