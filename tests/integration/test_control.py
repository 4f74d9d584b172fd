"""doveadm rawlog (issue #15): turning logging on for a user at runtime
through the control dict, with expiry and a byte budget, against a real
Dovecot and its doveadm (the doveadm plugin under test bind-mounted over
doveadm's module dir in a private namespace)."""
import json
import os
import pathlib
import poplib
import shutil
import time

import pytest

from dovecot_fixture import User, for_line
from rawlog import RawClient, log_files, wait_closed


def control_conf(path: pathlib.Path) -> tuple[dict, str]:
    """(plugin settings, extra config) naming a file dict at path."""
    plugin = for_line({"rawlog_ext_control_dict": f"file:{path}"}, {})
    extra = for_line("", f"rawlog_ext_control {{\n  dict file {{\n"
                         f"    path = {path}\n  }}\n}}\n")
    return plugin, extra


@pytest.fixture
def controlled(dovecot_factory, rawlog_dir):
    """make(plugin=None, dict_conf=None) -> (Dovecot, control file):
    rawlog_ext_dir set for alice and bob, logging decided by a control
    dict (by default a file dict; dict_conf: (plugin, extra config))."""
    def make(plugin=None, dict_conf=None):
        ctl_dir = rawlog_dir.parent / (rawlog_dir.name + "-control")
        ctl_dir.mkdir(exist_ok=True)
        # Written by doveadm as the user, read by the mail processes.
        os.chown(ctl_dir, 65534, 65534)
        ctl_dir.chmod(0o700)
        path = ctl_dir / "control"
        settings, extra = dict_conf or control_conf(path)
        settings = dict(settings, rawlog_ext_dir=str(rawlog_dir))
        settings.update(plugin or {})
        dc = dovecot_factory(plugin=settings, extra_conf=extra + "mail_debug = yes\n",
                             users=[User("alice"), User("bob")],
                             mail_plugins="$mail_plugins rawlog_ext")
        return dc, path
    yield make
    ctl_dir = rawlog_dir.parent / (rawlog_dir.name + "-control")
    shutil.rmtree(ctl_dir, ignore_errors=True)


def imap_session(dc, user="alice", extra=b"") -> RawClient:
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("l", f"LOGIN {user} pass".encode())
    if extra:
        c.imap("n", b"NOOP " + extra)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(rf"imap\({user}\).*Disconnected: Logged out")
    return c


def pop3_session(dc, user="alice") -> None:
    p = poplib.POP3("127.0.0.1", dc.pop3_port, timeout=10)
    p.user(user)
    p.pass_("pass")
    p.stat()
    p.quit()
    dc.wait_log(rf"pop3\({user}\).*Disconnected: Logged out")


def sessions(rawlog_dir: pathlib.Path, service: str) -> set[str]:
    """Session stems of service in the log dir."""
    return {p.name.rsplit(".", 1)[0] for p in log_files(rawlog_dir)
            if f"_{service}_" in p.name}


def ok(r, *expect_in_stdout):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    for text in expect_in_stdout:
        assert text in r.stdout, r.stdout
    return r


def listed(dc) -> dict[str, dict]:
    r = ok(dc.doveadm("-f", "json", "rawlog", "list"))
    return {e["user"]: e for e in json.loads(r.stdout)}


def test_enable_logs_the_next_sessions_only(controlled, rawlog_dir):
    dc, control = controlled()
    imap_session(dc)
    assert sessions(rawlog_dir, "imap") == set()
    assert "control dict: not enabled: not logging" in dc.log()

    r = ok(dc.doveadm("rawlog", "enable", "-u", "alice"), "alice")
    imap_session(dc)
    pop3_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert len(sessions(rawlog_dir, "pop3")) == 1
    # bob was not enabled.
    imap_session(dc, "bob")
    assert len(sessions(rawlog_dir, "imap")) == 1

    entry = listed(dc)
    assert set(entry) == {"alice"}
    assert entry["alice"]["state"] == "enabled"
    assert entry["alice"]["max-size"] == "-"
    logged = sum(p.stat().st_size for p in log_files(rawlog_dir))
    # used counts log bytes (the files, timestamps included).
    assert int(entry["alice"]["used"]) == logged
    assert "Error" not in dc.log() and "Warning" not in dc.log()


def test_expiry(controlled, rawlog_dir):
    dc, _ = controlled()
    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--for", "2s"))
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    time.sleep(2.2)
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert "control dict: enablement expired: not logging" in dc.log()
    assert listed(dc)["alice"]["state"] == "enablement expired"


