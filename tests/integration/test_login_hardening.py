"""rawlog_ext_login under hostile or unlucky conditions: what an
unauthenticated client can make the login processes do (security issue
#12, login side)."""
import os
import pathlib
import pwd
import re
import socket
import subprocess
import time

import pytest

from dovecot_fixture import User
from rawlog import RawClient, log_files
from test_login import (SECRET, LOGGED_IN, TREE, login_dir,  # noqa: F401
                        login_user, set_login_dir)
from test_valgrind import valgrind_login_factory  # noqa: F401 (fixture)

# What a crashed or killed Dovecot process leaves in the log.
CRASH = re.compile(r"Fatal|Panic|signal 11|killed with signal|"
                   r"terminated abnormally|dumped core")


def make(dovecot_factory, login_dir, env=None, extra="rawlog_ext=yes",
         **kwargs):
    login_env = {"RAWLOG_EXT_LOGIN_DIR": str(login_dir),
                 "RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": "yes",
                 "RAWLOG_EXT_LOGIN_SELECT": "all"}
    login_env.update(env or {})
    kwargs.setdefault("protocols", ("imap", "pop3", "submission"))
    kwargs.setdefault("ssl", True)
    return dovecot_factory(
        login_env=login_env,
        users=[User("alice", password=SECRET, extra=extra)],
        extra_conf=kwargs.pop("extra_conf", "") + "login_trusted_networks =\n",
        **kwargs)


def rawlog_lines(dc, level: str) -> list[str]:
    return [l for l in dc.log().splitlines()
            if "rawlog_ext_login" in l and f" {level}: " in l]


def wait_rawlog_line(dc, level: str, timeout=10) -> list[str]:
    deadline = time.monotonic() + timeout
    while not rawlog_lines(dc, level) and time.monotonic() < deadline:
        if CRASH.search(dc.log()):
            break
        time.sleep(0.05)
    # Anything that would follow it (a crash report) has time to arrive.
    time.sleep(0.5)
    return rawlog_lines(dc, level)


def assert_no_crash(dc):
    bad = [l for l in dc.log().splitlines() if CRASH.search(l)]
    assert not bad, "\n".join(bad)


def imaps_noops(dc, count: int) -> RawClient:
    c = RawClient(dc.imaps_port, tls=dc.ssl_context())
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    for i in range(count):
        c.imap(f"n{i}", b"NOOP")
    return c


def test_imaps_over_hold_then_disconnect(dovecot_factory, login_dir):
    """More than _HOLD bytes before login over implicit TLS, then gone:
    the session is written out with one Warning, and nothing crashes."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_HOLD": "1k"})
    c = imaps_noops(dc, 60)
    c.close()
    warnings = wait_rawlog_line(dc, "Warning")
    assert_no_crash(dc)
    assert len(warnings) == 1 and "did not fit RAWLOG_EXT_LOGIN_HOLD" \
        in warnings[0], warnings
    assert len(log_files(login_dir)) == 2


def test_imaps_over_hold_other_client_survives(dovecot_factory, login_dir):
    """With client_limit > 1 one process serves many clients: one leaving
    must not take the others with it."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_HOLD": "1k"},
              extra_conf="service imap-login {\n"
                         # 2.4 renamed service_count.
                         + ("  restart_request_count = unlimited\n" if TREE
                            else "  service_count = 0\n")
                         + "  client_limit = 10\n  process_limit = 1\n}\n")
    other = RawClient(dc.imaps_port, tls=dc.ssl_context())
    other.read_until(rb"^\* OK[^\r\n]*\r\n")
    c = imaps_noops(dc, 60)
    c.close()
    wait_rawlog_line(dc, "Warning")
    assert b"a OK" in other.imap("a", b"NOOP")
    assert b"b OK" in other.imap("b", f"LOGIN alice {SECRET}".encode())
    other.imap("c", b"LOGOUT")
    assert_no_crash(dc)


def test_pop3s_small_max_size(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, protocols=("pop3",),
              env={"RAWLOG_EXT_LOGIN_MAX_SIZE": "100"})
    c = RawClient(dc.pop3s_port, tls=dc.ssl_context())
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    for _ in range(10):
        c.send(b"CAPA\r\n")
        c.read_until(rb"^\.\r\n")
    c.close()
    lines = wait_rawlog_line(dc, "Warning") + rawlog_lines(dc, "Error")
    assert_no_crash(dc)
    assert len(lines) == 1, lines


