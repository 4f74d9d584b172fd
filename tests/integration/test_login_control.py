"""doveadm rawlog enable for sessions the login companion logs (issue #15,
item 3): the pre-login leg of a local login, and both legs of a proxied
one. The login processes are chrooted and run as dovenull: they ask
through Dovecot's dict proxy, a dict service listener inside their chroot
(RAWLOG_EXT_LOGIN_CONTROL_SOCKET), asynchronously, holding the session's
bytes until the answer."""
import fcntl
import pathlib
import shutil
import tempfile
import time

import pytest

from dovecot_fixture import User, for_line
from rawlog import RawClient, log_files
from test_control import controlled, listed, ok  # noqa: F401
from test_control_redis import redis  # noqa: F401
from test_login import login_dir, make, proxy_legs, redact, sessions  # noqa: F401

PASSWORD = "pass"        # the backend's (controlled()'s) password
LISTENER = "rawlog-control"


def dict_service(uri_23: str, block_24: str, listener: bool = True) -> str:
    """The dict service serving the control dict as "rawlog-control", with
    a listener inside the login chroot for the companion."""
    listen = (f"service dict {{\n  unix_listener login/{LISTENER} {{\n"
              f"    user = dovenull\n    mode = 0600\n  }}\n}}\n"
              if listener else "")
    served = for_line(f"dict {{\n  rawlog-control = {uri_23}\n}}\n",
                      f"dict_server {{\n  dict rawlog-control {{\n"
                      f"{block_24}  }}\n}}\n")
    return served + listen


def redis_service(redis) -> str:
    return dict_service(f"redis:host=127.0.0.1:port={redis.port}",
                        f"    dict_driver = redis\n"
                        f"    redis_host = 127.0.0.1\n"
                        f"    redis_port = {redis.port}\n")


def login_env(**extra) -> dict:
    env = {"RAWLOG_EXT_LOGIN_CONTROL_SOCKET": LISTENER}
    env.update(extra)
    return env


