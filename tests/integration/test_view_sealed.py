"""rawlog-ext-view --identity on sealed logs: logs the module wrote,
sealed with Debian's age (age-keygen / age -r, which must be installed),
read back exactly as the plain files; damage named with its cause."""

import base64
import json
import pathlib
import subprocess

import pytest

from rawlog import RawClient, session_files, wait_closed
from test_imap import message
from test_view import view

CHUNK = 64 * 1024 + 16  # a sealed chunk: 64 KiB and its tag


def keygen(path: pathlib.Path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True,
                   capture_output=True)
    return subprocess.run(["age-keygen", "-y", str(path)], check=True,
                          capture_output=True).stdout.decode().strip()


def seal(plain: pathlib.Path, recipient: str) -> pathlib.Path:
    sealed = plain.with_name(plain.name + ".age")
    subprocess.run(["age", "-r", recipient, "-o", str(sealed), str(plain)],
                   check=True)
    return sealed


def payload_start(data: bytes) -> int:
    """Where the first chunk starts: after the MAC line and the nonce."""
    mac = data.index(b"\n--- ")
    return data.index(b"\n", mac + 1) + 1 + 16


def records(stdout: bytes, unseal: bool = False) -> list[dict]:
    out = [json.loads(line) for line in stdout.splitlines()]
    if unseal:
        # The records name the file read; the rest must be the same.
        for r in out:
            assert r["file"].endswith(".age")
            r["file"] = r["file"][:-4]
    return out


def imap_session(logged_dovecot, layout: dict, size: int) -> RawClient:
    dc = logged_dovecot(plugin=layout)
    body = message(size, seed=7)
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("l", b"LOGIN alice pass")
    c.imap_append("a", body)
    # Selected, so that the FETCH sends the mail back: both files big.
    c.imap("s", b"SELECT INBOX")
    c.imap("f", b"FETCH 1 BODY.PEEK[]")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected: Logged out")
    return c


LAYOUTS = {
    "split": {},
    "transcript": {"rawlog_ext_format": "transcript",
                   "rawlog_ext_timestamps": "chunks"},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sealed_reads_as_the_plain_log(logged_dovecot, rawlog_dir, tmp_path,
                                       layout):
    # Several chunks per file: the sealed files have middle chunks.
    imap_session(logged_dovecot, LAYOUTS[layout], 200 * 1024)
    key = tmp_path / "key.txt"
    recipient = keygen(key)
    other = tmp_path / "other.txt"
    keygen(other)
    plain = session_files(rawlog_dir, "imap")
    sealed = {ext: seal(path, recipient) for ext, path in plain.items()}
    assert all(p.stat().st_size > 3 * CHUNK for p in sealed.values())

    for ext, path in sealed.items():
        # Either file of a sealed pair brings the other; --identity is
        # repeatable (the other key opens nothing, and is no error).
        r = view("--json", "--identity", other, "--identity", key, path)
        assert r.returncode == 0, r.stderr
        want = view("--json", plain[ext])
        assert want.returncode == 0, want.stderr
        assert records(r.stdout, unseal=True) == records(want.stdout)
        # The text view too.
        r = view("--no-pager", f"--identity={key}", path)
        assert r.returncode == 0, r.stderr
        assert r.stdout == view("--no-pager", plain[ext]).stdout

    path = next(iter(sealed.values()))
    r = view("--json", path)
    assert r.returncode == 1 and r.stdout == b""
    assert str(path).encode() + b": sealed: give --identity" in r.stderr
    r = view("--json", "--identity", other, path)
    assert r.returncode == 1 and r.stdout == b""
    assert b"no identity matches" in r.stderr and str(path).encode() in r.stderr
    bad_key = tmp_path / "bad.txt"
    bad_key.write_text(recipient + "\n")
    r = view("--identity", bad_key, path)
    assert r.returncode == 1
    assert str(bad_key).encode() + b": line 1: not an age X25519 identity" \
        in r.stderr
    assert recipient.encode() not in r.stderr
    assert view("--identity").returncode == 2


def test_sealed_damage_is_named(logged_dovecot, rawlog_dir, tmp_path):
    imap_session(logged_dovecot, {}, 200 * 1024)
    key = tmp_path / "key.txt"
    recipient = keygen(key)
    plain = session_files(rawlog_dir, "imap")
    sealed = {ext: seal(path, recipient) for ext, path in plain.items()}
    good = sealed[".out"].read_bytes()
    start = payload_start(good)
    chunks = (len(good) - start + CHUNK - 1) // CHUNK
    assert chunks >= 4
    # The pair is read through .in.age; the damaged file is .out.age.
    target = sealed[".out"]

    def damaged(data: bytes) -> subprocess.CompletedProcess:
        target.write_bytes(data)
        return view("--json", "--identity", key, sealed[".in"])

    def flip(at: int) -> bytes:
        return good[:at] + bytes([good[at] ^ 1]) + good[at + 1:]

    def refused(r, offset: int, *words: bytes):
        assert r.returncode == 1
        assert r.stdout == b""
        line = r.stderr.strip()
        assert line.count(b"\n") == 0, r.stderr
        assert str(target).encode() + b": byte %d: " % offset in line, line
        for w in words:
            assert w in line, line

    mac = good.index(b"\n--- ") + 1
    # Another base64 letter (a flipped bit may give a byte that is not one,
    # which reads as a malformed line rather than a failing MAC).
    other = b"A" if good[mac + 10:mac + 11] != b"A" else b"B"
    refused(damaged(good[:mac + 10] + other + good[mac + 11:]), mac, b"MAC",
            b"altered")
    refused(damaged(flip(start + CHUNK + 77)), start + CHUNK,
            b"chunk 2 fails authentication: altered")
    refused(damaged(flip(len(good) - 1)), start + (chunks - 1) * CHUNK,
            b"chunk %d fails" % chunks, b"altered")
    refused(damaged(good[:start + CHUNK] + good[start + 2 * CHUNK:]),
            start + CHUNK, b"chunk 2 fails", b"altered")
    refused(damaged(good[:start] + good[start + CHUNK:start + 2 * CHUNK] +
                    good[start:start + CHUNK] + good[start + 2 * CHUNK:]),
            start, b"chunk 1 fails", b"altered")
    refused(damaged(good[:start + 2 * CHUNK + 1000]), start + 2 * CHUNK,
            b"chunk 3 fails", b"cut inside")
    refused(damaged(good + b"garbage"), start + (chunks - 1) * CHUNK,
            b"chunk %d fails" % chunks)

    # Cut at a chunk boundary (a session that died): what it holds is
    # shown, then the cause; exit 1 as for any truncated log.
    cut = good[:start + 2 * CHUNK]
    r = damaged(cut)
    assert r.returncode == 1
    assert r.stderr.strip() == (b"rawlog-ext-view: " + str(target).encode() +
                                b": byte %d: truncated: "
                                b"ends after chunk 2, the session may have died"
                                % len(cut))
    got = records(r.stdout)
    assert {rec["file"] for rec in got} == {str(sealed[".in"]),
                                            str(sealed[".out"])}
    plain_out = records(view("--json", plain[".out"]).stdout)
    server = b"".join(base64.b64decode(rec["data_b64"])
                      for rec in got if rec["from"] == "server")
    want = b"".join(base64.b64decode(rec["data_b64"])
                    for rec in plain_out if rec["from"] == "server")
    # Two chunks of the file, less its timestamps: a prefix of the rest.
    assert len(server) > 64 * 1024 and want.startswith(server)
    assert len(want) > len(server)
