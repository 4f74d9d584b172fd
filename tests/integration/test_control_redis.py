"""doveadm rawlog (issue #15) with the control dict in Redis: a real
redis-server (Debian's, installed by scripts/setup.sh, never the system
service) on a free loopback port, through Dovecot's own redis dict driver,
shared by two Dovecot instances. Redis cannot iterate, so `rawlog list`
reads the index entry that enable and disable keep."""
import pathlib
import shutil
import tempfile
import time

import pytest

from dovecot_fixture import for_line
from rawlog import log_files
from redis_server import Redis
from test_control import controlled, imap_session, listed, ok, sessions  # noqa: F401

INDEX = "rawlog-ext/index"   # Dovecot's redis dict drops "shared/"


@pytest.fixture
def redis():
    tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-redis-"))
    server = Redis(tmpdir)
    try:
        server.start()
    except FileNotFoundError as e:
        pytest.fail(str(e))
    yield server
    server.stop()
    shutil.rmtree(tmpdir, ignore_errors=True)


def test_enable_list_disable(controlled, rawlog_dir, redis):
    dc, _ = controlled(dict_conf=redis.dict_conf())
    imap_session(dc)
    assert log_files(rawlog_dir) == []
    assert "control dict: not enabled: not logging" in dc.log()

    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--max-size", "1M"),
       "alice")
    assert redis.cli("GET", INDEX) == "alice"
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    imap_session(dc, "bob")
    assert len(sessions(rawlog_dir, "imap")) == 1

    entry = listed(dc)
    assert set(entry) == {"alice"}
    assert entry["alice"]["state"] == "enabled"
    assert entry["alice"]["max-size"] == str(1 << 20)
    logged = sum(p.stat().st_size for p in log_files(rawlog_dir))
    assert logged > 0 and int(entry["alice"]["used"]) == logged

    # Redis cannot iterate: the index is read, and that is no news.
    assert ok(dc.doveadm("rawlog", "list")).stderr == ""
    ok(dc.doveadm("rawlog", "enable", "-u", "bob"))
    assert redis.cli("GET", INDEX) == "alice bob"
    assert set(listed(dc)) == {"alice", "bob"}
    ok(dc.doveadm("rawlog", "disable", "-u", "alice"))
    assert redis.cli("GET", INDEX) == "bob"
    assert set(listed(dc)) == {"bob"}
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    ok(dc.doveadm("rawlog", "disable", "-u", "bob"))
    # The last one out removes the index and every key of the users.
    assert redis.cli("KEYS", "*") == ""
    assert listed(dc) == {}
    assert "Error" not in dc.log() and "Warning" not in dc.log()


def test_list_skips_what_a_race_left_in_the_index(controlled, rawlog_dir, redis):
    # Two admins writing the index at once: one's change may be lost. An
    # entry without its user's keys is not listed; a user missing from the
    # index is still enabled (sessions read the user's own key).
    dc, _ = controlled(dict_conf=redis.dict_conf())
    ok(dc.doveadm("rawlog", "enable", "-u", "alice"))
    redis.cli("SET", INDEX, "carol alice")
    assert set(listed(dc)) == {"alice"}
    ok(dc.doveadm("rawlog", "enable", "-u", "bob"))
    assert redis.cli("GET", INDEX) == "alice bob carol"
    redis.cli("SET", INDEX, "alice")
    assert set(listed(dc)) == {"alice"}
    imap_session(dc, "bob")
    assert len(sessions(rawlog_dir, "imap")) == 1


def test_two_instances_share_one_redis(controlled, rawlog_dir, redis):
    a, _ = controlled(dict_conf=redis.dict_conf())
    other_dir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-logs-b-"))
    try:
        other_dir.chmod(0o755)
        shutil.chown(other_dir, 65534, 65534)
        b, _ = controlled(dict_conf=redis.dict_conf(),
                          plugin={"rawlog_ext_dir": str(other_dir)})
        assert a.imap_port != b.imap_port
        ok(a.doveadm("rawlog", "enable", "-u", "alice"))
        imap_session(a)
        imap_session(b)
        assert len(sessions(rawlog_dir, "imap")) == 1
        assert len(sessions(other_dir, "imap")) == 1
        # Both sessions' bytes went to the one counter, seen from either.
        logged = sum(p.stat().st_size for d in (rawlog_dir, other_dir)
                     for p in log_files(d))
        assert int(listed(b)["alice"]["used"]) == logged
        ok(b.doveadm("rawlog", "disable", "-u", "alice"))
        imap_session(a)
        assert len(sessions(rawlog_dir, "imap")) == 1
        assert listed(a) == {}
    finally:
        shutil.rmtree(other_dir, ignore_errors=True)


def test_redis_down_leaves_sessions_alone(controlled, rawlog_dir, redis):
    dc, _ = controlled(dict_conf=redis.dict_conf())
    ok(dc.doveadm("rawlog", "enable", "-u", "alice"))
    redis.stop()
    c = imap_session(dc, extra=b"still works")
    assert b"n OK" in bytes(c.received)
    assert log_files(rawlog_dir) == []
    warnings = [line for line in dc.log().splitlines()
                if "Warning: rawlog_ext:" in line]
    assert len(warnings) == 1, warnings
    assert "logging only sessions rawlog_ext_enabled=yes selects" in warnings[0]
    # The one Error is lib-dict's redis driver's own, on the dict's event.
    errors = [line for line in dc.log().splitlines() if "Error:" in line]
    assert all("dict(redis)" in e and "connect() failed" in e
               for e in errors), errors
    r = dc.doveadm("rawlog", "list")
    assert r.returncode == 75, (r.returncode, r.stderr)


def test_redis_that_never_answers_delays_a_session_by_its_timeout(controlled, rawlog_dir):
    """A hung Redis holds each session's start for the driver's timeout
    (30 s by default): the documented short timeout bounds it."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def swallow():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)   # read nothing, answer nothing
            except OSError:
                pass
    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        plugin = for_line({"rawlog_ext_control_dict":
                           f"redis:host=127.0.0.1:port={port}:timeout_msecs=500"}, {})
        extra = for_line("", "rawlog_ext_control {\n  dict redis {\n"
                             f"    redis_host = 127.0.0.1\n    redis_port = {port}\n"
                             "    redis_request_timeout = 500ms\n  }\n}\n")
        dc, _ = controlled(dict_conf=(plugin, extra))
        started = time.monotonic()
        c = imap_session(dc, extra=b"still works")
        took = time.monotonic() - started
        assert b"n OK" in bytes(c.received)
        assert accepted, "the session never asked the dict"
        # 30 s without the timeout; well below it with it.
        assert took < 15, took
        assert log_files(rawlog_dir) == []
        assert "logging only sessions rawlog_ext_enabled=yes selects" in dc.log()
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
