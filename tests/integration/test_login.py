"""rawlog_ext_login: pre-login and proxied sessions in the login
processes, in plaintext, credentials redacted."""
import base64
import contextlib
import ctypes
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from dovecot_fixture import User
from rawlog import RawClient, log_files, strip_timestamps

SECRET = "S3cr3t-PW"
# The Debian 13 tree with Dovecot 2.4 (the fixture's 2.4 mode), if set.
TREE = os.environ.get("RAWLOG_EXT_DOVECOT_ROOT")


def login_user() -> tuple[int, int]:
    """The login user's (dovenull's) uid and gid as the Dovecot under test
    has them: the 2.4 tree's differ from the host's."""
    if not TREE:
        pw = pwd.getpwnam("dovenull")
        return pw.pw_uid, pw.pw_gid
    for line in (pathlib.Path(TREE) / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "dovenull":
            return int(fields[2]), int(fields[3])
    raise LookupError("no dovenull in the tree")


@pytest.fixture
def login_dir():
    """The base directory, owned by the login user (dovenull)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-login-"))
    path.chmod(0o700)
    os.chown(path, *login_user())
    yield path
    if os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


def make(dovecot_factory, login_dir, env=None, users=None, **kwargs):
    # The test's directory is outside the login chroot ($base_dir/login).
    login_env = {"RAWLOG_EXT_LOGIN_DIR": str(login_dir),
                 "RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": "yes"}
    login_env.update(env or {})
    kwargs.setdefault("protocols", ("imap", "pop3", "submission"))
    return dovecot_factory(
        login_env=login_env,
        users=users or [User("alice", password=SECRET, extra="rawlog_ext=yes"),
                        User("bob", password=SECRET)],
        extra_conf=kwargs.pop("extra_conf", "") + "login_trusted_networks =\n",
        **kwargs)


def set_login_dir(dc, old, new) -> None:
    """RAWLOG_EXT_LOGIN_DIR old -> new in dc's (not started) config."""
    # 2.3's import_environment is "K=V ...", 2.4's a block of "K = V".
    conf = dc.conf_text()
    for sep in ("=", " = "):
        for end in ("\n", " "):
            conf = conf.replace(f"RAWLOG_EXT_LOGIN_DIR{sep}{old}{end}",
                                f"RAWLOG_EXT_LOGIN_DIR{sep}{new}{end}")
    assert f"{new}" in conf
    dc.conf_path.write_text(conf)


LOGGED_IN = "(?:Login|Logged in)"     # 2.3, 2.4


def sessions(directory: pathlib.Path) -> dict[str, tuple[bytes, bytes]]:
    """{relative base name: (in, out)}, timestamps removed."""
    found: dict[str, dict[str, bytes]] = {}
    for p in log_files(directory):
        key = str(p.relative_to(directory).with_suffix(""))
        found.setdefault(key, {})[p.suffix] = strip_timestamps(p.read_bytes())
    return {k: (v.get(".in", b""), v.get(".out", b"")) for k, v in found.items()}


def assert_no_secret(directory: pathlib.Path):
    for p in log_files(directory):
        data = p.read_bytes()
        for secret in (SECRET.encode(), base64.b64encode(b"\0alice\0" + SECRET.encode()),
                       base64.b64encode(SECRET.encode())):
            assert secret not in data, p


def test_imap_plaintext_login_is_redacted(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir)
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("a", b"CAPABILITY")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap")
    found = sessions(login_dir)
    assert list(found) and all(k.startswith("alice/") for k in found), found
    (name, (got_in, got_out)), = found.items()
    assert "_imap-login_" in name
    login_line = f"b LOGIN alice {SECRET}\r\n".encode()
    sent = bytes(c.sent)
    assert got_in == sent[:sent.index(login_line)] + b"b LOGIN alice ***\r\n"
    # Up to the login: the OK comes from the imap process.
    assert bytes(c.received).startswith(got_out)
    assert got_out.endswith(b"a OK Pre-login capabilities listed, post-login capabilities have more.\r\n")
    assert_no_secret(login_dir)
    for p in log_files(login_dir):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert p.stat().st_uid == login_user()[0]


def wait_login(dc, service: str, user: str = "alice") -> None:
    """Until the login process has logged the successful login: that is
    after the module wrote the log (a plaintext session's post-login
    process may be done before)."""
    dc.wait_log(rf"{service}-login: .*{LOGGED_IN}: user=<{user}>")


def login_logout(dc) -> bytes:
    """One IMAP LOGIN and LOGOUT through imap-login; the LOGIN reply."""
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    reply = c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    return reply


def only_session(directory):
    found = sessions(directory)
    assert len(found) == 1, found
    return next(iter(found.items()))


def redact(data: bytes, secret_line: bytes, redacted_line: bytes) -> bytes:
    assert secret_line in data
    return data.replace(secret_line, redacted_line)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_imap_tls_session_is_plaintext_to_logout(dovecot_factory, login_dir, mode):
    """Over TLS the login process relays the whole session: all of it is
    logged, decrypted."""
    dc = make(dovecot_factory, login_dir, ssl=True)
    if mode == "implicit":
        c = RawClient(dc.imaps_port, tls=dc.ssl_context())
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
    else:
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("s", b"STARTTLS")
        c.starttls(dc.ssl_context())
    c.imap("a", b"CAPABILITY")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"SELECT INBOX")
    c.imap("d", b"LOGOUT")
    c.read_to_eof()
    dc.wait_log(r"imap\(alice\).*Disconnected")
    name, (got_in, got_out) = only_session(login_dir)
    assert name.startswith("alice/")
    assert got_in == redact(bytes(c.sent), f"b LOGIN alice {SECRET}\r\n".encode(),
                            b"b LOGIN alice ***\r\n")
    assert got_out == bytes(c.received)
    assert b"c OK [READ-WRITE]" in got_out
    assert_no_secret(login_dir)


