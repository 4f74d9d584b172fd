"""LMTP: the connection log (rawlog_ext_lmtp_dir) and per-recipient logs
(each recipient's rawlog_ext_dir), against the client's own record."""
import os
import pathlib
import re
import smtplib
import stat
import tempfile

import pytest

from dovecot_fixture import User, conf_value, for_line, line_under_test
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
              plugin=None, extra_conf="", ssl=False, **kwargs):
    conn, users = lmtp_dirs
    settings = {"rawlog_ext_lmtp_dir": str(conn)}
    settings.update(plugin or {})
    accounts = [User(name, uid=uid, gid=uid,
                     extra=(f"userdb_rawlog_ext_dir={users[name]}"
                            if name in logged else ""))
                for name, uid in UIDS.items()]
    return dovecot_factory(
        protocols=("lmtp",), users=accounts, plugin=settings, ssl=ssl,
        protocol_mail_plugins={"lmtp": "$mail_plugins rawlog_ext"},
        extra_conf="mail_debug = yes\n" + extra_conf, **kwargs)


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


def only_log(directory: pathlib.Path) -> tuple[bytes, bytes]:
    logs = read_split(directory)
    assert len(logs) == 1, logs
    return next(iter(logs.values()))


def test_ten_megabytes_not_pipelined(dovecot_factory, lmtp_dirs):
    """A 10 MB message (spooled through a temporary file) comes out exact."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs)
    line = bytes(range(32, 127)) + b"\xc3\xa9\r\n.leading dot\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line)) + b".\r\n"
    c, final = deliver(dc.lmtp_port, ["alice"], body, pipelined=False)
    assert final[0].startswith(b"250 ")
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    got_in, got_out = only_log(users["alice"])
    assert got_in == b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n" + body
    assert got_out.endswith(b"354 OK\r\n" + final[0])
    conn_in, conn_out = only_log(conn)
    assert conn_in == bytes(c.sent) and conn_out == bytes(c.received)


def test_rejected_rcpt_rset_and_two_transactions(dovecot_factory, lmtp_dirs):
    """Raw pipelined session: an unknown user, RSET, then two deliveries."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs)
    c = LmtpClient(dc.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"
           b"RCPT TO:<nobody>\r\nRCPT TO:<alice>\r\nRSET\r\n")
    replies = c.replies(5)
    assert replies[2].startswith(b"550 "), replies
    first = b"Subject: one\r\n\r\n1\r\n.\r\n"
    second = b"Subject: two\r\n\r\n2\r\n.\r\n"
    c.send(b"MAIL FROM:<b@example.com>\r\nRCPT TO:<bob>\r\nRCPT TO:<alice>\r\nDATA\r\n")
    assert c.replies(4)[-1].startswith(b"354")
    # The next transaction pipelined right behind the message.
    c.send(first + b"MAIL FROM:<c@example.com>\r\nrcpt to:<alice>\r\nDATA\r\n")
    final1 = c.replies(2)
    assert c.replies(3)[-1].startswith(b"354")
    c.send(second + b"QUIT\r\n")
    final2 = c.replies(1)
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")

    alice = read_split(users["alice"])
    assert len(alice) == 2, alice
    ins = sorted(v[0] for v in alice.values())
    assert ins == sorted([
        b"MAIL FROM:<b@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n" + first,
        b"MAIL FROM:<c@example.com>\r\nrcpt to:<alice>\r\nDATA\r\n" + second])
    outs = {v[0]: v[1] for v in alice.values()}
    assert outs[b"MAIL FROM:<b@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n"
                + first].endswith(final1[1])
    assert outs[b"MAIL FROM:<c@example.com>\r\nrcpt to:<alice>\r\nDATA\r\n"
                + second].endswith(final2[0])
    bob_in, bob_out = only_log(users["bob"])
    assert bob_in == b"MAIL FROM:<b@example.com>\r\nRCPT TO:<bob>\r\nDATA\r\n" + first
    assert bob_out.endswith(final1[0]) and b"alice" not in bob_in + bob_out
    for got_in, got_out in alice.values():
        assert b"nobody" not in got_in + got_out and b"bob" not in got_in + got_out
    conn_in, conn_out = only_log(conn)
    assert conn_in == bytes(c.sent) and conn_out == bytes(c.received)


