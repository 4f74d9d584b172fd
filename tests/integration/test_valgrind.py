"""The imap, pop3, submission and lmtp processes run clean under valgrind
with rawlog_ext loaded."""
import inspect
import os
import pathlib
import shutil

import pytest

import test_imap
import test_lmtp
import test_login
import test_login_control
import test_pop3
import test_sealed
import test_submission
from test_sealed import keys  # noqa: F401 (fixture)
from test_lmtp import lmtp_dirs  # noqa: F401 (fixture)
from dovecot_fixture import line_under_test
from test_login import login_dir  # noqa: F401 (fixture)
from test_control import controlled  # noqa: F401 (fixture)
from test_control_redis import redis  # noqa: F401 (fixture)
from test_login_control import ctl_dir  # noqa: F401 (fixture)

VALGRIND = shutil.which("valgrind")
# Leaks of Dovecot itself, per line, that its later releases fixed.
SUPPRESSIONS = {"2.4": pathlib.Path(__file__).with_name("valgrind-dovecot-2.4.supp")}


MAIL_SERVICES = ("imap", "pop3", "submission", "lmtp")
LOGIN_SERVICES = ("imap-login", "pop3-login", "submission-login")


def _valgrind_wrapper(factory, rawlog_dir, services=MAIL_SERVICES):
    """(make, reports, instances): make(**kwargs) starts factory(**kwargs)
    with services run under valgrind."""
    if VALGRIND is None:
        pytest.skip("valgrind is not installed")
    reports = rawlog_dir.parent / (rawlog_dir.name + "-valgrind")
    reports.mkdir()
    reports.chmod(0o777)    # written by the mail users
    suppress = ""
    if line_under_test() in SUPPRESSIONS:
        # Beside the reports, under /tmp: visible inside a 2.4 tree too.
        supp = reports.parent / (reports.name + ".supp")
        shutil.copy(SUPPRESSIONS[line_under_test()], supp)
        supp.chmod(0o644)
        suppress = f"--suppressions={supp} "
    instances = []

    def make(**kwargs):
        # One lmtp process: a second one, still starting (slowly, under
        # valgrind) when Dovecot stops, would exit mid-init and "leak".
        # Login processes unchrooted: valgrind reads its own files late.
        conf = "".join(
            f"service {s} {{\n  executable = {VALGRIND} -q --vgdb=no --leak-check=full {suppress}"
            f"--log-file={reports}/{s}.%p /usr/lib/dovecot/{s}\n"
            + ("  process_limit = 1\n" if s == "lmtp" else "")
            + ("  chroot =\n" if s.endswith("-login") else "") + "}\n"
            for s in services)
        kwargs["extra_conf"] = kwargs.get("extra_conf", "") + conf
        instances.append(factory(**kwargs))
        return instances[-1]

    return make, reports, instances


def _check_reports(reports, instances):
    # Stopping Dovecot makes the processes exit: valgrind then checks leaks.
    for dc in instances:
        dc.stop()
    ran = {p.name.split(".")[0] for p in reports.iterdir()}
    problems = {p.name: p.read_text() for p in reports.iterdir() if p.read_text().strip()}
    shutil.rmtree(reports, ignore_errors=True)
    (reports.parent / (reports.name + ".supp")).unlink(missing_ok=True)
    assert problems == {}, "\n".join(f"== {k}\n{v}" for k, v in problems.items())
    assert ran, "valgrind never ran"


@pytest.fixture
def valgrind_dovecot(logged_dovecot, rawlog_dir):
    """Like logged_dovecot, with the mail processes run under valgrind; at
    teardown stops the instances and fails on any valgrind report."""
    make, reports, instances = _valgrind_wrapper(logged_dovecot, rawlog_dir)
    yield make
    _check_reports(reports, instances)


@pytest.fixture
def valgrind_factory(dovecot_factory, rawlog_dir):
    """Like dovecot_factory, under valgrind as valgrind_dovecot."""
    make, reports, instances = _valgrind_wrapper(dovecot_factory, rawlog_dir)
    yield make
    _check_reports(reports, instances)



