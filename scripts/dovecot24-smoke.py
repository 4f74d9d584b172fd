#!/usr/bin/python3
"""Starts a plain Dovecot 2.4 (no rawlog_ext) from the Debian 13 tree through
the test fixture and talks to it from the host: IMAP, IMAPS, STARTTLS, POP3,
LMTP, submission AUTH. Checks the tree and the fixture's 2.4 mode, not the
plugin.

    scripts/dovecot24-tree.sh create
    sudo /usr/bin/python3 scripts/dovecot24-smoke.py [TREE]
"""

import imaplib
import os
import pathlib
import poplib
import shutil
import smtplib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent
                       / "tests" / "integration"))
from dovecot_fixture import Dovecot, User  # noqa: E402

MESSAGE = b"From: a@test.local\r\nSubject: smoke\r\n\r\nhello\r\n"


def main() -> None:
    root = (sys.argv[1] if len(sys.argv) > 1 else
            os.environ.get("RAWLOG_EXT_DOVECOT_ROOT", "/var/cache/rawlog-ext/trixie"))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-"))
    dc = None
    try:
        dc = Dovecot(tmp, root=root, users=[User("alice")], ssl=True,
                     protocols=("imap", "pop3", "lmtp", "submission"))
        print(f"Dovecot {dc.line} in {root}, config {dc.conf_path}")
        dc.start()
        alice = dc.user("alice")

        imap = imaplib.IMAP4("127.0.0.1", dc.imap_port)
        imap.login(alice.name, alice.password)
        assert imap.select("INBOX")[0] == "OK"
        assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
        imap.logout()
        print("imap: login, select, append ok")

        imaps = imaplib.IMAP4_SSL("127.0.0.1", dc.imaps_port,
                                  ssl_context=dc.ssl_context())
        imaps.login(alice.name, alice.password)
        imaps.logout()
        starttls = imaplib.IMAP4("127.0.0.1", dc.imap_port)
        starttls.starttls(ssl_context=dc.ssl_context())
        starttls.login(alice.name, alice.password)
        starttls.logout()
        print("imaps, imap STARTTLS: login ok")

        lmtp = smtplib.LMTP("127.0.0.1", dc.lmtp_port)
        assert lmtp.sendmail("a@test.local", [alice.name], MESSAGE) == {}
        lmtp.quit()
        print("lmtp: delivered")

        pop = poplib.POP3("127.0.0.1", dc.pop3_port)
        pop.user(alice.name)
        pop.pass_(alice.password)
        # LMTP prepends Return-Path, Delivered-To and Received.
        assert pop.stat()[0] == 2, pop.stat()
        pop.quit()
        print("pop3: 2 messages")

        sub = smtplib.SMTP("127.0.0.1", dc.submission_port)
        sub.starttls(context=dc.ssl_context())
        sub.login(alice.name, alice.password)
        sub.quit()
        print("submission: STARTTLS, AUTH ok")

        dc.wait_log(r"imap-login: Info: Logged in: user=<alice>")
        # submission connects to its relay at login; nothing listens there.
        bad = [line for line in dc.log().splitlines()
               if (": Error: " in line or ": Fatal: " in line or ": Panic: " in line)
               and ": Error: relay: " not in line]
        assert not bad, bad
        print("ok")
    finally:
        if dc is not None:
            dc.stop()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
