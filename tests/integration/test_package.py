"""The Debian package, as an admin uses it: build it from this tree, install
it with apt-get, run a Dovecot whose config includes the installed conf.d
file, see an IMAP session logged by the installed module, then remove and
purge it.

Needs root on Debian/Ubuntu with apt (it installs and purges the package,
and installs missing build dependencies); skipped elsewhere. It refuses to
touch a dovecot-rawlog-ext the machine already has installed.

Against Dovecot 2.4 (RAWLOG_EXT_DOVECOT_ROOT, the shared Debian 13 tree)
all of it happens in a private, throw-away copy of that tree: an overlayfs
over it, mounted under /tmp for this test only, in which the build
dependencies and the package are installed; the tree itself is not written.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from dovecot_fixture import (_CHROOT_SCRIPT, DOVEADM_PLUGIN_SO, PLUGIN_SO, ROOT_ENV, User,
                             line_under_test)
from rawlog import imap_login, log_files, session_files, strip_timestamps, wait_closed
from test_login import login_user
from test_sealed import age_decrypt_complete

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = "dovecot-rawlog-ext"
MODULE = pathlib.Path("/usr/lib/dovecot/modules") / PLUGIN_SO
# Loaded by the plugins on the first sealed log (libcrypto is its alone).
SEAL_MODULE = pathlib.Path("/usr/lib/dovecot/modules/rawlog_ext_seal.so")
SETTINGS_MODULE = pathlib.Path("/usr/lib/dovecot/modules/settings/lib90_rawlog_ext_settings.so")
# 2.4: the admin's settings, read only through LOADER (see debian/make-conffile).
SETTINGS_CONFFILE = pathlib.Path("/etc/dovecot/rawlog_ext.conf")
CONFFILE = pathlib.Path("/etc/dovecot/conf.d/90-rawlog_ext.conf")
LOADER = pathlib.Path("/usr/share/dovecot-rawlog-ext/mail-plugins.conf")
DOCDIR = pathlib.Path("/usr/share/doc/dovecot-rawlog-ext")
DOVECOT_ABI = pathlib.Path("/usr/share/dovecot/dovecot-abi")
POLICY_RC_D = pathlib.Path("/usr/sbin/policy-rc.d")
# What dpkg-buildpackage needs beyond debian/control's Build-Depends
# (debhelper brings dh-autoreconf, autoconf, automake, libtool).
BUILD_PACKAGES = ["build-essential", "dpkg-dev", "debhelper", "dovecot-dev",
                  "libcmocka-dev", "pkg-config", "valgrind"]

BUILD_TIMEOUT = 600
APT_TIMEOUT = 300
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
APT_OPTS = ["-y", "-q", "-o", "DPkg::Lock::Timeout=120"]


class Host:
    """The system the package is built, installed and used on: this machine."""
    root = None

    def path(self, path) -> pathlib.Path:
        return pathlib.Path(path)

    def argv(self, argv, cwd=None, env=None) -> list[str]:
        return [str(a) for a in argv]

    def close(self) -> None:
        pass


class TreeCopy(Host):
    """2.4: a writable overlay of the Debian 13 tree at base/root, in this
    (host) mount namespace while the test runs; commands run chrooted in it,
    with the host's /tmp (where the work dir is) at the same path."""

    def __init__(self, tree: pathlib.Path, base: pathlib.Path):
        self.root = base / "root"
        for d in ("upper", "work", "root"):
            (base / d).mkdir()
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={tree},upperdir={base}/upper,workdir={base}/work",
                        str(self.root)], check=True, capture_output=True)

    def path(self, path) -> pathlib.Path:
        return self.root / pathlib.Path(path).relative_to("/")

    def argv(self, argv, cwd=None, env=None) -> list[str]:
        """env: only DEB_BUILD_OPTIONS is passed on (the rest is the tree's)."""
        opts = (env or os.environ).get("DEB_BUILD_OPTIONS")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _CHROOT_SCRIPT,
                "sh", str(self.root), "/tmp", "/tmp", "--",
                "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
                *([f"DEB_BUILD_OPTIONS={opts}"] if opts else []),
                "sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(cwd or "/"),
                *map(str, argv)]

    def close(self) -> None:
        subprocess.run(["umount", str(self.root)], check=False, capture_output=True)
        if os.path.ismount(self.root):
            subprocess.run(["umount", "-l", str(self.root)], check=False)


