"""LMTP: the connection log (rawlog_ext_lmtp_dir) and per-recipient logs
(each recipient's rawlog_ext_dir), against the client's own record."""
import os
import pathlib
import re
import smtplib
import stat
import tempfile

import pytest

from dovecot_fixture import User
from rawlog import RawClient, log_files, strip_timestamps

# Each user logs (or not) into a directory of their own, owned by them.
UIDS = {"alice": 2001, "bob": 2002, "carol": 2003}


@pytest.fixture
def lmtp_dirs():
    """(connection log dir owned by root, {user: own log dir})."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-lmtp-"))
    base.chmod(0o755)
    conn = base / "conn"
    conn.mkdir(mode=0o700)
    users = {}
    for name, uid in UIDS.items():
        d = base / name
        d.mkdir(mode=0o700)
        os.chown(d, uid, uid)
        users[name] = d
    yield conn, users
    if os.environ.get("KEEP_TMP") != "1":
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice", "bob"),
              plugin=None, extra_conf=""):
    conn, users = lmtp_dirs
    settings = {"rawlog_ext_lmtp_dir": str(conn)}
    settings.update(plugin or {})
    accounts = [User(name, uid=uid, gid=uid,
                     extra=(f"userdb_rawlog_ext_dir={users[name]}"
                            if name in logged else ""))
                for name, uid in UIDS.items()]
    return dovecot_factory(
        protocols=("lmtp",), users=accounts, plugin=settings,
        extra_conf="protocol lmtp {\n  mail_plugins = $mail_plugins rawlog_ext\n}\n"
                   "mail_debug = yes\n" + extra_conf)


class LmtpClient(RawClient):
    pos = 0  # replies before this have been read

    def reply(self) -> bytes:
        """Reads the next (possibly multi-line) reply."""
        m = self.read_until(rb"^\d{3} [^\r\n]*\r\n", self.pos)
        start, self.pos = self.pos, m.end()
        return bytes(self.received[start:m.end()])

    def replies(self, count: int) -> list[bytes]:
        return [self.reply() for _ in range(count)]


def read_split(directory: pathlib.Path) -> dict[str, tuple[bytes, bytes]]:
    """{base name: (in, out)} of the split logs in directory, stamps removed."""
    sessions: dict[str, dict[str, bytes]] = {}
    for p in log_files(directory):
        sessions.setdefault(p.stem, {})[p.suffix] = strip_timestamps(p.read_bytes())
    return {k: (v.get(".in", b""), v.get(".out", b"")) for k, v in sessions.items()}


def deliver(port: int, rcpts: list[str], body: bytes, pipelined=True,
            quit=True) -> tuple[LmtpClient, list[bytes]]:
    """One transaction; returns the client and the per-recipient replies."""
    c = LmtpClient(port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    c.reply()
    cmds = [b"MAIL FROM:<sender@example.com>\r\n"] + [
        b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts] + [b"DATA\r\n"]
    if pipelined:
        c.send(b"".join(cmds))
        replies = c.replies(len(cmds))
    else:
        replies = []
        for cmd in cmds:
            c.send(cmd)
            replies.append(c.reply())
    accepted = [r for r, rep in zip(rcpts, replies[1:-1]) if rep.startswith(b"250")]
    assert replies[-1].startswith(b"354"), replies
    c.send(body)
    final = c.replies(len(accepted))
    if quit:
        c.send(b"QUIT\r\n")
        c.reply()
        c.read_to_eof()
        c.close()
    return c, final


def user_logs(users, name):
    return read_split(users[name])


def test_connection_log_is_the_wire(dovecot_factory, lmtp_dirs):
    """First connection of a fresh lmtp process, greeting to QUIT."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs)
    body = (b"Subject: hello\r\n\r\n..a dot-stuffed line\r\n"
            + b"\xe9\x00 8-bit\r\n" * 50 + b".\r\n")
    c, final = deliver(dc.lmtp_port, ["alice", "carol"], body)
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    logs = read_split(conn)
    assert len(logs) == 1, logs
    name, (got_in, got_out) = next(iter(logs.items()))
    assert "_lmtp_" in name
    assert got_in == bytes(c.sent)
    assert got_out == bytes(c.received)
    for p in log_files(conn):
        st = p.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_three_recipients_two_logged(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice", "bob"))
    body = b"Subject: three\r\nTo: alice, bob, carol\r\n\r\nhi\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["alice", "bob", "carol"], body)
    assert len(final) == 3
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")

    assert read_split(users["carol"]) == {}
    replies = {"alice": final[0], "bob": final[1]}
    for name in ("alice", "bob"):
        logs = read_split(users[name])
        assert len(logs) == 1, (name, logs)
        got_in, got_out = next(iter(logs.values()))
        assert got_in == (b"MAIL FROM:<sender@example.com>\r\n"
                          b"RCPT TO:<%s>\r\nDATA\r\n" % name.encode() + body)
        assert got_out.startswith(b"250 2.1.0 ")
        assert got_out.endswith(b"354 2.0.0 OK\r\n" + replies[name]) or \
            got_out.endswith(replies[name]), got_out
        # The recipient's own replies, nobody else's address.
        assert got_out == _expected_out(c, name, replies[name])
        others = {"alice", "bob", "carol"} - {name}
        for other in others:
            assert b"<%s>" % other.encode() not in got_in + got_out
        for p in log_files(users[name]):
            st = p.stat()
            assert stat.S_IMODE(st.st_mode) == 0o600
            assert st.st_uid == UIDS[name]


def _expected_out(c: LmtpClient, name: str, final: bytes) -> bytes:
    """The replies the client got for MAIL, name's RCPT, DATA, then final."""
    received = bytes(c.received)
    lines = re.findall(rb"\d{3}[ -][^\r\n]*\r\n", received)
    mail = next(r for r in lines if r.startswith(b"250 2.1.0"))
    rcpt = [r for r in lines if r.startswith(b"250 2.1.5")]
    # Every accepted RCPT gets the same text; the reply is exact either way.
    data = next(r for r in lines if r.startswith(b"354"))
    return mail + rcpt[0] + data + final
