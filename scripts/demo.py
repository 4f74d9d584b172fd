"""Starts a throwaway Dovecot with rawlog_ext, runs an IMAP and a POP3
session with Python's own clients, prints the resulting logs, then shows
the IMAP session through rawlog-ext-view and writes it as an HTML page."""
import imaplib
import os
import pathlib
import poplib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "integration"))
from dovecot_fixture import Dovecot, User  # noqa: E402


def main() -> int:
    module_dir = os.environ["RAWLOG_EXT_MODULE_DIR"]
    base = pathlib.Path(tempfile.mkdtemp(prefix="rawlog-ext-demo-"))
    logs = base / "rawlog"
    dc = Dovecot(base, module_dir=module_dir, users=[User("alice", password="secret")],
                 mail_plugins="$mail_plugins rawlog_ext",
                 plugin={"rawlog_ext_dir": f"{logs}/%u", "rawlog_ext_autocreate": "yes"},
                 extra_conf="mail_debug = yes\n")
    base.chmod(0o755)
    # The mail processes run as the user (uid 65534 here) and create
    # <logs>/<user>/ themselves (rawlog_ext_autocreate = yes).
    logs.mkdir(mode=0o755)
    os.chown(logs, 65534, 65534)
    try:
        dc.start()
        print(f"== Dovecot started from {dc.conf_path}, IMAP on 127.0.0.1:{dc.imap_port}, "
              f"POP3 on 127.0.0.1:{dc.pop3_port}\n")
        print("plugin settings:\n  " + "\n  ".join(
            line.strip() for line in dc.conf_text().splitlines() if "rawlog_ext" in line) + "\n")

        imap = imaplib.IMAP4("127.0.0.1", dc.imap_port)
        imap.login("alice", "secret")
        imap.append("INBOX", None, None,
                    b"From: demo@example.com\r\nSubject: hello\r\n\r\nHello, rawlog_ext!\r\n")
        imap.select("INBOX")
        imap.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        imap.logout()

        pop = poplib.POP3("127.0.0.1", dc.pop3_port)
        pop.user("alice")
        pop.pass_("secret")
        pop.stat()
        pop.retr(1)
        pop.quit()
        dc.stop()

        for path in sorted(logs.rglob("*")):
            if path.is_file():
                print(f"== {path}  (mode {path.stat().st_mode & 0o777:o})")
                sys.stdout.write(path.read_bytes().decode("utf-8", "replace").replace("\r", ""))
                print()
        print("== what Dovecot logged about it (mail_debug = yes):")
        for line in dc.log().splitlines():
            if "rawlog_ext" in line and "plugin" not in line:
                print(line)

        # The way an admin reads it: one conversation, bodies folded.
        viewer = pathlib.Path(module_dir).parent / "view" / "rawlog-ext-view"
        imap_in = next(p for p in sorted(logs.rglob("*_imap_*.in")))
        print(f"\n== rawlog-ext-view {imap_in}")
        sys.stdout.flush()
        subprocess.run([str(viewer), "--no-pager", str(imap_in)], check=True)
        fd, html = tempfile.mkstemp(prefix="rawlog-ext-demo-", suffix=".html")
        os.close(fd)
        subprocess.run([str(viewer), "--html", html, str(imap_in)], check=True)
        os.chmod(html, 0o644)
        print(f"\n== the same session as a web page: {html}")
        return 0
    finally:
        dc.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
