"""Checks the test harness itself against a plain Dovecot, no plugin loaded."""

import imaplib
import poplib

import pytest

from dovecot_fixture import User, conf_value, login_info

MESSAGE = b"From: a@test.local\r\nSubject: smoke\r\n\r\nhello\r\n"


def imap_append(dc, user):
    imap = imaplib.IMAP4("127.0.0.1", dc.imap_port)
    try:
        imap.login(user.name, user.password)
        typ, _ = imap.select("INBOX")
        assert typ == "OK"
        typ, _ = imap.append("INBOX", None, None, MESSAGE)
        assert typ == "OK"
    finally:
        imap.logout()


def pop3_stat(dc, user):
    pop = poplib.POP3("127.0.0.1", dc.pop3_port)
    try:
        pop.user(user.name)
        pop.pass_(user.password)
        return pop.stat()
    finally:
        pop.quit()


def test_imap_and_pop3(dovecot_factory):
    dc = dovecot_factory(users=[User("alice"), User("bob")])
    alice = dc.user("alice")

    imap_append(dc, alice)
    assert pop3_stat(dc, alice) == (1, len(MESSAGE))
    assert pop3_stat(dc, dc.user("bob")) == (0, 0)

    dc.wait_log(login_info("alice") + ", method=PLAIN")
    assert (alice.home / "Maildir").is_dir()


def test_two_instances(dovecot_factory):
    first = dovecot_factory(users=[User("alice")])
    second = dovecot_factory(users=[User("alice")])
    assert first.imap_port != second.imap_port
    assert first.base != second.base

    for dc in (first, second):
        imap_append(dc, dc.user("alice"))
        dc.wait_log(login_info("alice"))
    # Each instance stores mail in its own homes.
    for dc in (first, second):
        assert pop3_stat(dc, dc.user("alice")) == (1, len(MESSAGE))


def test_conf_value_spells_variables_per_line():
    template = "/l/%{user}/%{user | username}@%{user | domain}/%{userdb:sub}/%%"
    assert conf_value(template, "2.3") == "/l/%u/%n@%d/%{userdb:sub}/%%"
    assert conf_value(template, "2.4") == template
    with pytest.raises(ValueError):
        conf_value("%{no_such_variable}", "2.3")
