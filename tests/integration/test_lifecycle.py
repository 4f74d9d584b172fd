"""Sessions that end or move abruptly: disconnects, hibernation, shared processes."""
import os
import re
import time

import pytest

from dovecot_fixture import User, for_line
from rawlog import (HIBERNATE_CONF, RawClient, hibernated_session, imap_login,
                    session_files, strip_timestamps, wait_closed)
from test_failures import assert_session_works, rawlog_lines
from test_imap import message

CRASH = re.compile(r"Fatal|Panic|killed with signal|Error")


def wait_disconnected(dc, count: int = 1) -> str:
    deadline = time.monotonic() + 10
    while len(re.findall(r"imap\(\w+\)<\d+><[^>]*>: Info: Disconnected", dc.log())) < count:
        assert time.monotonic() < deadline, dc.log()
        time.sleep(0.05)
    return dc.log()


def complete_lines(data: bytes) -> bytes:
    return strip_timestamps(data[:data.rfind(b"\n") + 1])


@pytest.mark.parametrize("where", ["idle", "fetch", "append-literal"])
def test_client_vanishing_mid_command(logged_dovecot, rawlog_dir, where):
    dc = logged_dovecot()
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    big = message(2 * 1024 * 1024, seed=5)
    if where == "idle":
        c.send(b"i IDLE\r\n")
        c.read_until(rb"^\+ idling\r\n")
    elif where == "fetch":
        c.imap_append("a", big)
        c.send(b"f FETCH 1 BODY.PEEK[]\r\n")
        c.read_until(rb"^\* 1 FETCH ")
    else:
        c.send(b"a APPEND INBOX {%d}\r\n" % len(big))
        c.read_until(rb"^\+ [^\r\n]*\r\n")
        c.send(big[:100000])
        time.sleep(0.3)
    c.close()
    log = wait_disconnected(dc)
    assert not CRASH.search(log), log

    files = session_files(rawlog_dir, "imap")
    # Everything the client sent was read by imap (or still in flight);
    # what the log holds is an exact prefix of each direction.
    assert bytes(c.sent[sent_from:]).startswith(complete_lines(files[".in"].read_bytes()))
    out = complete_lines(files[".out"].read_bytes())
    if where == "fetch":
        # The client stopped reading mid-FETCH: the log may hold more than
        # it received, never something else.
        assert out.startswith(bytes(c.received[received_from:])[:len(out)])
    else:
        assert out == bytes(c.received[received_from:])


def test_hibernation_and_back(logged_dovecot, rawlog_dir):
    # imap (as the mail user) must reach both sockets.
    dc = logged_dovecot(extra_conf=HIBERNATE_CONF)
    # Hibernation: the imap process hands the client to imap-hibernate and exits.
    c, sent_from, received_from, log = hibernated_session(dc)
    assert not re.search(r"Fatal|Panic|killed with signal", log), log
    # One file pair per imap process: before hibernation and after it.
    ins = sorted(p for p in rawlog_dir.iterdir() if p.suffix == ".in")
    assert len(ins) == 2, ins
    before, after = sorted((strip_timestamps(p.read_bytes()) for p in ins),
                           key=lambda data: b"LOGOUT" in data)
    assert before == b"s SELECT INBOX\r\ni IDLE\r\n"
    # imap-hibernate (no plugins run there) consumed DONE and handed the
    # IDLE state over; the new process logs what it reads itself.
    assert after == b"n NOOP\r\nx LOGOUT\r\n"
    outs = sorted((strip_timestamps(p.read_bytes()) for p in rawlog_dir.iterdir()
                   if p.suffix == ".out"), key=lambda data: b"Logout" in data)
    assert outs[1].startswith(b"i OK Idle completed")
    assert bytes(c.received[received_from:]) == outs[0] + outs[1]


def test_shared_process_logs_only_users_with_the_plugin(dovecot_factory, rawlog_dir):
    # One imap process serves both users; only alice has rawlog_ext.
    dc = dovecot_factory(
        users=[User("alice", extra="userdb_mail_plugins=rawlog_ext"), User("bob")],
        plugin={"rawlog_ext_dir": str(rawlog_dir)},
        extra_conf="service imap {\n  client_limit = 4\n"
                   # 2.4: renamed, and 0 is spelt "unlimited".
                   f"  {for_line('service_count = 0', 'restart_request_count = unlimited')}\n"
                   "  process_limit = 1\n}\n")
    a, a_sent, a_received = imap_login(dc.imap_port, user="alice")
    b, _, _ = imap_login(dc.imap_port, user="bob")
    a.imap("a1", b"SELECT INBOX")
    b.imap("b1", b"SELECT INBOX")
    a.imap("a2", b"NOOP")
    b.imap("b2", b"LOGOUT")
    wait_closed(b)
    a.imap("a3", b"LOGOUT")
    wait_closed(a)
    log = wait_disconnected(dc, 2)
    assert not CRASH.search(log), log
    pids = set(re.findall(r"imap\(\w+\)<(\d+)>", log))
    assert len(pids) == 1, pids
    files = session_files(rawlog_dir, "imap")
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(a.sent[a_sent:])
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(a.received[a_received:])


def test_dir_owned_by_another_user_is_refused(logged_dovecot, rawlog_dir):
    foreign = rawlog_dir / "foreign"
    foreign.mkdir(mode=0o777)
    foreign.chmod(0o777)
    os.chown(foreign, 1, 1)     # daemon: neither the mail user nor root
    dc = logged_dovecot({"rawlog_ext_dir": str(foreign)})
    assert_session_works(dc.imap_port)
    assert list(foreign.iterdir()) == []
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "is owned by uid 1" in errors[0], errors


def test_world_writable_dir_needs_sticky_bit(logged_dovecot, rawlog_dir):
    shared = rawlog_dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    dc = logged_dovecot({"rawlog_ext_dir": str(shared)})
    assert_session_works(dc.imap_port)
    assert list(shared.iterdir()) == []
    assert "not sticky" in rawlog_lines(dc, "Error")[0]
    shared.chmod(0o1777)
    dc.stop()
    dc2 = logged_dovecot({"rawlog_ext_dir": str(shared)})
    assert_session_works(dc2.imap_port)
    assert set(session_files(shared, "imap")) == {".in", ".out"}