SYSTEM: Host = Host()


def run(cmd, timeout=APT_TIMEOUT, check=True, cwd=None, **kwargs):
    """cmd on the system under test (this machine, or the tree copy)."""
    if SYSTEM.root is None:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, cwd=cwd, **kwargs)
    else:
        proc = subprocess.run(SYSTEM.argv(cmd, cwd, kwargs.pop("env", None)),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              **kwargs)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                    f"{proc.stdout[-6000:]}")
    return proc


def dpkg_status(pkg: str) -> str:
    """"install ok installed", "deinstall ok config-files", ... or ""."""
    proc = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False, timeout=60)
    status = proc.stdout.strip() if proc.returncode == 0 else ""
    return "" if status.endswith("not-installed") or "no packages found" in status else status


@contextlib.contextmanager
def no_service_starts():
    """As scripts/setup.sh: keep package installs from starting services."""
    policy = SYSTEM.path(POLICY_RC_D)
    added = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        added = True
    try:
        yield
    finally:
        if added:
            policy.unlink(missing_ok=True)


def apt_get(*args):
    with no_service_starts():
        return run(["apt-get", *APT_OPTS, *args], env=APT_ENV)


def ensure_build_packages() -> None:
    # The tree copy is thrown away: lintian costs nothing to install there.
    wanted = BUILD_PACKAGES + (["lintian"] if SYSTEM.root is not None else [])
    missing = [p for p in wanted if not dpkg_status(p).startswith("install ok")]
    if not missing:
        return
    with no_service_starts():
        update = run(["apt-get", "-q", "update"], env=APT_ENV, check=False)
        install = run(["apt-get", *APT_OPTS, "install", "--no-install-recommends",
                       *missing], env=APT_ENV, check=False)
    if update.returncode != 0 or install.returncode != 0:
        pytest.skip(f"cannot install the build dependencies {missing} with apt-get:\n"
                    f"{(update.stdout + install.stdout)[-2000:]}")


def copy_source_tree(dest: pathlib.Path) -> None:
    """The working tree as git sees it (tracked plus untracked, not ignored):
    no build output, and uncommitted edits included."""
    listing = None
    if (REPO / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if proc.returncode == 0:
            listing = [p for p in proc.stdout.decode().split("\0") if p]
    if listing is None:
        # Not a git checkout (e.g. an unpacked dist tarball).
        shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build", "build-*", "__pycache__", ".pytest_cache"))
        return
    dest.mkdir()
    for rel in listing:
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def build_deb(workdir: pathlib.Path) -> pathlib.Path:
    src = workdir / PACKAGE
    copy_source_tree(src)
    checked = run(["dpkg-checkbuilddeps"], cwd=src, check=False)
    if checked.returncode != 0:
        pytest.skip(f"build dependencies not satisfiable here: {checked.stdout.strip()}")
    env = dict(os.environ)
    env.setdefault("DEB_BUILD_OPTIONS", f"parallel={os.cpu_count() or 1}")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
        timeout=BUILD_TIMEOUT)
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, sorted(p.name for p in workdir.iterdir())
    # apt's _apt user fetches local .debs; let it read them.
    workdir.chmod(0o755)
    return debs[0]


