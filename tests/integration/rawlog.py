"""Helpers for the integration tests: a recording client and log readers."""
import os
import pathlib
import re
import socket
import time

TIMESTAMP = re.compile(rb"\d+\.\d{6} ")
# A stamp cut short by kill -9: a non-empty proper prefix of TIMESTAMP.
PARTIAL_TIMESTAMP = re.compile(rb"\d+(?:\.\d{0,6})?")
RECORD = re.compile(rb"(?:\d+\.\d{6} )?([IO])([:+]) ")
TRUNCATED = re.compile(
    rb"\*\*\* rawlog_ext: log truncated: rawlog_ext_max_size=\d+ bytes reached \*\*\*\n")


class RawClient:
    """A socket client that keeps its own record of every byte either way."""

    def __init__(self, port: int, timeout: float = 20, tls=None):
        """tls: an ssl.SSLContext for implicit TLS; records the plaintext."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock)
        self.sent = bytearray()
        self.received = bytearray()
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += data

    def read_until(self, pattern: bytes, start: int | None = None) -> re.Match:
        """Reads until pattern matches the received bytes from start on."""
        regex = re.compile(pattern, re.MULTILINE | re.DOTALL)
        start = len(self.received) if start is None else start
        deadline = time.monotonic() + self.timeout
        while True:
            m = regex.search(bytes(self.received), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} in {bytes(self.received[-300:])!r}")
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed; no {pattern!r} in {bytes(self.received[-300:])!r}")
            self.received += chunk

    def imap(self, tag: str, command: bytes) -> bytes:
        """Sends one tagged command and returns everything up to its tagged reply."""
        start = len(self.received)
        self.send(tag.encode() + b" " + command + b"\r\n")
        m = self.read_until(rb"^" + re.escape(tag.encode()) + rb" (OK|NO|BAD)[^\r\n]*\r\n", start)
        return bytes(self.received[start:m.end()])

    def imap_append(self, tag: str, body: bytes, mailbox: bytes = b"INBOX") -> None:
        """APPENDs body as a synchronising literal; returns once it is OK."""
        start = len(self.received)
        self.send(tag.encode() + b" APPEND " + mailbox + b" {%d}\r\n" % len(body))
        self.read_until(rb"^\+ [^\r\n]*\r\n", start)
        start = len(self.received)
        self.send(body + b"\r\n")
        self.read_until(rb"^" + re.escape(tag.encode()) + rb" OK[^\r\n]*\r\n", start)

    def starttls(self, tls) -> None:
        """Continues over TLS (after the server's go-ahead was read)."""
        self.sock = tls.wrap_socket(self.sock)

    def read_to_eof(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return
            self.received += chunk
        raise TimeoutError("server did not close the connection")

    def close(self) -> None:
        self.sock.close()


def imap_login(port: int, user: str = "alice", password: str = "pass",
               pipelined: bytes = b"") -> tuple["RawClient", int, int]:
    """Logs in (plus pipelined bytes in the same packet).

    Returns the client and the offsets, in its sent and received records,
    where the post-login part of the session starts.
    """
    c = RawClient(port)
    c.read_until(rb"^\* OK [^\r\n]*\r\n")
    greeting_end = len(c.received)
    login = f"L LOGIN {user} {password}\r\n".encode()
    c.send(login + pipelined)
    c.read_until(rb"^L (OK|NO|BAD)[^\r\n]*\r\n", greeting_end)
    return c, len(login), greeting_end


# imap_hibernate_timeout with the sockets imap (as the mail user) must
# reach: imap-hibernate's and imap-master.
HIBERNATE_CONF = """imap_hibernate_timeout = 1s
mail_debug = yes
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0666
  }
}
service imap {
  unix_listener imap-master {
    mode = 0666
  }
}
"""


def idle_until_hibernated(dc, c: RawClient) -> int:
    """Sends IDLE and waits until the imap process has handed the client
    to imap-hibernate and exited; returns its pid."""
    c.send(b"i IDLE\r\n")
    c.read_until(rb"^\+ idling\r\n")
    pid = int(dc.wait_log(r"imap\(alice\)<(\d+)>").group(1))
    deadline = time.monotonic() + 15
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, "imap never hibernated"
        time.sleep(0.1)
    return pid


def hibernated_session(dc) -> tuple["RawClient", int, int, str]:
    """alice logs in, SELECTs, IDLEs until her imap process hibernates,
    wakes it with DONE, sends NOOP and LOGOUT; returns the client, its
    post-login offsets (as imap_login()) and Dovecot's log once the
    second process has logged the logout."""
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    pid = idle_until_hibernated(dc, c)
    c.send(b"DONE\r\n")
    c.read_until(rb"^i OK[^\r\n]*\r\n")
    c.imap("n", b"NOOP")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    log = dc.wait_log(rf"imap\(alice\)<(?!{pid}>)\d+>.*Disconnected: Logged out").string
    return c, sent_from, received_from, log


def wait_closed(c: RawClient) -> None:
    c.read_to_eof()
    c.close()


def _strip_stamps(data: bytes, every_line: bool,
                  killed: bool = False) -> tuple[bytes, int, int]:
    """Removes a stamp wherever a line of a split file starts with one
    (every_line: each must); returns data, stamped and unstamped lines.
    killed: the writer was killed (kill -9), so the file's last line may
    end inside its stamp ("1", "1733.12"): that partial stamp is dropped."""
    out = bytearray()
    pos = stamped = unstamped = 0
    while pos < len(data):
        m = TIMESTAMP.match(data, pos)
        if (m is None and killed and b"\n" not in data[pos:]
                and PARTIAL_TIMESTAMP.fullmatch(data, pos)):
            break
        assert m or not every_line, f"no timestamp at line start: {data[pos:pos + 80]!r}"
        if m:
            stamped += 1
            pos = m.end()
        else:
            unstamped += 1
        end = data.find(b"\n", pos)
        end = len(data) if end == -1 else end + 1
        out += data[pos:end]
        pos = end
    return bytes(out), stamped, unstamped


def strip_timestamps(data: bytes, killed: bool = False) -> bytes:
    """Undoes rawlog_ext_timestamps=yes in a split file: one stamp per line
    start. killed: see _strip_stamps (only for a writer killed mid-write)."""
    return _strip_stamps(data, every_line=True, killed=killed)[0]


def strip_chunk_timestamps(data: bytes) -> tuple[bytes, int, int]:
    """Undoes rawlog_ext_timestamps=chunks in a split file as documented:
    a stamp is removed wherever a line starts with one (the plugin stamps
    every line that starts with a digit, so data never looks like one).
    Returns data, stamped and unstamped lines."""
    return _strip_stamps(data, every_line=False)


def strip_boundaries(data: bytes) -> tuple[bytes, int]:
    """Undoes rawlog_ext_boundaries=yes (timestamps off); returns data, chunk count."""
    out = bytearray()
    pos = chunks = 0
    while pos < len(data):
        assert data.startswith(b"<<<\n", pos), data[pos:pos + 80]
        end = data.index(b">>>\n", pos + 4)
        out += data[pos + 4:end]
        pos = end + 4
        chunks += 1
    return bytes(out), chunks


def parse_transcript(data: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Returns (in bytes, out bytes, records) of a transcript file."""
    streams = {"I": bytearray(), "O": bytearray()}
    records = []
    pos = 0
    while pos < len(data):
        m = RECORD.match(data, pos)
        assert m, f"bad record at {pos}: {data[pos:pos + 80]!r}"
        end = data.index(b"\n", m.end()) + 1
        payload = data[m.end():end]
        if m.group(2) == b"+":
            payload = payload[:-1]
        direction = m.group(1).decode()
        streams[direction] += payload
        records.append((direction, payload))
        pos = end
    return bytes(streams["I"]), bytes(streams["O"]), records


def log_files(directory: pathlib.Path, suffix: str = "") -> list[pathlib.Path]:
    return sorted(p for p in directory.rglob("*" + suffix) if p.is_file())


def session_files(directory: pathlib.Path, service: str) -> dict[str, pathlib.Path]:
    """The files of the one session of service in directory, by extension."""
    files = [p for p in log_files(directory) if f"_{service}_" in p.name]
    by_ext = {p.suffix: p for p in files}
    assert len(by_ext) == len(files), files
    return by_ext


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1:port, for submission's relay.

    Keeps each connection's bytes (sessions[i] = {"in": ..., "out": ...},
    "in" being what the sink received). With auth=True it offers AUTH
    and accepts any credentials (PLAIN/LOGIN, with or without an initial
    response). With lmtp=True it speaks LMTP: LHLO, one reply per
    recipient after the data."""

    def __init__(self, port: int, auth: bool = False, lmtp: bool = False):
        import socketserver
        import threading

        sessions = self.sessions = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                record = {"in": bytearray(), "out": bytearray()}
                sessions.append(record)

                def send(data: bytes) -> None:
                    record["out"] += data
                    self.wfile.write(data)

                def lines():
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        record["in"] += line
                        yield line

                send(b"220 sink.test ESMTP\r\n")
                in_data = False
                rcpts = 0
                it = lines()
                for line in it:
                    if in_data:
                        in_data = line != b".\r\n"
                        if not in_data:
                            for i in range(rcpts if lmtp else 1):
                                send(b"250 2.0.0 queued %d\r\n" % i)
                            rcpts = 0
                        continue
                    verb = line[:4].upper()
                    if verb == b"RCPT":
                        rcpts += 1
                    if verb in (b"EHLO", b"LHLO"):
                        send(b"250-sink.test\r\n" +
                             (b"250-AUTH PLAIN LOGIN\r\n" if auth else b"") +
                             b"250 PIPELINING\r\n")
                    elif verb == b"AUTH" and auth:
                        args = line.split()
                        if args[1].upper() == b"LOGIN":
                            if len(args) < 3:
                                send(b"334 VXNlcm5hbWU6\r\n")
                                next(it, None)
                            send(b"334 UGFzc3dvcmQ6\r\n")
                            next(it, None)
                        elif len(args) < 3:
                            send(b"334 \r\n")
                            next(it, None)
                        send(b"235 2.7.0 Authenticated\r\n")
                    elif verb == b"DATA":
                        in_data = True
                        send(b"354 go ahead\r\n")
                    elif verb == b"QUIT":
                        send(b"221 2.0.0 bye\r\n")
                        return
                    else:
                        send(b"250 2.0.0 ok\r\n")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 256    # many relay legs connect at once

        self.server = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