def test_imap_session_is_valgrind_clean(valgrind_dovecot):
    dc = valgrind_dovecot()
    test_imap.full_session(dc.imap_port)


def test_compress_and_pop3_are_valgrind_clean(valgrind_dovecot, rawlog_dir, dovecot_factory):
    test_imap.test_compress_deflate_keeps_readable_protocol(valgrind_dovecot, rawlog_dir)
    for path in list(rawlog_dir.iterdir()):
        os.unlink(path)
    test_pop3.test_pop3_split_log_is_the_wire(valgrind_dovecot, rawlog_dir, dovecot_factory)


def test_sealed_imap_is_valgrind_clean(valgrind_dovecot, rawlog_dir, keys):
    """The seal module (and libcrypto) loaded, files sealed and finished."""
    test_sealed.test_imap_session_sealed_is_the_wire(valgrind_dovecot, rawlog_dir, keys,
                                                     "file")


def test_sealed_login_is_valgrind_clean(valgrind_login_factory, login_dir, keys):
    test_sealed.test_login_companion_sealed(valgrind_login_factory, login_dir, keys)


def test_submission_is_valgrind_clean(valgrind_dovecot, rawlog_dir):
    test_submission.test_submission_session_is_the_wire(valgrind_dovecot, rawlog_dir)


@pytest.fixture
def valgrind_login_factory(dovecot_factory, rawlog_dir):
    """Like dovecot_factory, with the login processes under valgrind."""
    make, reports, instances = _valgrind_wrapper(dovecot_factory, rawlog_dir,
                                                 LOGIN_SERVICES)
    yield make
    _check_reports(reports, instances)


def test_login_tls_and_proxy_are_valgrind_clean(valgrind_login_factory, login_dir):
    test_login.test_imap_tls_session_is_plaintext_to_logout(
        valgrind_login_factory, login_dir, "starttls")
    for p in list(login_dir.rglob("*")):
        if p.is_file():
            p.unlink()
    # port-login adds a "trusted" parameter; until that is merged both forms.
    trusted = ({"trusted": False} if "trusted" in inspect.signature(
        test_login.test_proxied_session_both_legs).parameters else {})
    test_login.test_proxied_session_both_legs(valgrind_login_factory, login_dir, True,
                                              **trusted)


def test_login_control_is_valgrind_clean(valgrind_login_factory, controlled,
                                         login_dir, rawlog_dir, redis, ctl_dir):
    """The companion asking the control dict: a held backend leg, answers
    after the client is gone, the byte count (only the proxy under
    valgrind; unchrooted, so the socket is found below $base_dir/login)."""
    test_login_control.test_one_enable_logs_proxy_and_backend(
        valgrind_login_factory, controlled, login_dir, rawlog_dir, redis)
    for p in list(login_dir.rglob("*"))[::-1]:
        p.rmdir() if p.is_dir() else p.unlink()
    test_login_control.test_file_dict_through_the_proxy_logs_a_local_login(
        valgrind_login_factory, login_dir, ctl_dir)


def test_login_pop3_and_submission_are_valgrind_clean(valgrind_login_factory, login_dir):
    test_login.test_pop3_pass_is_redacted(valgrind_login_factory, login_dir, "stls")
    for p in list(login_dir.rglob("*")):
        if p.is_file():
            p.unlink()
    test_login.test_submission_auth_is_redacted(valgrind_login_factory, login_dir, "starttls")


def test_submission_relay_is_valgrind_clean(valgrind_dovecot, rawlog_dir):
    test_submission.test_relay_leg_is_the_wire(valgrind_dovecot, rawlog_dir)


def test_lmtp_is_valgrind_clean(valgrind_factory, lmtp_dirs):
    test_lmtp.test_rejected_rcpt_rset_and_two_transactions(valgrind_factory, lmtp_dirs)


def test_lmtp_proxy_is_valgrind_clean(valgrind_factory, lmtp_dirs):
    test_lmtp.test_proxy_leg(valgrind_factory, lmtp_dirs)
