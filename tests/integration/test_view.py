"""rawlog-ext-view on real sessions: --json gives back the client's own record."""

import base64
import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from rawlog import RawClient, imap_login, session_files, wait_closed
from test_imap import message


def viewer() -> pathlib.Path:
    """The built program: beside the module's build tree, or RAWLOG_EXT_VIEW."""
    if os.environ.get("RAWLOG_EXT_VIEW"):
        return pathlib.Path(os.environ["RAWLOG_EXT_VIEW"])
    module_dir = pathlib.Path(os.environ["RAWLOG_EXT_MODULE_DIR"])
    return module_dir.parent / "view" / "rawlog-ext-view"


def view(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(viewer()), *map(str, args)], capture_output=True,
                          timeout=60)


def json_bytes(path: pathlib.Path) -> tuple[bytes, bytes, list[dict]]:
    r = view("--json", path)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    data = {"client": b"", "server": b""}
    for rec in records:
        assert set(rec) >= {"time", "from", "leg", "file", "data_b64"}
        data[rec["from"]] += base64.b64decode(rec["data_b64"])
    return data["client"], data["server"], records


def json_legs(*args) -> tuple[dict[tuple[str, str], bytes], list[dict]]:
    """--json of args (a file, or --session ID DIR...): each leg's bytes
    by (leg, "client"/"server"), and the records."""
    r = view("--json", *args)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    got: dict[tuple[str, str], bytes] = {}
    for rec in records:
        key = (rec["leg"], rec["from"])
        got[key] = got.get(key, b"") + base64.b64decode(rec["data_b64"])
    return got, records


