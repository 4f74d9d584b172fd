"""Logging problems never touch the mail session, and each says why once."""
import os
import re
import subprocess

import pytest

from dovecot_fixture import User, conf_value
from rawlog import RawClient, imap_login, log_files, session_files, strip_timestamps, wait_closed
from test_imap import message


def assert_session_works(port: int, user: str = "alice", size: int = 64 * 1024):
    """A session with APPEND and FETCH behaves normally; returns the client
    and where its post-login records start."""
    c, _, received_from = imap_login(port, user=user)
    assert re.match(rb"L OK \[CAPABILITY [^\r\n]*\] Logged in\r\n", bytes(c.received[received_from:]))
    c.imap("s", b"SELECT INBOX")
    body = message(size, seed=4)
    c.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    c.read_until(rb"^\+ [^\r\n]*\r\n")
    start = len(c.received)
    c.send(body + b"\r\n")
    assert c.read_until(rb"^a (OK|NO|BAD)[^\r\n]*\r\n", start).group(1) == b"OK"
    fetched = c.imap("f", b"FETCH * BODY.PEEK[]")
    assert body in fetched and b"f OK" in fetched
    assert b"x OK" in c.imap("x", b"LOGOUT")
    wait_closed(c)
    return c, len(f"L LOGIN {user} pass\r\n"), received_from


def rawlog_lines(dc, level: str) -> list[str]:
    # Log lines travel through Dovecot's log process: wait for the session's
    # last line, which the same process wrote after ours.
    dc.wait_log(r"(imap|pop3)\([^)]*\)<\d+><[^>]*>: Info: Disconnected")
    return re.findall(rf"^.*{level}: rawlog_ext: .*$", dc.log(), re.MULTILINE)


def test_missing_dir_without_autocreate_is_a_debug_line(logged_dovecot, rawlog_dir):
    missing = rawlog_dir / "nope"
    dc = logged_dovecot({"rawlog_ext_dir": str(missing)}, extra_conf="mail_debug = yes\n")
    assert_session_works(dc.imap_port)
    assert not missing.exists()
    debug = rawlog_lines(dc, "Debug")
    assert len(debug) == 1 and "does not exist (rawlog_ext_autocreate=no)" in debug[0], debug
    assert rawlog_lines(dc, "Error") == []


def test_autocreate_makes_private_dirs_per_user(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/users/%{{user}}/%{{service}}"),
                         "rawlog_ext_autocreate": "yes"})
    assert_session_works(dc.imap_port)
    for path in (rawlog_dir / "users", rawlog_dir / "users/alice", rawlog_dir / "users/alice/imap"):
        st = path.stat()
        assert st.st_mode & 0o777 == 0o700, path
        assert st.st_uid == 65534, path
    assert set(session_files(rawlog_dir / "users/alice/imap", "imap")) == {".in", ".out"}


def test_not_enabled_without_dir_and_debug_says_so(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(mail_plugins="rawlog_ext", users=[User("alice")],
                         extra_conf="mail_debug = yes\n")
    assert_session_works(dc.imap_port)
    debug = rawlog_lines(dc, "Debug")
    assert len(debug) == 1 and "rawlog_ext_dir is not set" in debug[0], debug


def test_debug_says_where_it_logs_once_per_session(logged_dovecot, rawlog_dir):
    dc = logged_dovecot(extra_conf="mail_debug = yes\n")
    assert_session_works(dc.imap_port)
    debug = rawlog_lines(dc, "Debug")
    files = session_files(rawlog_dir, "imap")
    assert len(debug) == 1, debug
    assert f"logging to {files['.in']} and {files['.out']}" in debug[0]


def test_unwritable_dir_is_one_error(logged_dovecot, rawlog_dir):
    locked = rawlog_dir / "locked"
    locked.mkdir(mode=0o755)        # root's: uid 65534 cannot create files here
    dc = logged_dovecot({"rawlog_ext_dir": str(locked)})
    assert_session_works(dc.imap_port)
    assert list(locked.iterdir()) == []
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "Permission denied" in errors[0], errors
    assert str(locked) in errors[0]


def test_symlinked_dir_is_not_followed(logged_dovecot, rawlog_dir):
    target = rawlog_dir / "target"
    target.mkdir()
    os.chown(target, 65534, 65534)
    link = rawlog_dir / "link"
    link.symlink_to(target)
    dc = logged_dovecot({"rawlog_ext_dir": str(link)})
    assert_session_works(dc.imap_port)
    assert list(target.iterdir()) == []
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "symlink" in errors[0], errors


@pytest.mark.parametrize("hostile", ["../x", "a/../../b"])
def test_hostile_username_cannot_leave_the_tree(logged_dovecot, rawlog_dir, hostile):
    tree = rawlog_dir / "tree" / "users"
    tree.mkdir(parents=True)
    os.chown(tree, 65534, 65534)
    os.chown(tree.parent, 65534, 65534)
    before = sorted(p for p in rawlog_dir.rglob("*"))
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{tree}/%{{user}}"), "rawlog_ext_autocreate": "yes"},
                        users=[User(hostile)])
    assert_session_works(dc.imap_port, user=hostile)
    assert sorted(p for p in rawlog_dir.rglob("*")) == before
    errors = rawlog_lines(dc, "Error")
    # The '/' in %{user} is refused before the path would be checked.
    assert len(errors) == 1 and "whose '/' would log into another directory" in errors[0], errors


def test_invalid_setting_is_one_error_naming_it(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_max_size": "lots"})
    assert_session_works(dc.imap_port)
    assert log_files(rawlog_dir) == []
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1, errors
    assert "Invalid setting rawlog_ext_max_size=lots" in errors[0]


def test_userdb_field_enables_logging_per_user(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(mail_plugins="rawlog_ext",
                         users=[User("alice", extra=conf_value(f"userdb_rawlog_ext_dir={rawlog_dir}/%{{user}} "
                                                          "userdb_rawlog_ext_autocreate=yes")),
                                User("bob")])
    assert_session_works(dc.imap_port, user="alice")
    assert_session_works(dc.imap_port, user="bob")
    assert [p.parent.name for p in log_files(rawlog_dir)] == ["alice", "alice"]


@pytest.fixture
def tiny_fs(rawlog_dir):
    mountpoint = rawlog_dir / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k,mode=0755,uid=65534,gid=65534",
                             "tmpfs", str(mountpoint)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_filesystem_leaves_the_session_alone(logged_dovecot, tiny_fs):
    dc = logged_dovecot({"rawlog_ext_dir": str(tiny_fs)})
    c, sent_from, received_from = assert_session_works(dc.imap_port, size=256 * 1024)
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    # What did get written is an exact prefix of the session (the last
    # line may have been cut anywhere, even inside its timestamp).
    files = session_files(tiny_fs, "imap")
    for ext, wire in ((".in", c.sent[sent_from:]), (".out", c.received[received_from:])):
        data = files[ext].read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        assert bytes(wire).startswith(strip_timestamps(complete))
    assert sum(len(f.read_bytes()) for f in files.values()) > 16 * 1024
