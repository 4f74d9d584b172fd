"""rawlog-ext-view on each leg of real sessions (issue #17): --json gives
back every leg's wire bytes, byte for byte, against the client's own
record (or, on a leg Dovecot opens, the far end's); --session stitches
the legs of one session; bodies are folded with the undotted message's
size and sha256."""

import hashlib
import pathlib
import re

from dovecot_fixture import User
from rawlog import (HIBERNATE_CONF, SmtpSink, hibernated_session,
                    log_files, strip_timestamps)
from test_imap import message
from test_lmtp import _expected_out, deliver, lmtp_dirs, make_lmtp  # noqa: F401
from test_login import SECRET, login_dir, proxied_login  # noqa: F401
from test_submission import relay_files, submit
from test_view import json_legs, undot, view
from test_view_list import session_of


def pair(directory: pathlib.Path, service: str) -> dict[str, pathlib.Path]:
    """The .in/.out pair of the one log of service in directory."""
    files = [p for p in log_files(directory) if f"_{service}_" in p.name]
    by_ext = {p.suffix: p for p in files}
    assert set(by_ext) == {".in", ".out"} and len(files) == 2, files
    return by_ext


def file_bytes(files, client_out: bool = False) -> tuple[bytes, bytes]:
    """(client's, server's) bytes of a split pair, stamps removed; on a
    leg Dovecot opens the client's are its .out."""
    i, o = (strip_timestamps(files[s].read_bytes()) for s in (".in", ".out"))
    return (o, i) if client_out else (i, o)


def fold(body: bytes, side: str) -> str:
    return "%s: {%d bytes, sha256 %s}\n" % (side, len(body),
                                            hashlib.sha256(body).hexdigest()[:16])


def test_lmtp_connection_and_recipient_logs(dovecot_factory, lmtp_dirs):  # noqa: F811
    """Two recipients, both logged: the connection log's --json is the
    client's record; each recipient's log gives back exactly its own file
    bytes (its MAIL, its RCPT, DATA and its own reply)."""
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice", "bob"))
    mail = b"Subject: two\r\n\r\n.a dot\r\n" + message(4 * 1024, seed=9)
    body = mail.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    c, final = deliver(dc.lmtp_port, ["alice", "bob"], body)
    assert [r[:4] for r in final] == [b"250 ", b"250 "], final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")

    conn_files = pair(conn, "lmtp")
    for path in conn_files.values():
        got, _ = json_legs(path)
        assert got == {("session", "client"): bytes(c.sent),
                       ("session", "server"): bytes(c.received)}
    r = view(conn_files[".in"])
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8", "replace")
    assert fold(mail, "C") in text and "C: .\n" in text
    # One reply per recipient after the body, both as lines.
    assert "S: " + final[0].decode().rstrip() + "\n" in text
    assert "S: " + final[1].decode().rstrip() + "\n" in text

    for i, name in enumerate(("alice", "bob")):
        files = pair(users[name], "lmtp")
        want_in, want_out = file_bytes(files)
        # What test_three_recipients_two_logged checks the file holds.
        assert want_in == (b"MAIL FROM:<sender@example.com>\r\n"
                           b"RCPT TO:<%s>\r\nDATA\r\n" % name.encode() + body)
        assert want_out == _expected_out(c, name, final[i])
        for path in files.values():
            got, _ = json_legs(path)
            assert got == {("session", "client"): want_in,
                           ("session", "server"): want_out}
        r = view(files[".in"])
        assert r.returncode == 0, r.stderr
        text = r.stdout.decode("utf-8", "replace")
        assert f"C: RCPT TO:<{name}>\n" in text and fold(mail, "C") in text
        assert text.endswith("S: " + final[i].decode().rstrip() + "\n"), text[-300:]


