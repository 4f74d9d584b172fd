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

from dovecot_fixture import User, conf_value, for_line
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
    def make(plugin=None, dict_conf=None, extra_conf="", **kwargs):
        ctl_dir = rawlog_dir.parent / (rawlog_dir.name + "-control")
        ctl_dir.mkdir(exist_ok=True)
        # Written by doveadm as the user, read by the mail processes.
        os.chown(ctl_dir, 65534, 65534)
        ctl_dir.chmod(0o700)
        path = ctl_dir / "control"
        settings, extra = dict_conf or control_conf(path)
        settings = dict(settings, rawlog_ext_dir=str(rawlog_dir))
        settings.update(plugin or {})
        dc = dovecot_factory(plugin=settings,
                             extra_conf=extra + "mail_debug = yes\n" + extra_conf,
                             users=[User("alice"), User("bob")],
                             mail_plugins="$mail_plugins rawlog_ext", **kwargs)
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


def status(dc, user="alice") -> dict[str, tuple[str, str]]:
    r = ok(dc.doveadm("-f", "json", "rawlog", "status", "-u", user))
    return {e["protocol"]: (e["logged"], e["why"]) for e in json.loads(r.stdout)}


def test_status_lmtp_needs_recipients_yes_for_a_userdb_only_dir(dovecot_factory,
                                                              rawlog_dir):
    """No directory in the configuration, one in alice's userdb fields:
    imap logs her, lmtp (rawlog_ext_lmtp_recipients=auto) follows no
    connection and status says what to set; with yes it would log."""
    os.chown(rawlog_dir, 65534, 65534)
    for recipients, expected in (("", ("no", "rawlog_ext_dir comes from userdb "
                                           "fields only: rawlog_ext_lmtp_recipients"
                                           "=auto follows no LMTP connection then "
                                           "(set rawlog_ext_lmtp_recipients=yes in "
                                           "lmtp's configuration; a userdb field has "
                                           "no effect)")),
                                 ("yes", ("yes", f"would log into {rawlog_dir}"))):
        dc = dovecot_factory(
            users=[User("alice", extra=f"userdb_rawlog_ext_dir={rawlog_dir}")],
            plugin={"rawlog_ext_lmtp_recipients": recipients} if recipients else None,
            mail_plugins="$mail_plugins rawlog_ext")
        st = status(dc)
        assert st["imap"] == ("yes", f"would log into {rawlog_dir}"), st
        assert st["lmtp"] == expected, st
        dc.stop()


def test_status_names_each_cause(controlled, rawlog_dir):
    # pop3 without the module: 2.4 turns a boollist item off by name.
    no_pop3 = for_line({"protocol_mail_plugins": {"pop3": ""}},
                       {"extra_conf": "protocol pop3 {\n  mail_plugins {\n"
                                      "    rawlog_ext = no\n  }\n}\n"})
    dc, _ = controlled(
        protocol_plugin={"submission": {"rawlog_ext_dir": ""},
                         "lmtp": {"rawlog_ext_lmtp_recipients": "no"}},
        **no_pop3)
    st = status(dc)
    assert set(st) == {"imap", "pop3", "submission", "lmtp"}, st
    assert st["imap"] == ("no", "not enabled in the control dict "
                                "(doveadm rawlog enable)"), st
    assert st["pop3"] == ("no", "rawlog_ext is not in pop3's mail_plugins"), st
    assert st["submission"] == ("no", "no directory configured (rawlog_ext_dir)"), st
    assert st["lmtp"] == ("no", "rawlog_ext_lmtp_recipients=no"), st

    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--max-size", "1M"))
    st = status(dc)
    assert st["imap"] == ("yes", f"would log into {rawlog_dir}, enabled in the "
                                 "control dict with 1048576 bytes of its budget left"), st
    # The verdict is the session's: the next session is logged.
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert not status(dc, "bob")["imap"][0] == "yes"

    rawlog_dir.chmod(0o555)
    try:
        assert status(dc)["imap"] == ("no", f"{rawlog_dir} is not writable by uid 65534 "
                                            "(Permission denied)")
    finally:
        rawlog_dir.chmod(0o755)

    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--max-size", "1"))
    imap_session(dc)
    assert status(dc)["imap"] == ("no", "byte budget used (doveadm rawlog enable "
                                        "starts a new one)")
    ok(dc.doveadm("rawlog", "enable", "-u", "alice", "--for", "1s"))
    time.sleep(1.2)
    assert status(dc)["imap"] == ("no", "enablement expired (doveadm rawlog enable "
                                        "starts a new one)")


def test_status_directory_and_setting_causes(controlled, rawlog_dir):
    dc, _ = controlled(plugin={"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"),
                               "rawlog_ext_enabled": "yes"},
                       protocol_plugin={"pop3": {"rawlog_ext_timestamps": "sometimes"}})
    st = status(dc)
    assert st["imap"] == ("no", f"{rawlog_dir}/alice does not exist "
                                "(rawlog_ext_autocreate=no)"), st
    assert st["pop3"][0] == "no" and st["pop3"][1].startswith(
        "invalid setting: Invalid setting rawlog_ext_timestamps=sometimes"), st
    (rawlog_dir / "alice").mkdir()
    os.chown(rawlog_dir / "alice", 65534, 65534)
    assert status(dc)["imap"] == ("yes", f"would log into {rawlog_dir}/alice "
                                         "(rawlog_ext_enabled=yes)")
    r = dc.doveadm("rawlog", "status", "-u", "nobody-here")
    assert r.returncode == 67, (r.returncode, r.stderr)


def test_24_top_level_dict_is_not_a_control_dict(dovecot_factory, rawlog_dir):
    """2.4: a named filter inherits a top-level dict; one there (for
    something else) must not switch control mode on."""
    other = rawlog_dir.parent / (rawlog_dir.name + "-other-dict")
    extra = f"dict file {{\n  path = {other}\n}}\nmail_debug = yes\n"
    dc = dovecot_factory(plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         extra_conf=extra, users=[User("alice")],
                         mail_plugins="$mail_plugins rawlog_ext")
    imap_session(dc)
    assert len(sessions(rawlog_dir, "imap")) == 1
    assert "control dict" not in dc.log()
    r = dc.doveadm("rawlog", "enable", "-u", "alice")
    assert r.returncode == 78, (r.returncode, r.stderr)
