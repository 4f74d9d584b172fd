"""A failure inside the module, wherever Dovecot calls into it, ends the
same way: logging stops, one Error says why, the session or delivery goes
on and no process dies. Runs against the fault-injection build
(configure --enable-fault-injection, in RAWLOG_EXT_FAULT_MODULE_DIR),
where RAWLOG_EXT_FAULT=<guarded site>[:<n>] makes the n-th call of that
site fail as if out of memory."""
import os
import re
import time

import pytest

from rawlog import RawClient, log_files, session_files
from test_failures import assert_session_works
from test_lmtp import deliver, lmtp_dirs, make_lmtp, read_split  # noqa: F401
from test_login import SECRET, login_dir, make as make_login  # noqa: F401
from test_login_hardening import CRASH

FAULT_DIR = os.environ.get("RAWLOG_EXT_FAULT_MODULE_DIR")

if FAULT_DIR is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI runs these: set RAWLOG_EXT_FAULT_MODULE_DIR "
                           "(scripts/test.sh builds build-fault)")
    pytest.skip("no fault-injection build (RAWLOG_EXT_FAULT_MODULE_DIR)",
                allow_module_level=True)


def fault_env(site: str) -> dict[str, str]:
    return {"RAWLOG_EXT_FAULT": site}


def assert_one_failure(dc, what: str, process: str):
    dc.wait_log(rf"{process}.*Info: (Disconnected|Logged out|Disconnect)")
    log = dc.log()
    errors = re.findall(r"^.*Error: (?:.*: )?rawlog_ext: .*$", log, re.MULTILINE)
    assert errors and all(f"{what} failed: out of memory: logging stopped" in e
                          for e in errors), errors
    assert len(errors) == 1, errors
    assert not CRASH.search(log), log


@pytest.mark.parametrize("site,what,logged", [
    # Mid-session: the log has its start, the session all of it.
    ("writing_the_log:3", "writing the log", True),
    ("opening_the_log", "opening the log", False),
    # The files were made, nothing is written to them.
    ("wrapping_the_client_streams", "wrapping the client streams", "empty"),
])
def test_imap_session_survives(logged_dovecot, rawlog_dir, site, what, logged):
    dc = logged_dovecot(module_dir=FAULT_DIR, import_env=fault_env(site))
    assert_session_works(dc.imap_port)
    assert_one_failure(dc, what, r"imap\(alice\)")
    if logged:
        files = session_files(rawlog_dir, "imap")
        assert set(files) == {".in", ".out"}
        if logged == "empty":
            assert all(p.stat().st_size == 0 for p in files.values())
    else:
        assert list(rawlog_dir.iterdir()) == []


@pytest.mark.parametrize("site,what", [
    ("following_the_LMTP_connection:3", "following the LMTP connection"),
    ("opening_the_delivery_log", "opening the delivery log"),
    ("attaching_the_delivery_log", "attaching the delivery log"),
])
def test_lmtp_delivery_survives(dovecot_factory, lmtp_dirs, site, what):
    conn, users = lmtp_dirs
    dc = make_lmtp(dovecot_factory, lmtp_dirs, import_env=fault_env(site),
                   module_dir=FAULT_DIR)
    body = b"Subject: guarded\r\n\r\nstill delivered\r\n.\r\n"
    c, final = deliver(dc.lmtp_port, ["alice"], body)
    assert all(r.startswith(b"250 ") for r in final), final
    assert_one_failure(dc, what, r"lmtp\(\d+\)")
    home = dc.users["alice"].home
    delivered = [p.read_bytes() for p in (home / "Maildir").glob("*/*") if p.is_file()]
    assert any(b"still delivered" in m for m in delivered), delivered
    # What was logged before the failure is never more than the wire.
    for got_in, got_out in read_split(conn).values():
        assert bytes(c.sent).startswith(got_in)
        assert bytes(c.received).startswith(got_out)


def login_failures(dc) -> list[str]:
    time.sleep(0.3)     # the login process writes after the client is gone
    return re.findall(r"^.*Error: rawlog_ext_login: .*$", dc.log(), re.MULTILINE)


@pytest.mark.parametrize("site,what,tls", [
    ("opening_the_pre-login_log", "opening the pre-login log", False),
    ("writing_the_log:2", "writing the log", True),
    ("choosing_the_log", "choosing the log", False),
])
def test_login_session_survives(dovecot_factory, login_dir, site, what, tls):
    dc = make_login(dovecot_factory, login_dir, ssl=tls, module_dir=FAULT_DIR,
                    env={"RAWLOG_EXT_FAULT": site})
    c = RawClient(dc.imaps_port, tls=dc.ssl_context()) if tls else RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    assert b"b OK" in c.imap("b", f"LOGIN alice {SECRET}".encode())
    assert b"s OK" in c.imap("s", b"SELECT INBOX")
    c.imap("c", b"LOGOUT")
    c.read_to_eof()
    dc.wait_log(r"imap\(alice\).*Disconnected")
    errors = login_failures(dc)
    assert len(errors) == 1, errors
    assert f"{what} failed: out of memory: logging stopped" in errors[0]
    assert not CRASH.search(dc.log())
    if tls:
        # The login process relays a TLS session to its end: its log must
        # not go on after the failure (plaintext sessions leave the login
        # process at login, so there is nothing to check).
        for p in log_files(login_dir):
            assert b"SELECT" not in p.read_bytes(), p


def test_login_never_logged_in_session_survives(dovecot_factory, login_dir):
    # Written out while the client is being torn down (TLS gone already).
    dc = make_login(dovecot_factory, login_dir, ssl=True, module_dir=FAULT_DIR,
                    env={"RAWLOG_EXT_LOGIN_SELECT": "all",
                         "RAWLOG_EXT_FAULT":
                             "writing_the_log_of_a_session_that_did_not_log_in"})
    for _ in range(2):
        c = RawClient(dc.imaps_port, tls=dc.ssl_context())
        c.read_until(rb"^\* OK[^\r\n]*\r\n")
        c.imap("a", b"LOGIN alice wrong-password")
        c.close()
    # 2.4 says "Login aborted".
    dc.wait_log(r"imap-login: .*(Disconnected|Aborted login|Login aborted).*\n(.*\n)*"
                r".*imap-login: .*(Disconnected|Aborted login|Login aborted)")
    errors = login_failures(dc)
    # One line for each session (each in a login process of its own).
    assert len(errors) == 2, errors
    assert all("writing the log of a session that did not log in failed: "
               "out of memory: logging stopped" in e for e in errors), errors
    assert not CRASH.search(dc.log())
    # The process lives on: the next client logs in.
    c = RawClient(dc.imaps_port, tls=dc.ssl_context())
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    assert b"b OK" in c.imap("b", f"LOGIN alice {SECRET}".encode())
    c.imap("c", b"LOGOUT")