def test_proxied_imap_login_legs(dovecot_factory, login_dir):  # noqa: F811
    """The login companion's pre-login leg and its backend leg to a second
    Dovecot, stitched by --session: the pre-login leg is the client's
    record (the password as ***), the backend leg the companion's files,
    the client's post-login commands forwarded as they were sent and the
    backend's replies after its login the client's."""
    dc, backend, c = proxied_login(dovecot_factory, login_dir)
    (session,) = {session_of(p) for p in log_files(login_dir)}
    got, records = json_legs("--session", session, login_dir)
    assert set(got) == {("pre-login", "client"), ("pre-login", "server"),
                        ("backend", "client"), ("backend", "server")}
    times = [rec["time"] for rec in records]
    assert times == sorted(times)
    sent, received = bytes(c.sent), bytes(c.received)
    assert got[("pre-login", "client")] == sent.replace(SECRET.encode(), b"***")
    assert got[("pre-login", "server")] == received

    back_client, back_server = file_bytes(pair(login_dir, "imap-login-proxy"),
                                          client_out=True)
    assert got[("backend", "client")] == back_client
    assert got[("backend", "server")] == back_server
    # The proxy's own login, redacted; then the client's commands.
    assert b"***" in back_client and SECRET.encode() not in back_client
    after_login = sent[sent.index(b"c SELECT"):]
    assert back_client.endswith(after_login)
    assert back_server.startswith(b"* OK ")
    # After the proxy's login completed, the backend's bytes are the client's.
    from_select = back_server[back_server.index(b"* FLAGS"):]
    assert received.endswith(from_select)

    r = view("--no-pager", "--session", session, login_dir)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "[pre-login]" in text and "[backend]" in text
    assert "C: b LOGIN alice ***" in text


def test_submission_relay_leg(dovecot_factory, rawlog_dir):
    """The relay leg on its own: --json is what the sink received and sent
    (Dovecot the client), its DATA folded with the message's size and
    sha256; --session stitches session and relay, the same bytes."""
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)})
    relay = SmtpSink(dc.relay_port)
    mail = b"Subject: relayed\r\n\r\n.dot\r\n" + message(16 * 1024, seed=6)
    try:
        c = submit(dc.submission_port, mail.replace(b"\r\n.", b"\r\n.."))
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    assert len(relay.sessions) == 1
    sink_in, sink_out = (bytes(relay.sessions[0][k]) for k in ("in", "out"))
    files = relay_files(rawlog_dir)
    for path in files.values():
        # A file given (not --session): its leg is "session", as documented.
        got, _ = json_legs(path)
        assert got == {("session", "client"): sink_in, ("session", "server"): sink_out}
    r = view(files[".in"])
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8", "replace")
    # Dovecot is the client: its DATA body (the mail under the Received:
    # header it adds) is the C: side's fold.
    m = re.search(rb"\r\nDATA\r\n(.*?\r\n)\.\r\n", sink_in, re.S)
    relayed = undot(m.group(1))
    assert relayed.startswith(b"Received: ") and relayed.endswith(mail)
    assert fold(relayed, "C") in text and "C: DATA\n" in text
    assert "S: 354 go ahead\n" in text

    (session,) = {session_of(p) for p in log_files(rawlog_dir)}
    got, _ = json_legs("--session", session, rawlog_dir)
    assert got[("relay", "client")] == sink_in
    assert got[("relay", "server")] == sink_out
    sent = bytes(c.sent)
    assert got[("session", "client")] == sent[sent.index(b"MAIL FROM"):]


def test_hibernated_session_in_process_order(logged_dovecot, rawlog_dir):
    """An IMAP session hibernated in IDLE and woken: one file pair per imap
    process; --session shows the first process's files, then the
    second's, together the client's record but the DONE imap-hibernate
    consumed."""
    dc = logged_dovecot(extra_conf=HIBERNATE_CONF)
    c, sent_from, received_from, _ = hibernated_session(dc)
    files = log_files(rawlog_dir)
    assert len(files) == 4, files
    (session,) = {session_of(p) for p in files}

    got, records = json_legs("--session", session, rawlog_dir)
    assert set(got) == {("session", "client"), ("session", "server")}
    sent = bytes(c.sent[sent_from:])
    assert got[("session", "client")] == sent.replace(b"DONE\r\n", b"", 1)
    assert got[("session", "server")] == bytes(c.received[received_from:])
    # The processes one after the other: each pair's records together.
    stems = []
    for rec in records:
        stem = re.sub(r"\.(in|out)$", "", rec["file"])
        if not stems or stems[-1] != stem:
            stems.append(stem)
    assert len(stems) == 2 and len(set(stems)) == 2, stems
    first = [rec for rec in records if rec["file"].startswith(stems[0])]
    assert all(rec["time"] <= records[len(first)]["time"] for rec in first)

    r = view("--no-pager", "--session", session, rawlog_dir)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert text.index("C: i IDLE") < text.index("S: i OK") < text.index("C: n NOOP")