def doveconf(dc, *args) -> subprocess.CompletedProcess:
    return subprocess.run(dc.command("doveconf", "-c", str(dc.conf_path), *args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=30)


def active_lines(path: pathlib.Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.fixture
def package_env():
    global SYSTEM
    if os.geteuid() != 0:
        pytest.skip("needs root: installs and purges a package with apt-get")
    if not (REPO / "debian" / "control").exists():
        pytest.skip(f"no debian/ directory in {REPO}")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-pkg-"))
    if os.environ.get(ROOT_ENV):
        workdir.chmod(0o755)    # the tree's _apt reads the .deb below it
        (workdir / "tree").mkdir()
        SYSTEM = TreeCopy(pathlib.Path(os.environ[ROOT_ENV]), workdir / "tree")
        workdir = workdir / "build"
        workdir.mkdir()
    try:
        if not SYSTEM.path("/etc/debian_version").exists() or \
                not SYSTEM.path("/usr/bin/apt-get").exists():
            pytest.skip("not a Debian/Ubuntu system with apt-get")
        if not SYSTEM.path("/usr/sbin/dovecot").exists():
            pytest.skip("Dovecot (dovecot-core) is not installed")
        status = dpkg_status(PACKAGE)
        if status:
            pytest.skip(f"{PACKAGE} is already on this machine ({status}); the test "
                        f"would replace and purge it: run 'apt-get purge {PACKAGE}' first")
        ensure_build_packages()
        for tool in ("dpkg-buildpackage", "dpkg-checkbuilddeps", "dh"):
            if not SYSTEM.path(f"/usr/bin/{tool}").exists():
                pytest.skip(f"{tool} not found (dpkg-dev, debhelper)")
        yield workdir
    finally:
        # Whatever happened: no package left behind for the other tests'
        # Dovecot instances (they link every module in /usr/lib/dovecot/modules).
        if SYSTEM.root is None and dpkg_status(PACKAGE):
            with no_service_starts():
                run(["apt-get", *APT_OPTS, "purge", PACKAGE], env=APT_ENV, check=False)
        SYSTEM.close()
        SYSTEM = Host()
        if os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(workdir if not os.environ.get(ROOT_ENV) else workdir.parent,
                          ignore_errors=True)


def test_deb_install_log_remove_purge(package_env, dovecot_factory, rawlog_dir,
                                      monkeypatch):
    line = line_under_test()
    P = SYSTEM.path     # a path of the system under test, seen from here
    deb = build_deb(package_env)
    # lintian, as the issue asks: no errors, no warnings (overridden only on
    # 2.4: the data-only settings module links no library, see
    # debian/rules). It is slow to install, so only when it is there.
    if P("/usr/bin/lintian").exists():
        changes = sorted(package_env.glob(f"{PACKAGE}_*.changes"))
        linted = run(["lintian", "--allow-root", "--fail-on", "error,warning",
                      *map(str, changes)], check=False, timeout=BUILD_TIMEOUT)
        assert linted.returncode == 0, linted.stdout
    apt_get("install", "--no-install-recommends", str(deb))
    assert dpkg_status(PACKAGE) == "install ok installed"

    # --- what is installed where --------------------------------------
    listed = set(run(["dpkg", "-L", PACKAGE]).stdout.split())
    # 2.4: the settings module comes and goes with the plugin, and the
    # admin's settings are a conffile of their own (see debian/make-conffile).
    ours = [MODULE, SEAL_MODULE, CONFFILE, LOADER, DOCDIR / "copyright",
            pathlib.Path("/usr/bin/rawlog-ext-view"),
            pathlib.Path("/usr/share/man/man1/rawlog-ext-view.1.gz")]
    if line != "2.3":
        ours += [SETTINGS_MODULE, SETTINGS_CONFFILE]
    for path in ours:
        assert str(path) in listed, sorted(listed)
        assert P(path).is_file(), path
    assert not [p for p in listed if p.endswith(".la")], listed
    # doveadm rawlog prune's daily timer: installed, not enabled.
    for unit in ("rawlog-ext-prune.service", "rawlog-ext-prune.timer"):
        assert [p for p in listed if p.endswith("/systemd/system/" + unit)], sorted(listed)
    assert not P("/etc/systemd/system/timers.target.wants/rawlog-ext-prune.timer").exists()
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout.split()
    assert sorted(conffiles[0::2]) == sorted(
        [str(CONFFILE)] + ([str(SETTINGS_CONFFILE)] if line != "2.3" else [])), conffiles
    depends = run(["dpkg-query", "-W", "-f=${Depends}", PACKAGE]).stdout
    assert f"dovecot-abi-{P(DOVECOT_ABI).read_text().strip()}" in depends, depends
    # libcrypto (the seal module's), found by dpkg-shlibdeps: libssl3 on
    # Debian 12, libssl3t64 on 13.
    assert re.search(r"\blibssl3(t64)?\b", depends), depends
    # Logging off until the admin sets a directory: the conffile sets no
    # rawlog_ext_* setting, it only pulls in the package's loader snippet.
    active = active_lines(P(CONFFILE))
    assert f"!include_try {LOADER}" in active, active
    assert not [line for line in active if "rawlog_ext_" in line or "mail_plugins" in line]
    if line == "2.3":
        assert active_lines(P(LOADER)) == ["mail_plugins = $mail_plugins rawlog_ext"]
    else:
        assert active_lines(P(LOADER)) == ["mail_plugins {", "rawlog_ext = yes", "}",
                                           f"!include_try {SETTINGS_CONFFILE}"]
        assert active_lines(P(SETTINGS_CONFFILE)) == []

    # --- a Dovecot including the installed conf.d file ---------------------
    # The fixture links every module of /usr/lib/dovecot/modules into its
    # private mail_plugin_dir; without RAWLOG_EXT_MODULE_DIR it adds no
    # module of its own, so the installed one is what gets loaded.
    monkeypatch.delenv("RAWLOG_EXT_MODULE_DIR", raising=False)
    include = f"!include {CONFFILE}\n"
    if line == "2.3":
        setting = {"rawlog_ext_dir": str(rawlog_dir)}
    else:
        # As an admin: in the settings conffile, which only the loader reads.
        setting = None
        with P(SETTINGS_CONFFILE).open("a") as f:
            f.write(f"rawlog_ext_dir = {rawlog_dir}\n")
    dc = dovecot_factory(plugin=setting, users=[User("alice")], extra_conf=include,
                         root=SYSTEM.root)
    assert os.readlink(dc.plugin_dir / PLUGIN_SO) == str(MODULE)
    for proto in ("imap", "pop3"):
        conf = doveconf(dc, "-f", f"protocol={proto}", "-h", "mail_plugins")
        # 2.4 prints the boolean list's entries: "rawlog_ext = yes".
        assert (conf.returncode, conf.stdout.split()) == (
            0, ["rawlog_ext"] if line == "2.3" else ["rawlog_ext", "=", "yes"]), conf.stdout
    conf = doveconf(dc, "-n")
    assert conf.returncode == 0 and "Warning" not in conf.stdout, conf.stdout
    # The only rawlog_ext_* setting is the one the test made.
    assert re.findall(r"^\s*(rawlog_ext_\w+)", conf.stdout, re.M) == ["rawlog_ext_dir"]

    c, sent_from, received_from = imap_login(dc.imap_port, pipelined=b"p NOOP\r\n")
    c.read_until(rb"^p OK[^\r\n]*\r\n", received_from)
    c.imap("s", b"SELECT INBOX")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    files = session_files(rawlog_dir, "imap")
    assert set(files) == {".in", ".out"}
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(c.received[received_from:])
    # doveadm loads mail_plugins too: the module must load there.
    listing = subprocess.run(
        dc.command("doveadm", "-c", str(dc.conf_path), "mailbox", "list", "-u", "alice"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert (listing.returncode, listing.stdout.split()) == (0, ["INBOX"]), listing.stdout
    # The installed doveadm plugin: doveadm knows its commands (no control
    # dict is configured here: exit 78, EX_CONFIG, and says so).
    rawlog = subprocess.run(
        dc.command("doveadm", "-c", str(dc.conf_path), "rawlog", "list"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert rawlog.returncode == 78 and "no control dict" in rawlog.stdout, rawlog.stdout
    prune = subprocess.run(
        dc.command("doveadm", "-c", str(dc.conf_path), "rawlog", "prune",
                   "--older-than", "30d", str(rawlog_dir)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert prune.returncode == 0 and files[".in"].exists(), prune.stdout
    dc.wait_log(r"imap\(alice\).*(Disconnected|Logged out)")
    assert not re.search(r"Error|Fatal|Panic", dc.log()), dc.log()
    dc.stop()

    # --- sealed: the installed login companion finds the seal module ------
    # ($(moduledir)/login/.. : the one place the build tree does not show)
    key_dir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-keys-"))
    login_dir = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-login-"))
    try:
        subprocess.run(["age-keygen", "-o", str(key_dir / "key")], check=True,
                       capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(key_dir / "key")], check=True,
                                   capture_output=True, text=True).stdout.strip()
        os.chown(login_dir, *login_user())
        login_dir.chmod(0o700)
        dc = dovecot_factory(plugin=setting, users=[User("alice", extra="rawlog_ext=yes")],
                             extra_conf=include + "login_trusted_networks =\n",
                             login_env={"RAWLOG_EXT_LOGIN_DIR": str(login_dir),
                                        "RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT": "yes",
                                        "RAWLOG_EXT_LOGIN_SEAL_RECIPIENTS": recipient},
                             root=SYSTEM.root)
        c, _, _ = imap_login(dc.imap_port)
        c.imap("x", b"LOGOUT")
        wait_closed(c)
        dc.wait_log(r"imap-login: .*(Login|Logged in): user=<alice>")
        sealed = log_files(login_dir)
        assert sealed and all(p.name.endswith(".age") for p in sealed), sealed
        plain = {p.name.split(".")[-2]: age_decrypt_complete(p, key_dir / "key").stdout
                 for p in sealed}
        assert b"L LOGIN alice ***\r\n" in plain["in"], plain
        assert b"* OK" in plain["out"], plain
        assert not re.search(r"Error|Fatal|Panic", dc.log()), dc.log()
        dc.stop()
    finally:
        shutil.rmtree(key_dir, ignore_errors=True)
        shutil.rmtree(login_dir, ignore_errors=True)
    logged = log_files(rawlog_dir)

    # --- remove: the edited-or-not conffile stays, the module is gone --------
    apt_get("remove", PACKAGE)
    assert dpkg_status(PACKAGE) == "deinstall ok config-files"
    assert P(CONFFILE).is_file()
    assert not P(MODULE).exists() and not P(LOADER).exists()
    # A Dovecot still including the left-over conffile works, without the
    # module: no mail_plugins entry names the missing module (2.4: and the
    # left-over settings conffile, rawlog_ext_dir set, is no longer read).
    after_remove = rawlog_dir / "after-remove"
    after_remove.mkdir()
    os.chown(after_remove, 65534, 65534)
    if line == "2.3":
        setting = {"rawlog_ext_dir": str(after_remove)}
    else:
        assert P(SETTINGS_CONFFILE).is_file() and not P(SETTINGS_MODULE).exists()
        with P(SETTINGS_CONFFILE).open("a") as f:
            f.write(f"rawlog_ext_dir = {after_remove}\n")
    dc = dovecot_factory(plugin=setting, users=[User("alice")], extra_conf=include,
                         root=SYSTEM.root)
    assert not (dc.plugin_dir / PLUGIN_SO).exists()
    c, _, _ = imap_login(dc.imap_port)
    assert b"initialization failed" not in c.received, bytes(c.received)
    c.imap("n", b"NOOP")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*(Disconnected|Logged out)")
    assert not re.search(r"Error|Fatal", dc.log()), dc.log()
    dc.stop()
    assert log_files(after_remove) == []

    # --- purge: nothing of the package is left; the logs are -----------------
    apt_get("purge", PACKAGE)
    assert dpkg_status(PACKAGE) == ""
    for path in ours + [LOADER.parent]:
        assert not P(path).exists(), path
    assert log_files(rawlog_dir) == logged


def test_rpm_builds_for_the_line_and_its_config_loads(tmp_path, dovecot_factory,
                                                     rawlog_dir, monkeypatch):
    """The spec (shipped in make dist's tarball) builds a binary rpm against
    this line's Dovecot (on 2.4 in a throw-away copy of the tree): the
    line's modules, its config file (module on, every setting commented), and
    a Dovecot that includes that file and uses the rpm's modules logs."""
    global SYSTEM
    line = line_under_test()
    tarballs = sorted((REPO / "build").glob(f"{PACKAGE}-*.tar.gz"))
    if not tarballs:
        pytest.skip("no release tarball: run make dist (scripts/test.sh does) first")
    if os.environ.get(ROOT_ENV):
        if os.geteuid() != 0:
            pytest.skip("needs root: mounts an overlay of the Debian 13 tree")
        tmp_path.chmod(0o755)
        (tmp_path / "tree").mkdir()
        SYSTEM = TreeCopy(pathlib.Path(os.environ[ROOT_ENV]), tmp_path / "tree")
    try:
        if not SYSTEM.path("/usr/bin/rpmbuild").exists():
            pytest.skip("rpmbuild is not installed (Debian package: rpm)")
        work = tmp_path / "rpm"
        work.mkdir()
        tarball = work / tarballs[-1].name
        shutil.copy2(tarballs[-1], tarball)
        top = work / "top"
        # --nodeps: Debian has no dovecot-devel rpm; --nocheck: the unit
        # tests run in their own stage; --noclean keeps the buildroot.
        run(["rpmbuild", "-tb", "--nodeps", "--nocheck", "--noclean",
             "--define", f"_topdir {top}",
             "--define", "dovecot_dir /usr/lib/dovecot",
             "--define", "dovecot_moduledir /usr/lib/dovecot/modules", str(tarball)],
            timeout=BUILD_TIMEOUT)
        rpms = sorted((top / "RPMS").glob(f"*/{PACKAGE}-[0-9]*.rpm"))
        assert len(rpms) == 1, sorted(map(str, (top / "RPMS").rglob("*")))
        listed = set(run(["rpm", "-qpl", str(rpms[0])]).stdout.split())
        modules = pathlib.Path("/usr/lib/dovecot/modules")
        wanted = {str(modules / PLUGIN_SO), str(modules / "login" / "lib20_rawlog_ext_login_plugin.so"),
                  str(SEAL_MODULE), str(modules / "doveadm" / DOVEADM_PLUGIN_SO),
                  str(CONFFILE), "/usr/bin/rawlog-ext-view"}
        settings = {str(SETTINGS_MODULE),
                    str(modules / "settings" / "lib90_rawlog_ext_login_settings.so")}
        assert wanted <= listed, sorted(listed)
        if line == "2.3":
            assert not settings & listed, sorted(listed)
        else:
            assert settings <= listed, sorted(listed)
        assert not [p for p in listed if p.endswith(".la")], listed
        assert [p for p in listed if re.fullmatch(r"/usr/share/man/man1/rawlog-ext-view\.1.*", p)]
        assert {"/usr/lib/systemd/system/rawlog-ext-prune.service",
                "/usr/lib/systemd/system/rawlog-ext-prune.timer"} <= listed, sorted(listed)
        assert run(["rpm", "-qpc", str(rpms[0])]).stdout.split() == [str(CONFFILE)]

        # The rpm's files as installed, from its buildroot (rpm 4.20, Debian
        # 13: under BUILD/; before: BUILDROOT/).
        conffiles = list(top.rglob(str(CONFFILE.relative_to("/"))))
        assert len(conffiles) == 1, conffiles
        conffile = conffiles[0]
        roots = [conffile.parents[len(CONFFILE.parents) - 1]]
        active = active_lines(conffile)
        if line == "2.3":
            assert active == ["mail_plugins = $mail_plugins rawlog_ext", "plugin {", "}"]
        else:
            assert active == ["mail_plugins {", "rawlog_ext = yes", "}"]
        flat = tmp_path / "modules"
        flat.mkdir()
        for so in (roots[0] / modules.relative_to("/")).rglob("*.so"):
            shutil.copy2(so, flat / so.name)
        monkeypatch.setenv("RAWLOG_EXT_MODULE_DIR", str(flat))
        dc = dovecot_factory(plugin={"rawlog_ext_dir": str(rawlog_dir)},
                             users=[User("alice")], extra_conf=f"!include {conffile}\n",
                             root=SYSTEM.root)
        assert os.readlink(dc.plugin_dir / PLUGIN_SO) == str(flat / PLUGIN_SO)
        conf = doveconf(dc, "-n")
        assert conf.returncode == 0 and "Warning" not in conf.stdout, conf.stdout
        c, sent_from, received_from = imap_login(dc.imap_port)
        c.imap("x", b"LOGOUT")
        wait_closed(c)
        dc.wait_log(r"imap\(alice\).*(Disconnected|Logged out)")
        files = session_files(rawlog_dir, "imap")
        assert set(files) == {".in", ".out"}
        assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
        assert strip_timestamps(files[".out"].read_bytes()) == bytes(c.received[received_from:])
        assert not re.search(r"Error|Fatal|Panic", dc.log()), dc.log()
    finally:
        SYSTEM.close()
        SYSTEM = Host()
