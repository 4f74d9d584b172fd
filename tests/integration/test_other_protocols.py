"""The one module loads cleanly in lmtp and submission too (capture there comes later)."""
import re
import smtplib

from dovecot_fixture import User
from rawlog import SmtpSink
from test_failures import assert_session_works


def test_module_loads_in_lmtp_and_submission(dovecot_factory, rawlog_dir):
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("imap", "pop3", "lmtp", "submission"),
                         users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)},
                         extra_conf="mail_debug = yes\n")
    relay = SmtpSink(dc.relay_port)
    with smtplib.LMTP("127.0.0.1", dc.lmtp_port) as lmtp:
        refused = lmtp.sendmail("sender@example.com", ["alice"],
                                b"Subject: hello\r\n\r\nbody\r\n")
        assert refused == {}
    with smtplib.SMTP("127.0.0.1", dc.submission_port) as smtp:
        smtp.ehlo("client.example.com")
        smtp.login("alice", "pass")
        assert smtp.noop()[0] == 250
    dc.wait_log(r"submission\(alice\).*Disconnected")
    relay.close()
    assert_session_works(dc.imap_port)
    dc.wait_log(r"imap\(alice\).*Disconnected")

    log = dc.log()
    for service in ("lmtp", "submission"):
        # This line comes from the module's own user hook: it is loaded and initialised.
        assert re.search(rf"{service}\(alice\).*Debug: .*rawlog_ext: {service} sessions are not "
                         "captured by this version", log), service
    assert not re.search(r"Error|Fatal|Panic", log), log
    # The delivered mail reached alice's INBOX, and only imap logged.
    assert all("_imap_" in p.name for p in rawlog_dir.iterdir())
