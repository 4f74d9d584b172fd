"""The one module loads cleanly in every mail process and logs in each."""
import re
import smtplib

from dovecot_fixture import User
from rawlog import SmtpSink
from test_failures import assert_session_works


def test_module_in_all_four_protocols(dovecot_factory, rawlog_dir):
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
    assert re.search(r"lmtp\(alice\).*Debug: .*rawlog_ext: logging to ", log)
    assert re.search(r"submission\(alice\).*Debug: rawlog_ext: logging to ", log)
    assert not re.search(r"Error|Fatal|Panic", log), log
    # The delivery reached alice's INBOX (the IMAP session saw it), and
    # each protocol logged alice's session.
    services = sorted({p.name.split("_")[1] for p in rawlog_dir.iterdir()})
    assert services == ["imap", "lmtp", "submission", "submission-relay"]
