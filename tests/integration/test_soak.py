"""Many concurrent logged IMAP, POP3, submission and LMTP sessions: every
log byte-exact (LMTP: each recipient's log), no fd or memory growth in the
long-lived processes.

Short form by default (seconds); RAWLOG_EXT_SOAK_SECONDS=300 for the long one.
"""
import asyncio
import collections
import os
import pathlib
import re

from dovecot_fixture import User, conf_value, for_line
from rawlog import strip_timestamps

CLIENTS = int(os.environ.get("RAWLOG_EXT_SOAK_CLIENTS", "200"))
SECONDS = float(os.environ.get("RAWLOG_EXT_SOAK_SECONDS", "8"))
# Long-lived processes serving one session at a time each: after its first
# session a process has its working set, so any growth over the following
# ones is a leak (several sessions at once would make RSS follow the peak
# concurrency instead).
SERVICES = """
default_process_limit = 1000
default_client_limit = 4000
service imap-login {
  service_count = 0
  client_limit = 1000
  process_limit = 2
}
service pop3-login {
  service_count = 0
  client_limit = 1000
  process_limit = 2
}
service imap {
  service_count = 0
  client_limit = 1
  process_limit = 400
  idle_kill = 1 hour
}
service pop3 {
  service_count = 0
  client_limit = 1
  process_limit = 400
  idle_kill = 1 hour
}
service submission-login {
  service_count = 0
  client_limit = 1000
  process_limit = 2
}
service submission {
  service_count = 0
  client_limit = 1
  process_limit = 400
  idle_kill = 1 hour
}
service lmtp {
  service_count = 0
  client_limit = 1
  process_limit = 400
  idle_kill = 1 hour
}
"""
# 2.4 renamed these two (and spells service_count's 0 "unlimited").
SERVICES = (SERVICES.replace("service_count = 0", for_line("service_count = 0",
                                                           "restart_request_count = unlimited"))
            .replace("idle_kill", for_line("idle_kill", "idle_kill_interval")))
PROTOCOLS = ("imap", "pop3", "submission", "lmtp")


class Session:
    """One connection's own record, split where the post-login part starts."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.sent = bytearray()
        self.received = bytearray()
        self.sent_from = self.received_from = 0
        self.sent_to = self.received_to = None    # None: to the end

    def logged_part(self) -> tuple[bytes, bytes]:
        """What the session's log must hold: (in, out)."""
        return (bytes(self.sent[self.sent_from:self.sent_to]),
                bytes(self.received[self.received_from:self.received_to]))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.sent += data
        await self.writer.drain()

    async def until(self, pattern: bytes) -> None:
        regex = re.compile(pattern, re.MULTILINE)
        start = len(self.received)
        while not regex.search(bytes(self.received), start):
            chunk = await asyncio.wait_for(self.reader.read(65536), 30)
            if not chunk:
                raise ConnectionError(bytes(self.received[-200:]))
            self.received += chunk

    async def close(self) -> None:
        while await asyncio.wait_for(self.reader.read(65536), 30):
            pass
        self.writer.close()


async def imap_session(port: int, user: str, n: int) -> Session:
    s = Session(*await asyncio.open_connection("127.0.0.1", port))
    await s.until(rb"^\* OK[^\r\n]*\r\n")
    s.received_from = len(s.received)
    login = f"L LOGIN {user} pass\r\n".encode()
    s.sent_from = len(login)
    # The first command pipelined with LOGIN, as real clients do.
    await s.send(login + b"s SELECT INBOX\r\n")
    await s.until(rb"^s OK[^\r\n]*\r\n")
    mail = b"Subject: %d\r\n\r\n" % n + b"line %d\r\n" % n * (n % 50 + 1)
    await s.send(b"a APPEND INBOX {%d+}\r\n" % len(mail) + mail + b"\r\n")
    await s.until(rb"^a OK[^\r\n]*\r\n")
    await s.send(b"f FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER])\r\n")
    await s.until(rb"^f OK[^\r\n]*\r\n")
    await s.send(b"e STORE 1:* +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\nq LOGOUT\r\n")
    await s.until(rb"^q OK[^\r\n]*\r\n")
    await s.close()
    return s


async def pop3_session(port: int, user: str, n: int) -> Session:
    s = Session(*await asyncio.open_connection("127.0.0.1", port))
    await s.until(rb"^\+OK[^\r\n]*\r\n")
    await s.send(f"USER {user}\r\n".encode())
    await s.until(rb"^\+OK[^\r\n]*\r\n")
    s.received_from = len(s.received)
    s.sent_from = len(s.sent) + len(b"PASS pass\r\n")
    await s.send(b"PASS pass\r\nSTAT\r\n")
    await s.until(rb"^\+OK \d+ \d+\r\n")
    await s.send(b"LIST\r\nUIDL\r\nNOOP\r\nQUIT\r\n")
    await s.until(rb"^\+OK Logging out[^\r\n]*\r\n")
    await s.close()
    return s


async def submission_session(port: int, user: str, n: int) -> Session:
    import base64
    s = Session(*await asyncio.open_connection("127.0.0.1", port))
    await s.until(rb"^220 [^\r\n]*\r\n")
    await s.send(b"EHLO soak.test\r\n")
    await s.until(rb"^250 [^\r\n]*\r\n")
    s.received_from = len(s.received)
    auth = b"AUTH PLAIN " + base64.b64encode(f"\0{user}\0pass".encode()) + b"\r\n"
    s.sent_from = len(s.sent) + len(auth)
    # MAIL FROM pipelined with AUTH.
    await s.send(auth + b"MAIL FROM:<%s@soak.test>\r\n" % user.encode())
    # The replies to MAIL and RCPT are the relay's.
    await s.until(rb"^250 [^\r\n]*\r\n")
    await s.send(b"RCPT TO:<rcpt@soak.test>\r\nDATA\r\n")
    await s.until(rb"^354 [^\r\n]*\r\n")
    await s.send(b"Subject: %d\r\n\r\n" % n + b"..line %d\r\n" % n * (n % 30 + 1) + b".\r\n")
    await s.until(rb"^250 [^\r\n]*\r\n")
    await s.send(b"QUIT\r\n")
    await s.until(rb"^221 [^\r\n]*\r\n")
    await s.close()
    return s


