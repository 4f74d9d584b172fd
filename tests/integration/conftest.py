import contextlib
import os
import pathlib
import shutil
import tempfile

import pytest

from dovecot_fixture import ROOT_ENV, Dovecot, line_under_test

LOG_TAIL_LINES = 200
_instances_key = pytest.StashKey[list[Dovecot]]()

# The one place a test is skipped because of the Dovecot line under test:
# "file::test" (every parameter) or "file::test[param]" -> why, and who can
# remove the entry. Shrinks as the port lands; RAWLOG_EXT_RUN_SKIPPED=1
# runs the listed tests anyway (to see which entries can go).
NOT_ON_LINE = {
    "2.3": {
        "test_control.py::test_24_top_level_dict_is_not_a_control_dict":
            "2.4's named filters only (2.3 has one URI setting)",
    },
    "2.4": {
    },
}
RUN_SKIPPED_ENV = "RAWLOG_EXT_RUN_SKIPPED"


def pytest_addoption(parser):
    parser.addoption("--dovecot-root", metavar="TREE",
                     help=f"run against the Dovecot in this tree (a Debian 13 tree "
                          f"from scripts/dovecot24-tree.sh); same as {ROOT_ENV}=TREE")


def pytest_configure(config):
    root = config.getoption("--dovecot-root")
    if root:
        os.environ[ROOT_ENV] = root


def pytest_report_header(config):
    root = os.environ.get(ROOT_ENV)
    return f"Dovecot line under test: {line_under_test()}" + (f" (in {root})" if root else "")


@pytest.hookimpl(tryfirst=True)    # before -k/--deselect drop any
def pytest_collection_modifyitems(config, items):
    if os.environ.get(RUN_SKIPPED_ENV) == "1":
        return
    line = line_under_test()
    listed = NOT_ON_LINE.get(line, {})
    used = set()
    for item in items:
        base = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        for key in (f"{item.path.name}::{item.name}", base):
            if key in listed:
                used.add(key)
                item.add_marker(pytest.mark.skip(reason=f"not on Dovecot {line}: {listed[key]}"))
                break
    # A stale entry (renamed test) would hide nothing but mislead: refuse it
    # when the whole suite was collected.
    if not config.args or all(pathlib.Path(a).resolve() == pathlib.Path(__file__).parent
                              for a in config.args):
        stale = set(listed) - used
        if stale:
            raise pytest.UsageError(f"NOT_ON_LINE[{line!r}] names no collected test: {sorted(stale)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    # Attach the logs to the failing report itself: output printed during
    # teardown would not be shown for a test whose call phase failed.
    if report.failed:
        for dc in item.stash.get(_instances_key, []):
            tail = "\n".join(dc.log().splitlines()[-LOG_TAIL_LINES:])
            report.sections.append(
                (f"dovecot log {dc.base} (last {LOG_TAIL_LINES} lines)", tail))


@pytest.fixture
def dovecot_factory(request):
    """Returns make(start=True, **Dovecot kwargs) -> Dovecot.

    Instances live in /tmp/rawlog-ext-*: pytest's tmp_path sits below a 0700
    dir the unprivileged Dovecot processes cannot enter.
    """
    instances = request.node.stash.setdefault(_instances_key, [])
    # ExitStack runs every cleanup even if one of them raises.
    with contextlib.ExitStack() as cleanup:
        def make(start: bool = True, **kwargs) -> Dovecot:
            tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-"))
            if os.environ.get("KEEP_TMP") != "1":
                cleanup.callback(shutil.rmtree, tmpdir)
            dc = Dovecot(tmpdir, **kwargs)
            instances.append(dc)
            cleanup.callback(dc.stop)
            if start:
                dc.start()
            return dc

        yield make


@pytest.fixture
def rawlog_dir():
    """A log directory the mail users (uid 65534) can write to."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-logs-"))
    path.chmod(0o755)
    os.chown(path, 65534, 65534)
    yield path
    if os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def logged_dovecot(dovecot_factory, rawlog_dir):
    """make(**overrides): a started Dovecot with rawlog_ext logging alice to rawlog_dir."""
    from dovecot_fixture import User

    def make(plugin=None, users=None, **kwargs):
        settings = {"rawlog_ext_dir": str(rawlog_dir)}
        settings.update(plugin or {})
        kwargs.setdefault("mail_plugins", "$mail_plugins rawlog_ext")
        return dovecot_factory(plugin=settings,
                               users=users or [User("alice"), User("bob")],
                               **kwargs)
    return make
