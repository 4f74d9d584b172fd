"""kill -9 of an imap process mid-transfer: the log holds at least what the
client received and nothing that was not on the wire; other sessions go on."""
import os
import re
import signal
import time

from dovecot_fixture import conf_value, login_info
from rawlog import RawClient, imap_login, session_files, strip_timestamps, wait_closed
from test_imap import message


def imap_pid(dc, user: str) -> int:
    return int(dc.wait_log(login_info(user) + r".*mpid=(\d+)").group(1))


def kill_and_wait(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def logged(path) -> bytes:
    """The log's bytes. The kill may land between a stamp's bytes and the
    rest (seen: a last line b"1"), so only the last line may be cut short."""
    return strip_timestamps(path.read_bytes(), killed=True)


def kill_mid_fetch(dc, c, received: int, user: str = "alice") -> None:
    """Sends FETCH 1 BODY.PEEK[], kills the user's imap process once the
    client has received that many bytes of the answer, reads what is left."""
    fetch_start = len(c.received)
    c.send(b"f FETCH 1 BODY.PEEK[]\r\n")
    while len(c.received) - fetch_start < received:
        c.received += c.sock.recv(65536)
    kill_and_wait(imap_pid(dc, user))
    try:
        c.read_to_eof()
    except (ConnectionError, OSError):
        pass
    c.close()


def bystander(dc, user: str = "bob"):
    c, _, _ = imap_login(dc.imap_port, user=user)
    c.imap("b1", b"SELECT INBOX")
    return c


def test_kill_during_large_fetch(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"), "rawlog_ext_autocreate": "yes"})
    body = message(8 * 1024 * 1024, seed=6)
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    c.imap_append("a", body)
    other = bystander(dc)

    # Read about 1 MB of the 8 MB answer, then kill the server side.
    kill_mid_fetch(dc, c, 1024 * 1024)

    out = logged(session_files(rawlog_dir / "alice", "imap")[".out"])
    received = bytes(c.received[received_from:])
    assert len(out) >= len(received), "the log lacks bytes the client got"
    # What the server would have sent: the client's bytes, then the rest of
    # the FETCH answer. The log must be a prefix of that.
    literal = re.search(rb"\* 1 FETCH \(BODY\[\] \{(\d+)\}\r\n", received)
    head = received[:literal.end()]
    wire = head + body + b")\r\n"
    assert wire.startswith(out[:len(wire)]) and len(out) <= len(wire) + 200
    assert received == wire[:len(received)]

    # The other session is untouched.
    assert b"b2 OK" in other.imap("b2", b"NOOP")
    other.imap("b3", b"LOGOUT")
    wait_closed(other)


def test_kill_during_append(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"), "rawlog_ext_autocreate": "yes"})
    body = message(4 * 1024 * 1024, seed=7)
    other = bystander(dc)
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    c.read_until(rb"^\+ [^\r\n]*\r\n")
    c.send(body[:1500000])
    time.sleep(0.5)
    kill_and_wait(imap_pid(dc, "alice"))
    c.close()

    files = session_files(rawlog_dir / "alice", "imap")
    assert logged(files[".out"]) == bytes(c.received[received_from:])
    logged_in = logged(files[".in"])
    sent = bytes(c.sent[sent_from:])
    assert sent.startswith(logged_in)
    assert len(logged_in) > 1000000    # imap had read most of it

    assert b"b2 OK" in other.imap("b2", b"NOOP")
    other.imap("b3", b"LOGOUT")
    wait_closed(other)
