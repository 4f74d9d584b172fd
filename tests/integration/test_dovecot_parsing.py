"""What tests/fuzz/fuzz-redact-dovecot.cc models of the login processes,
checked against the real Dovecot: each of these sessions logs in, so the
secret in it is a credential the Redactor has to hide (the fuzzer's seeds
for the divergences it found, issue #12)."""
import base64
import pathlib
import shutil
import socket
import tempfile
import time

import pytest

from dovecot_fixture import Dovecot, User

PW = "s3cretpw"
PLAIN = base64.b64encode(b"\0alice\0" + PW.encode())


@pytest.fixture(scope="module")
def dovecot():
    tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-"))
    # No rawlog_ext: Dovecot's own parsing is under test.
    dc = Dovecot(tmpdir, users=[User("alice", password=PW)],
                 protocols=("imap", "pop3", "submission"),
                 extra_conf="auth_failure_delay = 0\n")
    dc.start()
    yield dc
    dc.stop()
    shutil.rmtree(tmpdir, ignore_errors=True)


def session(port: int, steps: list[bytes], until: bytes,
            pause: float = 0.5) -> bytes:
    """Sends each step once the server is quiet after the one before;
    returns everything the server sent, up to `until` (or 10 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(0.5)
        got = b""

        def read_quiet():
            nonlocal got
            while True:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    return
                if not data:
                    return
                got += data

        read_quiet()
        for step in steps:
            s.sendall(step)
            time.sleep(pause)
            read_quiet()
        deadline = time.monotonic() + 10
        while until not in got and time.monotonic() < deadline:
            read_quiet()
        return got


def test_pop3_skips_cr_in_command_name(dovecot):
    # pop3-login client_read_cmd_name(): "PASS\r" is PASS.
    got = session(dovecot.pop3_port,
                  [b"USER alice\r\nPASS\r " + PW.encode() + b"\r\n"],
                  b"Logged in")
    assert b"+OK Logged in" in got


def test_pop3_command_name_ends_after_8_bytes(dovecot):
    # CRs count towards CLIENT_MAX_CMD_LEN but are not in the name.
    got = session(dovecot.pop3_port,
                  [b"USER alice\r\nPASS\r\r\r\r" + PW.encode() + b"\r\n"],
                  b"Logged in")
    assert b"+OK Logged in" in got


def test_imap_rejected_line_has_no_literal(dovecot):
    # A parse error skips the rest of the line, {25+} included.
    got = session(dovecot.imap_port,
                  [b"a NOOP ) {25+}\r\nb LOGIN alice " + PW.encode() + b"\r\n"],
                  b"b OK")
    assert b"a BAD" in got and b"b OK" in got


def test_imap_rejected_line_has_no_sync_literal(dovecot):
    # The tag is bad ("* BAD"): the "+ OK" that follows is LOGIN's.
    got = session(dovecot.imap_port,
                  [b" x {8}\r\nb LOGIN alice {8}\r\n" + PW.encode() + b"\r\n"],
                  b"b OK")
    assert b"* BAD" in got and b"+ OK" in got and b"b OK" in got


def test_imap_literal_continuation_before_lf(dovecot):
    # imap-login asks for the literal once it has "{8}\r", LF or not.
    got = session(dovecot.imap_port,
                  [b"b LOGIN alice {8}\r"], b"+ OK")
    assert got.endswith(b"+ OK\r\n")
    got = session(dovecot.imap_port,
                  [b"b LOGIN alice {8}\r", b"\n" + PW.encode() + b"\r\n"],
                  b"b OK")
    assert b"b OK" in got


def test_imap_literal_one_cr_skipped_per_read(dovecot):
    # "{8}\r" and then "\r\n": the parser skipped the first CR already.
    got = session(dovecot.imap_port,
                  [b"b LOGIN alice {8}\r", b"\r\n" + PW.encode() + b"\r\n"],
                  b"b OK")
    assert b"b OK" in got


def test_imap_authenticate_pipelined_after_failed_one(dovecot):
    # The unknown mechanism fails at once; the next line is a command.
    got = session(dovecot.imap_port,
                  [b"a AUTHENTICATE PLAN\r\nb AUTHENTICATE PLAIN\r\n"
                   + PLAIN + b"\r\n"], b"b OK")
    assert b"a NO" in got and b"b OK" in got


def test_imap_tag_only_line_is_answered(dovecot):
    # "a BAD" answers the line "a"; the AUTHENTICATE goes on.
    got = session(dovecot.imap_port,
                  [b"a\r\na AUTHENTICATE PLAIN\r\n", PLAIN + b"\r\n"],
                  b"a OK")
    assert b"a BAD" in got and b"+ " in got and b"a OK" in got


def test_pop3_cr_in_auth_command_name(dovecot):
    got = session(dovecot.pop3_port, [b"\rAUTH PLAIN " + PLAIN + b"\r\n"],
                  b"Logged in")
    assert b"+OK Logged in" in got


def test_pop3_auth_pipelined_after_failed_one(dovecot):
    got = session(dovecot.pop3_port,
                  [b"AUTH X\r\nAUTH PLAIN\r\n", PLAIN + b"\r\n"],
                  b"Logged in")
    assert b"-ERR" in got and b"+OK Logged in" in got


def test_imap_mechanism_name_is_a_c_string(dovecot):
    # i_strndup(): "PLAIN\0..." up to the space is PLAIN.
    got = session(dovecot.imap_port,
                  [b'a AUTHENTICATE PLAIN\0" ' + PLAIN + b"\r\n"], b"a OK")
    assert b"a OK" in got


def test_imap_login_list_count_limit(dovecot):
    # Debian's imap-login passes list_count_limit 1 (the fuzzer does too).
    got = session(dovecot.imap_port,
                  [b"a NOOP ((x))\r\nb LOGIN alice " + PW.encode() + b"\r\n"],
                  b"b OK")
    assert b"a BAD Too many '('" in got and b"b OK" in got


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_cr_ends_mechanism_name(dovecot, proto):
    # The rest of the line, CR and all, is the initial response; base64
    # decoding skips the CR.
    if proto == "imap":
        port, line, ok = (dovecot.imap_port,
                          b"a AUTHENTICATE PLAIN\r" + PLAIN + b"\r\n", b"a OK")
    else:
        port, line, ok = (dovecot.pop3_port,
                          b"AUTH PLAIN\r" + PLAIN + b"\r\n", b"+OK Logged in")
    assert ok in session(port, [line], ok)


def test_submission_reads_pipelined_auth_after_auth(dovecot):
    # The second AUTH was sent before the first one's reply. lib-smtp
    # reads what is buffered only when more comes: the 334s come after
    # the user name, which is why the steps wait (the fuzzer models that).
    got = session(dovecot.submission_port,
                  [b"EHLO x\r\nAUTH PLAIN AGJhZABiYWQ=\r\nAUTH LOGIN\r\n",
                   base64.b64encode(b"alice") + b"\r\n",
                   base64.b64encode(PW.encode()) + b"\r\n"],
                  b"235 ", pause=2)
    assert b"535 " in got and b"334 UGFzc3dvcmQ6" in got and b"235 " in got


def test_submission_bdat_before_login_reads_no_chunk(dovecot):
    # 530 (BDAT is no SMTP_SERVER_CMD_FLAG_PREAUTH command); no chunk data
    # is read, so the AUTH is a command.
    got = session(dovecot.submission_port,
                  [b"EHLO x\r\nBDAT 36\r\nAUTH PLAIN " + PLAIN + b"\r\n"],
                  b"235 ", pause=1)
    assert b"530 " in got and b"235 " in got
