"""POP3 sessions logged by rawlog_ext, compared byte for byte with the client's record."""

from rawlog import RawClient, session_files, strip_timestamps, wait_closed
from test_imap import message


def pop3_command(c: RawClient, line: bytes, multiline: bool = False) -> bytes:
    start = len(c.received)
    c.send(line + b"\r\n")
    end = rb"^\+OK[^\r\n]*\r\n(.*?\r\n)?\.\r\n" if multiline else rb"^[+-][^\r\n]*\r\n"
    m = c.read_until(end, start)
    return bytes(c.received[start:m.end()])


def test_pop3_split_log_is_the_wire(logged_dovecot, rawlog_dir, dovecot_factory):
    dc = logged_dovecot()
    # Put a message with 8-bit bytes into alice's INBOX over IMAP first.
    body = message(200 * 1024, seed=3)
    imap = RawClient(dc.imap_port)
    imap.read_until(rb"^\* OK[^\r\n]*\r\n")
    imap.imap("l", b"LOGIN alice pass")
    imap.imap_append("a", body)
    imap.imap("x", b"LOGOUT")
    wait_closed(imap)

    c = RawClient(dc.pop3_port)
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    greeting_end = len(c.received)
    c.send(b"USER alice\r\n")
    c.read_until(rb"^\+OK[^\r\n]*\r\n", greeting_end)
    user_reply_end = len(c.received)
    # STAT pipelined in the same packet as PASS: pop3-login hands it over.
    login = b"PASS pass\r\n"
    c.send(login + b"STAT\r\n")
    c.read_until(rb"^\+OK \d+ \d+\r\n", user_reply_end)
    retr = pop3_command(c, b"RETR 1", multiline=True)
    assert len(retr) > len(body)
    pop3_command(c, b"UIDL", multiline=True)
    pop3_command(c, b"NOOP")
    pop3_command(c, b"QUIT")
    wait_closed(c)

    files = session_files(rawlog_dir, "pop3")
    sent_from = len(b"USER alice\r\n") + len(login)
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
    out = strip_timestamps(files[".out"].read_bytes())
    assert out == bytes(c.received[user_reply_end:])
    assert out.startswith(b"+OK Logged in.\r\n")
    assert files[".in"].stat().st_mode & 0o777 == 0o600
    # The log process may write the line after the client saw the close.
    dc.wait_log(r"pop3\(alice\).*Disconnected: Logged out")
    assert "Error" not in dc.log()