def imap_login(port: int, user: str = "alice", password: str = PASSWORD,
               noop: bytes = b"") -> RawClient:
    c = RawClient(port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("b", f"LOGIN {user} {password}".encode())
    if noop:
        c.imap("n", b"NOOP " + noop)
    c.imap("e", b"LOGOUT")
    c.read_to_eof()
    return c


def written(path: pathlib.Path) -> bool:
    """Whether the writer is done with path: it holds an flock on each
    log file until it closes it."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def wait_files(directory: pathlib.Path, count: int, timeout: float = 20):
    """The sessions in directory once there are count of them (pairs), all
    closed by their writers."""
    deadline = time.monotonic() + timeout
    while True:
        files = log_files(directory)
        if (len(files) >= 2 * count and all(written(p) for p in files)
                or time.monotonic() > deadline):
            return sessions(directory)
        time.sleep(0.1)


def used_settles(dc, user: str, expect: int, timeout: float = 10) -> int:
    """The used/ counter once it reaches expect (the login processes add
    asynchronously, when a leg's streams go)."""
    deadline = time.monotonic() + timeout
    while True:
        used = int(listed(dc).get(user, {}).get("used", 0))
        if used >= expect or time.monotonic() > deadline:
            return used
        time.sleep(0.2)


def proxy_pair(dovecot_factory, controlled, login_dir, redis, env=None):
    """A backend whose mail plugin reads the control dict in Redis, and a
    proxy in front of it whose companion reads the same Redis through its
    dict service."""
    backend, _ = controlled(dict_conf=redis.dict_conf(), protocols=("imap",))
    proxy = make(dovecot_factory, login_dir, protocols=("imap",),
                 env=login_env(**(env or {})),
                 users=[User("alice", password=PASSWORD,
                             extra=f"proxy=y host=127.0.0.1 "
                                   f"port={backend.imap_port}"),
                        User("bob", password=PASSWORD,
                             extra=f"proxy=y host=127.0.0.1 "
                                   f"port={backend.imap_port}")],
                 extra_conf=redis_service(redis))
    return backend, proxy


def companion_lines(dc, level: str) -> list[str]:
    return [line for line in dc.log().splitlines()
            if f"{level}: " in line and "rawlog_ext_login" in line]


def test_one_enable_logs_proxy_and_backend(dovecot_factory, controlled,
                                           login_dir, rawlog_dir, redis):
    backend, proxy = proxy_pair(dovecot_factory, controlled, login_dir, redis)
    imap_login(proxy.imap_port)
    backend.wait_log(r"imap\(alice\).*Disconnected")
    proxy.wait_log(r"imap-login: .*Disconnected")
    time.sleep(0.5)
    assert sessions(login_dir) == {}
    assert log_files(rawlog_dir) == []

    # One enable, on the backend: the proxy reads the same Redis.
    ok(backend.doveadm("rawlog", "enable", "-u", "alice"), "alice")
    c = imap_login(proxy.imap_port, noop=b"logged")
    backend.wait_log(r"imap\(alice\).*Disconnected.*\n(?:.*\n)*.*imap\(alice\).*Disconnected")
    found = wait_files(login_dir, 2)
    (name, (got_in, got_out)), (_, (back_in, back_out)) = proxy_legs(found)
    assert name.startswith("alice/")
    assert got_in == redact(bytes(c.sent), f"b LOGIN alice {PASSWORD}\r\n".encode(),
                            b"b LOGIN alice ***\r\n")
    assert got_out == bytes(c.received)
    assert b"n NOOP logged\r\ne LOGOUT\r\n" in back_out
    assert b"***" in back_out and PASSWORD.encode() + b"\r\n" not in back_out
    # And the backend's own session log.
    assert len([p for p in log_files(rawlog_dir) if "_imap_" in p.name]) == 2

    # Every file's bytes in the one counter, the login processes' too.
    logged = sum(p.stat().st_size for d in (login_dir, rawlog_dir)
                 for p in log_files(d))
    assert used_settles(backend, "alice", logged) == logged

    # bob is not enabled: not logged.
    imap_login(proxy.imap_port, user="bob")
    backend.wait_log(r"imap\(bob\).*Disconnected")
    proxy.wait_log(r"user=<bob>.*Disconnected|Disconnected.*user=<bob>")
    time.sleep(0.5)
    assert not any(k.startswith("bob/") for k in sessions(login_dir))

    ok(backend.doveadm("rawlog", "disable", "-u", "alice"))
    before = set(sessions(login_dir))
    imap_login(proxy.imap_port)
    time.sleep(1)
    assert set(sessions(login_dir)) == before
    assert companion_lines(proxy, "Warning") == []
    assert companion_lines(proxy, "Error") == []


def test_budget_caps_the_login_legs(dovecot_factory, controlled, login_dir,
                                    rawlog_dir, redis):
    backend, proxy = proxy_pair(dovecot_factory, controlled, login_dir, redis)
    ok(backend.doveadm("rawlog", "enable", "-u", "alice", "--max-size", "200"))
    imap_login(proxy.imap_port, noop=b"x" * 500)
    proxy.wait_log(r"imap-login: .*Disconnected")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        files = log_files(login_dir)
        if len(files) == 4 and all(written(p) for p in files):
            break
        time.sleep(0.1)
    files = log_files(login_dir)
    assert len(files) == 4, files
    # Each file is cut at the budget that was left, with the marker.
    marker = b"\n*** rawlog_ext: log truncated: rawlog_ext_max_size=200 bytes reached ***\n"
    cut = [p for p in files if p.read_bytes().endswith(marker)]
    assert cut, [p.read_bytes()[-120:] for p in files]
    for p in files:
        assert p.stat().st_size <= 200 + len(marker), p
    assert "log reached what was left of the byte budget" in proxy.log()


# One login process for every connection: its warnings and its pause
# after a failure are then seen across logins.
ONE_LOGIN_PROCESS = for_line("service imap-login {\n  service_count = 0\n"
                             "  process_limit = 1\n}\n",
                             "service imap-login {\n  restart_request_count = unlimited\n"
                             "  process_limit = 1\n}\n")


def test_unreachable_dict_leaves_logins_alone(dovecot_factory, login_dir):
    """No listener where the socket should be: the logins work, nothing is
    logged, and one login process says so once per cause: the failure,
    then that it does not ask again for a while."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env=login_env(), extra_conf=ONE_LOGIN_PROCESS,
              users=[User("alice", password=PASSWORD)])
    for _ in range(3):
        c = imap_login(dc.imap_port)
        assert b"e OK" in bytes(c.received)
    dc.wait_log(r"imap\(alice\).*Disconnected(?:.*\n)*.*imap\(alice\).*"
                r"Disconnected(?:.*\n)*.*imap\(alice\).*Disconnected")
    time.sleep(0.5)
    assert sessions(login_dir) == {}
    warnings = companion_lines(dc, "Warning")
    assert len(warnings) == 2, warnings
    assert all("logging only the sessions RAWLOG_EXT_LOGIN_SELECT" in w
               for w in warnings), warnings
    assert "looking up shared/rawlog-ext/enabled/alice failed" in warnings[0]
    assert "not asked for 30 s after a lookup failed" in warnings[1]


def test_answer_after_the_backend_connected(dovecot_factory, controlled,
                                            login_dir, rawlog_dir, redis):
    """Redis paused: the answer comes after the backend's greeting (the
    backend leg held from its first byte) and, here, after the whole
    session (the client and its streams gone, the legs still held)."""
    backend, proxy = proxy_pair(dovecot_factory, controlled, login_dir, redis)
    ok(backend.doveadm("rawlog", "enable", "-u", "alice"))
    redis.cli("CLIENT", "PAUSE", "1500")
    c = imap_login(proxy.imap_port, noop=b"paused")
    found = wait_files(login_dir, 2)
    (_, (got_in, got_out)), (_, (back_in, back_out)) = proxy_legs(found)
    assert got_in == redact(bytes(c.sent), f"b LOGIN alice {PASSWORD}\r\n".encode(),
                            b"b LOGIN alice ***\r\n")
    assert got_out == bytes(c.received)
    assert back_in.startswith(b"* OK ")
    assert back_out.endswith(b"n NOOP paused\r\ne LOGOUT\r\n")
    assert companion_lines(proxy, "Warning") == []


@pytest.fixture
def ctl_dir():
    """For a file dict the dict service (running as dovecot, whose uid
    differs between the lines) reads and writes: a throw-away 0777."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-ctl-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_file_dict_through_the_proxy_logs_a_local_login(dovecot_factory,
                                                        login_dir, ctl_dir):
    """A file control dict behind the dict service; the user logs in
    locally: the companion logs the pre-login leg."""
    ctl = ctl_dir / "control"
    expires = int(time.time()) + 3600
    ctl.write_text(f"shared/rawlog-ext/enabled/alice\n{expires} 0\n")
    ctl.chmod(0o666)
    conf = dict_service(f"file:{ctl}",
                        f"    dict_driver = file\n    dict_file_path = {ctl}\n")
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env=login_env(),
              users=[User("alice", password=PASSWORD),
                     User("bob", password=PASSWORD)],
              extra_conf=conf)
    c = imap_login(dc.imap_port)
    dc.wait_log(r"imap\(alice\).*Disconnected")
    found = wait_files(login_dir, 1)
    assert len(found) == 1, found
    (name, (got_in, got_out)), = found.items()
    assert name.startswith("alice/")
    # The pre-login leg: up to the handoff (imap sends LOGIN's reply).
    assert got_in == b"b LOGIN alice ***\r\n"
    assert got_out.startswith(b"* OK ") and bytes(c.received).startswith(got_out)
    assert b"b OK" not in got_out
    imap_login(dc.imap_port, user="bob")
    dc.wait_log(r"imap\(bob\).*Disconnected")
    time.sleep(0.5)
    assert len(sessions(login_dir)) == 1
    assert companion_lines(dc, "Warning") == []
    assert companion_lines(dc, "Error") == []


