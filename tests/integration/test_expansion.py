"""A variable that expands to nothing never redirects a user's log into
another directory: the session is not logged, one Error says why."""
import os

import pytest

from dovecot_fixture import User, conf_value, line_under_test
from rawlog import session_files
from test_failures import assert_session_works, rawlog_lines


def test_empty_last_component_is_refused(logged_dovecot, rawlog_dir):
    # Without the refusal alice's log would land in the shared top directory.
    dc = logged_dovecot({"rawlog_ext_dir": f"{rawlog_dir}/%{{userdb:sub}}",
                         "rawlog_ext_autocreate": "yes"},
                        users=[User("alice"), User("bob", extra="userdb_sub=b")])
    assert_session_works(dc.imap_port, user="alice")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1, errors
    assert (f"rawlog_ext_dir={rawlog_dir}/%{{userdb:sub}}: %{{userdb:sub}} "
            "expands to nothing for this session, which would log into another "
            "directory: not logging this session") in errors[0]
    assert list(rawlog_dir.iterdir()) == []

    # A user whose variable has a value is logged as before.
    assert_session_works(dc.imap_port, user="bob")
    assert set(session_files(rawlog_dir / "b", "imap")) == {".in", ".out"}


def test_empty_middle_component_is_refused(logged_dovecot, rawlog_dir):
    # "/rawlog//x" would be another user's "/rawlog/x".
    (rawlog_dir / "x").mkdir(mode=0o700)
    dc = logged_dovecot({"rawlog_ext_dir": f"{rawlog_dir}/%{{userdb:sub}}/x"})
    assert_session_works(dc.imap_port, user="alice")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "%{userdb:sub} expands to nothing" in errors[0], errors
    assert list((rawlog_dir / "x").iterdir()) == []


def test_empty_part_of_a_component_is_refused(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/u-%{{user | username | lower}}%{{userdb:sub}}"),
                         "rawlog_ext_autocreate": "yes"})
    assert_session_works(dc.imap_port, user="alice")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "%{userdb:sub} expands to nothing" in errors[0], errors
    assert list(rawlog_dir.iterdir()) == []


def test_slash_in_username_is_refused(logged_dovecot, rawlog_dir):
    # "alice/x" would log inside alice's own directory.
    (rawlog_dir / "alice").mkdir(mode=0o700)
    os.chown(rawlog_dir / "alice", 65534, 65534)
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"),
                         "rawlog_ext_autocreate": "yes"},
                        users=[User("alice"), User("alice/x")])
    assert_session_works(dc.imap_port, user="alice/x")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1, errors
    assert (f"rawlog_ext_dir={conf_value(f'{rawlog_dir}/%{{user}}')}: "
            f"{conf_value('%{user}')} expands to \"alice/x\" for this session, "
            "whose '/' would log into another directory") in errors[0], errors
    assert list(rawlog_dir.rglob("*")) == [rawlog_dir / "alice"]
    # alice herself is logged as before.
    assert_session_works(dc.imap_port, user="alice")
    assert set(session_files(rawlog_dir / "alice", "imap")) == {".in", ".out"}


only_24 = pytest.mark.skipif(line_under_test() != "2.4", reason="Dovecot 2.4's template grammar")


@only_24
def test_escaped_variable_is_refused_24(logged_dovecot, rawlog_dir):
    # 2.4 reads "%%{user}" as the text "%{user}": one directory for all.
    dc = logged_dovecot({"rawlog_ext_dir": f"{rawlog_dir}/%%{{user}}",
                         "rawlog_ext_autocreate": "yes"})
    assert_session_works(dc.imap_port, user="alice")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and 'which still has a "%{"' in errors[0], errors
    assert list(rawlog_dir.iterdir()) == []


@only_24
def test_percent_text_is_taken_as_text_24(logged_dovecot, rawlog_dir):
    # Outside "%%{" and "%{", 2.4 keeps a '%' as it is ("100%sure", "%%x"):
    # not 2.3 syntax.
    dc = logged_dovecot({"rawlog_ext_dir": f"{rawlog_dir}/100%sure/%%x-%{{user}}",
                         "rawlog_ext_autocreate": "yes"})
    assert_session_works(dc.imap_port, user="alice")
    assert rawlog_lines(dc, "Error") == []
    assert set(session_files(rawlog_dir / "100%sure" / "%%x-alice", "imap")) == {".in", ".out"}


@only_24
def test_legacy_letter_is_refused_24(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_dir": f"{rawlog_dir}/%u"})
    assert_session_works(dc.imap_port, user="alice")
    errors = rawlog_lines(dc, "Error")
    assert len(errors) == 1 and "%u is Dovecot 2.3 syntax: use %{user}" in errors[0], errors
