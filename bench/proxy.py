#!/usr/bin/python3
"""Benchmark: what rawlog_ext_login costs proxied IMAP logins (never pass/fail).

    python3 bench/proxy.py [--quick] [--module-dir DIR] [--rounds N]
                           [--clients N] [--sessions N] [--variants V,...]
                           [--login-processes N] [--json FILE]

Each variant is a pair of private Dovecots (tests/integration/
dovecot_fixture.py) on 127.0.0.1, on a tmpfs: a proxy, whose passdb sends
every user on (proxy=y host=127.0.0.1 port=<backend>), and its own backend,
which the variants do not change. On the proxy:
  none   no login plugin
  core   Dovecot 2.3's own login_proxy_rawlog_dir (the backend leg only),
         a directory below the login chroot, owned by dovenull
  idle   rawlog_ext_login in login_plugins, nothing configured (no
         RAWLOG_EXT_LOGIN_DIR)
  ext    rawlog_ext_login logging both legs (RAWLOG_EXT_LOGIN_DIR below the
         login chroot; the users' passdb replies have rawlog_ext=yes)
imap-login runs as Dovecot sets it by default (service_count = 1: a process
per connection, which stays for the whole proxied session), or with
--login-processes N in "performance mode" (service_count = 0, N processes
kept, each relaying many sessions; their CPU is read in /proc). In each round
every variant (in a rotating order) runs the same load while the others
idle: --clients clients at once, each --sessions short sessions one after
another (connect, LOGIN, SELECT INBOX, FETCH 1:* FLAGS, NOOP, LOGOUT; the
INBOX holds one small message). Measured: sessions per second (wall clock)
and the proxy's imap-login CPU per session (by default all its imap-login
processes exit with their sessions and are counted in the master's
cutime+cstime);
medians over the rounds and the median of the per-round ratios to none,
with a 95% interval of that median from 6 rounds on (run.py's spread()).
The intervals cover this run's noise only, not drift between runs. Run as
root.
"""

import argparse
import json
import os
import pathlib
import pwd
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
from protobench import (LogWatch, interruptible, print_table, rounds,  # noqa: E402
                        service_cpu_s, summarize, wait_none)
from run import tmpfs_root, wait_quiet  # noqa: E402

VARIANTS = ("none", "core", "idle", "ext")
KEYS = ("sessions_per_s", "cpu_ms_per_session")
PASSWORD = "bench-pw"
MESSAGE = b"From: <s@example.com>\r\nSubject: proxied\r\n\r\nhello\r\n"


class Client(threading.Thread):
    """One client's short sessions through the proxy, one after another."""

    def __init__(self, port: int, user: str, sessions: int):
        super().__init__(daemon=True)
        self.port, self.user, self.sessions = port, user, sessions
        self.error = None

    def session(self):
        buf = b""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            def until(tag: bytes) -> bytes:
                nonlocal buf
                while True:
                    i = buf.find(tag)
                    if i >= 0 and (j := buf.find(b"\r\n", i)) >= 0 and (
                            i == 0 or buf[i - 2:i] == b"\r\n"):
                        line, buf = buf[i:j], buf[j + 2:]
                        return line
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError(f"closed waiting for {tag!r}")
                    buf += data
            until(b"* OK")
            for tag, cmd in ((b"a", b"LOGIN %s %s" % (self.user.encode(), PASSWORD.encode())),
                             (b"b", b"SELECT INBOX"), (b"c", b"FETCH 1:* FLAGS"),
                             (b"d", b"NOOP"), (b"e", b"LOGOUT")):
                sock.sendall(tag + b" " + cmd + b"\r\n")
                line = until(tag + b" ")
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{cmd.split()[0].decode()}: {line!r}")
            while sock.recv(65536):
                pass

    def run(self):
        try:
            for _ in range(self.sessions):
                self.session()
        except Exception as e:  # reported, the others go on
            self.error = f"{type(e).__name__}: {e}"


