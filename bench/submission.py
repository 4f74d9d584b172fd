#!/usr/bin/python3
"""Benchmark: what rawlog_ext costs submission with its relay leg (never pass/fail).

    python3 bench/submission.py [--quick] [--module-dir DIR] [--rounds N]
                                [--clients N] [--sessions N] [--messages N]
                                [--size BYTES] [--variants V,...] [--json FILE]

Variants, each its own private Dovecot (tests/integration/dovecot_fixture.py)
on 127.0.0.1, on a tmpfs, each with its own relay: tests/integration's
SmtpSink in a Python process of its own (bench/protobench.py), on the
instance's submission_relay_host/port:
  none   no module
  core   Dovecot 2.3's own rawlogs: rawlog_dir in protocol submission {}
         (the session after login) and submission_relay_rawlog_dir (the
         relay leg), both in the same directory
  idle   rawlog_ext in submission's mail_plugins, nothing configured
  ext    rawlog_ext_dir set: the session after login and (rawlog_ext_relay,
         default yes) the relay leg
In each round every variant (in a rotating order) runs the same load while
the others idle: --clients connections at once, each --sessions sessions
one after another (EHLO, AUTH PLAIN, then --messages transactions of MAIL,
RCPT, DATA and a --size byte message, then QUIT). Measured: messages per
second (wall clock) and the submission processes' CPU per message (each
session's submission process exits with it and is counted in the master's
cutime+cstime; submission-login is kept alive, service_count = 0, so it is
not); medians over the rounds and the median of the per-round ratios to
none, with a 95% interval of that median from 6 rounds on (run.py's
spread()). The intervals cover this run's noise only, not drift between
runs. Run as root.
"""

import argparse
import base64
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
from protobench import (LogWatch, SinkProcess, interruptible, print_table,  # noqa: E402
                        rounds, service_cpu_s, summarize, wait_none)
from run import tmpfs_root, wait_quiet  # noqa: E402
from lmtp import message  # noqa: E402

VARIANTS = ("none", "core", "idle", "ext")
MAIL_UID = 65534
COMMON_CONF = ("service submission-login {\n  service_count = 0\n"
               "  process_min_avail = 1\n}\n")
KEYS = ("messages_per_s", "cpu_ms_per_message")


def variant_config(variant: str, logdir: pathlib.Path) -> dict:
    conf = {"extra_conf": COMMON_CONF}
    if variant == "core":
        conf["extra_conf"] += (f"submission_relay_rawlog_dir = {logdir}\n"
                               f"protocol submission {{\n  rawlog_dir = {logdir}\n}}\n")
    if variant in ("idle", "ext"):
        conf["protocol_mail_plugins"] = {"submission": "$mail_plugins rawlog_ext"}
    if variant == "ext":
        conf["plugin"] = {"rawlog_ext_dir": str(logdir)}
    return conf


class Client(threading.Thread):
    """One client: its sessions one after another, each logging in and
    submitting its messages (pipelined MAIL, RCPT, DATA)."""

    def __init__(self, port: int, user: str, sessions: int, messages: list[bytes]):
        super().__init__(daemon=True)
        self.port, self.user, self.sessions, self.messages = port, user, sessions, messages
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

    def session(self):
        self.buf = b""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            self._replies(sock, 1)
            sock.sendall(b"EHLO bench.example.com\r\n")
            self._replies(sock, 1)
            auth = base64.b64encode(b"\0%s\0pass" % self.user.encode())
            sock.sendall(b"AUTH PLAIN " + auth + b"\r\n")
            if not (got := self._replies(sock, 1))[0].startswith(b"235"):
                raise RuntimeError(f"login: {got}")
            cmds = (b"MAIL FROM:<%s@example.com>\r\nRCPT TO:<rcpt@example.net>\r\n"
                    b"DATA\r\n" % self.user.encode())
            for msg in self.messages:
                sock.sendall(cmds)
                got = self._replies(sock, 3)
                if not got[-1].startswith(b"354"):
                    raise RuntimeError(f"refused: {got}")
                sock.sendall(msg)
                if not (got := self._replies(sock, 1))[0].startswith(b"250"):
                    raise RuntimeError(f"not relayed: {got}")
            sock.sendall(b"QUIT\r\n")
            self._replies(sock, 1)
            # The server closes after QUIT: the session's end.
            while sock.recv(65536):
                pass

    def run(self):
        try:
            for _ in range(self.sessions):
                self.session()
        except Exception as e:  # reported, the others go on
            self.error = f"{type(e).__name__}: {e}"


