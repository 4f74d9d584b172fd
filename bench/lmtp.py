#!/usr/bin/python3
"""Benchmark: what rawlog_ext costs LMTP deliveries (never pass/fail).

    python3 bench/lmtp.py [--quick] [--module-dir DIR] [--rounds N]
                          [--clients N] [--messages N] [--size BYTES]
                          [--recipients 1,3] [--variants V,...] [--json FILE]
                          [--baseline-module-dir DIR] [--rcpt-settings K=V,...]

Variants, each its own private Dovecot (tests/integration/dovecot_fixture.py)
on 127.0.0.1, on a tmpfs:
  none   no module
  core   Dovecot's own lmtp_rawlog_dir (2.3's name; the connection's
         traffic, no module), to compare conn with
  idle   rawlog_ext in lmtp's mail_plugins, nothing configured (with
         rawlog_ext_lmtp_recipients = auto, the default, it follows no
         connection then)
  off    as idle, with rawlog_ext_lmtp_recipients = no: follows no connection
  follow as idle, with rawlog_ext_lmtp_recipients = yes: every connection
         followed (stream filters, splitter) in case a recipient's userdb
         fields name a directory, as idle was before auto
  conn   rawlog_ext_lmtp_dir: the connection log
  rcpt   each recipient's rawlog_ext_dir (a userdb field; and
         rawlog_ext_lmtp_recipients = yes): per-recipient logs
  idle-base  as idle, with the module from --baseline-module-dir (another
         build, e.g. before a change; only with that option; a build from
         before rawlog_ext_lmtp_recipients = auto follows every connection)
  rcpt-base  as rcpt, with the module from --baseline-module-dir
--rcpt-settings adds userdb fields to rcpt and rcpt-base, e.g.
rawlog_ext_timestamps=no (the default layout stamps every line).
In each round every variant (in a rotating order) delivers the same load
while the others idle: --clients connections at once, each --messages
pipelined deliveries (MAIL, RCPT per recipient, DATA, then the message) of
--size bytes. Measured: messages (transactions) per second (wall clock)
and lmtp CPU (the lmtp processes' run time) per message; reported as medians over
the rounds and the median of the per-round ratios to none, with the middle
half and a 95% interval of that median from 6 rounds on (see run.py's
spread()). The intervals cover this run's noise only, not drift between
runs. Memory: during each window /proc/PID/status of every lmtp process
is read every 10 ms; the table gives per variant the largest VmHWM (a
process's peak resident set so far, shared file-backed pages such as the
module's text included) and the largest RssAnon (private memory; sampled,
so a peak shorter than 10 ms can be missed) seen in any window, their
differences to none's, and how many lmtp processes served the variant
(one figure per run, no interval). --json also has each window's read and
write system calls per message of the live lmtp processes.
Run as root (Dovecot drops to the test users itself).
"""

import argparse
import json
import os
import pathlib
import shutil
import socket
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))
from dovecot_fixture import Dovecot, User, line_under_test  # noqa: E402
from protobench import print_table, summarize  # noqa: E402
from run import (children, proc_fields, proc_stat, schedstat_ns,  # noqa: E402
                 tmpfs_root, wait_quiet)

VARIANTS = ("none", "core", "idle", "conn", "rcpt", "follow", "off", "idle-base",
            "rcpt-base")
MAIL_UID = 65534
TICK = os.sysconf("SC_CLK_TCK")
EXT = {"lmtp": "$mail_plugins rawlog_ext"}
# lmtp processes stay between windows: their CPU is read from /proc; one
# that exits is counted in the master's cutime+cstime.
COMMON_CONF = ("service lmtp {\n  process_min_avail = %d\n}\n")


def variant_config(variant: str, logdir: pathlib.Path, clients: int) -> dict:
    conf = {"extra_conf": COMMON_CONF % clients}
    if variant == "none":
        return conf
    if variant == "core":
        # Dovecot's connection rawlog (written as root, like conn's logs).
        # 2.3's setting; only 2.3 was measured.
        conf["extra_conf"] += f"protocol lmtp {{\n  lmtp_rawlog_dir = {logdir}\n}}\n"
        return conf
    conf["protocol_mail_plugins"] = EXT
    if variant == "conn":
        conf["plugin"] = {"rawlog_ext_lmtp_dir": str(logdir)}
    elif variant == "off":
        conf["plugin"] = {"rawlog_ext_lmtp_recipients": "no"}
    elif variant in ("follow", "rcpt", "rcpt-base"):
        # The directories are userdb fields only: auto would follow nothing.
        conf["plugin"] = {"rawlog_ext_lmtp_recipients": "yes"}
    return conf


