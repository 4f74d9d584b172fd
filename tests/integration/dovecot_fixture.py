"""Run a private, throw-away Dovecot 2.3 instance for integration tests.

Everything (config, sockets, state, log, mail homes) lives in one temp dir and
all listeners are on 127.0.0.1 with random ports, so several instances can run
side by side without touching the system Dovecot (/etc/dovecot, /run/dovecot,
standard ports).

Dovecot 2.4 in a Debian 13 tree (scripts/dovecot24-tree.sh): with
root=<tree> (or RAWLOG_EXT_DOVECOT_ROOT=<tree>) the instance runs as
`chroot <tree> dovecot`, in a private mount namespace in which the host's /tmp
(and the module dir, if any) is bind-mounted at the same path, so every path
a test uses means the same file on the host and inside. The config is then
rendered in 2.4 syntax (line="2.4", detected from the tree's dovecot).
Users keep uid/gid 65534, which is nobody/nogroup on both sides; the
'dovecot'/'dovenull' users are the tree's, whose uids differ from the host's.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time

DOVECOT_BIN = "/usr/sbin/dovecot"
SYSTEM_MODULE_DIR = pathlib.Path("/usr/lib/dovecot/modules")
# A Debian 13 tree with Dovecot 2.4 (scripts/dovecot24-tree.sh) to run in.
ROOT_ENV = "RAWLOG_EXT_DOVECOT_ROOT"
PLUGIN_SO = "lib90_rawlog_ext_plugin.so"
# 2.4 only: declares the plugin's settings to doveconf. Dovecot loads it
# only from SETTINGS_MODULE_DIR, so the fixture bind-mounts a private copy
# of that dir holding it (in the instance's own mount namespace).
SETTINGS_SO = "lib90_rawlog_ext_settings.so"
SETTINGS_GLOB = "lib*_rawlog_ext*_settings.so"
SETTINGS_MODULE_DIR = SYSTEM_MODULE_DIR / "settings"
LOGIN_PLUGIN_SO = "lib20_rawlog_ext_login_plugin.so"
# doveadm loads plugins only from this compiled-in dir (both lines): doveadm()
# bind-mounts a private one holding ours over it, in a private namespace.
DOVEADM_PLUGIN_SO = "lib10_doveadm_rawlog_ext_plugin.so"
DOVEADM_MODULE_DIR = SYSTEM_MODULE_DIR / "doveadm"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Login service and inet listener name per protocol.
_LISTENERS = {
    "imap": ("imap-login", "imap"),
    "pop3": ("pop3-login", "pop3"),
    "lmtp": ("lmtp", "lmtp"),
    "submission": ("submission-login", "submission"),
}


@dataclasses.dataclass
class User:
    name: str
    password: str = "pass"
    uid: int = 65534
    gid: int = 65534
    home: pathlib.Path | None = None
    # Appended to the passwd-file extra-fields column (space separated,
    # "userdb_" prefix for userdb fields).
    extra: str = ""


def _safe_name(name: str) -> str:
    """Injective mapping of any user name to one path component."""
    return "".join(
        c if c.isascii() and (c.isalnum() or c == "-")
        else "".join(f"_{b:02x}" for b in c.encode())
        for c in name
    )


def _free_ports(count: int) -> list[int]:
    # Keep all sockets bound until every port is picked so they are distinct.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening_ports() -> set[int]:
    # Checked in /proc rather than by connecting: a probe connection would
    # leave "Disconnected" lines in the log that tests may assert on.
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, _remote, state = line.split()[1:4]
            if state == "0A":  # TCP_LISTEN
                ports.add(int(local.rpartition(":")[2], 16))
    return ports


def _session_procs(sid: int) -> dict[int, str]:
    """pid -> comm of the live (non-zombie) processes in session `sid`."""
    procs = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # comm may contain spaces/parens; fields after the last ')' are fixed.
        head, _, tail = stat.rpartition(")")
        state, _ppid, _pgrp, session = tail.split()[:4]
        if int(session) == sid and state != "Z":
            procs[int(entry.name)] = head.partition("(")[2]
    return procs


def _signal(pids, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def dovecot_line(root: str | None = None) -> str:
    """'2.3' or '2.4': the release line of the Dovecot in `root` (None: the host's)."""
    argv = [DOVECOT_BIN, "--version"]
    if root is not None:
        argv = ["chroot", str(root)] + argv
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    m = re.match(r"(\d+\.\d+)\.", out)
    if m is None:
        raise RuntimeError(f"unexpected `dovecot --version` output: {out!r}")
    return m.group(1)


_LINE_UNDER_TEST: str | None = None


def line_under_test() -> str:
    """The line the suite runs against: the tree's in RAWLOG_EXT_DOVECOT_ROOT,
    else the host's 2.3."""
    global _LINE_UNDER_TEST
    if _LINE_UNDER_TEST is None:
        root = os.environ.get(ROOT_ENV) or None
        _LINE_UNDER_TEST = "2.3" if root is None else dovecot_line(root)
    return _LINE_UNDER_TEST


# 2.4 variable -> its 2.3 spelling. Only what the tests use; anything else
# is an error so a test never silently gets the wrong spelling.
_VARS_23 = {
    "user": "%u",
    "user | username": "%n",
    "user | domain": "%d",
    "user | username | lower": "%Ln",
    "service": "%s",
    "home": "%h",
}


def conf_value(template: str, line: str | None = None) -> str:
    """A setting value written once with 2.4's %{...} variables, spelt for
    `line` (default: the line under test): %{user} is %u on 2.3.
    %{userdb:x} and %% are the same on both."""
    line = line or line_under_test()
    if line != "2.3":
        return template

    def sub(m: re.Match) -> str:
        name = m.group(1).strip()
        if name.startswith("userdb:"):
            return m.group(0)
        if name not in _VARS_23:
            raise ValueError(f"no 2.3 spelling known for %{{{name}}}")
        return _VARS_23[name]
    return re.sub(r"%\{([^}]*)\}", sub, template)


def for_line(on_23, on_24):
    """The value for the line under test: for what has no common spelling
    (service_count vs restart_request_count, imap_zlib vs built-in COMPRESS)."""
    return on_23 if line_under_test() == "2.3" else on_24


def login_info(user: str, service: str = "imap") -> str:
    """Regex of the login process's line for a successful login of user;
    ".*mpid=(\\d+)" after it finds the mail process."""
    said = "Login" if line_under_test() == "2.3" else "Logged in"
    return rf"{service}-login: Info: {said}: user=<{re.escape(user)}>"


def _mail_plugin_names(mail_plugins: str) -> list[str]:
    """2.3's space-separated mail_plugins value, without "$mail_plugins"."""
    return [p for p in mail_plugins.split() if p != "$mail_plugins"]


# Run as `sh -c SCRIPT sh ROOT HOSTDIR TREEDIR... -- DOVECOT ARGS...` inside
# `unshare -m`: each host dir is bind-mounted at that path in the tree; the
# mounts exist only in that private namespace and vanish with its last
# process; the exec chain keeps the master's pid (and session) = Popen's.
_CHROOT_SCRIPT = r"""
set -e
umask 022
root=$1; shift
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
# Mount points a bind needs stay behind in the tree (removing one later
# would detach the same mount in another instance's namespace).
# --rbind: what tests mount below a shared dir (a tmpfs under /tmp) too.
while [ "$1" != -- ]; do
  mkdir -p "$root$2"
  mount --rbind "$1" "$root$2"
  shift 2
done
shift
exec chroot "$root" "$@"
"""


def _makedirs_traversable(path: pathlib.Path) -> None:
    """mkdir -p, chmod 0755 what we created, and insist the rest is searchable
    by everyone: mail processes run as the test users, auth as 'dovecot'."""
    path = path.absolute()
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        d.chmod(0o755)
    path.chmod(0o755)
    for d in path.parents:
        if not d.stat().st_mode & 0o001:
            raise RuntimeError(
                f"{d} is not searchable by other users; Dovecot's unprivileged "
                f"processes could not reach {path} (use a dir under /tmp)")


class Dovecot:
    def __init__(self, tmpdir: pathlib.Path, *, plugin: dict[str, str] | None = None,
                 mail_plugins: str = "", extra_conf: str = "",
                 users: list[User] | None = None, module_dir: str | None = None,
                 protocols=("imap", "pop3"), ssl: bool = False,
                 login_env: dict[str, str] | None = None,
                 import_env: dict[str, str] | None = None,
                 protocol_plugin: dict[str, dict[str, str]] | None = None,
                 protocol_mail_plugins: dict[str, str] | None = None,
                 root: str | None = None, line: str | None = None):
        """plugin: rawlog_ext's settings (2.3: plugin {}; 2.4: top level);
        protocol_plugin: the same per protocol ({"imap": {k: v}});
        mail_plugins / protocol_mail_plugins: 2.3's space-separated form
        ("$mail_plugins x"), rendered per line; import_env: variables for
        every process (import_environment); extra_conf: verbatim, so it
        must be valid on the line (or be chosen per line by the test)."""
        unknown = set(protocols) - set(_LISTENERS)
        if unknown:
            raise ValueError(f"unsupported protocols: {sorted(unknown)}")
        if module_dir is None:
            module_dir = os.environ.get("RAWLOG_EXT_MODULE_DIR") or None
        if root is None:
            root = os.environ.get(ROOT_ENV) or None
        # root: the Dovecot to run is the one in this tree (see the module doc).
        self.root = None if root is None else pathlib.Path(root).absolute()
        if line is None:
            line = "2.3" if self.root is None else dovecot_line(str(self.root))
        if line not in ("2.3", "2.4"):
            raise ValueError(f"unsupported Dovecot line {line!r}")
        # line: which config syntax to render.
        self.line = line

        self.base = pathlib.Path(tmpdir).absolute()
        self.protocols = tuple(protocols)
        self.module_dir = module_dir
        self.conf_path = self.base / "dovecot.conf"
        self.log_path = self.base / "dovecot.log"
        self.stderr_path = self.base / "master.stderr"
        # Copies: home gets filled in per instance.
        self.users = {u.name: dataclasses.replace(u) for u in (users or [])}
        (self.imap_port, self.pop3_port, self.lmtp_port,
         self.submission_port, relay_port, self.imaps_port, self.pop3s_port,
         self.submissions_port) = _free_ports(8)
        # ssl=True: STARTTLS everywhere plus implicit-TLS listeners, with a
        # throwaway self-signed certificate (self.cert_path, CN=test.local).
        self.ssl = ssl
        # login_env: load rawlog_ext_login into the login processes, with
        # these RAWLOG_EXT_LOGIN_* variables (through import_environment).
        self.login_env = login_env
        self.import_env = dict(import_env or {})
        self.protocol_plugin = {k: dict(v) for k, v in (protocol_plugin or {}).items()}
        self.protocol_mail_plugins = dict(protocol_mail_plugins or {})
        self._needs_settings_module = bool(plugin) or any(self.protocol_plugin.values())
        # Nothing listens on relay_port unless a test starts an SMTP sink there.
        self.relay_port = relay_port
        self._proc: subprocess.Popen | None = None

        _makedirs_traversable(self.base)
        if ssl:
            self._setup_cert()
        self._setup_modules()
        self._setup_users()
        render = self._render_conf if line == "2.3" else self._render_conf_24
        self.conf_path.write_text(render(plugin or {}, mail_plugins, extra_conf))

    # -- setup ------------------------------------------------------------

    def _setup_modules(self) -> None:
        # A private plugin dir so configs can load Dovecot's plugins and ours.
        self.plugin_dir = self.base / "modules"
        self.plugin_dir.mkdir(mode=0o755)
        ours = None
        if self.module_dir is not None:
            ours = pathlib.Path(self.module_dir).absolute() / PLUGIN_SO
            if not ours.exists():
                raise FileNotFoundError(f"module under test not found: {ours}")
        # Symlinks to Dovecot's own modules by their path where Dovecot runs
        # (inside the tree with root=), found in the tree from the host.
        host_modules = (SYSTEM_MODULE_DIR if self.root is None else
                        self.root / SYSTEM_MODULE_DIR.relative_to("/"))
        for so in sorted(host_modules.glob("*.so")):
            # The module under test wins over one an installed
            # dovecot-rawlog-ext package put there.
            if ours is None or so.name != PLUGIN_SO:
                (self.plugin_dir / so.name).symlink_to(SYSTEM_MODULE_DIR / so.name)
        if ours is not None:
            (self.plugin_dir / PLUGIN_SO).symlink_to(ours)
        self.login_plugin_dir = self.base / "login-modules"
        self.login_plugin_dir.mkdir(mode=0o755)
        if self.login_env is not None:
            login = (pathlib.Path(self.module_dir or SYSTEM_MODULE_DIR).absolute()
                     / (LOGIN_PLUGIN_SO if self.module_dir else "login/" + LOGIN_PLUGIN_SO))
            seen = login
            if self.root is not None and not self.module_dir:
                seen = self.root / login.relative_to("/")
            if not seen.exists():
                raise FileNotFoundError(f"login module under test not found: {login}")
            (self.login_plugin_dir / LOGIN_PLUGIN_SO).symlink_to(login)
        self.settings_dir = None
        if self.line != "2.3":
            self._setup_settings_modules()

    def _setup_settings_modules(self) -> None:
        """2.4: a private copy of the settings module dir, plus ours; mounted
        over the real one only in this instance's namespace (the tree is
        shared, nothing is written into it)."""
        tree_dir = (SETTINGS_MODULE_DIR if self.root is None else
                    self.root / SETTINGS_MODULE_DIR.relative_to("/"))
        ours = None
        if self.module_dir is not None:
            ours = pathlib.Path(self.module_dir).absolute() / SETTINGS_SO
            if not ours.exists():
                ours = None
        if ours is None:
            # Without it doveconf refuses every rawlog_ext_* setting; say
            # why here rather than through doveconf's "Unknown setting".
            if self.module_dir is not None and self._needs_settings_module:
                raise FileNotFoundError(
                    f"Dovecot 2.4 needs the settings module {SETTINGS_SO} for "
                    f"rawlog_ext_* settings; not in {self.module_dir}")
            return
        if self.root is None:
            raise RuntimeError("a 2.4 instance with our settings module needs "
                               "root= (a tree whose settings dir can be covered)")
        self.settings_dir = self.base / "settings-modules"
        self.settings_dir.mkdir(mode=0o755)
        # Ours: every settings module the build made (the login companion
        # may have one of its own), in place of any installed copy.
        mine = sorted(ours.parent.glob(SETTINGS_GLOB))
        for so in sorted(tree_dir.iterdir()):
            if so.is_file() and so.name not in {m.name for m in mine}:
                shutil.copy2(so, self.settings_dir / so.name)
        # Copies, not links: the module dir may change under a running test.
        for so in mine:
            shutil.copy2(so, self.settings_dir / so.name)

    def _setup_cert(self) -> None:
        self.cert_path = self.base / "cert.pem"
        self.key_path = self.base / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=test.local", "-keyout", str(self.key_path),
                        "-out", str(self.cert_path)],
                       check=True, capture_output=True)
        self.key_path.chmod(0o600)

    def ssl_context(self):
        """A client context that trusts this instance's certificate."""
        import ssl as ssl_mod
        ctx = ssl_mod.create_default_context(cafile=str(self.cert_path))
        ctx.check_hostname = False
        return ctx

    def _setup_users(self) -> None:
        homes = self.base / "home"
        homes.mkdir(mode=0o755)
        lines = []
        for u in self.users.values():
            if any(c in u.name + u.password for c in ":\n") or "\n" in u.extra:
                raise ValueError(f"user not representable in passwd-file: {u!r}")
            if u.home is None:
                u.home = homes / _safe_name(u.name)
            u.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(u.home, u.uid, u.gid)
            u.home.chmod(0o700)
            lines.append(f"{u.name}:{{PLAIN}}{u.password}:{u.uid}:{u.gid}::"
                         f"{u.home}::{u.extra}\n")
        self.passwd_path = self.base / "users"
        self.passwd_path.write_text("".join(lines))
        self.passwd_path.chmod(0o644)

    def _render_conf(self, plugin: dict[str, str], mail_plugins: str,
                     extra_conf: str) -> str:
        def listener(proto: str, port: int, tls: tuple[str, int] | None = None) -> str:
            service, name = _LISTENERS[proto]
            extra = ""
            if tls is not None:
                tls_name, tls_port = tls
                extra = (f"  inet_listener {tls_name} {{\n"
                         f"    address = 127.0.0.1\n"
                         f"    port = {tls_port if self.ssl else 0}\n"
                         f"    ssl = yes\n"
                         f"  }}\n")
            return (f"service {service} {{\n"
                    f"  inet_listener {name} {{\n"
                    f"    address = 127.0.0.1\n"
                    f"    port = {port}\n"
                    f"  }}\n{extra}}}\n")

        login_conf = ""
        env = {**self.import_env, **(self.login_env or {})}
        for k, v in env.items():
            if any(c.isspace() for c in k + v):
                raise ValueError(f"whitespace in environment {k}={v!r}")
        if self.login_env is not None:
            login_conf = (f"login_plugin_dir = {self.login_plugin_dir}\n"
                          f"login_plugins = rawlog_ext_login\n")
        if env:
            login_conf += ("import_environment = $import_environment " +
                           " ".join(f"{k}={v}" for k, v in env.items()) + "\n")
        ssl_conf = (f"ssl = yes\nssl_cert = <{self.cert_path}\n"
                    f"ssl_key = <{self.key_path}\n" if self.ssl else "ssl = no\n")

        for k, v in plugin.items():
            if "\n" in k + v:
                raise ValueError(f"newline in plugin setting {k!r}")
        plugin_block = "".join(f"  {k} = {v}\n" for k, v in plugin.items())
        protocol_conf = ""
        for proto in sorted(set(self.protocol_plugin) | set(self.protocol_mail_plugins)):
            body = ""
            if proto in self.protocol_mail_plugins:
                body += f"  mail_plugins = {self.protocol_mail_plugins[proto]}\n"
            settings = self.protocol_plugin.get(proto, {})
            if settings:
                body += ("  plugin {\n" + "".join(f"    {k} = {v}\n" for k, v in
                                                  settings.items()) + "  }\n")
            protocol_conf += f"protocol {proto} {{\n{body}}}\n"
        log = self.log_path
        return f"""\
# Generated by tests/integration/dovecot_fixture.py
base_dir = {self.base}/run
state_dir = {self.base}/state
instance_name = {self.base.name}
log_path = {log}
info_log_path = {log}
debug_log_path = {log}

{ssl_conf}{login_conf}listen = 127.0.0.1
protocols = {" ".join(self.protocols)}
hostname = test.local
submission_relay_host = 127.0.0.1
submission_relay_port = {self.relay_port}

disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_chars =
passdb {{
  driver = passwd-file
  args = {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd_path}
}}

mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_plugin_dir = {self.plugin_dir}
mail_plugins = {mail_plugins}

{listener("imap", self.imap_port, ("imaps", self.imaps_port))}\
{listener("pop3", self.pop3_port, ("pop3s", self.pop3s_port))}\
{listener("lmtp", self.lmtp_port)}\
{listener("submission", self.submission_port, ("submissions", self.submissions_port))}\

plugin {{
{plugin_block}}}
{protocol_conf}
{extra_conf}
"""

    def _render_conf_24(self, plugin: dict[str, str], mail_plugins: str,
                        extra_conf: str) -> str:
        """The same instance in Dovecot 2.4 syntax (each difference checked
        with 2.4.1's doveconf; see doc/dovecot-2.4-testing.md)."""
        def listener(proto: str, port: int, tls: tuple[str, int] | None = None) -> str:
            service, name = _LISTENERS[proto]
            extra = ""
            if tls is not None:
                tls_name, tls_port = tls
                extra = (f"  inet_listener {tls_name} {{\n"
                         f"    listen = 127.0.0.1\n"
                         f"    port = {tls_port if self.ssl else 0}\n"
                         f"    ssl = yes\n"
                         f"  }}\n")
            # 2.3's listener "address" is "listen" in 2.4.
            return (f"service {service} {{\n"
                    f"  inet_listener {name} {{\n"
                    f"    listen = 127.0.0.1\n"
                    f"    port = {port}\n"
                    f"  }}\n{extra}}}\n")

        def words(value: str, what: str) -> list[str]:
            for w in value.split():
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", w):
                    raise ValueError(f"{what}: {w!r} is not a plain name")
            return value.split()

        login_conf = ""
        env = {**self.import_env, **(self.login_env or {})}
        for k, v in env.items():
            if any(c.isspace() or c in '"\\{}' for c in k + v):
                raise ValueError(f"unsupported character in environment {k}={v!r}")
        if self.login_env is not None:
            login_conf = (f"login_plugin_dir = {self.login_plugin_dir}\n"
                          f"login_plugins {{\n  rawlog_ext_login = yes\n}}\n")
        if env:
            # import_environment is a string list: a block, merged with the
            # defaults (TZ, CORE_OUTOFMEM, ...), so no $import_environment.
            login_conf += ("import_environment {\n" + "".join(
                f"  {k} = {v}\n" for k, v in env.items()) + "}\n")
        # File paths, not 2.3's "<file" contents.
        ssl_conf = (f"ssl = yes\nssl_server_cert_file = {self.cert_path}\n"
                    f"ssl_server_key_file = {self.key_path}\n"
                    if self.ssl else "ssl = no\n")
        # A boolean list; "$mail_plugins" is a literal plugin name in 2.4.
        plugins = "".join(f"  {p} = yes\n" for p in
                          words(" ".join(_mail_plugin_names(mail_plugins)),
                                "mail_plugins"))
        # No plugin {} block in 2.4: plugin settings are global settings, which
        # doveconf accepts only if a settings module declares them.
        for k, v in plugin.items():
            if "\n" in k + v:
                raise ValueError(f"newline in plugin setting {k!r}")
        plugin_settings = "".join(f"{k} = {v}\n" for k, v in plugin.items())
        for proto in sorted(set(self.protocol_plugin) | set(self.protocol_mail_plugins)):
            body = ""
            if proto in self.protocol_mail_plugins:
                body += "  mail_plugins {\n" + "".join(
                    f"    {p} = yes\n" for p in words(" ".join(_mail_plugin_names(
                        self.protocol_mail_plugins[proto])), "mail_plugins")) + "  }\n"
            for k, v in self.protocol_plugin.get(proto, {}).items():
                if "\n" in k + v:
                    raise ValueError(f"newline in plugin setting {k!r}")
                body += f"  {k} = {v}\n"
            plugin_settings += f"protocol {proto} {{\n{body}}}\n"
        log = self.log_path
        return f"""\
# Generated by tests/integration/dovecot_fixture.py (Dovecot 2.4 syntax)
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {self.base}/run
state_dir = {self.base}/state
instance_name = {self.base.name}
log_path = {log}
info_log_path = {log}
debug_log_path = {log}

{ssl_conf}{login_conf}listen = 127.0.0.1
protocols = {" ".join(self.protocols)}
hostname = test.local
submission_relay_host = 127.0.0.1
submission_relay_port = {self.relay_port}

auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_username_chars =
passdb passwd-file {{
  passwd_file_path = {self.passwd_path}
}}
userdb passwd-file {{
  passwd_file_path = {self.passwd_path}
}}

mail_driver = maildir
mail_path = ~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_plugin_dir = {self.plugin_dir}
mail_plugins {{
{plugins}}}

{listener("imap", self.imap_port, ("imaps", self.imaps_port))}\
{listener("pop3", self.pop3_port, ("pop3s", self.pop3s_port))}\
{listener("lmtp", self.lmtp_port)}\
{listener("submission", self.submission_port, ("submissions", self.submissions_port))}\

{plugin_settings}
{extra_conf}
"""

    def _binds(self) -> list[str]:
        """(host dir, path in the tree) pairs to bind-mount, flattened:
        the same path for the dirs tests share with Dovecot, and the
        private settings module dir over the tree's (mounted last: it
        lives under /tmp)."""
        binds = ["/tmp"]
        for d in (self.base, self.module_dir):
            if d is None:
                continue
            d = pathlib.Path(d).absolute()
            if not any(d == pathlib.Path(b) or pathlib.Path(b) in d.parents
                       for b in binds):
                binds.append(str(d))
        pairs = [x for b in binds for x in (b, b)]
        if self.settings_dir is not None:
            pairs += [str(self.settings_dir), str(SETTINGS_MODULE_DIR)]
        return pairs

    def command(self, *args: str) -> list[str]:
        """argv that runs one of Dovecot's programs (e.g. "doveconf", "-n")
        against this instance, in the tree if there is one."""
        argv = [args[0] if "/" in args[0] else f"/usr/bin/{args[0]}", *args[1:]]
        if args[0] in ("dovecot",):
            argv[0] = DOVECOT_BIN
        if self.root is None:
            return argv
        return ["unshare", "-m", "--propagation", "private",
                "sh", "-c", _CHROOT_SCRIPT, "sh", str(self.root),
                *self._binds(), "--", *argv]

    def doveadm(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Runs `doveadm -c <this instance's config> ARGS` with the doveadm
        plugin under test (module_dir's) in place of any installed one."""
        ours = pathlib.Path(self.module_dir or SYSTEM_MODULE_DIR / "doveadm").absolute()
        ours = ours / DOVEADM_PLUGIN_SO
        private = self.base / "doveadm-modules"
        if not private.exists():
            if not ours.exists():
                raise FileNotFoundError(f"doveadm plugin under test not found: {ours}")
            private.mkdir(mode=0o755)
            shutil.copy2(ours, private / DOVEADM_PLUGIN_SO)
        argv = ["/usr/bin/doveadm", "-c", str(self.conf_path), *args]
        if self.root is None:
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
                   str(private), str(DOVEADM_MODULE_DIR), *argv]
        else:
            cmd = ["unshare", "-m", "--propagation", "private",
                   "sh", "-c", _CHROOT_SCRIPT, "sh", str(self.root),
                   *self._binds(), str(private), str(DOVEADM_MODULE_DIR),
                   "--", *argv]
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("already started")
        # -F keeps the master as our child so we notice early exits; a new
        # session lets stop() find every process the master forked.
        with open(self.stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                self.command("dovecot", "-F", "-c", str(self.conf_path)),
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                start_new_session=True)
        atexit.register(self.stop)
        ports = {getattr(self, f"{p}_port") for p in self.protocols}
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                self._fail(f"dovecot master exited with {self._proc.returncode}")
            if ports <= _listening_ports():
                return
            if time.monotonic() > deadline:
                self._fail(f"ports {sorted(ports)} not listening after {START_TIMEOUT}s")
            time.sleep(0.1)

    def _fail(self, why: str) -> None:
        self.stop()
        stderr = self.stderr_path.read_text(errors="replace")
        raise RuntimeError(f"{why}\n--- master stderr ---\n{stderr}"
                           f"--- {self.log_path} ---\n{self.log()}")

    def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        sid = proc.pid
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The master does not wait for mail processes: imap keeps recently
        # active clients for up to 10s. SIGTERM makes them disconnect (and run
        # plugin deinit) now. log and stats are spared so the last lines and
        # events still arrive; they exit by themselves once their clients do.
        _signal([pid for pid, comm in _session_procs(sid).items()
                 if comm not in ("log", "stats")], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        killed = False
        while procs := _session_procs(sid):
            if time.monotonic() > deadline:
                if killed:
                    raise RuntimeError(f"dovecot processes {procs} survived SIGKILL")
                _signal(procs, signal.SIGKILL)
                killed = True
                deadline = time.monotonic() + STOP_TIMEOUT
            time.sleep(0.05)

    # -- inspection -------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout=10) -> re.Match:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not in log after {timeout}s:\n"
                                   f"{self.log()}")
            time.sleep(0.05)

    @property
    def master_pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def processes(self) -> dict[int, str]:
        """pid -> name of this instance's live processes (master included)."""
        return {} if self._proc is None else _session_procs(self._proc.pid)

    def user(self, name) -> User:
        return self.users[name]

    def conf_text(self) -> str:
        return self.conf_path.read_text()
