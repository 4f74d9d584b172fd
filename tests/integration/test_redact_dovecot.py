"""The login companion's redaction against Dovecot's own parsers: clients
whose commands the redactor used to read differently from the login
process. Each client logs in successfully; its secret must not be in the
login companion's log."""
import base64
import re

import pytest

from rawlog import RawClient
from test_login import (SECRET, assert_no_secret, login_dir, make,  # noqa: F401
                        only_session, wait_login)


def pop3_login(dc, lines: list[bytes]) -> RawClient:
    """USER, then the PASS variant; until pop3-login says logged in."""
    c = RawClient(dc.pop3_port)
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    c.send(b"USER alice\r\n")
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    for line in lines:
        c.send(line)
    c.read_until(rb"^\+OK Logged in[^\r\n]*\r\n")
    c.send(b"QUIT\r\n")
    c.read_to_eof()
    dc.wait_log(r"pop3\(alice\).*Disconnected")
    wait_login(dc, "pop3")
    return c


def test_pop3_cr_inside_the_command_name(dovecot_factory, login_dir):
    """pop3-login drops CRs in the command name: "PASS\\r <pw>" logs in."""
    dc = make(dovecot_factory, login_dir)
    pop3_login(dc, [f"PASS\r {SECRET}\r\n".encode()])
    _, (got_in, _) = only_session(login_dir)
    assert got_in.endswith(b"USER alice\r\nPASS\r ***\r\n"), got_in
    assert_no_secret(login_dir)


def test_pop3_command_name_limit(dovecot_factory, login_dir):
    """The name ends after 8 bytes, CRs counted: no space needed."""
    dc = make(dovecot_factory, login_dir)
    pop3_login(dc, [f"pass\r\r\r\r{SECRET}\r\n".encode()])
    _, (got_in, _) = only_session(login_dir)
    assert got_in.endswith(b"pass\r\r\r\r***\r\n"), got_in
    assert_no_secret(login_dir)


def imap_after_refused_line(dc, refused: bytes) -> RawClient:
    """The refused line (ending in a LITERAL+ header that would cover the
    LOGIN), then the LOGIN, in one write; until the login's OK."""
    login = f"b LOGIN alice {SECRET}\r\n".encode()
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.send(refused + b"{%d+}\r\n" % len(login) + login)
    c.read_until(rb"^b OK[^\r\n]*\r\n")
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap")
    return c


def test_imap_literal_on_a_refused_line(dovecot_factory, login_dir):
    """imap-login refuses "x{22+}" (a '{' in an atom) and skips the line:
    the bytes after it are the next command, not literal data."""
    dc = make(dovecot_factory, login_dir)
    c = imap_after_refused_line(dc, b"a NOOP x")
    assert b"a BAD" in bytes(c.received)
    _, (got_in, _) = only_session(login_dir)
    assert got_in.endswith(b"+}\r\nb LOGIN alice ***\r\n"), got_in
    assert_no_secret(login_dir)


def test_imap_literal_after_a_bad_tag(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir)
    c = imap_after_refused_line(dc, b"a* NOOP ")
    assert b"* BAD" in bytes(c.received)
    _, (got_in, _) = only_session(login_dir)
    assert got_in.endswith(b"b LOGIN alice ***\r\n"), got_in
    assert_no_secret(login_dir)


@pytest.mark.parametrize("line", [b"a\x7f NOOP ", b"a]b NOOP ", b"a NO\x7fOP "],
                         ids=["0x7f in the tag", "] in the tag", "0x7f in the name"])
def test_imap_literal_on_a_line_the_dovecot_lines_read_apart(dovecot_factory,
                                                             login_dir, line):
    """imap_parser_read_next_atom(): 2.3 takes 0x7f in a tag or name and
    refuses ']' in a tag, 2.4 the reverse. So one line skips the line and
    logs in with the LOGIN after it, the other takes that LOGIN as literal
    data and logs in with the next one: the secret is hidden either way."""
    dc = make(dovecot_factory, login_dir)
    login = f"b LOGIN alice {SECRET}\r\n".encode()
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    # The CRLF after the LOGIN ends the line where the literal is taken;
    # e's reply comes after b's, if b was a command.
    c.send(line + b"{%d+}\r\n" % len(login) + login + b"\r\ne NOOP\r\n")
    c.read_until(rb"^e OK[^\r\n]*\r\n")
    if not re.search(rb"^b OK", bytes(c.received), re.M):
        c.send(f"d LOGIN alice {SECRET}\r\n".encode())
        c.read_until(rb"^d OK[^\r\n]*\r\n")
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap")
    _, (got_in, _) = only_session(login_dir)
    assert got_in.startswith(line + b"{%d+}\r\n" % len(login)), got_in
    assert_no_secret(login_dir)


def test_imap_literal8_is_refused(dovecot_factory, login_dir):
    """imap-login's parser takes no literal8."""
    dc = make(dovecot_factory, login_dir)
    imap_after_refused_line(dc, b"a NOOP ~")
    assert_no_secret(login_dir)


def test_imap_id_skips_the_rest_of_its_line(dovecot_factory, login_dir):
    """cmd_id() skips what follows NIL unparsed: no literal there."""
    dc = make(dovecot_factory, login_dir)
    c = imap_after_refused_line(dc, b"a ID NIL ")
    assert b"a OK" in bytes(c.received)
    assert_no_secret(login_dir)


def test_imap_authenticate_mechanism_is_no_literal(dovecot_factory, login_dir):
    """cmd_authenticate() reads no literal: "a AUTHENTICATE {22+}" is an
    unknown mechanism, the next line a command."""
    dc = make(dovecot_factory, login_dir)
    c = imap_after_refused_line(dc, b"a AUTHENTICATE ")
    assert b"a NO" in bytes(c.received) or b"a BAD" in bytes(c.received)
    assert_no_secret(login_dir)


def test_submission_bdat_before_login(dovecot_factory, login_dir):
    """submission-login lists the backend's CHUNKING but takes no BDAT
    itself: BDAT is refused and what would be its chunk is the next
    command."""
    from rawlog import SmtpSink
    dc = make(dovecot_factory, login_dir)
    relay = SmtpSink(dc.relay_port)
    try:
        c = RawClient(dc.submission_port)
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.send(b"EHLO client.test\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        ir = base64.b64encode(f"\0alice\0{SECRET}".encode())
        auth = b"AUTH PLAIN " + ir + b"\r\n"
        c.send(b"BDAT %d\r\n" % len(auth) + auth)
        c.read_until(rb"^235 [^\r\n]*\r\n")
        c.send(b"QUIT\r\n")
        c.read_until(rb"^221 [^\r\n]*\r\n")
        c.read_to_eof()
        dc.wait_log(r"submission\(alice\).*Disconnected")
        wait_login(dc, "submission")
    finally:
        relay.close()
    _, (got_in, _) = only_session(login_dir)
    assert got_in.endswith(b"AUTH PLAIN ***\r\n"), got_in
    assert_no_secret(login_dir)