def test_submission_starttls_over_hold(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, protocols=("submission",),
              env={"RAWLOG_EXT_LOGIN_HOLD": "1k"})
    c = RawClient(dc.submission_port)
    c.read_until(rb"^220 [^\r\n]*\r\n")
    c.send(b"EHLO client.test\r\n")
    c.read_until(rb"^250 [^\r\n]*\r\n")
    c.send(b"STARTTLS\r\n")
    c.read_until(rb"^220 [^\r\n]*\r\n")
    c.starttls(dc.ssl_context())
    for _ in range(20):
        c.send(b"EHLO client.test\r\n")
        c.read_until(rb"^250 [^\r\n]*\r\n")
    c.close()
    warnings = wait_rawlog_line(dc, "Warning")
    assert_no_crash(dc)
    assert len(warnings) == 1 and "did not fit" in warnings[0], warnings


def test_imaps_unwritable_dir(dovecot_factory, login_dir):
    os.chown(login_dir, 0, 0)       # dovenull cannot create anything
    dc = make(dovecot_factory, login_dir, protocols=("imap",))
    c = imaps_noops(dc, 2)
    c.close()
    errors = wait_rawlog_line(dc, "Error")
    assert_no_crash(dc)
    assert len(errors) == 1 and "Permission denied" in errors[0], errors
    assert log_files(login_dir) == []