@pytest.mark.parametrize("mode", ["plain", "stls", "implicit"])
def test_pop3_pass_is_redacted(dovecot_factory, login_dir, mode):
    dc = make(dovecot_factory, login_dir, ssl=mode != "plain")
    if mode == "implicit":
        c = RawClient(dc.pop3s_port, tls=dc.ssl_context())
    else:
        c = RawClient(dc.pop3_port)
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    if mode == "stls":
        c.send(b"STLS\r\n")
        c.read_until(rb"^\+OK[^\r\n]*\r\n")
        c.starttls(dc.ssl_context())
    c.send(b"CAPA\r\n")
    c.read_until(rb"^\.\r\n")
    c.send(b"USER alice\r\n")
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    c.send(f"PASS {SECRET}\r\n".encode())
    c.read_until(rb"^\+OK Logged in[^\r\n]*\r\n")
    c.send(b"QUIT\r\n")
    c.read_to_eof()
    dc.wait_log(r"pop3\(alice\).*Disconnected")
    wait_login(dc, "pop3")
    name, (got_in, got_out) = only_session(login_dir)
    expected_in = redact(bytes(c.sent), f"PASS {SECRET}\r\n".encode(), b"PASS ***\r\n")
    if mode == "plain":
        # The fd went to the pop3 process right after PASS.
        assert got_in == expected_in[:expected_in.index(b"PASS ***\r\n") + 10]
        assert bytes(c.received).startswith(got_out)
    else:
        assert got_in == expected_in
        assert got_out == bytes(c.received)
    assert_no_secret(login_dir)


