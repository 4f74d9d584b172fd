"""Submission sessions after login, compared byte for byte with the client's record."""
import base64
import os
import pathlib
import re
import shutil
import tempfile

import pytest

from dovecot_fixture import User
from rawlog import RawClient, SmtpSink, session_files, strip_timestamps, wait_closed
from test_imap import message


def test_submission_session_is_the_wire(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("imap", "submission"), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)})
    relay = SmtpSink(dc.relay_port)
    try:
        c = RawClient(dc.submission_port)
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.send(b"EHLO client.example.com\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        received_from = len(c.received)
        auth = b"AUTH PLAIN " + base64.b64encode(b"\0alice\0pass") + b"\r\n"
        sent_from = len(c.sent) + len(auth)
        # MAIL FROM pipelined with AUTH: submission-login hands it over.
        c.send(auth + b"MAIL FROM:<alice@example.com>\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n", received_from)
        c.send(b"RCPT TO:<bob@example.net>\r\nDATA\r\n")
        c.read_until(rb"^354 [^\r\n]*\r\n")
        # A big 8-bit body, dot-stuffed (some of its lines start with ".").
        body = message(1024 * 1024, seed=8).replace(b"\r\n", b"\r\n.dot\r\n", 50)
        stuffed = re.sub(rb"(?m)^\.", b"..", body)
        assert stuffed != body
        c.send(b"Subject: big\r\n\r\n" + stuffed + b".\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        c.send(b"NOOP\r\nQUIT\r\n")
        c.read_until(rb"^221 [^\r\n]*\r\n")
        wait_closed(c)
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()

    files = session_files(rawlog_dir, "submission")
    assert set(files) == {".in", ".out"}
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
    out = strip_timestamps(files[".out"].read_bytes())
    assert out == bytes(c.received[received_from:])
    assert out.startswith(b"235 2.7.0 Logged in.\r\n")
    assert files[".out"].stat().st_mode & 0o777 == 0o600
    assert not re.search(r"Error|Fatal|Panic", dc.log()), dc.log()


def submit(port: int, body: bytes) -> RawClient:
    c = RawClient(port)
    c.read_until(rb"^220 [^\r\n]*\r\n")
    c.send(b"EHLO client.example.com\r\n")
    c.read_until(rb"^250 [^\r\n]*\r\n")
    c.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0pass") + b"\r\n")
    c.read_until(rb"^235 [^\r\n]*\r\n")
    c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n")
    c.read_until(rb"^354 [^\r\n]*\r\n")
    c.send(body + b".\r\n")
    c.read_until(rb"^250 [^\r\n]*\r\n")
    c.send(b"QUIT\r\n")
    c.read_until(rb"^221 [^\r\n]*\r\n")
    wait_closed(c)
    return c


def relay_files(rawlog_dir):
    files = [p for p in rawlog_dir.iterdir() if "_submission-relay_" in p.name]
    return {p.suffix: p for p in files}


def test_relay_leg_is_the_wire(dovecot_factory, rawlog_dir):
    _relay_leg(dovecot_factory, rawlog_dir, core_rawlog=False)


def test_relay_leg_alongside_core_submission_relay_rawlog_dir(dovecot_factory, rawlog_dir):
    """With Dovecot's own submission_relay_rawlog_dir too, both get the
    whole leg."""
    _relay_leg(dovecot_factory, rawlog_dir, core_rawlog=True)


def _relay_leg(dovecot_factory, rawlog_dir, core_rawlog):
    core = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-core-"))
    core.chmod(0o755)
    os.chown(core, 65534, 65534)
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         extra_conf=(f"submission_relay_rawlog_dir = {core}\n"
                                     if core_rawlog else ""))
    relay = SmtpSink(dc.relay_port)
    try:
        body = b"Subject: relayed\r\n\r\n" + message(200 * 1024, seed=3).replace(
            b"\r\n", b"\r\n..dot\r\n", 20)
        submit(dc.submission_port, body)
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    assert len(relay.sessions) == 1
    files = relay_files(rawlog_dir)
    assert set(files) == {".in", ".out"}, files
    name = files[".in"].name
    assert f"_127.0.0.1-{dc.relay_port}" in name, name
    # Dovecot's .out is what the relay received, and the other way round.
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(relay.sessions[0]["in"])
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(relay.sessions[0]["out"])
    assert files[".out"].stat().st_mode & 0o777 == 0o600
    assert not re.search(r"Error|Fatal|Panic", dc.log()), dc.log()
    core_out = [p for p in core.iterdir() if p.suffix == ".out"]
    if core_rawlog:
        assert len(core_out) == 1, list(core.iterdir())
        assert (strip_timestamps(core_out[0].read_bytes())
                == bytes(relay.sessions[0]["in"]))
    else:
        assert core_out == []
    shutil.rmtree(core, ignore_errors=True)


def test_relay_leg_off(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir),
                                 "rawlog_ext_relay": "no"})
    relay = SmtpSink(dc.relay_port)
    try:
        submit(dc.submission_port, b"Subject: x\r\n\r\ny\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    assert relay_files(rawlog_dir) == {}
    assert set(session_files(rawlog_dir, "submission")) == {".in", ".out"}


def test_starttls_then_plaintext_after_login(dovecot_factory, rawlog_dir):
    """STARTTLS is handled by submission-login; the session log after
    login holds the plaintext, and so does the relay leg."""
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)}, ssl=True)
    relay = SmtpSink(dc.relay_port)
    try:
        c = RawClient(dc.submission_port)
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.send(b"EHLO client.example.com\r\n")
        assert b"STARTTLS" in c.read_until(rb"^250 [^\r\n]*\r\n").string
        c.send(b"STARTTLS\r\n")
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.starttls(dc.ssl_context())
        c.send(b"EHLO client.example.com\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        received_from = len(c.received)
        auth = b"AUTH PLAIN " + base64.b64encode(b"\0alice\0pass") + b"\r\n"
        sent_from = len(c.sent) + len(auth)
        c.send(auth)
        c.read_until(rb"^235 [^\r\n]*\r\n", received_from)
        c.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n")
        c.read_until(rb"^354 [^\r\n]*\r\n")
        c.send(b"Subject: over TLS\r\n\r\nsecret plans\r\n.\r\nQUIT\r\n")
        c.read_until(rb"^221 [^\r\n]*\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    files = session_files(rawlog_dir, "submission")
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(c.received[received_from:])
    assert b"secret plans" in files[".in"].read_bytes()
    relay_in = strip_timestamps(relay_files(rawlog_dir)[".out"].read_bytes())
    assert relay_in == bytes(relay.sessions[0]["in"])
    assert b"secret plans" in relay_in


def _relay_auth_session(dovecot_factory, rawlog_dir, plugin):
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir), **plugin},
                         extra_conf="submission_relay_user = relayuser\n"
                                    "submission_relay_password = relaysecret\n")
    relay = SmtpSink(dc.relay_port, auth=True)
    try:
        submit(dc.submission_port, b"Subject: x\r\n\r\ny\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    sent = bytes(relay.sessions[0]["in"])
    logged = strip_timestamps(relay_files(rawlog_dir)[".out"].read_bytes())
    return sent, logged


def test_relay_credentials_redacted(dovecot_factory, rawlog_dir):
    sent, logged = _relay_auth_session(dovecot_factory, rawlog_dir, {})
    auth = re.search(rb"^AUTH PLAIN (\S+)\r\n", sent, re.M)
    assert auth, sent
    assert b"relaysecret" in base64.b64decode(auth.group(1))
    # Same bytes, the credentials replaced by "***".
    assert logged == sent.replace(auth.group(0), b"AUTH PLAIN ***\r\n")
    for secret in (auth.group(1), b"relaysecret", base64.b64encode(b"relaysecret")):
        assert secret not in logged
    assert b"MAIL FROM:" in logged


def test_relay_credentials_kept_without_redact(dovecot_factory, rawlog_dir):
    sent, logged = _relay_auth_session(dovecot_factory, rawlog_dir,
                                       {"rawlog_ext_redact": "no"})
    assert logged == sent
    assert re.search(rb"^AUTH PLAIN \S+\r\n", logged, re.M)


def test_alongside_core_rawlog_dir(dovecot_factory, rawlog_dir):
    """With Dovecot's own rawlog_dir on top of ours, the session is still
    logged completely (the command parser follows our filter)."""
    core = rawlog_dir / "core"
    core.mkdir()
    import os
    os.chown(core, 65534, 65534)
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         extra_conf=f"protocol submission {{\n  rawlog_dir = {core}\n}}\n")
    relay = SmtpSink(dc.relay_port)
    try:
        c = submit(dc.submission_port, b"Subject: x\r\n\r\ny\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    files = session_files(rawlog_dir, "submission")
    got_in = strip_timestamps(files[".in"].read_bytes())
    sent = bytes(c.sent)
    assert sent.endswith(got_in) and got_in.startswith(b"MAIL FROM:"), got_in
    assert got_in.endswith(b"QUIT\r\n")
    assert any(p.suffix == ".in" for p in core.iterdir())


# An accessor of src/dovecot/internals-<line>/ that finds an unexpected
# state (RAWLOG_EXT_REFUSE=<accessor>, fault-injection builds only): one
# Warning "not logging X", the session goes on.
FAULT_DIR = os.environ.get("RAWLOG_EXT_FAULT_MODULE_DIR")


@pytest.mark.skipif(FAULT_DIR is None,
                    reason="no fault-injection build (RAWLOG_EXT_FAULT_MODULE_DIR)")
@pytest.mark.parametrize("accessor,said,session_logged", [
    ("smtp_server_stream_slots",
     "not logging this session: unexpected smtp-server connection state", False),
    ("smtp_client_of", "not logging the relay leg: unexpected smtp-client state", True),
    ("smtp_client_connection_peer",
     "not logging the relay leg: unexpected smtp-client connection state", True),
])
def test_unexpected_state_is_not_logged(dovecot_factory, rawlog_dir, accessor, said,
                                        session_logged):
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         module_dir=FAULT_DIR,
                         plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         import_env={"RAWLOG_EXT_REFUSE": accessor})
    relay = SmtpSink(dc.relay_port)
    try:
        submit(dc.submission_port, b"Subject: x\r\n\r\ny\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    assert len(relay.sessions) == 1
    warnings = [l for l in dc.log().splitlines() if "rawlog_ext" in l
                and re.search(r"\b(Warning|Error|Fatal|Panic)\b", l)]
    assert len(warnings) == 1 and f"Warning: rawlog_ext: {said}" in warnings[0], warnings
    # Each leg on its own: the session's streams do not stop the relay leg.
    assert (relay_files(rawlog_dir) == {}) == session_logged
    files = session_files(rawlog_dir, "submission")
    if session_logged:
        assert strip_timestamps(files[".in"].read_bytes()).endswith(b"QUIT\r\n")
    else:
        # The files were made before the streams were found unexpected.
        assert all(p.stat().st_size == 0 for p in files.values())
