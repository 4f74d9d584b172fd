#!/usr/bin/python3
"""How long `rawlog-ext-view list` takes on a tree of many sessions
(issue #17 item 7: 100,000 sessions in at most 2 s on this machine kind).

Generates, in a temporary directory, a tree as the module and the login
companion write it: one directory per user, each session a split pair
(.in/.out) of small files, every tenth one with a login companion's pair
too, so 220,000 files. Then times `list DIR` (names and sizes only) and
`list --user U DIR`, each the median of --runs runs, output to /dev/null.
Prints the times; never passes or fails.

usage: bench/view-list.py [--view PATH] [--sessions N] [--users N] [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def generate(top: str, sessions: int, users: int) -> int:
    """The tree; the number of files written."""
    start = 1764633600      # 2025-12-02T00:00:00Z
    files = 0
    mail = os.path.join(top, "mail")
    login = os.path.join(top, "login")
    for u in range(users):
        os.makedirs(os.path.join(mail, f"user{u}"))
        os.makedirs(os.path.join(login, f"user{u}"))
    for i in range(sessions):
        user = f"user{i % users}"
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start + i))
        session = f"S{i:010d}AAAB"
        stems = [os.path.join(mail, user, f"{stamp}_imap_{session}_{1000 + i % 30000}_mx1")]
        if i % 10 == 0:
            stems.append(os.path.join(login, user,
                                      f"{stamp}_imap-login_{session}_{900 + i % 300}_mx1_127.0.0.1"))
        for stem in stems:
            for ext, data in ((".in", b"1764633600.000000 a NOOP\r\n"),
                              (".out", b"1764633600.000100 a OK done\r\n")):
                with open(stem + ext, "wb") as f:
                    f.write(data)
                files += 1
    return files


def timed(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.monotonic() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{cmd}: exit {r.returncode}: {r.stderr.decode()}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--view", default=os.environ.get("RAWLOG_EXT_VIEW",
                    os.path.join(here, "..", "src", "view", "rawlog-ext-view")))
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="rawlog-ext-view-list-")
    try:
        t0 = time.monotonic()
        files = generate(top, args.sessions, args.users)
        print(f"tree: {args.sessions} sessions, {args.users} users, {files} files "
              f"({time.monotonic() - t0:.1f} s to write)")
        # A first walk brings the tree into the page cache: the runs
        # measure the viewer, not the disk.
        subprocess.run([args.view, "list", top], stdout=subprocess.DEVNULL)
        for label, extra in (("list DIR", []),
                             ("list --user user7 DIR", ["--user", "user7"])):
            t = timed([args.view, "list", *extra, top], args.runs)
            print(f"{label}: {t:.3f} s (median of {args.runs})")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