@pytest.mark.parametrize("mode", ["plain", "starttls", "implicit"])
def test_submission_auth_is_redacted(dovecot_factory, login_dir, mode):
    from rawlog import SmtpSink
    dc = make(dovecot_factory, login_dir, ssl=mode != "plain")
    relay = SmtpSink(dc.relay_port)
    try:
        if mode == "implicit":
            c = RawClient(dc.submissions_port, tls=dc.ssl_context())
        else:
            c = RawClient(dc.submission_port)
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.send(b"EHLO client.test\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        if mode == "starttls":
            c.send(b"STARTTLS\r\n")
            c.read_until(rb"^220 [^\r\n]*\r\n")
            c.starttls(dc.ssl_context())
            c.send(b"EHLO client.test\r\n")
            c.read_until(rb"^250 [^\r\n]*\r\n")
        ir = base64.b64encode(f"\0alice\0{SECRET}".encode())
        c.send(b"AUTH PLAIN " + ir + b"\r\n")
        c.read_until(rb"^235 [^\r\n]*\r\n")
        c.send(b"NOOP\r\nQUIT\r\n")
        c.read_until(rb"^221 [^\r\n]*\r\n")
        c.read_to_eof()
        dc.wait_log(r"submission\(alice\).*Disconnected")
        wait_login(dc, "submission")
    finally:
        relay.close()
    name, (got_in, got_out) = only_session(login_dir)
    expected_in = redact(bytes(c.sent), b"AUTH PLAIN " + ir + b"\r\n", b"AUTH PLAIN ***\r\n")
    if mode == "plain":
        end = expected_in.index(b"AUTH PLAIN ***\r\n") + len(b"AUTH PLAIN ***\r\n")
        assert got_in == expected_in[:end]
        assert bytes(c.received).startswith(got_out)
    else:
        assert got_in == expected_in
        assert got_out == bytes(c.received)
    assert_no_secret(login_dir)


def test_selection(dovecot_factory, login_dir):
    """passdb field rawlog_ext=yes or the users list selects; others and
    failed logins are not logged (RAWLOG_EXT_LOGIN_SELECT=passdb)."""
    dc = make(dovecot_factory, login_dir, env={"RAWLOG_EXT_LOGIN_USERS": "carol"},
              users=[User("alice", password=SECRET, extra="rawlog_ext=yes"),
                     User("bob", password=SECRET),
                     User("carol", password=SECRET)])
    for user, password in (("alice", SECRET), ("bob", SECRET), ("carol", SECRET),
                           ("alice", "wrong")):
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("b", f"LOGIN {user} {password}".encode())
        c.close()
    dc.wait_log(r"(?s)imap\(carol\)")
    for user in ("alice", "bob", "carol"):
        wait_login(dc, "imap", user)
    names = sorted(k.split("/")[0] for k in sessions(login_dir))
    assert names == ["alice", "carol"], names
    assert_no_secret(login_dir)


def test_selection_by_network(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_NETWORKS": "192.0.2.0/24,127.0.0.0/8"})
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("b", f"LOGIN bob {SECRET}".encode())
    c.close()
    wait_login(dc, "imap", "bob")
    assert sorted(k.split("/")[0] for k in sessions(login_dir)) == ["bob"]
    assert_no_secret(login_dir)


def test_select_all_logs_failed_logins(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, env={"RAWLOG_EXT_LOGIN_SELECT": "all"})
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("a", b"LOGIN alice wrong-password")
    c.imap("z", b"LOGOUT")
    c.read_to_eof()
    # 2.4 says "Login aborted".
    dc.wait_log(r"imap-login: .*(?:Disconnected|Aborted login|Login aborted)")
    # Written when the login process lets go of the client, just after.
    import time
    deadline = time.monotonic() + 10
    while not log_files(login_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    name, (got_in, got_out) = only_session(login_dir)
    assert "/" not in name       # the base directory: no user
    assert got_in == b"a LOGIN alice ***\r\nz LOGOUT\r\n"
    assert got_out == bytes(c.received)
    assert b"wrong-password" not in got_in


def test_unwritable_dir_login_still_works(dovecot_factory, login_dir):
    os.chown(login_dir, 0, 0)       # dovenull cannot create anything
    dc = make(dovecot_factory, login_dir)
    assert b"b OK" in login_logout(dc)
    assert log_files(login_dir) == []
    errors = [l for l in dc.log().splitlines() if "rawlog_ext_login" in l and "Error" in l]
    assert len(errors) == 1 and "Permission denied" in errors[0], errors


def proxy_legs(found: dict) -> tuple:
    """The one client leg and the one backend leg of a proxied session in
    sessions()' result: ((name, (in, out)), (name, (in, out)))."""
    client_leg = {k: v for k, v in found.items() if "_imap-login_" in k}
    backend_leg = {k: v for k, v in found.items() if "_imap-login-proxy_" in k}
    assert len(client_leg) == 1 and len(backend_leg) == 1, found
    return next(iter(client_leg.items())), next(iter(backend_leg.items()))


def proxied_login(dovecot_factory, login_dir, client_tls=False, trusted=False):
    """alice, logged by the companion, proxied to a second Dovecot: LOGIN
    (b), SELECT (c), NOOP (d), LOGOUT (e). Returns the proxy, the backend
    and the client, once both have logged the disconnection."""
    backend = dovecot_factory(
        protocols=("imap",), users=[User("alice", password=SECRET)],
        extra_conf="login_trusted_networks = 127.0.0.0/8\n" if trusted else "")
    dc = make(dovecot_factory, login_dir, protocols=("imap",), ssl=client_tls,
              users=[User("alice", password=SECRET,
                          extra=f"rawlog_ext=yes proxy=y host=127.0.0.1 "
                                f"port={backend.imap_port}")])
    if client_tls:
        c = RawClient(dc.imaps_port, tls=dc.ssl_context())
    else:
        c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"SELECT INBOX")
    c.imap("d", b"NOOP")
    c.imap("e", b"LOGOUT")
    c.read_to_eof()
    backend.wait_log(r"imap\(alice\).*Disconnected")
    dc.wait_log(r"imap-login: .*Disconnected")
    return dc, backend, c


@pytest.mark.parametrize("client_tls", [False, True])
@pytest.mark.parametrize("trusted", [False, True], ids=["", "trusted"])
def test_proxied_session_both_legs(dovecot_factory, login_dir, client_tls,
                                   trusted):
    """A user proxied to a second Dovecot: the whole client conversation is
    in the log, and the backend leg (with the proxy's own login, redacted)
    in files of its own. A 2.4 backend that trusts the proxy multiplexes
    its output (x-multiplex): the leg is logged without the framing."""
    dc, backend, c = proxied_login(dovecot_factory, login_dir, client_tls, trusted)
    found = sessions(login_dir)
    (_, (got_in, got_out)), (name, (back_in, back_out)) = proxy_legs(found)
    assert got_in == redact(bytes(c.sent), f"b LOGIN alice {SECRET}\r\n".encode(),
                            b"b LOGIN alice ***\r\n")
    assert got_out == bytes(c.received)
    assert name.startswith("alice/") and f"_127.0.0.1-{backend.imap_port}" in name
    assert back_in.startswith(b"* OK ")
    assert b"c SELECT INBOX\r\nd NOOP\r\ne LOGOUT\r\n" in back_out
    assert b"***" in back_out          # the proxy's own login
    assert b"OK [READ-WRITE]" in back_in
    # The multiplex header and channel switches start with these.
    assert b"\xff\xff" not in back_in and b"\x03\xfe" not in back_in
    if trusted and TREE:
        assert b"\r\n* MULTIPLEX 0\r\n" in back_in
    # What the backend sent after the login is what the client got.
    after_login = back_in[back_in.index(b"OK [READ-WRITE]"):]
    assert after_login in bytes(c.received)
    assert_no_secret(login_dir)
    assert "Warning" not in "".join(l for l in dc.log().splitlines()
                                    if "rawlog_ext_login" in l)


LOGIN_SETTINGS_SO = "lib90_rawlog_ext_login_settings.so"


@contextlib.contextmanager
def tree_settings_modules(extra: pathlib.Path):
    """The tree's settings module directory plus extra, for the Dovecots
    this test starts: a private copy bind-mounted over it in this
    process's own mount namespace (never the shared tree's directory).
    The fixture has no such option yet."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:        # CLONE_NEWNS
        pytest.skip(f"unshare: {os.strerror(ctypes.get_errno())}")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    target = pathlib.Path(TREE) / "usr/lib/dovecot/modules/settings"
    private = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-settings-"))
    for so in target.glob("*.so"):
        shutil.copy2(so, private)
    shutil.copy2(extra, private)
    private.chmod(0o755)
    subprocess.run(["mount", "--bind", str(private), str(target)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=False)
        shutil.rmtree(private, ignore_errors=True)


def test_settings_the_24_way(dovecot_factory, login_dir):
    """2.4: with the login settings module, rawlog_ext_login_* settings
    configure the companion (protocol filters included) and win over the
    environment; unset ones still come from it."""
    if not TREE:
        pytest.skip("2.3's login processes get no plugin settings: "
                    "the environment only")
    module = pathlib.Path(os.environ.get("RAWLOG_EXT_MODULE_DIR", "")) / LOGIN_SETTINGS_SO
    if not module.exists():
        pytest.skip(f"{module} not built")
    with tree_settings_modules(module):
        dc = make(dovecot_factory, login_dir, protocols=("imap",),
                  env={"RAWLOG_EXT_LOGIN_DIR": "/nonexistent",
                       "RAWLOG_EXT_LOGIN_SELECT": "passdb"},
                  extra_conf=f"rawlog_ext_login_dir = {login_dir}\n"
                             "protocol imap {\n"
                             "  rawlog_ext_login_select = all\n"
                             "}\n")
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("a", b"LOGIN alice wrong-password")
        c.imap("z", b"LOGOUT")
        c.read_to_eof()
        deadline = time.monotonic() + 10
        while not log_files(login_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        dc.stop()
    # select=all (from protocol imap {}): the failed login, in the base
    # directory the setting named (not the variable's).
    name, (got_in, got_out) = only_session(login_dir)
    assert "/" not in name
    assert got_in == b"a LOGIN alice ***\r\nz LOGOUT\r\n"
    assert not [l for l in dc.log().splitlines()
                if "rawlog_ext_login" in l and ("Error" in l or "Warning" in l)]


def test_backend_companion_behind_trusted_proxy(dovecot_factory, login_dir):
    """The companion on a backend whose client is a trusted proxy: on 2.4
    that proxy asks for x-multiplex, and our filters cannot stay the
    outermost output (the login handoff asserts the multiplex ostream is):
    that session is refused with one Warning, and nothing crashes."""
    back_dir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-login-back-"))
    back_dir.chmod(0o700)
    os.chown(back_dir, *login_user())
    try:
        backend = dovecot_factory(
            protocols=("imap",), users=[User("alice", password=SECRET,
                                             extra="rawlog_ext=yes")],
            login_env={"RAWLOG_EXT_LOGIN_DIR": str(back_dir),
                       "RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": "yes"},
            extra_conf="login_trusted_networks = 127.0.0.0/8\n")
        dc = make(dovecot_factory, login_dir, protocols=("imap",),
                  users=[User("alice", password=SECRET,
                              extra=f"rawlog_ext=yes proxy=y host=127.0.0.1 "
                                    f"port={backend.imap_port}")])
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        assert b"b OK" in c.imap("b", f"LOGIN alice {SECRET}".encode())
        assert b"c OK" in c.imap("c", b"SELECT INBOX")
        c.imap("e", b"LOGOUT")
        c.read_to_eof()
        backend.wait_log(r"imap\(alice\).*Disconnected")
        dc.wait_log(r"imap-login: .*Disconnected")
        time.sleep(0.3)
        for d in (dc, backend):
            assert not re.search(r"Fatal|Panic|signal 11|terminated abnormally",
                                 d.log()), d.log()
        warnings = [l for l in backend.log().splitlines()
                    if "rawlog_ext_login" in l and "Warning" in l]
        if TREE:
            assert len(warnings) == 1 and "multiplexed" in warnings[0], warnings
            assert log_files(back_dir) == []
        else:
            # 2.3 has no multiplexing: the backend logs its side too.
            assert warnings == []
            assert [p.parent.name for p in log_files(back_dir)] == \
                ["alice", "alice"]
        assert_no_secret(back_dir)
    finally:
        shutil.rmtree(back_dir, ignore_errors=True)


def test_proxied_session_with_login_proxy_rawlog_dir(dovecot_factory, login_dir):
    """Dovecot's own rawlog of the backend connection beside ours: both
    logs written, and nothing trips (2.4.4 asserts at disconnect that its
    streams are the outermost; 2.4.1 has no such check)."""
    backend = dovecot_factory(protocols=("imap",), users=[User("alice", password=SECRET)])
    dc = make(dovecot_factory, login_dir, protocols=("imap",), start=False,
              extra_conf="login_proxy_rawlog_dir = /proxy-rawlog\n",
              users=[User("alice", password=SECRET,
                          extra=f"rawlog_ext=yes proxy=y host=127.0.0.1 "
                                f"port={backend.imap_port}")])
    # Relative to the login chroot.
    core_dir = dc.base / "run" / "login" / "proxy-rawlog"
    core_dir.mkdir(parents=True)
    os.chown(core_dir, *login_user())
    dc.start()
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"SELECT INBOX")
    c.imap("e", b"LOGOUT")
    c.read_to_eof()
    backend.wait_log(r"imap\(alice\).*Disconnected")
    dc.wait_log(r"imap-login: .*Disconnected")
    time.sleep(0.3)
    assert not re.search(r"Fatal|Panic|signal 11|terminated abnormally", dc.log())
    found = sessions(login_dir)
    legs = sorted("_imap-login-proxy_" in k for k in found)
    assert legs == [False, True], found
    back_in = next(v[0] for k, v in found.items() if "_imap-login-proxy_" in k)
    assert b"OK [READ-WRITE]" in back_in
    core = [p for p in core_dir.iterdir() if p.name.endswith(".in")]
    assert core and b"OK [READ-WRITE]" in b"".join(p.read_bytes() for p in core)
    assert_no_secret(login_dir)


def _b64(s: str) -> bytes:
    return base64.b64encode(s.encode())


# (what the client sends, step by step, how it is logged): steps are sent
# one at a time, each after the server's answer to the previous one.
IMAP_FORMS = {
    "quoted": ([f'b LOGIN "alice" "{SECRET}"\r\n'.encode()],
               b'b LOGIN "alice" ***\r\n'),
    "literal": ([b"b LOGIN alice {%d}\r\n" % len(SECRET), SECRET.encode() + b"\r\n"],
                b"b LOGIN alice {%d}\r\n***\r\n" % len(SECRET)),
    "literal+": ([b"b LOGIN alice {%d+}\r\n" % len(SECRET) + SECRET.encode() + b"\r\n"],
                 b"b LOGIN alice {%d+}\r\n***\r\n" % len(SECRET)),
    "sasl-ir": ([b"b AUTHENTICATE PLAIN " + _b64(f"\0alice\0{SECRET}") + b"\r\n"],
                b"b AUTHENTICATE PLAIN ***\r\n"),
    "plain-continuation": ([b"b AUTHENTICATE PLAIN\r\n", _b64(f"\0alice\0{SECRET}") + b"\r\n"],
                           b"b AUTHENTICATE PLAIN\r\n***\r\n"),
    "login-mech": ([b"b AUTHENTICATE LOGIN\r\n", _b64("alice") + b"\r\n", _b64(SECRET) + b"\r\n"],
                   b"b AUTHENTICATE LOGIN\r\n***\r\n***\r\n"),
}


@pytest.mark.parametrize("form", sorted(IMAP_FORMS))
def test_imap_credential_forms(dovecot_factory, login_dir, form):
    steps, logged = IMAP_FORMS[form]
    dc = make(dovecot_factory, login_dir, protocols=("imap",))
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    for step in steps:
        c.send(step)
        c.read_until(rb"^(\+[^\r\n]*|b OK[^\r\n]*)\r\n")
    assert b"b OK" in bytes(c.received)
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap")
    name, (got_in, got_out) = only_session(login_dir)
    assert got_in == logged
    assert bytes(c.received).startswith(got_out)
    assert_no_secret(login_dir)


def test_smtp_auth_login_continuations(dovecot_factory, login_dir):
    from rawlog import SmtpSink
    dc = make(dovecot_factory, login_dir, protocols=("submission",))
    relay = SmtpSink(dc.relay_port)
    try:
        c = RawClient(dc.submission_port)
        c.read_until(rb"^220 [^\r\n]*\r\n")
        c.send(b"EHLO client.test\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
        c.send(b"AUTH LOGIN\r\n")
        c.read_until(rb"^334 [^\r\n]*\r\n")
        c.send(_b64("alice") + b"\r\n")
        c.read_until(rb"^334 [^\r\n]*\r\n")
        c.send(_b64(SECRET) + b"\r\n")
        c.read_until(rb"^235 [^\r\n]*\r\n")
        c.send(b"QUIT\r\n")
        c.read_to_eof()
        dc.wait_log(r"submission\(alice\).*Disconnected")
        wait_login(dc, "submission")
    finally:
        relay.close()
    name, (got_in, got_out) = only_session(login_dir)
    assert got_in == b"EHLO client.test\r\nAUTH LOGIN\r\n***\r\n***\r\n"
    assert_no_secret(login_dir)


def test_dir_outside_chroot_is_refused_by_default(dovecot_factory, login_dir):
    """An fd to a directory outside the chroot would be a way out of it."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": ""})
    assert b"b OK" in login_logout(dc)
    assert log_files(login_dir) == []
    errors = [l for l in dc.log().splitlines() if "rawlog_ext_login" in l]
    assert errors and all("outside the login chroot" in l for l in errors), errors