def test_imaps_auth_failure_then_disconnect(dovecot_factory, login_dir):
    """A failed login over TLS is a never-logged-in session: written out
    at destroy, through the same path."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_HOLD": "1k"})
    c = imaps_noops(dc, 30)
    c.imap("a", b"LOGIN alice wrong-password")
    c.close()
    warnings = wait_rawlog_line(dc, "Warning")
    assert_no_crash(dc)
    assert len(warnings) == 1 and "user=<alice>" in warnings[0], warnings


def test_disconnect_during_tls_handshake(dovecot_factory, login_dir):
    dc = make(dovecot_factory, login_dir, protocols=("imap",))
    s = socket.create_connection(("127.0.0.1", dc.imaps_port))
    s.sendall(b"\x16\x03\x01\x00\x05hello")      # a broken ClientHello
    s.close()
    # 2.4 says "Login aborted".
    dc.wait_log(r"imap-login: .*(?:Disconnected|Login aborted)")
    time.sleep(0.5)
    assert_no_crash(dc)


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_starttls_over_hold(dovecot_factory, login_dir, proto):
    dc = make(dovecot_factory, login_dir, protocols=(proto,),
              env={"RAWLOG_EXT_LOGIN_HOLD": "1k"})
    if proto == "imap":
        c = RawClient(dc.imap_port)
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("s", b"STARTTLS")
        c.starttls(dc.ssl_context())
        for i in range(60):
            c.imap(f"n{i}", b"NOOP")
    else:
        c = RawClient(dc.pop3_port)
        c.read_until(rb"^\+OK[^\r\n]*\r\n")
        c.send(b"STLS\r\n")
        c.read_until(rb"^\+OK[^\r\n]*\r\n")
        c.starttls(dc.ssl_context())
        for _ in range(30):
            c.send(b"CAPA\r\n")
            c.read_until(rb"^\.\r\n")
    c.close()
    warnings = wait_rawlog_line(dc, "Warning")
    assert_no_crash(dc)
    assert len(warnings) == 1 and "did not fit" in warnings[0], warnings


def test_proxied_imaps_session_reports_after_client(dovecot_factory, login_dir):
    """A proxied session's streams, and so its logs, are the proxy's: they
    report (max_size reached) while the client is being freed or gone."""
    backend = dovecot_factory(protocols=("imap",),
                              users=[User("alice", password=SECRET)])
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_MAX_SIZE": "600"},
              extra=f"rawlog_ext=yes proxy=y host=127.0.0.1 "
                    f"port={backend.imap_port}")
    c = RawClient(dc.imaps_port, tls=dc.ssl_context())
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("b", f"LOGIN alice {SECRET}".encode())
    for i in range(10):
        c.imap(f"n{i}", b"NOOP")
    c.close()
    # 2.4 says "Login aborted".
    dc.wait_log(r"imap-login: .*(?:Disconnected|Login aborted)")
    time.sleep(0.5)
    assert_no_crash(dc)
    warnings = rawlog_lines(dc, "Warning")
    assert warnings and all("max_size" in l for l in warnings), warnings


def proc_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            out[key] = int(value.split()[0])
    return out


def serving_login_process(dc, name: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [p for p, comm in dc.processes().items() if comm == name]
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.05)
    raise TimeoutError(f"not one {name}: {dc.processes()}")


HOLD_KIB = 16
# What the module itself may add beyond the setting (HeldData's own state
# and the block being filled are far less), plus the allocator's and the
# page granularity's noise in the process's anonymous memory.
HOLD_SLACK_KIB = 48


@pytest.mark.parametrize("fmt", ["split", "transcript"])
def test_hold_memory_one_byte_per_segment(dovecot_factory, login_dir, fmt):
    """One unauthenticated client sending a byte per TCP segment, for far
    more than _HOLD: the serving imap-login grows by at most _HOLD and a
    constant (it grew by megabytes when each piece had its own record)."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",), ssl=False,
              env={"RAWLOG_EXT_LOGIN_HOLD": f"{HOLD_KIB}k",
                   "RAWLOG_EXT_LOGIN_FORMAT": fmt})
    c = RawClient(dc.imap_port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    pid = serving_login_process(dc, "imap-login")
    # Warm up (the parser's and the streams' buffers) before the baseline.
    c.imap("w", b"NOOP")
    before = proc_status(pid)
    sent = 0
    lines = 0
    while sent < 6 * HOLD_KIB * 1024:
        for byte in b"a NOOP\r\n":
            c.sock.send(bytes([byte]))
            sent += 1
            time.sleep(0.0001)
        lines += 1
        if lines % 200 == 0:
            # Its replies: the client's socket buffer stays small.
            while c.received.count(b"a OK") < lines:
                c.received += c.sock.recv(1 << 16)
    after = proc_status(pid)
    c.close()
    growth = after["RssAnon"] - before["RssAnon"]
    data_growth = after["VmData"] - before["VmData"]
    print(f"{fmt}: sent {sent} bytes; RssAnon +{growth} kB, "
          f"VmData +{data_growth} kB, VmHWM {before['VmHWM']}->"
          f"{after['VmHWM']} kB")
    assert growth <= HOLD_KIB + HOLD_SLACK_KIB, (before, after)
    warnings = wait_rawlog_line(dc, "Warning")
    assert_no_crash(dc)
    assert len(warnings) == 1 and "did not fit" in warnings[0], warnings


def chroot_dc(dovecot_factory, login_dir, inside_path):
    """A Dovecot whose RAWLOG_EXT_LOGIN_DIR is $base_dir/login/<inside_path>
    (made by the caller after this returns, before start), without the
    opt-in for directories outside the chroot."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",), ssl=False,
              env={"RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": "",
                   "RAWLOG_EXT_LOGIN_SELECT": "passdb"}, start=False)
    chroot = dc.base / "run" / "login"
    chroot.mkdir(parents=True)
    set_login_dir(dc, login_dir, f"{chroot}/{inside_path}")
    return dc, chroot


def login_logout(dc) -> None:
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    assert b"b OK" in c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"LOGOUT")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    dc.wait_log(rf"imap-login: .*{LOGGED_IN}: user=<alice>")


def test_symlink_out_of_chroot_is_refused(dovecot_factory, login_dir):
    """$base_dir/login/lnk/sub with lnk leading outside the chroot: the
    path names the chroot, the directory is not in it."""
    dc, chroot = chroot_dc(dovecot_factory, login_dir, "lnk/sub")
    sub = login_dir / "sub"
    sub.mkdir(mode=0o700)
    os.chown(sub, *login_user())
    (chroot / "lnk").symlink_to(login_dir)
    dc.start()
    login_logout(dc)
    assert log_files(login_dir) == []
    errors = [l for l in dc.log().splitlines() if "rawlog_ext_login" in l]
    assert errors and all("outside the login chroot" in l for l in errors), \
        errors
    assert_no_crash(dc)


def test_symlink_within_chroot_and_bind_mount_are_accepted(dovecot_factory,
                                                           login_dir):
    """A symlink that stays inside, to a bind mount of storage outside
    (the documented way): accepted, the logs land in the storage."""
    dc, chroot = chroot_dc(dovecot_factory, login_dir, "lnk/")
    mnt = chroot / "mnt"
    mnt.mkdir()
    (chroot / "lnk").symlink_to("mnt")
    r = subprocess.run(["mount", "--bind", str(login_dir), str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"no bind mount here: {r.stderr.decode().strip()}")
    try:
        dc.start()
        login_logout(dc)
        assert "outside the login chroot" not in dc.log()
        assert [p.parent.name for p in log_files(login_dir)] == \
            ["alice", "alice"]
    finally:
        dc.stop()
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    assert_no_crash(dc)


def test_teardown_paths_are_valgrind_clean(request, login_dir):
    """The crash paths under valgrind: no invalid read of a torn-down or
    freed client (the crash needed TLS; a use after free may not crash)."""
    from test_valgrind import VALGRIND
    if VALGRIND is None:
        pytest.skip("valgrind is not installed")
    factory = request.getfixturevalue("valgrind_login_factory")
    test_imaps_over_hold_then_disconnect(factory, login_dir)
    for p in list(login_dir.rglob("*")):
        p.unlink()
    test_imaps_auth_failure_then_disconnect(factory, login_dir)
    for p in list(login_dir.rglob("*")):
        p.unlink()
    test_pop3s_small_max_size(factory, login_dir)
    test_submission_starttls_over_hold(factory, login_dir)
    test_proxied_imaps_session_reports_after_client(factory, login_dir)