def test_control_dict_from_a_dict_only_instance(dovecot_factory, login_dir,
                                                ctl_dir):
    """The documented safe layout: a Dovecot instance of its own runs only
    the dict service, serving the control dict alone, its listener below
    the mail instance's login chroot; the mail instance's own dict service
    (and its other dicts) stays out of the login processes' reach."""
    ctl = ctl_dir / "control"
    ctl.write_text(f"shared/rawlog-ext/enabled/alice\n{int(time.time()) + 3600} 0\n")
    ctl.chmod(0o666)
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env=login_env(), users=[User("alice", password=PASSWORD)])
    listener = dc.base / "run" / "login" / LISTENER
    served = for_line(f"dict {{\n  rawlog-control = file:{ctl}\n}}\n",
                      f"dict_server {{\n  dict rawlog-control {{\n"
                      f"    dict_driver = file\n    dict_file_path = {ctl}\n"
                      f"  }}\n}}\n")
    dovecot_factory(protocols=(), extra_conf=served +
                    f"service dict {{\n  unix_listener {listener} {{\n"
                    f"    user = dovenull\n    mode = 0600\n  }}\n}}\n")
    deadline = time.monotonic() + 10
    while not listener.is_socket() and time.monotonic() < deadline:
        time.sleep(0.05)    # the master makes it once it is up
    assert listener.is_socket()
    imap_login(dc.imap_port)
    dc.wait_log(r"imap\(alice\).*Disconnected")
    found = wait_files(login_dir, 1)
    assert len(found) == 1 and next(iter(found)).startswith("alice/"), found
    assert companion_lines(dc, "Warning") == []


