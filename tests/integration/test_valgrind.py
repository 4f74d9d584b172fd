"""The imap, pop3 and submission processes run clean under valgrind with
rawlog_ext loaded."""
import os
import shutil

import pytest

import test_imap
import test_pop3
import test_submission

VALGRIND = shutil.which("valgrind")


@pytest.fixture
def valgrind_dovecot(logged_dovecot, rawlog_dir):
    """Like logged_dovecot, with imap and pop3 run under valgrind; at teardown
    stops the instances and fails on any valgrind report."""
    if VALGRIND is None:
        pytest.skip("valgrind is not installed")
    reports = rawlog_dir.parent / (rawlog_dir.name + "-valgrind")
    reports.mkdir()
    reports.chmod(0o777)    # written by the mail user
    instances = []

    def make(**kwargs):
        services = "".join(
            f"service {s} {{\n  executable = {VALGRIND} -q --vgdb=no --leak-check=full "
            f"--log-file={reports}/{s}.%p /usr/lib/dovecot/{s}\n}}\n"
            for s in ("imap", "pop3", "submission"))
        kwargs["extra_conf"] = kwargs.get("extra_conf", "") + services
        instances.append(logged_dovecot(**kwargs))
        return instances[-1]

    yield make
    # Stopping Dovecot makes the processes exit: valgrind then checks leaks.
    for dc in instances:
        dc.stop()
    ran = {p.name.split(".")[0] for p in reports.iterdir()}
    problems = {p.name: p.read_text() for p in reports.iterdir() if p.read_text().strip()}
    shutil.rmtree(reports, ignore_errors=True)
    assert problems == {}, "\n".join(f"== {k}\n{v}" for k, v in problems.items())
    assert ran, "valgrind never ran"


def test_imap_session_is_valgrind_clean(valgrind_dovecot):
    dc = valgrind_dovecot()
    test_imap.full_session(dc.imap_port)


def test_compress_and_pop3_are_valgrind_clean(valgrind_dovecot, rawlog_dir, dovecot_factory):
    test_imap.test_compress_deflate_keeps_readable_protocol(valgrind_dovecot, rawlog_dir)
    for path in list(rawlog_dir.iterdir()):
        os.unlink(path)
    test_pop3.test_pop3_split_log_is_the_wire(valgrind_dovecot, rawlog_dir, dovecot_factory)


def test_submission_is_valgrind_clean(valgrind_dovecot, rawlog_dir):
    test_submission.test_submission_session_is_the_wire(valgrind_dovecot, rawlog_dir)