def test_budget_truncates_then_stops(controlled, rawlog_dir):
    dc, _ = controlled()
    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--max-size", "1k"),
       "1024")
    imap_session(dc, extra=b"x" * 4000)
    files = log_files(rawlog_dir)
    assert files
    assert sum(p.stat().st_size for p in files) <= 1024 + 200
    assert any(b"rawlog_ext" in p.read_bytes() and b"truncated" in p.read_bytes()
               for p in files), [p.read_bytes()[-120:] for p in files]
    entry = listed(dc)["alice"]
    assert entry["state"] == "byte budget used"
    imap_session(dc)
    assert log_files(rawlog_dir) == files
    assert "control dict: byte budget used: not logging" in dc.log()


def test_disable(controlled, rawlog_dir):
    dc, control = controlled()
    ok(dc.doveadm("rawlog", "enable", "-u", "alice"))
    ok(dc.doveadm("rawlog", "disable", "-u", "alice"))
    assert listed(dc) == {}
    imap_session(dc)
    assert log_files(rawlog_dir) == []


def test_enabled_setting_overrides_the_dict(controlled, rawlog_dir):
    # rawlog_ext_enabled (a setting or a userdb field): yes logs without an
    # enablement, no never logs.
    dc, _ = controlled(plugin={"rawlog_ext_enabled": "yes"})
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert "control dict" not in dc.log()
    dc.stop()
    dc, _ = controlled(plugin={"rawlog_ext_enabled": "no"})
    ok(dc.doveadm("rawlog", "enable", "-u", "alice"))
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert "rawlog_ext_enabled=no: not logging" in dc.log()


def test_bad_input_changes_nothing(controlled, rawlog_dir):
    dc, control = controlled()
    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--for", "1h",
                  "--max-size", "10M"))
    before = control.read_bytes()
    for args, status, said in [
            (["-u", "nobody-here"], 67, "User doesn't exist"),
            (["-u", "alice", "--for", "soon"], 64, "--for soon"),
            (["-u", "alice", "--for", "0"], 64, "--for 0"),
            (["-u", "alice", "--max-size", "12x"], 64, "--max-size 12x"),
            (["-u", "alice", "--max-size", "0"], 64, "--max-size 0")]:
        r = dc.doveadm("rawlog", "enable", *args)
        assert r.returncode == status, (args, r.returncode, r.stderr)
        assert said in r.stderr, r.stderr
        assert control.read_bytes() == before


def test_dict_refusing_writes(controlled, rawlog_dir):
    dc, control = controlled()
    ok(dc.doveadm("rawlog", "enable", "-u", "alice"))
    before = control.read_bytes()
    # The file dict writes a new file beside the old one and renames it.
    control.parent.chmod(0o500)
    try:
        r = dc.doveadm("rawlog", "disable", "-u", "alice")
        assert r.returncode == 75, (r.returncode, r.stderr)
        assert "disabling alice failed" in r.stderr, r.stderr
    finally:
        control.parent.chmod(0o700)
    assert control.read_bytes() == before


def test_no_control_dict_configured(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         users=[User("alice")],
                         mail_plugins="$mail_plugins rawlog_ext")
    r = dc.doveadm("rawlog", "enable", "-u", "alice")
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert "no control dict is configured" in r.stderr
    r = dc.doveadm("rawlog", "list")
    assert r.returncode == 78, (r.returncode, r.stderr)
    # Without one, rawlog_ext_dir alone logs, as before.
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1


def test_unreachable_dict_leaves_sessions_alone(controlled, rawlog_dir):
    missing = "/nonexistent-rawlog-ext/dict-socket"
    plugin = for_line({"rawlog_ext_control_dict": f"proxy:{missing}:x"}, {})
    extra = for_line("", f"rawlog_ext_control {{\n  dict proxy {{\n"
                         f"    dict_proxy_socket_path = {missing}\n"
                         f"    dict_proxy_name = x\n  }}\n}}\n")
    dc, _ = controlled(dict_conf=(plugin, extra))
    c = imap_session(dc, extra=b"still works")
    assert b"n OK" in bytes(c.received)
    pop3_session(dc)
    assert log_files(rawlog_dir) == []
    warnings = [line for line in dc.log().splitlines()
                if "Warning: rawlog_ext:" in line]
    # One per process and cause: one imap and one pop3 process here.
    assert len(warnings) == 2, warnings
    assert all("logging only sessions rawlog_ext_enabled=yes selects" in w
               and "reply took" not in w for w in warnings), warnings
    assert "Error" not in dc.log()