def test_second_login_cancels_the_first_answer(dovecot_factory, controlled,
                                               login_dir, rawlog_dir, redis):
    """alice (enabled) passes the proxy's auth but the backend refuses
    her; bob (not enabled) then logs in on the same connection. alice's
    answer, delayed past bob's login, must not log bob's session. Redis
    stays paused well past the backend's 2 s auth failure delay: had
    alice's answer come before bob's login, her attempt would be logged
    in her directory, as for a user selected by passdb."""
    backend, _ = controlled(dict_conf=redis.dict_conf(), protocols=("imap",))
    to_backend = f"proxy=y host=127.0.0.1 port={backend.imap_port}"
    proxy = make(dovecot_factory, login_dir, protocols=("imap",),
                 env=login_env(),
                 users=[User("alice", password=PASSWORD,
                             extra=f"{to_backend} pass=wrong"),
                        User("bob", password=PASSWORD, extra=to_backend)],
                 extra_conf=redis_service(redis))
    ok(backend.doveadm("rawlog", "enable", "-u", "alice"))
    redis.cli("CLIENT", "PAUSE", "6000")
    c = RawClient(proxy.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    reply = c.imap("a", f"LOGIN alice {PASSWORD}".encode())
    assert b"a NO" in reply, reply
    c.imap("b", f"LOGIN bob {PASSWORD}".encode())
    c.imap("n", b"NOOP")
    c.imap("e", b"LOGOUT")
    c.read_to_eof()
    # bob's session ends after the pause (the backend asks Redis too).
    backend.wait_log(r"imap\(bob\).*Disconnected", timeout=20)
    time.sleep(1.5)     # both answers are in by now
    assert log_files(login_dir) == []
    assert companion_lines(proxy, "Error") == []