def message(size: int, n: int) -> bytes:
    line = b"abcdefghijklmnopqrstuvwxyz0123456789 .,-ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    head = b"Subject: bench %d\r\nFrom: <s@example.com>\r\n\r\n" % n
    body = line * max(1, (size - len(head)) // len(line))
    return head + body + b".\r\n"


class Client(threading.Thread):
    """One LMTP connection delivering its messages one after another."""

    def __init__(self, port: int, rcpts: list[str], messages: list[bytes]):
        super().__init__(daemon=True)
        self.port, self.rcpts, self.messages = port, rcpts, messages
        self.error = None
        self.buf = b""

    def _replies(self, sock, count: int) -> list[bytes]:
        out = []
        while len(out) < count:
            while b"\r\n" not in self.buf:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\r\n")
            if line[3:4] != b"-":
                out.append(line)
        return out

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as sock:
                self._replies(sock, 1)
                sock.sendall(b"LHLO bench\r\n")
                self._replies(sock, 1)
                cmds = (b"MAIL FROM:<s@example.com>\r\n" + b"".join(
                    b"RCPT TO:<%s>\r\n" % r.encode() for r in self.rcpts) + b"DATA\r\n")
                for msg in self.messages:
                    sock.sendall(cmds)
                    got = self._replies(sock, 2 + len(self.rcpts))
                    if not got[-1].startswith(b"354"):
                        raise RuntimeError(f"refused: {got}")
                    sock.sendall(msg)
                    got = self._replies(sock, len(self.rcpts))
                    if not all(r.startswith(b"250") for r in got):
                        raise RuntimeError(f"not delivered: {got}")
                sock.sendall(b"QUIT\r\n")
                self._replies(sock, 1)
        except Exception as e:  # reported, the others go on
            self.error = f"{type(e).__name__}: {e}"


class Instance:
    """One variant's Dovecot, kept for the whole run."""

    def __init__(self, root: pathlib.Path, args, variant: str):
        self.variant = variant
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"lmtp-{variant}-", dir=root))
        self.work.chmod(0o755)
        self.logdir = self.work / "logs"
        self.logdir.mkdir(mode=0o755)
        self.users = [f"rcpt{i + 1}" for i in range(max(args.recipients))]
        accounts = []
        for u in self.users:
            d = self.logdir / u
            d.mkdir(mode=0o700)
            os.chown(d, MAIL_UID, MAIL_UID)
            fields = [f"rawlog_ext_dir={d}"] + args.rcpt_settings
            accounts.append(User(u, extra=" ".join(f"userdb_{f}" for f in fields)
                                 if variant in ("rcpt", "rcpt-base") else ""))
        self.dc = Dovecot(self.work / "dovecot", users=accounts, protocols=("lmtp",),
                          module_dir=(args.baseline_module_dir if variant.endswith("-base")
                                      else args.module_dir),
                          **variant_config(variant, self.logdir, args.clients))
        self.dc.start()
        self.log_offset = 0

    def lmtp_children(self) -> dict:
        """The live lmtp processes: pid -> run.children()'s stat tuple."""
        return {pid: st for pid, st in children(self.dc.master_pid).items()
                if st[0] == "lmtp"}

    def lmtp_cpu_s(self) -> float:
        """The live lmtp processes' CPU (schedstat: finer than ticks), and
        what exited ones used (the master's cutime+cstime)."""
        total = 0.0
        for pid, st in self.lmtp_children().items():
            ns = schedstat_ns(pid)
            total += ns / 1e9 if ns is not None else st[3] / TICK
        st = proc_stat(self.dc.master_pid)
        return total + (st[4] / TICK if st else 0.0)

    def lmtp_syscalls(self) -> int:
        """Read and write system calls of the live lmtp processes so far."""
        total = 0
        for pid in self.lmtp_children():
            io = proc_fields(f"/proc/{pid}/io", ("syscr", "syscw"))
            total += io.get("syscr", 0) + io.get("syscw", 0)
        return total

    def poll_memory(self, peak: dict, pids: set, stop: threading.Event) -> None:
        """Until stop: every 10 ms the largest VmHWM and RssAnon (KiB) of
        the live lmtp processes into peak, their pids into pids."""
        while True:
            for pid in self.lmtp_children():
                pids.add(pid)
                for k, v in proc_fields(f"/proc/{pid}/status", tuple(peak)).items():
                    peak[k] = max(peak[k], v)
            if stop.wait(0.01):
                return

    def clean(self) -> int:
        """Removes the delivered mail and the logs; the logs' size."""
        size = 0
        for p in self.logdir.rglob("*"):
            if p.is_file():
                size += p.stat().st_size
                p.unlink()
        for u in self.dc.users.values():
            shutil.rmtree(u.home / "Maildir", ignore_errors=True)
        return size

    def problems(self) -> list[str]:
        text = self.dc.log()
        end = text.rfind("\n", self.log_offset) + 1
        new, self.log_offset = text[self.log_offset:end], max(self.log_offset, end)
        return [line for line in new.splitlines()
                if any(k in line for k in ("Error:", "Fatal:", "Panic:", "Warning:"))]

    def window(self, args, nrcpt: int, msgs: list[bytes]) -> dict:
        rcpts = self.users[:nrcpt]
        clients = [Client(self.dc.lmtp_port, rcpts, msgs) for _ in range(args.clients)]
        peak, pids, stop = {"VmHWM": 0, "RssAnon": 0}, set(), threading.Event()
        poller = threading.Thread(target=self.poll_memory, args=(peak, pids, stop),
                                  daemon=True)
        cpu0, sys0 = self.lmtp_cpu_s(), self.lmtp_syscalls()
        t0 = time.monotonic()
        poller.start()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        elapsed = time.monotonic() - t0
        time.sleep(0.2)  # the last delivery's bookkeeping
        cpu = self.lmtp_cpu_s() - cpu0
        syscalls = self.lmtp_syscalls() - sys0
        stop.set()
        poller.join()
        messages = args.clients * len(msgs)
        log_bytes = self.clean()
        errors = [c.error for c in clients if c.error]
        return {"variant": self.variant, "recipients": nrcpt,
                "messages_per_s": messages / elapsed,
                "cpu_ms_per_message": cpu * 1e3 / messages,
                "syscalls_per_message": syscalls / messages,
                "log_bytes": log_bytes, "problems": (errors + self.problems())[:10],
                "lmtp_peak_kib": peak, "lmtp_pids": sorted(pids)}

    def close(self):
        try:
            self.dc.stop()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def print_memory(runs: list[dict], variants) -> None:
    """Per variant, over all its windows: the largest VmHWM and RssAnon
    its lmtp processes were seen with, against none's, and how many lmtp
    processes it had."""
    peak, pids = {}, {}
    for r in runs:
        p = peak.setdefault(r["variant"], {"VmHWM": 0, "RssAnon": 0})
        for k, v in r["lmtp_peak_kib"].items():
            p[k] = max(p[k], v)
        pids.setdefault(r["variant"], set()).update(r["lmtp_pids"])
    base = peak.get("none")
    print("\nlmtp processes' memory, largest seen in any window (KiB; difference to none)")
    print(f"{'variant':8} {'peak VmHWM':>21} {'peak RssAnon':>21} {'processes':>10}")
    for v in variants:
        m = peak.get(v)
        if not m or not base or not m["VmHWM"]:
            print(f"{v:8} {'n/a':>21} {'n/a':>21} {len(pids.get(v, ())):>10}")
            continue
        print(f"{v:8} {m['VmHWM']:>12} ({m['VmHWM'] - base['VmHWM']:+6}) "
              f"{m['RssAnon']:>12} ({m['RssAnon'] - base['RssAnon']:+6}) "
              f"{len(pids[v]):>10}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, 20 messages")
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--messages", type=int, default=150, help="per client per window")
    ap.add_argument("--size", type=int, default=50 * 1024)
    ap.add_argument("--recipients", default="1,3")
    ap.add_argument("--variants", default=",".join(VARIANTS[:5]))
    ap.add_argument("--baseline-module-dir")
    ap.add_argument("--rcpt-settings", default="",
                    help="userdb fields for rcpt, e.g. rawlog_ext_timestamps=no")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.messages = 3, 20
    args.recipients = [int(x) for x in args.recipients.split(",")]
    args.rcpt_settings = [f for f in args.rcpt_settings.split(",") if f]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or not args.module_dir:
        ap.error(f"unknown variants {sorted(unknown)}" if unknown else
                 "--module-dir (or RAWLOG_EXT_MODULE_DIR) is needed")
    if "core" in variants and line_under_test() != "2.3":
        ap.error("core: lmtp_rawlog_dir is set as on 2.3; 2.4 was not checked")
    if any(v.endswith("-base") for v in variants) and not args.baseline_module_dir:
        ap.error("idle-base and rcpt-base need --baseline-module-dir")
    if "none" not in variants:
        variants.insert(0, "none")
    msgs = [message(args.size, i) for i in range(args.messages)]
    runs = []
    with tmpfs_root() as (root, mounted):
        instances = {}
        try:
            for v in variants:
                instances[v] = Instance(root, args, v)
            print(f"busy before start: {wait_quiet(timeout=30):.0%}; tmpfs: {mounted}; "
                  f"{args.clients} clients x {args.messages} messages of {args.size} "
                  f"bytes per window", flush=True)
            # Warm-up: processes, auth caches, first maildirs.
            for inst in instances.values():
                inst.window(args, 1, msgs[:5])
            for rnd in range(args.rounds):
                for nrcpt in args.recipients:
                    order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                    for v in order:
                        r = instances[v].window(args, nrcpt, msgs)
                        r["round"] = rnd
                        runs.append(r)
                        for p in r["problems"]:
                            print(f"  {v}: {p}", file=sys.stderr)
                print(f"round {rnd + 1}/{args.rounds} done", flush=True)
        finally:
            for inst in instances.values():
                inst.close()
    for nrcpt in args.recipients:
        summary = summarize([r for r in runs if r["recipients"] == nrcpt], variants,
                            ("messages_per_s", "cpu_ms_per_message", "log_bytes"))
        print_table(f"{nrcpt} recipient(s), medians of {args.rounds} rounds", summary,
                    variants, ("messages_per_s", "messages/s"),
                    ("cpu_ms_per_message", "lmtp CPU ms/message"))
    print_memory(runs, variants)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
