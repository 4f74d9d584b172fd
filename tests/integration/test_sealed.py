"""Sealed logs (rawlog_ext_seal_recipients): every file of a session is age
v1 to the admin's keys, decrypts with Debian's age to exactly the bytes an
unsealed log holds, and a bad setting logs nothing rather than in clear."""
import base64
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from dovecot_fixture import User, conf_value
from rawlog import RawClient, imap_login, log_files, strip_timestamps, wait_closed
from test_crash import kill_mid_fetch
from test_imap import message
from test_lmtp import UIDS, deliver, make_lmtp, lmtp_dirs  # noqa: F401 (fixture)
from test_login import login_dir, login_user, make as make_login, wait_login, SECRET  # noqa: F401
from test_view import view


@pytest.fixture
def keys():
    """Two age-keygen identities, and a recipients file any user can read
    (the host holds public keys only)."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-keys-"))
    base.chmod(0o755)
    found = {}
    for name in ("k1", "k2"):
        key = base / f"{name}.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True,
                       capture_output=True)
        found[name] = (key, subprocess.run(
            ["age-keygen", "-y", str(key)], check=True, capture_output=True,
            text=True).stdout.strip())
    recipients = base / "recipients"
    recipients.write_text(f"# the mail admins\n{found['k1'][1]}\n\n"
                          f"# backup key\n{found['k2'][1]}\n")
    recipients.chmod(0o644)
    yield {"k1": found["k1"][0], "k2": found["k2"][0],
           "recipients": [found["k1"][1], found["k2"][1]],
           "file": recipients, "dir": base}
    if os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(base, ignore_errors=True)


def age_decrypt(path: pathlib.Path, key: pathlib.Path, check=True):
    r = subprocess.run(["age", "-d", "-i", str(key), str(path)],
                       capture_output=True)
    if check:
        assert r.returncode == 0, (path, r.stderr)
    return r


def age_decrypt_complete(path: pathlib.Path, key: pathlib.Path, timeout=10):
    """age -d once the file is complete: a log's last chunk is sealed when
    its session ends, which a login process may do after its Login line."""
    deadline = time.monotonic() + timeout
    while True:
        r = age_decrypt(path, key, check=False)
        if r.returncode == 0 or time.monotonic() > deadline:
            assert r.returncode == 0, (path, r.stderr)
            return r
        time.sleep(0.05)


def sealed_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """{".in"/".out"/".log": path} of the one session in directory; no
    file that is not sealed."""
    files = log_files(directory)
    assert files and all(p.name.endswith(".age") for p in files), files
    by_ext = {pathlib.Path(p.stem).suffix: p for p in files}
    assert len(by_ext) == len(files), files
    return by_ext


@pytest.mark.parametrize("form", ["inline", "file"])
def test_imap_session_sealed_is_the_wire(logged_dovecot, rawlog_dir, keys, form):
    spec = (" ".join(keys["recipients"]) if form == "inline"
            else f"file:{keys['file']}")
    dc = logged_dovecot(plugin={"rawlog_ext_seal_recipients": spec},
                        extra_conf="mail_debug = yes\n")
    body = message(300 * 1024, seed=11)
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    c.imap_append("a", body)
    c.imap("f", b"FETCH 1 BODY.PEEK[]")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected")

    files = sealed_files(rawlog_dir)
    assert set(files) == {".in", ".out"}
    for p in files.values():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        raw = p.read_bytes()
        assert raw.startswith(b"age-encryption.org/v1\n")
        assert body[:64] not in raw and b"SELECT" not in raw
    for key in (keys["k1"], keys["k2"]):
        got_in = strip_timestamps(age_decrypt(files[".in"], key).stdout)
        got_out = strip_timestamps(age_decrypt(files[".out"], key).stdout)
        assert got_in == bytes(c.sent[sent_from:])
        assert got_out == bytes(c.received[received_from:])
    # The viewer reads the module's sealed files directly: the exact bytes.
    r = view("--json", "--identity", keys["k2"], files[".in"])
    assert r.returncode == 0, r.stderr
    got = {"client": b"", "server": b""}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        got[rec["from"]] += base64.b64decode(rec["data_b64"])
    assert got["client"] == bytes(c.sent[sent_from:])
    assert got["server"] == bytes(c.received[received_from:])
    assert dc.wait_log(r"rawlog_ext: .*logging sealed to ")
    assert "Error" not in dc.log()


def test_transcript_sealed_equals_unsealed(logged_dovecot, dovecot_factory,
                                           rawlog_dir, keys):
    """The same scripted session with and without sealing: the decrypted
    transcript is the unsealed one (timestamps aside)."""
    plain_dir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-logs-"))
    plain_dir.chmod(0o755)
    os.chown(plain_dir, 65534, 65534)
    try:
        logs = []
        for directory, extra in ((rawlog_dir, {"rawlog_ext_seal_recipients":
                                               keys["recipients"][0]}),
                                 (plain_dir, {})):
            settings = {"rawlog_ext_dir": str(directory),
                        "rawlog_ext_format": "transcript",
                        "rawlog_ext_timestamps": "no"}
            settings.update(extra)
            dc = dovecot_factory(plugin=settings, users=[User("alice")],
                                 mail_plugins="$mail_plugins rawlog_ext")
            c, _, _ = imap_login(dc.imap_port)
            c.imap("a", b"SELECT INBOX")
            c.imap("b", b"NOOP")
            c.imap("x", b"LOGOUT")
            wait_closed(c)
            dc.wait_log(r"imap\(alice\).*Disconnected")
            dc.stop()
            logs.append(log_files(directory))
        (sealed,), (plain,) = logs
        assert sealed.name.endswith(".log.age") and plain.name.endswith(".log")
        got = age_decrypt(sealed, keys["k1"]).stdout
        # Two instances: only numbers differ (UIDVALIDITY, timings).
        assert re.sub(rb"\d+", b"N", got) == re.sub(rb"\d+", b"N", plain.read_bytes())
        assert b"b OK NOOP completed" in got
    finally:
        shutil.rmtree(plain_dir, ignore_errors=True)


def test_kill_9_leaves_the_sealed_chunks(logged_dovecot, rawlog_dir, keys):
    """The open tail (< 64 KiB) is in memory only: after kill -9 the file
    decrypts up to its last sealed chunk and age calls it truncated."""
    dc = logged_dovecot(plugin={"rawlog_ext_seal_recipients": keys["recipients"][0]})
    # 8 MiB, as in test_crash: more than loopback's socket buffers take,
    # so the kill lands while the answer is still going out.
    body = message(8 * 1024 * 1024, seed=12)
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    c.imap_append("a", body)
    kill_mid_fetch(dc, c, 512 * 1024)

    files = sealed_files(rawlog_dir)
    r = age_decrypt(files[".out"], keys["k1"], check=False)
    # No last chunk: age says the file ended early (or, when the kill cut
    # the write of a chunk, that the chunk fails), after writing what the
    # full chunks before hold.
    assert r.returncode != 0, r.stderr
    assert (b"unexpected EOF" in r.stderr or
            b"failed to decrypt and authenticate payload chunk" in r.stderr), r.stderr
    assert len(r.stdout) % (64 * 1024) == 0 and len(r.stdout) >= 64 * 1024
    out = strip_timestamps(r.stdout, killed=True)
    received = bytes(c.received[received_from:])
    # The kill landed after 512 KiB had gone out: the sealed chunks hold
    # most of it, and nothing that was not on its way to the client (the
    # FETCH answer: what the client got, the rest of the literal, and the
    # tagged reply if the whole answer had gone out before the kill).
    assert len(out) > 256 * 1024
    literal = re.search(rb"\* 1 FETCH \(BODY\[\] \{(\d+)\}\r\n", received)
    wire = received[:literal.end()] + body + b")\r\n"
    tagged = rb"f OK Fetch completed \(\d+\.\d+ \+ \d+\.\d+ \+ \d+\.\d+ secs\)\.\r\n"
    assert received == wire[:len(received)] or (
        received.startswith(wire) and re.fullmatch(tagged, received[len(wire):])), \
        received[len(wire) - 8:]
    assert wire.startswith(out[:len(wire)])
    # A tagged reply in the log, whole or cut at a chunk's end.
    rest = re.sub(rb"\d+", b"N", out[len(wire):])
    assert b"f OK Fetch completed (N.N + N.N + N.N secs).\r\n".startswith(rest), rest
    # The viewer shows what was sealed, then says the file lacks its end.
    r = view("--no-pager", "--bodies", "--identity", keys["k1"], files[".out"])
    assert r.returncode == 1, r.stderr
    assert (b"truncated: ends after chunk" in r.stderr or
            b"or cut inside it (the session may have died" in r.stderr), r.stderr


@pytest.mark.parametrize("bad", ["malformed", "missing-file", "empty-file"])
def test_bad_recipients_log_nothing(logged_dovecot, rawlog_dir, keys, bad):
    if bad == "malformed":
        spec = keys["recipients"][0][:-3] + "qqq"
    elif bad == "missing-file":
        spec = f"file:{keys['dir']}/nonexistent"
    else:
        empty = keys["dir"] / "empty"
        empty.write_text("# no keys yet\n")
        empty.chmod(0o644)
        spec = f"file:{empty}"
    dc = logged_dovecot(plugin={"rawlog_ext_seal_recipients": spec})
    c, _, _ = imap_login(dc.imap_port)
    assert b"s OK" in c.imap("s", b"SELECT INBOX")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected")
    errors = [l for l in dc.log().splitlines() if "Error" in l]
    assert len(errors) == 1, errors
    assert "rawlog_ext" in errors[0] and "rawlog_ext_seal_recipients" in errors[0]
    assert log_files(rawlog_dir) == []


def test_lmtp_connection_and_recipient_logs_sealed(dovecot_factory, lmtp_dirs, keys):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, logged=("alice",),
                   plugin={"rawlog_ext_seal_recipients": f"file:{keys['file']}"})
    body = b"Subject: sealed\r\n\r\n" + b"line of text\r\n" * 10000 + b".\r\n"
    c, final = deliver(dc.lmtp_port, ["alice", "bob"], body)
    assert all(r.startswith(b"250 ") for r in final), final
    dc.wait_log(r"lmtp\(\d+\): Info: Disconnect")
    conn_files = sealed_files(conn)
    assert strip_timestamps(age_decrypt(conn_files[".in"], keys["k2"]).stdout) == bytes(c.sent)
    assert strip_timestamps(age_decrypt(conn_files[".out"], keys["k2"]).stdout) == bytes(c.received)
    alice = sealed_files(users["alice"])
    got_in = strip_timestamps(age_decrypt(alice[".in"], keys["k1"]).stdout)
    assert body in got_in and b"RCPT TO:<alice>" in got_in and b"bob" not in got_in
    assert log_files(users["bob"]) == []


def test_login_companion_sealed(dovecot_factory, login_dir, keys):
    """2.3's environment form: import_environment splits at spaces, so the
    recipients are comma-separated."""
    dc = make_login(dovecot_factory, login_dir,
                    env={"RAWLOG_EXT_LOGIN_SEAL_RECIPIENTS": ",".join(keys["recipients"])})
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("a", b"CAPABILITY")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap")
    files = sealed_files(login_dir)
    for p in files.values():
        assert p.stat().st_uid == login_user()[0]
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    got_in = strip_timestamps(age_decrypt_complete(files[".in"], keys["k2"]).stdout)
    sent = bytes(c.sent)
    login_line = f"b LOGIN alice {SECRET}\r\n".encode()
    assert got_in == sent[:sent.index(login_line)] + b"b LOGIN alice ***\r\n"
    assert SECRET.encode() not in got_in
    got_out = strip_timestamps(age_decrypt_complete(files[".out"], keys["k1"]).stdout)
    assert bytes(c.received).startswith(got_out) and got_out


def test_login_companion_sealed_the_24_way(dovecot_factory, login_dir, keys):
    """2.4: rawlog_ext_login_seal_recipients as a Dovecot setting (spaces
    allowed), with the login settings module."""
    from test_login import LOGIN_SETTINGS_SO, TREE, tree_settings_modules
    if not TREE:
        pytest.skip("2.3's login processes get no plugin settings")
    module = pathlib.Path(os.environ.get("RAWLOG_EXT_MODULE_DIR", "")) / LOGIN_SETTINGS_SO
    if not module.exists():
        pytest.skip(f"{module} not built")
    with tree_settings_modules(module):
        dc = make_login(dovecot_factory, login_dir, protocols=("imap",),
                        extra_conf="rawlog_ext_login_seal_recipients = "
                                   f"{' '.join(keys['recipients'])}\n")
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("b", f"LOGIN alice {SECRET}".encode())
        c.imap("c", b"LOGOUT")
        c.read_to_eof()
        wait_login(dc, "imap")
        files = sealed_files(login_dir)
        got_in = strip_timestamps(age_decrypt_complete(files[".in"], keys["k1"]).stdout)
        dc.stop()
    assert got_in == b"b LOGIN alice ***\r\n"


def test_missing_seal_module_logs_nothing(dovecot_factory, rawlog_dir, keys, tmp_path):
    """An install without rawlog_ext_seal.so (a plugin copied alone): one
    Error, no file, the session fine -- never a log in clear instead."""
    from dovecot_fixture import PLUGIN_SO, SETTINGS_GLOB, SYSTEM_MODULE_DIR
    if (SYSTEM_MODULE_DIR / "rawlog_ext_seal.so").exists():
        pytest.skip("an installed seal module would be found")
    built = pathlib.Path(os.environ["RAWLOG_EXT_MODULE_DIR"])
    alone = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-alone-"))
    try:
        alone.chmod(0o755)
        # Copies: the plugin's real directory is where it looks.
        for so in [built / PLUGIN_SO, *built.glob(SETTINGS_GLOB)]:
            shutil.copy2(so, alone / so.name)
        dc = dovecot_factory(plugin={"rawlog_ext_dir": str(rawlog_dir),
                                     "rawlog_ext_seal_recipients": keys["recipients"][0]},
                             users=[User("alice")], module_dir=str(alone),
                             mail_plugins="$mail_plugins rawlog_ext")
        c, _, _ = imap_login(dc.imap_port)
        assert b"s OK" in c.imap("s", b"SELECT INBOX")
        c.imap("x", b"LOGOUT")
        wait_closed(c)
        dc.wait_log(r"imap\(alice\).*Disconnected")
        errors = [l for l in dc.log().splitlines() if "Error" in l]
        assert len(errors) == 1, errors
        assert "rawlog_ext: rawlog_ext_seal_recipients: cannot load the seal module" \
            in errors[0] and "never in clear" in errors[0], errors
        assert log_files(rawlog_dir) == []
        dc.stop()
    finally:
        shutil.rmtree(alone, ignore_errors=True)