def test_dir_inside_chroot(dovecot_factory, login_dir):
    """Below $base_dir/login (where the login processes are chrooted) it
    needs no opt-in."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": ""}, start=False)
    inside = dc.base / "run" / "login" / "rawlog"
    inside.mkdir(parents=True)
    os.chown(inside, *login_user())
    inside.chmod(0o700)
    set_login_dir(dc, login_dir, inside)
    dc.start()
    login_logout(dc)
    wait_login(dc, "imap")
    assert [p.parent.name for p in log_files(inside)] == ["alice", "alice"]
    assert "outside the login chroot" not in dc.log()


def test_missing_dir_login_still_works(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_DIR": str(login_dir / "missing")})
    assert b"b OK" in login_logout(dc)
    errors = [l for l in dc.log().splitlines() if "rawlog_ext_login" in l]
    assert errors and "No such file or directory" in errors[0], errors


def test_full_filesystem_proxied_session_still_works(dovecot_factory, login_dir):
    """The log fills its filesystem mid-session: one Error, and the proxied
    session goes on to the end."""
    import subprocess
    uid, gid = login_user()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o",
         f"size=16k,mode=0700,uid={uid},gid={gid}",
         "tmpfs", str(login_dir)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        backend = dovecot_factory(protocols=("imap",),
                                  users=[User("alice", password=SECRET)])
        dc = make(dovecot_factory, login_dir, protocols=("imap",),
                  users=[User("alice", password=SECRET,
                              extra=f"rawlog_ext=yes proxy=y host=127.0.0.1 "
                                    f"port={backend.imap_port}")])
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("b", f"LOGIN alice {SECRET}".encode())
        msg = b"Subject: big\r\n\r\n" + b"y" * 78 + b"\r\n"
        msg = msg * 1000
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        c.read_until(rb"^a OK[^\r\n]*\r\n")
        c.imap("s", b"SELECT INBOX")
        reply = c.imap("f", b"FETCH 1 BODY.PEEK[]")
        assert msg in reply
        c.imap("e", b"LOGOUT")
        c.read_to_eof()
        dc.wait_log(r"imap-login: .*Disconnected")
        errors = [l for l in dc.log().splitlines()
                  if "rawlog_ext_login" in l and "Error" in l]
        assert errors and all("No space left on device" in l for l in errors), errors
        # One per log (the client's and the backend leg), not one per write.
        assert len(errors) <= 2, errors
    finally:
        subprocess.run(["umount", "-l", str(login_dir)], check=False)
