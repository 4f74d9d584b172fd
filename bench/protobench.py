"""What bench/submission.py and bench/proxy.py share (the style of
bench/lmtp.py, which uses the summary and the table): CPU of one kind of
Dovecot process, the rotating rounds, the medians of the per-round ratios
to "none" with run.py's spread(), the table, and an SMTP sink in a
process of its own."""

import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))
from run import children, median, proc_stat, schedstat_ns, spread  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def interruptible() -> None:
    """SIGINT (even if the shell that started us in the background ignores
    it) and SIGTERM end the run the same way, through KeyboardInterrupt:
    the instances are stopped and the tmpfs unmounted."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def service_cpu_s(master: int, comm: str) -> float:
    """CPU of master's live processes named comm (schedstat, ns) plus what
    every child it reaped used (its cutime+cstime). Measured across a
    window that starts and ends with no such process alive (wait_none),
    and with every other child kept alive, the difference is what the
    comm processes of the window used."""
    total = 0.0
    for pid, st in children(master).items():
        if st[0] == comm:
            ns = schedstat_ns(pid)
            total += ns / 1e9 if ns is not None else st[3] / TICK
    st = proc_stat(master)
    return total + (st[4] / TICK if st else 0.0)


def wait_none(master: int, comm: str, timeout: float = 10.0) -> bool:
    """Waits until master has no live child named comm; False on timeout."""
    end = time.monotonic() + timeout
    while any(st[0] == comm for st in children(master).values()):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


class LogWatch:
    """Error/Fatal/Panic/Warning lines a Dovecot logged since the last call."""

    def __init__(self, dc):
        self.dc, self.offset = dc, 0

    def new(self) -> list[str]:
        text = self.dc.log()
        end = text.rfind("\n", self.offset) + 1
        new, self.offset = text[self.offset:end], max(self.offset, end)
        return [line for line in new.splitlines()
                if any(k in line for k in ("Error:", "Fatal:", "Panic:", "Warning:"))]


def rounds(instances: dict, variants: list, count: int, window) -> list[dict]:
    """count rounds; in round k the variants run window(instance) in the
    order rotated by k. Returns the windows' results with "round" set."""
    runs = []
    for rnd in range(count):
        order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
        for v in order:
            r = window(instances[v])
            r["round"], r["variant"] = rnd, v
            runs.append(r)
            for p in r.get("problems", []):
                print(f"  {v}: {p}", file=sys.stderr)
        print(f"round {rnd + 1}/{count} done", flush=True)
    return runs


def summarize(runs: list[dict], variants, keys) -> dict:
    """Per variant and key: the median, the median of the per-round ratios
    to none and their spread() (None below 6 rounds)."""
    out = {}
    base = {r["round"]: r for r in runs if r["variant"] == "none"}
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        s = {}
        for key in keys:
            s[key] = median(r[key] for r in mine)
            ratios = [r[key] / b[key] for r in mine
                      if (b := base.get(r["round"])) is not None and b[key]]
            s[key + "_ratio"] = median(ratios)
            s[key + "_spread"] = spread(ratios)
        out[v] = s
    return out


def fmt_ratio(s: dict, key: str) -> str:
    r = s[key + "_ratio"]
    text = f"{s[key]:.2f} ({r:.3f}x" if r is not None else f"{s[key]:.2f} (n/a"
    sp = s[key + "_spread"]
    if sp is not None:
        text += f", 95% {sp['ci95'][0]:.3f}-{sp['ci95'][1]:.3f}"
    return text + ")"


def print_table(title: str, summary: dict, variants, rate: tuple[str, str],
                cpu: tuple[str, str]) -> None:
    """One table: per variant the rate and the CPU figure (key, column
    heading) with their ratios to none, and the log written per window."""
    print(f"\n{title} (ratio to none of the same round)")
    print(f"{'variant':8} {rate[1]:>32} {cpu[1]:>34} {'log MB/window':>14}")
    for v in variants:
        s = summary[v]
        print(f"{v:8} {fmt_ratio(s, rate[0]):>32} {fmt_ratio(s, cpu[0]):>34} "
              f"{(s['log_bytes'] or 0) / 1e6:>14.1f}")


SINK_CODE = """
import sys, threading, time
sys.path.insert(0, sys.argv[1])
from rawlog import SmtpSink
sink = SmtpSink(int(sys.argv[2]))
print("ready", flush=True)
while True:          # the bench keeps no bytes: drop what the sink recorded
    time.sleep(0.5)
    del sink.sessions[:-64]
"""


class SinkProcess:
    """tests/integration/rawlog.py's SmtpSink on 127.0.0.1:port in a Python
    process of its own (not sharing the clients' GIL), its records dropped
    as it goes. It costs every variant the same."""

    def __init__(self, port: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SINK_CODE, str(REPO / "tests" / "integration"),
             str(port)], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"SMTP sink on port {port} did not start")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