LAYOUTS = {
    "split-lines": {},
    "split-chunks-boundaries": {"rawlog_ext_timestamps": "chunks",
                                "rawlog_ext_boundaries": "yes"},
    "split-no-stamps": {"rawlog_ext_timestamps": "no"},
    "transcript-chunks": {"rawlog_ext_format": "transcript",
                          "rawlog_ext_timestamps": "chunks"},
    "transcript-boundaries": {"rawlog_ext_format": "transcript",
                              "rawlog_ext_boundaries": "yes"},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_view_json_is_the_imap_wire(logged_dovecot, rawlog_dir, layout):
    dc = logged_dovecot(plugin=LAYOUTS[layout])
    body = message(50 * 1024, seed=5) + b"\r\n12345 a line with digits\r\n"
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    greeting_end = len(c.received)
    # A pipelined login: the NOOP is in the same packet.
    login = b"l LOGIN alice pass\r\n"
    c.send(login + b"n NOOP\r\n")
    c.read_until(rb"^n OK[^\r\n]*\r\n", greeting_end)
    c.imap_append("a", body)
    c.imap("f", b"FETCH 1 BODY.PEEK[]")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected: Logged out")

    files = session_files(rawlog_dir, "imap")
    # Either file of a split pair is enough.
    for path in files.values():
        client, server, records = json_bytes(path)
        assert client == bytes(c.sent[len(login):])
        assert server == bytes(c.received[greeting_end:])
        assert all(r["leg"] == "session" for r in records)
        if "no-stamps" in layout:
            assert all(r["time"] is None for r in records)
        else:
            times = [r["time"] for r in records]
            assert all(isinstance(t, float) for t in times)
            assert times == sorted(times)

    # Piped: plain text, marked lines, no colour codes.
    r = view(next(iter(files.values())))
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8", "replace")
    assert "\033[" not in text
    assert "C: n NOOP" in text and "S: n OK" in text
    if "split" in layout and "no-stamps" not in layout:
        # Interleaved by time: the NOOP comes before its reply.
        assert text.index("C: n NOOP") < text.index("S: n OK")


def test_view_json_is_the_pop3_wire(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    c = RawClient(dc.pop3_port)
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    c.send(b"USER alice\r\n")
    c.read_until(rb"^\+OK[^\r\n]*\r\n", len(c.received))
    reply_end = len(c.received)
    login = b"PASS pass\r\n"
    c.send(login + b"STAT\r\n")
    c.read_until(rb"^\+OK \d+ \d+\r\n", reply_end)
    start = len(c.received)
    c.send(b"QUIT\r\n")
    c.read_until(rb"^\+OK[^\r\n]*\r\n", start)
    wait_closed(c)
    dc.wait_log(r"pop3\(alice\).*Disconnected: Logged out")
    files = session_files(rawlog_dir, "pop3")
    client, server, _ = json_bytes(files[".out"])
    assert client == bytes(c.sent[len(b"USER alice\r\n") + len(login):])
    assert server == bytes(c.received[reply_end:])


def undot(wire: bytes) -> bytes:
    """A dot-stuffed body without its "." line, stuffing undone."""
    return re.sub(rb"(?m)^\.", b"", wire)


def test_view_folds_pop3_retr_and_top(logged_dovecot, rawlog_dir):
    """The messages of a real RETR and TOP n 0 are folded with the size and
    sha256 of the message (dot-stuffing undone); LIST's lines and a RETR
    answered -ERR are lines."""
    dc = logged_dovecot()
    mail = b"Subject: pop\r\n\r\n.dot\r\n..two\r\n" + message(8 * 1024, seed=7)
    c, _, _ = imap_login(dc.imap_port, password="pass")
    c.imap_append("a", mail)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected: Logged out")

    c = RawClient(dc.pop3_port)
    c.read_until(rb"^\+OK[^\r\n]*\r\n")
    c.send(b"USER alice\r\nPASS pass\r\n")
    c.read_until(rb"^\+OK Logged in[^\r\n]*\r\n")
    start = len(c.received)
    # Pipelined: the tracker pairs each reply with its command.
    c.send(b"RETR 1\r\nTOP 1 0\r\nLIST\r\nRETR 2\r\nQUIT\r\n")
    wait_closed(c)
    dc.wait_log(r"pop3\(alice\).*Disconnected: Logged out")
    replies = bytes(c.received[start:])
    m = re.match(rb"\+OK[^\r\n]*\r\n(.*?\r\n)\.\r\n\+OK[^\r\n]*\r\n(.*?\r\n)\.\r\n"
                 rb"\+OK[^\r\n]*\r\n1 \d+\r\n\.\r\n-ERR[^\r\n]*\r\n\+OK", replies, re.S)
    assert m, replies[-500:]
    retr, top = undot(m.group(1)), undot(m.group(2))
    assert retr == mail
    assert top == b"Subject: pop\r\n\r\n"

    def fold(body: bytes, after_headers: bool = False) -> str:
        return "S: {%d bytes, sha256 %s%s}\n" % (
            len(body), hashlib.sha256(body).hexdigest()[:16],
            ", after the headers folded" if after_headers else "")

    path = session_files(rawlog_dir, "pop3")[".out"]
    r = view(path)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8", "replace")
    assert fold(retr) in text and fold(top) in text
    assert "..two" not in text and "Subject: pop" not in text
    assert re.search(r"^S: 1 \d+$", text, re.M) and "S: -ERR" in text
    assert text.count("S: .\n") == 3         # RETR, TOP, LIST
    r = view("--bodies", path)
    text = r.stdout.decode("utf-8", "replace")
    # The wire's lines, dot-stuffed.
    assert "S: ..dot\nS: ...two\n" in text and "S: Subject: pop\n" in text
    assert fold(retr) not in text
    r = view("--bodies=headers", path)
    text = r.stdout.decode("utf-8", "replace")
    assert "S: Subject: pop\n" in text and "..two" not in text
    assert fold(retr, after_headers=True) in text
    # TOP 1 0 is all headers: nothing left to fold but the empty rest.
    assert fold(top, after_headers=True) in text


def test_view_bad_input_and_usage(tmp_path):
    bad = tmp_path / "x.log"
    bad.write_bytes(b"I: a1 NOOP\r\n\x7fELF\x02\x01\n")
    r = view(bad)
    assert r.returncode == 1
    assert str(bad).encode() in r.stderr and b"byte 12" in r.stderr
    r = view("--no-such-option", bad)
    assert r.returncode == 2
    assert view().returncode == 2
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert view(other).returncode == 1


def test_view_refuses_what_is_not_a_regular_file(tmp_path):
    # A FIFO would block open(), a device be read forever: refused, named.
    fifo = tmp_path / "p.log"
    os.mkfifo(fifo)
    zero = tmp_path / "z.in"
    zero.symlink_to("/dev/zero")
    for args in ([fifo], [zero], ["--follow", fifo], ["-f", "--json", zero]):
        r = subprocess.run([str(viewer()), "--no-pager", *map(str, args)],
                           capture_output=True, timeout=20)
        assert r.returncode == 1, r
        assert r.stderr == f"rawlog-ext-view: {args[-1]}: not a regular file\n".encode()
        assert r.stdout == b""


def test_view_escapes_what_could_drive_a_terminal(tmp_path):
    """Log bytes are the client's: controls, C1 controls in UTF-8 (CSI,
    OSC) and bytes that are not UTF-8 are shown escaped; other UTF-8 as
    it is."""
    log = tmp_path / "x.log"
    log.write_bytes(b"I: a\x1b[2J b\xc2\x9b31m c\x9b d\xc2\x9d52;c;eA\x07 "
                    b"e\xff f\xc3\xa4\xe2\x82\xac\r\n")
    r = view("--no-pager", log)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"C: a\\x1b[2J b\\xc2\\x9b31m c\\x9b d\\xc2\\x9d52;c;eA\\x07 "
                        b"e\\xff f\xc3\xa4\xe2\x82\xac\n"), r.stdout


def test_view_session_header_escapes_names(tmp_path):
    # A login directory's name is the client's user name (%XX decoded):
    # the --session header shows it escaped, as the data lines are.
    d = tmp_path / "%1B]2;PWNED%07"
    d.mkdir()
    stem = d / "20251202T000000Z_imap-login_ESCsessAAAB_1_mx1"
    pathlib.Path(str(stem) + ".in").write_bytes(b"1700000000.000001 a1 NOOP\r\n")
    pathlib.Path(str(stem) + ".out").write_bytes(b"1700000000.000002 a1 OK\r\n")
    r = view("--no-pager", "--session", "ESCsessAAAB", tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"PWNED" in r.stdout
    assert b"\x1b" not in r.stdout and b"\x07" not in r.stdout, r.stdout
    assert b"user \\x1b]2;PWNED\\x07," in r.stdout, r.stdout


HOSTILE = (b"From: mallory@example.com\r\nSubject: hostile\r\n\r\n"
           b"<script>document.title='pwned'</script>\r\n"
           b"<img src=x onerror=\"document.title='pwned'\">\r\n"
           b"</pre></div></details>\r\n"
           b"a OK not a reply {5}\r\n")


def hostile_session(logged_dovecot, rawlog_dir) -> pathlib.Path:
    """An IMAP session that APPENDs HOSTILE and FETCHes it back; its .in."""
    dc = logged_dovecot()
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("l", b"LOGIN alice pass")
    c.imap_append("a", HOSTILE)
    c.imap("s", b"SELECT INBOX")
    c.imap("f", b"FETCH 1 BODY.PEEK[]")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected: Logged out")
    return session_files(rawlog_dir, "imap")[".in"]


def test_view_folds_literals_and_shows_them_with_bodies(logged_dovecot, rawlog_dir):
    path = hostile_session(logged_dovecot, rawlog_dir)
    fold = "{%d bytes, sha256 %s}" % (len(HOSTILE),
                                       hashlib.sha256(HOSTILE).hexdigest()[:16])
    r = view(path)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    # Folded both ways: the client's APPEND literal, the server's FETCH.
    assert "C: a APPEND INBOX {%d}\n" % len(HOSTILE) in text
    assert "C: " + fold + "\n" in text and "S: " + fold + "\n" in text
    assert "<script>" not in text and "Subject: hostile" not in text
    # Tags paired with their completion, with the latency.
    assert re.search(r"^S: a OK .*\(\d+(\.\d)? ms\)$", text, re.M), text
    assert re.search(r"^S: f OK .*\(\d+(\.\d)? ms\)$", text, re.M), text
    # The body's "a OK" line is data, not a completion.
    assert not re.search(r"^S: a OK not a reply", text, re.M)

    r = view("--bodies", path)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "C: <script>document.title='pwned'</script>\n" in text
    assert "S: <script>document.title='pwned'</script>\n" in text
    assert fold not in text

    r = view("--bodies=headers", path)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "C: Subject: hostile\n" in text and "<script>" not in text
    assert "{%d bytes, sha256 %s, after the headers folded}" % (
        len(HOSTILE), hashlib.sha256(HOSTILE).hexdigest()[:16]) in text

    # JSON never folds: still the exact bytes.
    client, _, _ = json_bytes(path)
    assert HOSTILE in client


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    return exe


def run_chromium(exe: str, profile: pathlib.Path, *args) -> subprocess.CompletedProcess:
    # --no-sandbox: CI runs as root. A profile of its own: other runs on
    # the machine must not share its lock.
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
           f"--user-data-dir={profile}", "--no-first-run", *args]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium did not finish within 20 s")


def test_view_html_in_a_browser_shows_hostile_mail_inert(logged_dovecot,
                                                          rawlog_dir, tmp_path):
    exe = chromium()
    path = hostile_session(logged_dovecot, rawlog_dir)
    page = tmp_path / "session.html"
    r = view("--html", page, path)
    assert r.returncode == 0, r.stderr
    html = page.read_bytes()
    # Every byte of the log escaped: no markup of the mail's in the page.
    for raw in (b"<script>document", b"<img", b"</pre></div></details>\r\n"):
        assert raw not in html
    assert b"&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    # Self-contained: nothing to load from anywhere.
    assert not re.search(rb"(src|href)\s*=", html.replace(b"src=x", b""))

    shot = tmp_path / "shot.png"
    r = run_chromium(exe, tmp_path / "profile", f"--screenshot={shot}",
                     "--window-size=1000,800", page.as_uri())
    if not shot.exists():
        pytest.skip(f"chromium cannot run here: {r.stderr[-500:]!r}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000

    r = run_chromium(exe, tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = r.stdout.decode()
    assert r.returncode == 0 and dom, r.stderr[-500:]
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    # The page's own title, which the hostile script would have changed.
    assert title and title.group(1) == "rawlog-ext-view: " + path.name, title
    assert "pwned" not in title.group(1)
    # The page's own script did run (the same browser would have run the
    # mail's, had it been markup): it adds the fold buttons.
    assert "Unfold all bodies" in dom
    # The conversation is there as text, the mail's tags as text too.
    assert "a APPEND INBOX {%d}" % len(HOSTILE) in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "&lt;/pre&gt;&lt;/div&gt;&lt;/details&gt;" in dom
    assert "<img" not in dom and "<script>document" not in dom
    assert re.search(r'class="l s fail"|class="l s"', dom)


def test_view_follow_shows_a_live_session_and_ends_with_it(logged_dovecot,
                                                           rawlog_dir):
    dc = logged_dovecot()
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    greeting_end = len(c.received)
    login = b"l LOGIN alice pass\r\n"
    c.send(login + b"n NOOP\r\n")
    c.read_until(rb"^n OK[^\r\n]*\r\n", greeting_end)
    files = session_files(rawlog_dir, "imap")
    got = bytearray()

    def shows(want: bytes):
        return lambda recs: want in b"".join(base64.b64decode(r["data_b64"])
                                             for r in recs)

    with follower(files[".in"]) as p:
        follow_json(p, got, shows(b"n NOOP"))
        for i in range(3):
            # Each command shows up while the session goes on.
            c.imap(f"s{i}", b"SELECT INBOX" if i == 0 else b"NOOP")
            follow_json(p, got, shows(f"s{i} OK".encode()))
            assert p.poll() is None
        c.imap_append("a", message(100 * 1024, seed=9))
        follow_json(p, got, shows(b"a OK"))
        assert p.poll() is None
        c.imap("x", b"LOGOUT")
        wait_closed(c)
        # The session's end (its files closed) ends the viewer.
        recs, err = finish(p, got, timeout=5)
    assert p.returncode == 0, err
    data = {"client": b"", "server": b""}
    for rec in recs:
        data[rec["from"]] += base64.b64decode(rec["data_b64"])
    assert data["client"] == bytes(c.sent[len(login):])
    assert data["server"] == bytes(c.received[greeting_end:])


def test_view_follow_usage(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes(b"I: a1 NOOP\r\n")
    assert view("--follow", "--html", tmp_path / "o.html", log).returncode == 2
    assert view("-f", "--session", log).returncode == 2
    # A file no writer holds: what it has, then done.
    r = view("--follow", "--json", log)
    assert r.returncode == 0, r.stderr
    assert base64.b64decode(json.loads(r.stdout)["data_b64"]) == b"a1 NOOP\r\n"
    r = view("-f", log)
    assert r.returncode == 0 and b"C: a1 NOOP" in r.stdout, r.stderr


class HeldLog:
    """A split log pair being written: both files held (flock) as the
    module holds them, lines appended as it writes them."""

    def __init__(self, tmp_path, stem="20251202T000000Z_imap_FOLLOWxAAAAB_1_mx1"):
        import fcntl
        self.paths = {d: tmp_path / (stem + d) for d in (".in", ".out")}
        self.files = {d: open(p, "ab", buffering=0) for d, p in self.paths.items()}
        for f in self.files.values():
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)

    def write(self, d, data: bytes) -> None:
        self.files[d].write(data)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def follow_json(p, got: bytearray, until, timeout: float = 10) -> list[dict]:
    """Reads p's --json lines until until(records) holds."""
    import select
    import time
    end = time.monotonic() + timeout
    while True:
        recs = [json.loads(line) for line in got[:got.rfind(b"\n") + 1].splitlines()]
        if until(recs):
            return recs
        left = end - time.monotonic()
        assert left > 0, (bytes(got), p.poll())
        if select.select([p.stdout], [], [], left)[0]:
            chunk = os.read(p.stdout.fileno(), 65536)
            assert chunk, (bytes(got), p.poll())
            got.extend(chunk)


@contextlib.contextmanager
def follower(path):
    """rawlog-ext-view --follow --json PATH, running; killed if the test
    leaves it so."""
    p = subprocess.Popen([str(viewer()), "--follow", "--json", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def finish(p, got: bytearray, timeout: float = 10) -> tuple[list[dict], bytes]:
    """Waits for the follower to end: all its records, its stderr."""
    out, err = p.communicate(timeout=timeout)
    got.extend(out)
    return [json.loads(line) for line in got.splitlines()], err


def client_bytes(recs) -> bytes:
    return b"".join(base64.b64decode(r["data_b64"]) for r in recs
                    if r["from"] == "client")


def test_view_follow_shows_the_last_line_whole_at_once(tmp_path):
    # A split file's last line end is held back (it might be the
    # truncation marker's): while following, nothing more coming means
    # it is data, shown now, in the same record, not with the next line.
    log = HeldLog(tmp_path)
    log.write(".in", b"1700000000.000001 a1 NOOP\r\n")
    got = bytearray()
    with follower(log.paths[".in"]) as p:
        follow_json(p, got, lambda r: client_bytes(r) == b"a1 NOOP\r\n")
        log.write(".in", b"1700000000.000002 a2 NOOP\r\n")
        follow_json(p, got, lambda r: client_bytes(r).endswith(b"a2 NOOP\r\n"))
        log.close()
        recs, err = finish(p, got)
    assert p.returncode == 0, err
    assert [base64.b64decode(r["data_b64"]) for r in recs] == \
        [b"a1 NOOP\r\n", b"a2 NOOP\r\n"]
    assert [r["time"] for r in recs] == [1700000000.000001, 1700000000.000002]


def test_view_follow_catching_up_interleaves_by_time(tmp_path):
    # Much already there, lines of different lengths in the two files
    # (a read covers different times in each): still one order by time.
    log = HeldLog(tmp_path)
    want = {"client": b"", "server": b""}
    for i in range(3000):
        c = b"c%d " % i + b"x" * 200 + b"\r\n"
        sv = b"s%d " % i + b"y" * 20 + b"\r\n"
        log.write(".in", b"1700000000.%06d " % (2 * i) + c)
        log.write(".out", b"1700000000.%06d " % (2 * i + 1) + sv)
        want["client"] += c
        want["server"] += sv
    got = bytearray()
    with follower(log.paths[".in"]) as p:
        follow_json(p, got, lambda r: b"s2999 " in b"".join(
            base64.b64decode(x["data_b64"]) for x in r))
        log.close()
        recs, err = finish(p, got)
    assert p.returncode == 0, err
    times = [r["time"] for r in recs]
    assert times == sorted(times)
    data = {"client": b"", "server": b""}
    for r in recs:
        data[r["from"]] += base64.b64decode(r["data_b64"])
    assert data == want


def test_view_follow_a_file_truncated_from_outside_fails(tmp_path):
    log = HeldLog(tmp_path)
    line = b"1700000000.000001 a1 NOOP\r\n"
    log.write(".in", line)
    got = bytearray()
    try:
        with follower(log.paths[".in"]) as p:
            follow_json(p, got, lambda r: client_bytes(r) == b"a1 NOOP\r\n")
            os.truncate(log.paths[".in"], 0)
            _, err = finish(p, got)
    finally:
        log.close()
    assert p.returncode == 1, err
    assert err == (f"rawlog-ext-view: {log.paths['.in']}: truncated from "
                   f"outside at byte 0: {len(line)} bytes had been read\n").encode()


def test_view_json_of_a_big_log_is_its_wire(tmp_path):
    # 50 MB in 16 KiB chunks, each its own stamp, input and output taking
    # turns, and one 3 MiB chunk: read in constant memory, the records
    # come back whole and in order, the big one in lines of at most 1 MiB
    # (plus a read) of its own stamp.
    line = b"".join(bytes([65 + (i * 7) % 58]) for i in range(76)) + b"\r\n"
    chunk = line * (16384 // len(line))
    big = line * (3 * 1024 * 1024 // len(line))
    stem = tmp_path / "20251202T000000Z_imap_BIGjsonAAAB_1_mx1"
    wire = {".in": bytearray(), ".out": bytearray()}
    files = {".in": bytearray(), ".out": bytearray()}
    want = []
    t = 1764633600 * 1000000
    n = 0
    while len(files[".in"]) + len(files[".out"]) < 50 * 1024 * 1024:
        ext = (".in", ".out")[n % 2]
        data = big if n == 101 else chunk
        stamp = b"%d.%06d " % divmod(t, 1000000)
        files[ext] += b"".join(stamp + l for l in data.splitlines(keepends=True))
        wire[ext] += data
        want.append((t / 1e6, "client" if ext == ".in" else "server", len(data)))
        t += 37
        n += 1
    for ext, data in files.items():
        stem.with_suffix(ext).write_bytes(data)
    client, server, records = json_bytes(stem.with_suffix(".in"))
    assert client == wire[".in"] and server == wire[".out"]
    got = []
    for r in records:
        size = len(base64.b64decode(r["data_b64"]))
        assert size <= (1 << 20) + 65536
        if got and got[-1][:2] == (r["time"], r["from"]):
            got[-1] = (r["time"], r["from"], got[-1][2] + size)
        else:
            got.append((r["time"], r["from"], size))
    assert got == want
    assert len(records) > len(want)