def test_bdat_chunks(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs)
    c = LmtpClient(dc.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    assert b"CHUNKING" in c.reply()
    chunk1 = b"Subject: chunked\r\n\r\nno dot-stuffing\r\n.\r\n"
    chunk2 = b"last part\r\n"
    c.send(b"MAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\n"
           b"BDAT %d\r\n" % len(chunk1) + chunk1 + b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
    replies = c.replies(4)
    assert all(r.startswith(b"250") for r in replies), replies
    c.send(b"QUIT\r\n")
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    got_in, got_out = only_log(users["alice"])
    assert got_in == bytes(c.sent)[len(b"LHLO client.test\r\n"):-len(b"QUIT\r\n")]
    assert got_out == b"".join(replies)


def test_smtplib_transcript_format(dovecot_factory, lmtp_dirs):
    """Python's own LMTP client; the recipient log in transcript format."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs,
                   plugin={"rawlog_ext_format": "transcript"})
    msg = b"Subject: via smtplib\r\n\r\n.starts with a dot\r\nend\r\n"
    # smtplib reads one reply after the data: one recipient per message.
    with smtplib.LMTP("127.0.0.1", dc.lmtp_port) as lmtp:
        for name in ("alice", "bob", "carol"):
            assert lmtp.sendmail("s@example.com", [name], msg) == {}
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    from rawlog import parse_transcript
    for name in ("alice", "bob"):
        files = log_files(users[name])
        assert len(files) == 1 and files[0].suffix == ".log", files
        got_in, got_out, records = parse_transcript(files[0].read_bytes())
        assert got_in == (b"mail FROM:<s@example.com>\r\nrcpt TO:<%s>\r\ndata\r\n"
                          % name.encode() + msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        assert re.fullmatch(rb"250 2\.1\.0 OK\r\n250 2\.1\.5 OK\r\n354 OK\r\n"
                            rb"250 2\.0\.0 <%s> \S+ Saved\r\n" % name.encode(), got_out)
        assert [d for d, _ in records][:2] == ["I", "O"]
    assert log_files(users["carol"]) == []


def test_unwritable_user_dir_delivery_still_works(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    os.chown(users["alice"], 0, 0)        # not alice's: she cannot create files
    users["alice"].chmod(0o755)
    dc = make_lmtp(dovecot_factory, lmtp_dirs)
    c, final = deliver(dc.lmtp_port, ["alice", "bob"], b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    assert log_files(users["alice"]) == []
    assert len(read_split(users["bob"])) == 1
    errors = [l for l in dc.log().splitlines() if "rawlog_ext" in l and "Error" in l]
    assert len(errors) == 1 and "Permission denied" in errors[0], errors
    assert "lmtp(alice)" in errors[0]


def test_missing_connection_dir_is_one_error(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs,
                   plugin={"rawlog_ext_lmtp_dir": str(conn / "missing/%{session}")})
    for _ in range(2):
        c, final = deliver(dc.lmtp_port, ["alice"], b"Subject: x\r\n\r\ny\r\n.\r\n")
        assert final[0].startswith(b"250 ")
    dc.wait_log(r"(?s)Disconnect.*Disconnect")
    assert log_files(conn) == []
    assert len(read_split(users["alice"])) == 2
    # Missing without autocreate: not an error, as for rawlog_ext_dir.
    assert not [l for l in dc.log().splitlines() if "Error" in l]


def test_connection_dir_variables_and_autocreate(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=(),
                   plugin={"rawlog_ext_lmtp_dir": str(conn) + for_line(
                               "/%s-%r/%{hostname}",
                               "/%{service}-%{remote_ip}/%{hostname}"),
                           "rawlog_ext_autocreate": "yes"})
    deliver(dc.lmtp_port, ["alice"], b"Subject: x\r\n\r\ny\r\n.\r\n")
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    import socket
    files = log_files(conn)
    sub = conn / "lmtp-127.0.0.1" / socket.gethostname()
    assert [p.parent for p in files] == [sub, sub], files
    for d in (sub, sub.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_full_filesystem_delivery_still_works(dovecot_factory, lmtp_dirs):
    import subprocess
    conn, users = lmtp_dirs
    tiny = users["alice"]
    result = subprocess.run(["mount", "-t", "tmpfs", "-o",
                             f"size=32k,mode=0700,uid={UIDS['alice']},gid={UIDS['alice']}",
                             "tmpfs", str(tiny)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        dc = make_lmtp(dovecot_factory, lmtp_dirs)
        body = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 4000 + b".\r\n"
        c, final = deliver(dc.lmtp_port, ["alice", "bob"], body)
        assert all(r.startswith(b"250 ") for r in final), final
        dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
        errors = [l for l in dc.log().splitlines() if "rawlog_ext" in l and "Error" in l]
        assert len(errors) == 1 and "No space left on device" in errors[0], errors
        bob_in, _ = only_log(users["bob"])
        assert bob_in.endswith(body)
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)


def test_proxy_leg(dovecot_factory, lmtp_dirs):
    """lmtp_proxy: a proxied recipient's backend leg in rawlog_ext_lmtp_dir."""
    _proxy_leg(dovecot_factory, lmtp_dirs, core_rawlog=False)


def test_proxy_leg_alongside_core_lmtp_proxy_rawlog_dir(dovecot_factory, lmtp_dirs):
    """With Dovecot's own lmtp_proxy_rawlog_dir too, both get the whole leg."""
    _proxy_leg(dovecot_factory, lmtp_dirs, core_rawlog=True)


def _proxy_leg(dovecot_factory, lmtp_dirs, core_rawlog):
    from dovecot_fixture import _free_ports
    from rawlog import SmtpSink
    conn, users = lmtp_dirs
    core = conn.parent / "core"
    core.mkdir(mode=0o700)
    core_conf = f"  lmtp_proxy_rawlog_dir = {core}\n" if core_rawlog else ""
    backend_port = _free_ports(1)[0]
    backend = SmtpSink(backend_port, lmtp=True)
    try:
        accounts = [User("remote", extra=f"proxy=y host=127.0.0.1 port={backend_port}"),
                    User("alice", uid=UIDS["alice"], gid=UIDS["alice"],
                         extra=f"userdb_rawlog_ext_dir={users['alice']}")]
        dc = dovecot_factory(
            protocols=("lmtp",), users=accounts,
            plugin={"rawlog_ext_lmtp_dir": str(conn)},
            protocol_mail_plugins={"lmtp": "$mail_plugins rawlog_ext"},
            extra_conf="protocol lmtp {\n  lmtp_proxy = yes\n" + core_conf + "}\n")
        body = b"Subject: proxied\r\n\r\n..stuffed\r\n" + b"x" * 100 + b"\r\n.\r\n"
        for _ in range(2):
            c, final = deliver(dc.lmtp_port, ["remote"], body)
            assert final[0].startswith(b"250 "), final
        dc.wait_log(r"(?s)Info: Disconnect.*Info: Disconnect")
    finally:
        backend.close()
    assert len(backend.sessions) == 2
    legs = {k: v for k, v in read_split(conn).items() if "_lmtp-proxy_" in k}
    assert len(legs) == 2, read_split(conn).keys()
    for name in legs:
        assert f"_127.0.0.1-{backend_port}" in name, name
    # Dovecot's .out is what the backend received, and the other way round.
    got = sorted(legs.values())
    want = sorted((bytes(s["out"]), bytes(s["in"])) for s in backend.sessions)
    for (got_in, got_out), (want_in, want_out) in zip(got, want):
        assert got_out == want_out
        # lib-smtp closes right after sending QUIT, without reading the
        # backend's 221: it never crossed into Dovecot.
        assert want_in in (got_in, got_in + b"221 2.0.0 bye\r\n")
    assert all(b"..stuffed" in s["in"] for s in backend.sessions)
    conns = {k: v for k, v in read_split(conn).items() if "_lmtp_" in k}
    assert len(conns) == 2
    core_out = sorted(p.read_bytes() for p in core.iterdir() if p.suffix == ".out")
    if core_rawlog:
        # Dovecot's rawlog sits above ours on the leg: it saw it all too.
        assert len(core_out) == 2, list(core.iterdir())
        for leg_out in (v[1] for v in legs.values()):
            assert any(strip_timestamps(c) == leg_out for c in core_out), core_out
    else:
        assert core_out == []


def test_starttls_connection_log_is_plaintext(dovecot_factory, lmtp_dirs):
    """After STARTTLS the connection log goes on with the plaintext, and
    per-recipient logs keep working."""
    conn, users = lmtp_dirs
    dc2 = make_lmtp(dovecot_factory, lmtp_dirs, ssl=True)
    c = LmtpClient(dc2.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    assert b"STARTTLS" in c.reply()
    c.send(b"STARTTLS\r\n")
    assert c.reply().startswith(b"220 ")
    c.starttls(dc2.ssl_context())
    c.pos = len(c.received)
    c.send(b"LHLO client.test\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n")
    assert c.replies(4)[-1].startswith(b"354")
    body = b"Subject: tls\r\n\r\nconfidential\r\n.\r\n"
    c.send(body)
    final = c.reply()
    c.send(b"QUIT\r\n")
    c.reply()
    c.read_to_eof()
    dc2.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    conn_in, conn_out = only_log(conn)
    assert conn_in == bytes(c.sent)
    assert conn_out == bytes(c.received)
    alice_in, alice_out = only_log(users["alice"])
    assert alice_in == b"MAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n" + body
    assert alice_out.endswith(final)


def test_alongside_core_lmtp_rawlog_dir(dovecot_factory, lmtp_dirs):
    """Dovecot's own lmtp_rawlog_dir stacks its rawlog on the connection's
    input before the greeting: logging moves above it and the command
    parser follows."""
    conn, users = lmtp_dirs
    core = conn.parent / "core"
    core.mkdir(mode=0o700)
    dc = make_lmtp(dovecot_factory, lmtp_dirs,
                   extra_conf=f"protocol lmtp {{\n  lmtp_rawlog_dir = {core}\n}}\n")
    body = b"Subject: both\r\n\r\nhi\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["alice"], body)
    assert final[0].startswith(b"250 ")
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    conn_in, conn_out = only_log(conn)
    assert conn_in == bytes(c.sent) and conn_out == bytes(c.received)
    alice_in, _ = only_log(users["alice"])
    assert alice_in.endswith(body)
    assert any(p.suffix == ".in" and p.stat().st_size > 0 for p in core.iterdir())


# An accessor of src/dovecot/internals-<line>/ that finds an unexpected
# state (RAWLOG_EXT_REFUSE=<accessor>, fault-injection builds only): one
# Warning "not logging X", the delivery goes on.
FAULT_DIR = os.environ.get("RAWLOG_EXT_FAULT_MODULE_DIR")
needs_fault_build = pytest.mark.skipif(
    FAULT_DIR is None, reason="no fault-injection build (RAWLOG_EXT_FAULT_MODULE_DIR)")


def _warnings(dc):
    return [l for l in dc.log().splitlines() if "rawlog_ext" in l
            and re.search(r"\b(Warning|Error|Fatal|Panic)\b", l)]


@needs_fault_build
def test_unexpected_server_connection_is_not_logged(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, module_dir=FAULT_DIR,
                   import_env={"RAWLOG_EXT_REFUSE": "smtp_server_stream_slots"})
    c, final = deliver(dc.lmtp_port, ["alice", "bob"], b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    warnings = _warnings(dc)
    assert len(warnings) == 1, warnings
    assert ("Warning: rawlog_ext: not logging this connection: "
            "unexpected smtp-server connection state") in warnings[0]
    assert log_files(conn) == [] and log_files(users["alice"]) == []


@needs_fault_build
@pytest.mark.parametrize("accessor,said", [
    ("lmtp_proxy_smtp_client", "not logging proxy legs: unexpected lmtp proxy state"),
    ("smtp_client_connections", "not logging proxy legs: unexpected smtp-client state"),
    ("smtp_client_connection_peer",
     "not logging a proxy leg: unexpected smtp-client connection state"),
])
def test_unexpected_proxy_state_is_not_logged(dovecot_factory, lmtp_dirs, accessor, said):
    from dovecot_fixture import _free_ports
    from rawlog import SmtpSink
    conn, users = lmtp_dirs
    backend_port = _free_ports(1)[0]
    backend = SmtpSink(backend_port, lmtp=True)
    try:
        dc = dovecot_factory(
            protocols=("lmtp",), module_dir=FAULT_DIR,
            users=[User("remote", extra=f"proxy=y host=127.0.0.1 port={backend_port}")],
            plugin={"rawlog_ext_lmtp_dir": str(conn)},
            import_env={"RAWLOG_EXT_REFUSE": accessor},
            protocol_mail_plugins={"lmtp": "$mail_plugins rawlog_ext"},
            extra_conf="protocol lmtp {\n  lmtp_proxy = yes\n}\n")
        c, final = deliver(dc.lmtp_port, ["remote"], b"Subject: p\r\n\r\nq\r\n.\r\n")
        assert final[0].startswith(b"250 "), final
        dc.wait_log(r"Info: Disconnect")
    finally:
        backend.close()
    assert len(backend.sessions) == 1
    warnings = _warnings(dc)
    assert len(warnings) == 1 and f"Warning: rawlog_ext: {said}" in warnings[0], warnings
    logs = read_split(conn)
    assert [k for k in logs if "_lmtp-proxy_" in k] == []
    # The connection itself is still logged.
    (got_in, got_out), = logs.values()
    assert got_in == bytes(c.sent) and got_out == bytes(c.received)


@needs_fault_build
def test_unexpected_state_after_starttls_stops_logging(dovecot_factory, lmtp_dirs):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, ssl=True, module_dir=FAULT_DIR,
                   import_env={"RAWLOG_EXT_REFUSE": "smtp_server_input_restart"})
    c = LmtpClient(dc.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    c.reply()
    c.send(b"STARTTLS\r\n")
    assert c.reply().startswith(b"220 ")
    before_tls = bytes(c.sent), bytes(c.received)
    c.starttls(dc.ssl_context())
    c.pos = len(c.received)
    c.send(b"LHLO client.test\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n")
    assert c.replies(4)[-1].startswith(b"354")
    c.send(b"Subject: tls\r\n\r\nconfidential\r\n.\r\n")
    assert c.reply().startswith(b"250 ")
    c.send(b"QUIT\r\n")
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    warnings = _warnings(dc)
    assert len(warnings) == 1, warnings
    assert ("not logging the rest of this connection after STARTTLS: "
            "unexpected smtp-server state") in warnings[0]
    conn_in, conn_out = only_log(conn)
    assert (conn_in, conn_out) == before_tls
    assert log_files(users["alice"]) == []


@needs_fault_build
def test_late_restack_after_starttls_recovers_input(dovecot_factory, lmtp_dirs):
    """lib-smtp may read the client's first bytes over TLS before we are back
    on top of the streams (RAWLOG_EXT_REFUSE=prompt_tls_restack makes us
    late on purpose): the connection log takes them from the TLS stream's
    buffer; replies already sent are missing (so are the per-recipient
    logs, which need them), and a Warning says how many bytes."""
    import time
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, ssl=True, module_dir=FAULT_DIR,
                   import_env={"RAWLOG_EXT_REFUSE": "prompt_tls_restack"})
    c = LmtpClient(dc.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    c.reply()
    c.send(b"STARTTLS\r\n")
    assert c.reply().startswith(b"220 ")
    c.starttls(dc.ssl_context())
    c.pos = len(c.received)
    c.send(b"LHLO client.test\r\n")
    lhlo_reply = c.reply()
    time.sleep(0.5)     # well after our restack
    c.send(b"MAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\nDATA\r\n")
    assert c.replies(3)[-1].startswith(b"354")
    c.send(b"Subject: tls\r\n\r\nlate\r\n.\r\n")
    c.reply()
    c.send(b"QUIT\r\n")
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    conn_in, conn_out = only_log(conn)
    assert conn_in == bytes(c.sent)
    # The reply to LHLO went out before we were back on top.
    assert conn_out == bytes(c.received).replace(lhlo_reply, b"", 1)
    warnings = _warnings(dc)
    assert len(warnings) == 1, warnings
    assert (f"the connection log misses the first {len(lhlo_reply)} bytes "
            "sent to the client after STARTTLS; no per-recipient logs for the "
            "rest of this connection") in warnings[0]
    assert log_files(users["alice"]) == []


# Loaded and idle (issue 16): a transaction's message is spooled only if one
# of its recipients can log, decided at RCPT from the recipient's settings
# (userdb fields included).
NOT_SPOOLED = "rawlog_ext: message not spooled: no recipient of this transaction logs"


def _not_spooled(dc, name=None) -> int:
    """How many deliveries said so (each recipient's, with mail_debug)."""
    return len([l for l in dc.log().splitlines()
                if "Debug: " in l and NOT_SPOOLED in l and
                (name is None or f"lmtp({name})" in l)])


def _saved(dc, name: str) -> bool:
    return re.search(r"lmtp\(%s\)<[^\n]*: Info: [^\n]*saved mail to INBOX" % name,
                     dc.log()) is not None


@pytest.mark.parametrize("recipients", ["auto", "yes"])
def test_idle_module_spools_nothing(dovecot_factory, lmtp_dirs, recipients):
    """Module loaded, nothing configured: deliveries fine, nothing logged.
    auto (the default) follows no connection, so no delivery is even
    looked at; yes follows it and spools no message."""
    plugin = {"rawlog_ext_lmtp_dir": ""}
    if recipients != "auto":
        plugin["rawlog_ext_lmtp_recipients"] = recipients
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=(), plugin=plugin)
    c, final = deliver(dc.lmtp_port, ["alice", "bob"],
                       b"Subject: idle\r\n\r\n" + b"x" * 200000 + b"\r\n.\r\n")
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    seen = 1 if recipients == "yes" else 0
    assert _not_spooled(dc, "alice") == seen and _not_spooled(dc, "bob") == seen, dc.log()
    assert _saved(dc, "alice") and _saved(dc, "bob"), dc.log()
    assert _warnings(dc) == []
    conn, users = lmtp_dirs
    assert all(log_files(d) == [] for d in [conn, *users.values()])


@pytest.mark.parametrize("where", ["protocol", "remote"])
def test_auto_follows_where_the_configuration_names_a_dir(dovecot_factory, lmtp_dirs,
                                                          where):
    """rawlog_ext_dir only in protocol lmtp { } or (2.4) a remote { }
    filter: auto follows the connection and alice's delivery is logged."""
    if where == "remote" and line_under_test() == "2.3":
        pytest.skip("2.4's remote filter (2.3 applies remote blocks to the "
                    "connection's settings itself)")
    conn, users = lmtp_dirs
    tmpl = conf_value(f"{conn.parent}/%{{user}}")
    kwargs = ({"protocol_plugin": {"lmtp": {"rawlog_ext_dir": tmpl}}}
              if where == "protocol" else
              {"extra_conf": f"remote 127.0.0.1 {{\n  rawlog_ext_dir = {tmpl}\n}}\n"})
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=(),
                   plugin={"rawlog_ext_lmtp_dir": ""}, **kwargs)
    body = b"Subject: auto\r\n\r\na\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["alice"], body)
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    got_in, _ = only_log(users["alice"])
    assert got_in.endswith(b"DATA\r\n" + body), got_in
    assert _warnings(dc) == []


def test_userdb_only_dir_needs_recipients_yes(dovecot_factory, lmtp_dirs):
    """alice's directory comes from her userdb fields only and nothing in
    the configuration names one: auto follows no connection, so her
    delivery is not logged (doveadm rawlog status says why)."""
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice",),
                   plugin={"rawlog_ext_lmtp_dir": ""})
    c, final = deliver(dc.lmtp_port, ["alice"], b"Subject: auto\r\n\r\na\r\n.\r\n")
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    conn, users = lmtp_dirs
    assert log_files(users["alice"]) == [] and _not_spooled(dc) == 0
    assert _saved(dc, "alice") and _warnings(dc) == []


def test_one_of_two_recipients_logs_by_userdb(dovecot_factory, lmtp_dirs):
    """alice logs (a userdb field), bob does not: alice's log exact; a
    transaction for bob alone is not spooled."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice",),
                   plugin={"rawlog_ext_lmtp_dir": "",
                           "rawlog_ext_lmtp_recipients": "yes"})
    body = b"Subject: mixed\r\n\r\n..dotted\r\n" + b"y" * 150000 + b"\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["bob", "alice"], body, quit=False)
    assert all(r.startswith(b"250 ") for r in final), final
    c.send(b"MAIL FROM:<s@example.com>\r\nRCPT TO:<bob>\r\nDATA\r\n")
    assert c.replies(3)[-1].startswith(b"354")
    c.send(b"Subject: bob only\r\n\r\nz\r\n.\r\nQUIT\r\n")
    assert c.reply().startswith(b"250 ")
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    got_in, got_out = only_log(users["alice"])
    assert got_in == (b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<alice>\r\n"
                      b"DATA\r\n" + body)
    assert got_out == _expected_out(c, "alice", final[1])
    assert log_files(users["bob"]) == [] and log_files(conn) == []
    assert _not_spooled(dc) == 1 and _not_spooled(dc, "bob") == 1, dc.log()
    assert _saved(dc, "bob") and _warnings(dc) == []


def test_bdat_pipelined_decided_at_rcpt(dovecot_factory, lmtp_dirs):
    """MAIL, RCPTs and BDAT ... LAST with its chunk in one packet: the
    chunk is read before the RCPTs are answered. alice's log is still
    exact; the next transaction (carol only, pipelined behind) is not
    spooled."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice",),
                   plugin={"rawlog_ext_lmtp_dir": "",
                           "rawlog_ext_lmtp_recipients": "yes"})
    c = LmtpClient(dc.lmtp_port)
    c.reply()
    c.send(b"LHLO client.test\r\n")
    assert b"CHUNKING" in c.reply()
    chunk = b"Subject: chunked\r\n\r\n" + b"c" * 150000 + b"\r\n.\r\n"
    first = (b"MAIL FROM:<s@example.com>\r\nRCPT TO:<carol>\r\nRCPT TO:<alice>\r\n"
             b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    second = (b"MAIL FROM:<t@example.com>\r\nRCPT TO:<carol>\r\n"
              b"BDAT 5 LAST\r\nabc\r\n")
    c.send(first + second)
    replies = c.replies(5 + 3)
    assert all(r.startswith(b"250") for r in replies), replies
    c.send(b"QUIT\r\n")
    c.reply()
    c.read_to_eof()
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    got_in, got_out = only_log(users["alice"])
    assert got_in == (b"MAIL FROM:<s@example.com>\r\nRCPT TO:<alice>\r\n"
                      b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    assert got_out == replies[0] + replies[2] + replies[4]
    assert log_files(users["carol"]) == []
    assert _not_spooled(dc) == 1 and _not_spooled(dc, "carol") == 1, dc.log()
    assert _warnings(dc) == []


@needs_fault_build
def test_unexpected_recipient_state_spools_as_before(dovecot_factory, lmtp_dirs):
    """The recipient's lookup cannot be read: one Warning, every message
    spooled, the logging recipient logged as before."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice",),
                   plugin={"rawlog_ext_lmtp_dir": "",
                           "rawlog_ext_lmtp_recipients": "yes"}, module_dir=FAULT_DIR,
                   import_env={"RAWLOG_EXT_REFUSE": "lmtp_recipient_settings_source"})
    body = b"Subject: refused\r\n\r\nr\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["alice", "bob"], body)
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    warnings = _warnings(dc)
    assert len(warnings) == 1, warnings
    assert ("Warning: rawlog_ext: spooling every message of this connection: "
            "unexpected lmtp recipient state") in warnings[0]
    got_in, _ = only_log(users["alice"])
    assert got_in == (b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<alice>\r\n"
                      b"DATA\r\n" + body)
    assert _not_spooled(dc) == 0