async def lmtp_session(port: int, user: str, n: int) -> Session:
    """A delivery to user: their log holds MAIL, RCPT, DATA, the message
    and the replies to those (not LHLO, not QUIT)."""
    s = Session(*await asyncio.open_connection("127.0.0.1", port))
    await s.until(rb"^220 [^\r\n]*\r\n")
    await s.send(b"LHLO soak.test\r\n")
    await s.until(rb"^250 [^\r\n]*\r\n")
    s.sent_from, s.received_from = len(s.sent), len(s.received)
    await s.send(b"MAIL FROM:<s@soak.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % user.encode())
    await s.until(rb"^354 [^\r\n]*\r\n")
    await s.send(b"Subject: %d\r\n\r\n" % n + b"line %d\r\n" % n * (n % 40 + 1) + b".\r\n")
    await s.until(rb"^250 2\.0\.0 [^\r\n]*Saved\r\n")
    s.sent_to, s.received_to = len(s.sent), len(s.received)
    await s.send(b"QUIT\r\n")
    await s.until(rb"^221 [^\r\n]*\r\n")
    await s.close()
    return s


RUNNERS = {"imap": imap_session, "pop3": pop3_session,
           "submission": submission_session, "lmtp": lmtp_session}


async def client(dc, index: int, deadline: float, done: dict) -> None:
    user = f"u{index}"
    proto = PROTOCOLS[index % len(PROTOCOLS)]
    run = RUNNERS[proto]
    port = getattr(dc, f"{proto}_port")
    n = 0
    while True:
        session = await run(port, user, index * 1000 + n)
        done[user].append(session)
        n += 1
        if asyncio.get_running_loop().time() > deadline:
            return


async def run_all(dc, seconds: float) -> dict:
    done = collections.defaultdict(list)
    deadline = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(*(client(dc, i, deadline, done) for i in range(CLIENTS)))
    return done


def resources(dc) -> dict[int, tuple[int, int]]:
    """pid -> (open fds, VmRSS kB) of the mail processes."""
    result = {}
    for pid, name in dc.processes().items():
        if name not in PROTOCOLS:
            continue
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            rss = int(re.search(r"VmRSS:\s+(\d+)", pathlib.Path(f"/proc/{pid}/status").read_text()).group(1))
        except (OSError, AttributeError):
            continue
        result[pid] = (fds, rss)
    return result


def test_soak_many_concurrent_sessions(logged_dovecot, rawlog_dir):
    from rawlog import SmtpSink
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"),
                         "rawlog_ext_autocreate": "yes"},
                        users=[User(f"u{i}") for i in range(CLIENTS)],
                        protocols=PROTOCOLS, extra_conf=SERVICES,
                        protocol_mail_plugins={"lmtp": "$mail_plugins rawlog_ext"})
    relay = SmtpSink(dc.relay_port)
    try:
        # A process's first sessions still grow its heap (Dovecot's own
        # caches, with or without logging, ~1.5 MB): measure growth after
        # a warm-up.
        warmup = asyncio.run(run_all(dc, max(3.0, SECONDS / 2)))
        served = collections.Counter(
            int(m.group(1) or m.group(2)) for m in re.finditer(
                r"(?:imap|pop3|submission)\(\w+\)<(\d+)><[^>]*>: Info: Disconnected"
                r"|lmtp\((\d+)\): Info: Disconnect", dc.log()))
        before = {pid: r for pid, r in resources(dc).items() if served[pid] >= 3}
        assert len(before) >= 10, f"too few warmed-up processes: {served}"
        sessions = asyncio.run(run_all(dc, SECONDS))
        after = resources(dc)
    finally:
        relay.close()

    # Same processes, idle again: their fds are back, memory did not grow
    # with the number of sessions served.
    for pid, (fds, rss) in before.items():
        assert pid in after, f"process {pid} went away"
        assert after[pid][0] == fds, f"pid {pid}: fds {fds} -> {after[pid][0]}"
        assert after[pid][1] - rss < 512, f"pid {pid}: VmRSS {rss} -> {after[pid][1]} kB"

    log = dc.log()
    assert not re.search(r"Fatal|Panic|Error", log), log[-3000:]
    total = 0
    for index in range(CLIENTS):
        user = f"u{index}"
        proto = PROTOCOLS[index % len(PROTOCOLS)]
        recorded = sorted(s.logged_part() for s in warmup[user] + sessions[user])
        files = collections.defaultdict(dict)
        relay_legs = 0
        for path in (rawlog_dir / user).iterdir():
            if f"_{proto}_" not in path.name:
                assert "_submission-relay_" in path.name and proto == "submission", path
                relay_legs += path.suffix == ".out"
                continue
            files[path.stem][path.suffix] = strip_timestamps(path.read_bytes())
        logged = sorted((f[".in"], f[".out"]) for f in files.values())
        assert logged == recorded, user
        if proto == "submission":
            assert relay_legs == len(recorded), user
        total += len(recorded)
    assert total >= 2 * CLIENTS
