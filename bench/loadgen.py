"""IMAP load generator for bench/run.py: N client processes, raw sockets.

Each client is one process with its own user and a seeded random.Random, so
the sequence of commands and message bodies is the same on every run. A
window is a fixed amount of work (the next N commands of every client), so
the variants compared in one round do exactly the same commands. The hot
path does no per-byte Python work: literals in responses are skipped by
length, message bodies are built once before the first window.
"""

import base64
import multiprocessing as mp
import os
import queue
import random
import signal
import socket
import time
import traceback

MAILBOX_HIGH = 30   # long sessions expunge back to MAILBOX_LOW above this
MAILBOX_LOW = 20
SHORT_SETUP_MESSAGES = 5
POOL_SIZE = 16      # distinct messages per client, appended in turn
TIMEOUT = 30.0


def make_message(rng: random.Random, user: str, n: int) -> bytes:
    """A mail of 2 KB .. 100 KB (log-uniform), CRLF lines: plain text, or
    (every other one) text and a base64 attachment of the same size."""
    size = int(2048 * (50 ** rng.random()))
    vocab = ["".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 9)))
             for _ in range(400)]
    subject = " ".join(rng.choices(vocab, k=rng.randint(3, 8)))
    head = (f"From: Sender {n} <sender{n}@example.org>\r\n"
            f"To: {user} <{user}@test.local>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: Mon, 6 May 2024 10:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{user}.{n}.{rng.getrandbits(32):08x}@example.org>\r\n"
            "MIME-Version: 1.0\r\n").encode()
    attach = n % 2 == 1
    text_size = size // 2 if attach else size
    lines, length = [], len(head)
    while length < text_size:
        line = " ".join(rng.choices(vocab, k=rng.randint(6, 12))).capitalize() + ".\r\n"
        lines.append(line)
        length += len(line)
    text = "".join(lines).encode()
    if not attach:
        return head + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text
    n_raw = max(1, (size - text_size) * 3 // 4)
    raw = rng.getrandbits(8 * n_raw).to_bytes(n_raw, "little")
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")  # 76 columns
    return (head + b'Content-Type: multipart/mixed; boundary="=b"\r\n\r\n'
            b"--=b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text +
            b"--=b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--=b--\r\n")


class ImapError(Exception):
    pass


class Conn:
    """One IMAP connection; counts wire bytes, skips literals unparsed."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = bytearray()
        self.pos = 0
        self.tag = 0
        self.exists = 0
        self.wire_in = self.wire_out = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting: {greeting!r}")

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.wire_in += len(chunk)
        return chunk

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.wire_out += len(data)

    def line(self) -> bytes:
        while (end := self.buf.find(b"\n", self.pos)) < 0:
            if self.pos > 1 << 16:
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += self._recv()
        line = bytes(self.buf[self.pos:end + 1])
        self.pos = end + 1
        return line

    def skip(self, n: int) -> None:
        """Drops n bytes (a literal) without copying them around."""
        avail = len(self.buf) - self.pos
        if avail >= n:
            self.pos += n
            return
        n -= avail
        self.buf.clear()
        self.pos = 0
        while n:
            chunk = self._recv()
            if len(chunk) > n:
                self.buf += chunk[n:]
                n = 0
            else:
                n -= len(chunk)

    def cmd(self, command: bytes, literal: bytes | None = None) -> bytes:
        """Runs one tagged command; returns its tagged status line."""
        self.tag += 1
        tag = b"T%d " % self.tag
        if literal is None:
            self._send(tag + command + b"\r\n")
        else:  # synchronizing literal: wait for the continuation first
            self._send(tag + command + b" {%d}\r\n" % len(literal))
            while not (line := self.line()).startswith(b"+"):
                self._untagged(line, tag)
            self._send(literal + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag):
                if line[len(tag):len(tag) + 2] != b"OK":
                    raise ImapError(f"{command[:60]!r}: {line!r}")
                return line
            self._untagged(line, tag)

    def _untagged(self, line: bytes, tag: bytes) -> None:
        if line.endswith(b"}\r\n"):  # a literal follows: {n}
            self.skip(int(line[line.rindex(b"{") + 1:-3]))
        elif line.endswith(b" EXISTS\r\n"):
            self.exists = int(line.split()[1])
        elif line.endswith(b" EXPUNGE\r\n"):
            self.exists -= 1
        elif line.startswith(tag):
            raise ImapError(f"unexpected {line!r}")

    def close(self) -> None:
        self.sock.close()


def login(port: int, user: str) -> Conn:
    c = Conn(port)
    c.cmd(b"LOGIN " + user.encode() + b" pass")
    return c


def long_session(c: Conn, rng: random.Random, pool: list[bytes]):
    """Endless mail-client loop; yields after every command."""
    next_msg = 0
    while True:
        for _ in range(2):
            c.cmd(b"APPEND INBOX", pool[next_msg % len(pool)])
            next_msg += 1
            yield
        c.cmd(b"SELECT INBOX")
        yield
        n = c.exists
        c.cmd(b"FETCH 1:* (FLAGS ENVELOPE)")
        yield
        lo = rng.randint(1, max(1, n - 9))
        hi = min(n, lo + 9)
        c.cmd(b"FETCH %d:%d (BODY.PEEK[HEADER])" % (lo, hi))
        yield
        for _ in range(3):
            c.cmd(b"FETCH %d BODY.PEEK[]" % rng.randint(1, n))
            yield
        c.cmd(b"STORE %d:%d +FLAGS (\\Seen)" % (lo, hi))
        yield
        if n > MAILBOX_HIGH:
            c.cmd(b"STORE 1:%d +FLAGS.SILENT (\\Deleted)" % (n - MAILBOX_LOW))
            yield
            c.cmd(b"EXPUNGE")
            yield
        c.cmd(b"NOOP")
        yield


def short_session(port: int, user: str, rng: random.Random):
    """One connect/LOGIN/SELECT/FETCH/LOGOUT session; yields per command."""
    c = Conn(port)
    try:
        c.cmd(b"LOGIN " + user.encode() + b" pass")
        yield
        c.cmd(b"SELECT INBOX")
        yield
        c.cmd(b"FETCH %d BODY.PEEK[HEADER]" % rng.randint(1, SHORT_SETUP_MESSAGES))
        yield
        c.cmd(b"LOGOUT")
        yield
    finally:
        c.close()
        _worker_wire[0] += c.wire_in
        _worker_wire[1] += c.wire_out


_worker_wire = [0, 0]  # per worker process: bytes in/out of closed conns


def _worker(idx, port, user, workload, seed, orders, results):
    # The parent coordinates shutdown: Ctrl-C goes to it, SIGTERM ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        rng = random.Random(f"{seed}:{workload}:{user}")
        pool = [make_message(rng, user, n) for n in range(POOL_SIZE)]
        if workload == "long":
            c = login(port, user)
            steps = long_session(c, rng, pool)  # goes on from window to window
        else:  # the short sessions FETCH from a few messages put there first
            c = login(port, user)
            for n in range(SHORT_SETUP_MESSAGES):
                c.cmd(b"APPEND INBOX", pool[n])
            c.cmd(b"LOGOUT")
            c.close()
        results.put(("ready", idx, None))
        # One window per ("go", commands) order: exactly that many commands
        # (the short mix: whole sessions, at least that many), timed. The
        # session stays open between windows, idle, until "stop".
        while (order := orders.get())[0] == "go":
            commands = order[1]
            t0, cpu0 = time.monotonic(), sum(os.times()[:2])
            total = sessions = 0
            if workload == "long":
                wire0 = (c.wire_in, c.wire_out)
                for _ in steps:
                    total += 1
                    if total >= commands:
                        break
                wire = (c.wire_in - wire0[0], c.wire_out - wire0[1])
            else:
                wire0 = tuple(_worker_wire)
                while total < commands:
                    for _ in short_session(port, user, rng):
                        total += 1
                    sessions += 1
                wire = (_worker_wire[0] - wire0[0], _worker_wire[1] - wire0[1])
            results.put(("done", idx, {
                "commands": total, "elapsed": time.monotonic() - t0,
                "sessions": sessions, "wire_in": wire[0], "wire_out": wire[1],
                "client_cpu_s": sum(os.times()[:2]) - cpu0}))
        if workload == "long":
            c.cmd(b"LOGOUT")
            c.close()
    except Exception:
        results.put(("error", idx, f"{user}: {traceback.format_exc()}"))


class Clients:
    """N client processes: start() (ready: long sessions logged in), then
    any number of go(commands) + done()/collect() windows, then stop()."""

    def __init__(self, port: int, users: list[str], workload: str, seed: int):
        ctx = mp.get_context("fork")
        self.results = ctx.Queue()
        self.orders = [ctx.Queue() for _ in users]
        self.procs = [ctx.Process(target=_worker, daemon=True,
                                  args=(i, port, u, workload, seed, self.orders[i],
                                        self.results))
                      for i, u in enumerate(users)]
        self.window = {}  # client index -> figures, of the current window

    def _take(self, got: dict, timeout: float) -> bool:
        """Adds one message to got; False if none came within timeout."""
        try:
            what, idx, data = self.results.get(timeout=timeout)
        except queue.Empty:
            return False
        if what == "error":
            raise RuntimeError(f"client {idx} failed:\n{data}")
        got[idx] = data
        return True

    def _gather(self, got: dict, kind: str, timeout: float) -> None:
        """Adds messages to got until every client has sent one."""
        end = time.monotonic() + timeout
        while len(got) < len(self.procs):
            if not self._take(got, 0.5):
                if dead := [i for i, p in enumerate(self.procs) if not p.is_alive()]:
                    raise RuntimeError(f"client(s) {dead} died")
                if time.monotonic() > end:
                    raise TimeoutError(f"clients not {kind} after {timeout}s")

    def start(self) -> None:
        for p in self.procs:
            p.start()
        self._gather({}, "ready", 120)

    def go(self, commands: int) -> None:
        """Opens a window: every client runs its next commands."""
        self.window = {}
        for q in self.orders:
            q.put(("go", commands))

    def done(self) -> bool:
        """Whether every client has finished the window (does not block)."""
        while len(self.window) < len(self.procs) and self._take(self.window, 0):
            pass
        return len(self.window) == len(self.procs)

    def collect(self, timeout: float = 120) -> list[dict]:
        """Each client's figures for the window (waits for the rest)."""
        self._gather(self.window, "done", timeout)
        return [self.window[i] for i in range(len(self.procs))]

    def stop(self) -> None:
        """Ends the sessions (LOGOUT), then whatever client process is
        left (only ours, by pid)."""
        for p, q in zip(self.procs, self.orders):
            if p.pid is not None and p.is_alive():
                q.put(("stop",))
        for p in self.procs:
            if p.pid is not None:
                p.join(5)
                if p.is_alive():
                    p.terminate()
                    p.join(5)
                if p.is_alive():
                    p.kill()
                    p.join()
