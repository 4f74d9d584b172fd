import contextlib
import os
import pathlib
import shutil
import tempfile

import pytest

from dovecot_fixture import Dovecot

LOG_TAIL_LINES = 200
_instances_key = pytest.StashKey[list[Dovecot]]()


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