class Instance:
    """One variant's proxy and backend, kept for the whole run."""

    def __init__(self, root: pathlib.Path, args, variant: str):
        self.variant = variant
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"proxy-{variant}-", dir=root))
        self.work.chmod(0o755)
        self.users = [f"user{i + 1}" for i in range(args.clients)]
        self.backend = Dovecot(self.work / "backend", protocols=("imap",),
                               users=[User(u, password=PASSWORD) for u in self.users])
        self.dc = None
        for u in self.backend.users.values():
            self._deliver(u)
        # Both logs: a directory below $base_dir/login, the login processes'
        # chroot (as the README tells admins), owned by the login user.
        self.logdir = None
        if variant in ("core", "ext"):
            self.logdir = (self.work / "proxy" / "run" / "login" /
                           ("proxy-rawlog" if variant == "core" else "rawlog"))
        try:
            self.backend.start()
            flag = " rawlog_ext=yes" if variant == "ext" else ""
            users = [User(u, password=PASSWORD,
                          extra=f"proxy=y host=127.0.0.1 port={self.backend.imap_port}{flag}")
                     for u in self.users]
            kwargs = {"extra_conf": ""}
            if args.login_processes:
                kwargs["extra_conf"] = ("service imap-login {\n  service_count = 0\n"
                                        f"  process_min_avail = {args.login_processes}\n}}\n")
            if variant == "core":
                kwargs["extra_conf"] += "login_proxy_rawlog_dir = /proxy-rawlog\n"
            if variant == "idle":
                kwargs["login_env"] = {}
            if variant == "ext":
                kwargs["login_env"] = {"RAWLOG_EXT_LOGIN_DIR": str(self.logdir)}
            self.dc = Dovecot(self.work / "proxy", protocols=("imap",), users=users,
                              module_dir=args.module_dir, **kwargs)
            if self.logdir is not None:
                self.logdir.mkdir(parents=True, mode=0o700)
                nobody = pwd.getpwnam("dovenull")
                os.chown(self.logdir, nobody.pw_uid, nobody.pw_gid)
            self.dc.start()
        except BaseException:
            self.close()
            raise
        self.watch = LogWatch(self.dc)

    def _deliver(self, user: User) -> None:
        """One small message in the user's INBOX on the backend."""
        new = user.home / "Maildir" / "new"
        for d in ("new", "cur", "tmp"):
            (user.home / "Maildir" / d).mkdir(parents=True, exist_ok=True)
        (new / "1.bench.local").write_bytes(MESSAGE)
        for p in [user.home / "Maildir", *(user.home / "Maildir").iterdir(),
                  new / "1.bench.local"]:
            os.chown(p, user.uid, user.gid)

    def clean(self) -> int:
        size = 0
        if self.logdir is not None:
            for p in self.logdir.rglob("*"):
                if p.is_file():
                    size += p.stat().st_size
                    p.unlink()
        return size

    def window(self, args) -> dict:
        master = self.dc.master_pid
        kept = bool(args.login_processes)
        problems = ([] if kept or wait_none(master, "imap-login")
                    else ["imap-login left from before"])
        clients = [Client(self.dc.imap_port, u, args.sessions) for u in self.users]
        cpu0 = service_cpu_s(master, "imap-login")
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        elapsed = time.monotonic() - t0
        if kept:
            time.sleep(0.2)  # the last disconnections' bookkeeping
        elif not wait_none(master, "imap-login"):
            problems.append("imap-login processes still alive 10 s after the window")
        cpu = service_cpu_s(master, "imap-login") - cpu0
        sessions = len(clients) * args.sessions
        errors = [c.error for c in clients if c.error]
        return {"sessions_per_s": sessions / elapsed,
                "cpu_ms_per_session": cpu * 1e3 / sessions,
                "log_bytes": self.clean(),
                "problems": (problems + errors + self.watch.new())[:10]}

    def close(self):
        try:
            if self.dc is not None:
                self.dc.stop()
        finally:
            self.backend.stop()
            shutil.rmtree(self.work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, 10 sessions per client")
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=100, help="per client per window")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--login-processes", type=int, default=0,
                    help="imap-login in performance mode with N processes")
    ap.add_argument("--json")
    args = ap.parse_args()
    interruptible()
    if args.quick:
        args.rounds, args.sessions = 3, 10
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or not args.module_dir:
        ap.error(f"unknown variants {sorted(unknown)}" if unknown else
                 "--module-dir (or RAWLOG_EXT_MODULE_DIR) is needed")
    if line_under_test() != "2.3":
        ap.error("the proxy's settings are written as on 2.3; 2.4 was not checked")
    if "none" not in variants:
        variants.insert(0, "none")
    with tmpfs_root() as (root, mounted):
        instances = {}
        try:
            for v in variants:
                instances[v] = Instance(root, args, v)
            print(f"busy before start: {wait_quiet(timeout=30):.0%}; tmpfs: {mounted}; "
                  f"{args.clients} clients x {args.sessions} proxied sessions per window",
                  flush=True)
            for inst in instances.values():  # warm-up
                inst.window(argparse.Namespace(sessions=2,
                                               login_processes=args.login_processes))
            runs = rounds(instances, variants, args.rounds, lambda inst: inst.window(args))
        finally:
            for inst in instances.values():
                inst.close()
    summary = summarize(runs, variants, KEYS + ("log_bytes",))
    mode = (f"imap-login service_count = 0, {args.login_processes} processes"
            if args.login_processes else "imap-login service_count = 1")
    print_table(f"proxied IMAP logins ({mode}), medians of {args.rounds} rounds",
                summary, variants, ("sessions_per_s", "sessions/s"),
                ("cpu_ms_per_session", "imap-login CPU ms/session"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