class Instance:
    """One variant's Dovecot and relay, kept for the whole run."""

    def __init__(self, root: pathlib.Path, args, variant: str):
        self.variant = variant
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"subm-{variant}-", dir=root))
        self.work.chmod(0o755)
        self.logdir = self.work / "logs"
        self.logdir.mkdir(mode=0o755)
        # Sessions run as the mail user: it writes both kinds of log.
        os.chown(self.logdir, MAIL_UID, MAIL_UID)
        self.users = [f"user{i + 1}" for i in range(args.clients)]
        self.dc = Dovecot(self.work / "dovecot", users=[User(u) for u in self.users],
                          protocols=("submission",), module_dir=args.module_dir,
                          **variant_config(variant, self.logdir))
        self.sink = None
        try:
            self.sink = SinkProcess(self.dc.relay_port)
            self.dc.start()
        except BaseException:
            self.close()
            raise
        self.watch = LogWatch(self.dc)

    def clean(self) -> int:
        size = 0
        for p in self.logdir.rglob("*"):
            if p.is_file():
                size += p.stat().st_size
                p.unlink()
        return size

    def window(self, args, msgs: list[bytes]) -> dict:
        master = self.dc.master_pid
        problems = [] if wait_none(master, "submission") else ["submission left from before"]
        clients = [Client(self.dc.submission_port, u, args.sessions, msgs)
                   for u in self.users]
        cpu0 = service_cpu_s(master, "submission")
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        elapsed = time.monotonic() - t0
        if not wait_none(master, "submission"):
            problems.append("submission processes still alive 10 s after the window")
        cpu = service_cpu_s(master, "submission") - cpu0
        messages = len(clients) * args.sessions * len(msgs)
        errors = [c.error for c in clients if c.error]
        return {"messages_per_s": messages / elapsed,
                "cpu_ms_per_message": cpu * 1e3 / messages,
                "log_bytes": self.clean(),
                "problems": (problems + errors + self.watch.new())[:10]}

    def close(self):
        try:
            self.dc.stop()
        finally:
            if self.sink is not None:
                self.sink.close()
            shutil.rmtree(self.work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, 2 sessions of 5 messages")
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=10, help="per client per window")
    ap.add_argument("--messages", type=int, default=25, help="per session")
    ap.add_argument("--size", type=int, default=50 * 1024)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json")
    args = ap.parse_args()
    interruptible()
    if args.quick:
        args.rounds, args.sessions, args.messages = 3, 2, 5
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or not args.module_dir:
        ap.error(f"unknown variants {sorted(unknown)}" if unknown else
                 "--module-dir (or RAWLOG_EXT_MODULE_DIR) is needed")
    if "core" in variants and line_under_test() != "2.3":
        ap.error("core: the settings are set as on 2.3; 2.4 was not checked")
    if "none" not in variants:
        variants.insert(0, "none")
    msgs = [message(args.size, i) for i in range(args.messages)]
    with tmpfs_root() as (root, mounted):
        instances = {}
        try:
            for v in variants:
                instances[v] = Instance(root, args, v)
            print(f"busy before start: {wait_quiet(timeout=30):.0%}; tmpfs: {mounted}; "
                  f"{args.clients} clients x {args.sessions} sessions x {args.messages} "
                  f"messages of {args.size} bytes per window", flush=True)
            for inst in instances.values():  # warm-up
                inst.window(argparse.Namespace(sessions=1), msgs[:2])
            runs = rounds(instances, variants, args.rounds,
                          lambda inst: inst.window(args, msgs))
        finally:
            for inst in instances.values():
                inst.close()
    summary = summarize(runs, variants, KEYS + ("log_bytes",))
    print_table(f"submission with relay, medians of {args.rounds} rounds", summary,
                variants, ("messages_per_s", "messages/s"),
                ("cpu_ms_per_message", "submission CPU ms/msg"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
