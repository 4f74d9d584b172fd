"""rawlog-ext-view on real sessions: --json gives back the client's own record."""

import base64
import json
import os
import pathlib
import subprocess

import pytest

from rawlog import RawClient, session_files, wait_closed
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
    c.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    c.read_until(rb"^\+ [^\r\n]*\r\n")
    c.send(body + b"\r\n")
    c.read_until(rb"^a OK[^\r\n]*\r\n")
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
