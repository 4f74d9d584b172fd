"""IMAP sessions logged by rawlog_ext, compared byte for byte with the client's record."""
import os
import random
import re
import time
import zlib

import pytest

from dovecot_fixture import for_line, line_under_test
from rawlog import (HIBERNATE_CONF, RawClient, idle_until_hibernated, imap_login,
                    parse_transcript, session_files, strip_boundaries,
                    strip_chunk_timestamps, strip_timestamps, wait_closed)


def message(size: int, seed: int = 1) -> bytes:
    """A mail of about size bytes with 8-bit bytes (no NUL, bare CR or LF)."""
    rnd = random.Random(seed)
    alphabet = bytes(b for b in range(1, 256) if b not in (10, 13))
    lines = [b"From: a@example.com", b"To: b@example.com", b"Subject: test", b""]
    total = 0
    while total < size:
        line = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 200)))
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


def full_session(port: int) -> tuple[RawClient, int, int]:
    """Pipelined commands, a multi-megabyte APPEND and FETCH, IDLE, LOGOUT."""
    c, sent_from, received_from = imap_login(
        port, pipelined=b"p1 NOOP\r\np2 SELECT INBOX\r\n")
    c.read_until(rb"^p2 OK[^\r\n]*\r\n", received_from)
    big = message(3 * 1024 * 1024)
    c.imap_append("a1", big)
    c.imap("a2", b"NOOP")
    fetched = c.imap("a3", b"FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
    assert big in fetched
    c.imap("a4", b"STORE 1 +FLAGS (\\Seen)")
    c.send(b"a5 IDLE\r\n")
    c.read_until(rb"^\+ idling\r\n")
    c.send(b"DONE\r\n")
    c.read_until(rb"^a5 OK[^\r\n]*\r\n")
    c.imap("a6", b"LOGOUT")
    wait_closed(c)
    return c, sent_from, received_from


def test_split_log_is_the_wire(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    c, sent_from, received_from = full_session(dc.imap_port)

    files = session_files(rawlog_dir, "imap")
    assert set(files) == {".in", ".out"}
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(c.sent[sent_from:])
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(c.received[received_from:])
    for f in files.values():
        st = f.stat()
        assert st.st_mode & 0o777 == 0o600
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    dc.wait_log(r"imap\(alice\).*Disconnected")
    assert "rawlog_ext" not in re.sub(r".*Debug:.*\n", "", dc.log()), dc.log()


def test_file_name_has_time_service_session_pid_host(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    c, _, _ = imap_login(dc.imap_port)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    session = dc.wait_log(r"imap\(alice\)<(\d+)><([^>]+)>")
    pid, session_id = session.group(1), session.group(2)
    name = session_files(rawlog_dir, "imap")[".in"].name
    host = os.uname().nodename
    m = re.fullmatch(r"(\d{8}T\d{6}Z)_imap_(.+)_(\d+)_(.+)\.in", name)
    assert m, name
    assert m.group(2) == session_id.replace("/", "-")
    assert m.group(3) == pid
    assert m.group(4) == re.sub(r"[^A-Za-z0-9.+=-]", "-", host)


def test_chunk_timestamps_are_fewer_and_reversible(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_timestamps": "chunks"})
    c, sent_from, received_from = full_session(dc.imap_port)
    files = session_files(rawlog_dir, "imap")
    data_in, stamped_in, _ = strip_chunk_timestamps(files[".in"].read_bytes())
    data_out, stamped_out, unstamped_out = strip_chunk_timestamps(files[".out"].read_bytes())
    assert data_in == bytes(c.sent[sent_from:])
    assert data_out == bytes(c.received[received_from:])
    # full_session waits for 9 replies, each its own write, after 8 sends
    # of its own; multi-line replies (FETCH, the LOGIN capabilities) have
    # unstamped lines.
    assert stamped_in >= 8 and stamped_out >= 9, (stamped_in, stamped_out)
    assert unstamped_out > stamped_out, (stamped_out, unstamped_out)


def test_chunk_timestamps_never_mistake_data_for_a_stamp(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_timestamps": "chunks"})
    c, sent_from, received_from = imap_login(dc.imap_port)
    # One packet, one read: lines inside it that look like stamps.
    body = b"Subject: x\r\n\r\n1700000000.123456 not a stamp\r\n42 apples\r\n"
    c.send(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
    c.read_until(rb"^a1 OK[^\r\n]*\r\n")
    c.imap("a2", b"SELECT INBOX")
    fetched = c.imap("a3", b"FETCH 1 BODY.PEEK[]")
    assert body in fetched
    c.imap("a4", b"LOGOUT")
    wait_closed(c)
    files = session_files(rawlog_dir, "imap")
    raw_in, raw_out = files[".in"].read_bytes(), files[".out"].read_bytes()
    assert strip_chunk_timestamps(raw_in)[0] == bytes(c.sent[sent_from:])
    assert strip_chunk_timestamps(raw_out)[0] == bytes(c.received[received_from:])
    # Each such line has a real stamp in front of it in both logs.
    for raw in (raw_in, raw_out):
        assert re.search(rb"\n\d+\.\d{6} 1700000000\.123456 not a stamp\r\n"
                         rb"\d+\.\d{6} 42 apples\r\n", raw), raw


def test_no_timestamps_gives_raw_bytes(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_timestamps": "no"})
    c, sent_from, received_from = imap_login(dc.imap_port, pipelined=b"n NOOP\r\n")
    c.read_until(rb"^n OK[^\r\n]*\r\n", received_from)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    files = session_files(rawlog_dir, "imap")
    assert files[".in"].read_bytes() == bytes(c.sent[sent_from:])
    assert files[".out"].read_bytes() == bytes(c.received[received_from:])


def test_boundaries_mark_each_chunk(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_timestamps": "no", "rawlog_ext_boundaries": "yes"})
    c, sent_from, received_from = imap_login(dc.imap_port)
    # One command split over two packets: two input chunks.
    c.send(b"s1 NO")
    time.sleep(0.3)
    c.send(b"OP\r\n")
    c.read_until(rb"^s1 OK[^\r\n]*\r\n")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    files = session_files(rawlog_dir, "imap")
    data_in, chunks_in = strip_boundaries(files[".in"].read_bytes())
    data_out, chunks_out = strip_boundaries(files[".out"].read_bytes())
    assert data_in == bytes(c.sent[sent_from:])
    assert data_out == bytes(c.received[received_from:])
    assert chunks_in >= 3
    assert b"<<<\ns1 NO>>>\n<<<\nOP\r\n>>>\n" in files[".in"].read_bytes()
    assert chunks_out >= 3


def test_direction_in_and_out(logged_dovecot, rawlog_dir):
    for direction, present in (("in", ".in"), ("out", ".out")):
        dc = logged_dovecot({"rawlog_ext_direction": direction,
                             "rawlog_ext_dir": str(rawlog_dir / direction),
                             "rawlog_ext_autocreate": "yes"})
        c, sent_from, received_from = imap_login(dc.imap_port)
        c.imap("x", b"LOGOUT")
        wait_closed(c)
        files = session_files(rawlog_dir / direction, "imap")
        assert set(files) == {present}
        expected = c.sent[sent_from:] if direction == "in" else c.received[received_from:]
        assert strip_timestamps(files[present].read_bytes()) == bytes(expected)
        dc.stop()


def test_ip_in_name(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_ip_in_name": "yes"})
    c, _, _ = imap_login(dc.imap_port)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    assert session_files(rawlog_dir, "imap")[".in"].name.endswith("_127.0.0.1.in")


def test_transcript_interleaves_in_order(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_format": "transcript"})
    c, sent_from, received_from = imap_login(dc.imap_port, pipelined=b"t1 NOOP\r\n")
    c.read_until(rb"^t1 OK[^\r\n]*\r\n", received_from)
    c.send(b"t2 APPEND INBOX {6}\r\n")
    c.read_until(rb"^\+ [^\r\n]*\r\n")
    c.send(b"ab\r\ncd")            # a partial line inside the literal
    c.send(b"\r\n")
    c.read_until(rb"^t2 OK[^\r\n]*\r\n")
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    files = session_files(rawlog_dir, "imap")
    assert set(files) == {".log"}
    data_in, data_out, records = parse_transcript(files[".log"].read_bytes())
    assert data_in == bytes(c.sent[sent_from:])
    assert data_out == bytes(c.received[received_from:])
    # Order: login reply, then the pipelined NOOP and its reply, ..., LOGOUT.
    lines = [(d, p) for d, p in records]
    assert lines[0][0] == "O" and b"Logged in" in lines[0][1]
    assert lines[1] == ("I", b"t1 NOOP\r\n")
    assert lines[2][0] == "O" and lines[2][1].startswith(b"t1 OK")
    assert ("I", b"t2 APPEND INBOX {6}\r\n") in lines
    assert lines[-1][0] == "O" and lines[-1][1].startswith(b"x OK")


def test_max_size_truncates_and_session_goes_on(logged_dovecot, rawlog_dir):
    dc = logged_dovecot({"rawlog_ext_max_size": "4k"})
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    big = message(64 * 1024, seed=2)
    c.imap_append("a", big)
    assert big in c.imap("f", b"FETCH 1 BODY.PEEK[]")
    c.imap("x", b"LOGOUT")
    wait_closed(c)

    files = session_files(rawlog_dir, "imap")
    total = 0
    marker = b"\n*** rawlog_ext: log truncated: rawlog_ext_max_size=4096 bytes reached ***\n"
    for ext, expected in ((".in", c.sent[sent_from:]), (".out", c.received[received_from:])):
        data = files[ext].read_bytes()
        assert data.endswith(marker), data[-200:]
        assert data.count(b"rawlog_ext: log truncated") == 1
        kept = data[:-len(marker)]
        total += len(kept)
        # What is kept is an exact prefix of the wire.
        assert bytes(expected).startswith(strip_timestamps(kept))
    assert total <= 4096
    dc.wait_log(r"imap\(alice\).*Disconnected")
    assert len(re.findall(r"Warning: rawlog_ext: log reached rawlog_ext_max_size", dc.log())) == 1


def test_compress_deflate_keeps_readable_protocol(logged_dovecot, rawlog_dir):
    # 2.3: the zlib plugins; 2.4: COMPRESS is built in (imap_zlib is gone).
    dc = logged_dovecot(**for_line(
        {"mail_plugins": "$mail_plugins zlib rawlog_ext",
         "protocol_mail_plugins": {"imap": "$mail_plugins imap_zlib"}},
        {"mail_plugins": "$mail_plugins rawlog_ext"}))
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("c1", b"COMPRESS DEFLATE")
    plain_out = bytearray(c.received[received_from:])
    plain_in = bytearray(c.sent[sent_from:])
    compressor = zlib.compressobj(wbits=-15)
    decompressor = zlib.decompressobj(wbits=-15)

    def command(tag: bytes, cmd: bytes) -> bytes:
        line = tag + b" " + cmd + b"\r\n"
        plain_in.extend(line)
        c.sock.sendall(compressor.compress(line) + compressor.flush(zlib.Z_SYNC_FLUSH))
        reply = bytearray()
        while not re.search(rb"(^|\n)" + tag + rb" (OK|NO|BAD)[^\r\n]*\r\n", reply):
            reply += decompressor.decompress(c.sock.recv(65536))
        plain_out.extend(reply)
        return bytes(reply)

    assert b"c2 OK" in command(b"c2", b"SELECT INBOX")
    command(b"c3", b"NOOP")
    command(b"c4", b"LOGOUT")
    c.close()
    dc.wait_log(r"imap\(alice\).*Disconnected|Logged out")

    files = session_files(rawlog_dir, "imap")
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(plain_in)
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(plain_out)


def test_works_together_with_core_rawlog_dir(logged_dovecot, rawlog_dir):
    core_dir = rawlog_dir / "core"
    core_dir.mkdir()
    os.chown(core_dir, 65534, 65534)
    dc = logged_dovecot({"rawlog_ext_timestamps": "no"},
                        extra_conf=f"protocol imap {{\n  rawlog_dir = {core_dir}\n}}\n")
    c, sent_from, received_from = imap_login(dc.imap_port, pipelined=b"p NOOP\r\n")
    c.read_until(rb"^p OK[^\r\n]*\r\n", received_from)
    c.imap("x", b"LOGOUT")
    wait_closed(c)
    ours = session_files(rawlog_dir, "imap")
    assert ours[".in"].read_bytes() == bytes(c.sent[sent_from:])
    assert ours[".out"].read_bytes() == bytes(c.received[received_from:])
    core_in = [p for p in core_dir.iterdir() if p.suffix == ".in"]
    core_out = [p for p in core_dir.iterdir() if p.suffix == ".out"]
    assert len(core_in) == len(core_out) == 1
    # Dovecot's own rawlog always timestamps its lines.
    assert strip_timestamps(core_in[0].read_bytes()) == bytes(c.sent[sent_from:])
    assert strip_timestamps(core_out[0].read_bytes()) == bytes(c.received[received_from:])


# COMPRESS beside core rawlog_dir: 2.4's cmd-compress.c asserts that core
# rawlog's streams are the outermost ones (ours take their place, or are
# taken off first); never a panic.
COMPRESS_PLUGINS = dict(for_line(
    {"mail_plugins": "$mail_plugins zlib rawlog_ext",
     "protocol_mail_plugins": {"imap": "$mail_plugins imap_zlib"}},
    {"mail_plugins": "$mail_plugins rawlog_ext"}))


def core_rawlog_dir(rawlog_dir):
    core_dir = rawlog_dir / "core"
    core_dir.mkdir()
    os.chown(core_dir, 65534, 65534)
    return core_dir, f"protocol imap {{\n  rawlog_dir = {core_dir}\n}}\n"


def compressed_session(c, plain_in: bytearray, plain_out: bytearray) -> None:
    """After COMPRESS's OK: a few commands over deflate, then LOGOUT."""
    compressor = zlib.compressobj(wbits=-15)
    decompressor = zlib.decompressobj(wbits=-15)

    def command(tag: bytes, cmd: bytes) -> bytes:
        line = tag + b" " + cmd + b"\r\n"
        plain_in.extend(line)
        c.sock.sendall(compressor.compress(line) + compressor.flush(zlib.Z_SYNC_FLUSH))
        reply = bytearray()
        while not re.search(rb"(^|\n)" + tag + rb" (OK|NO|BAD)[^\r\n]*\r\n", reply):
            data = c.sock.recv(65536)
            assert data, bytes(reply)
            reply += decompressor.decompress(data)
        plain_out.extend(reply)
        return bytes(reply)

    assert b"z1 OK" in command(b"z1", b"SELECT INBOX")
    command(b"z2", b"NOOP")
    command(b"z3", b"LOGOUT")
    c.close()


def assert_no_crash(log: str) -> None:
    assert not re.search(r"Fatal|Panic|killed with signal|: Error: ", log), log


@pytest.mark.parametrize("how", ["first", "pipelined"])
def test_compress_first_command_beside_core_rawlog_dir(logged_dovecot, rawlog_dir, how):
    core_dir, conf = core_rawlog_dir(rawlog_dir)
    dc = logged_dovecot(extra_conf=conf, **COMPRESS_PLUGINS)
    if how == "first":
        c, sent_from, received_from = imap_login(dc.imap_port)
        c.send(b"c COMPRESS DEFLATE\r\n")
    else:
        c, sent_from, received_from = imap_login(dc.imap_port,
                                                 pipelined=b"c COMPRESS DEFLATE\r\n")
    c.read_until(rb"^c OK[^\r\n]*\r\n", received_from)
    plain_out = bytearray(c.received[received_from:])
    plain_in = bytearray(c.sent[sent_from:])
    compressed_session(c, plain_in, plain_out)
    assert_no_crash(dc.wait_log(r"imap\(alice\).*Disconnected").string)
    files = session_files(rawlog_dir, "imap")
    assert strip_timestamps(files[".in"].read_bytes()) == bytes(plain_in)
    assert strip_timestamps(files[".out"].read_bytes()) == bytes(plain_out)


def test_compress_after_unhibernation_beside_core_rawlog_dir(logged_dovecot, rawlog_dir):
    # The new imap process gets what the client sent meanwhile as a prefix
    # of its input; ours go on top of core rawlog's after reading it.
    core_dir, conf = core_rawlog_dir(rawlog_dir)
    dc = logged_dovecot(extra_conf=conf + HIBERNATE_CONF, **COMPRESS_PLUGINS)
    c, sent_from, received_from = imap_login(dc.imap_port)
    c.imap("s", b"SELECT INBOX")
    pid = idle_until_hibernated(dc, c)
    start_in, start_out = len(c.sent), len(c.received)
    c.send(b"DONE\r\nn NOOP\r\n")
    c.read_until(rb"^n OK[^\r\n]*\r\n", start_out)
    c.imap("c", b"COMPRESS DEFLATE")
    plain_in = bytearray(c.sent[start_in:])
    plain_out = bytearray(c.received[start_out:])
    compressed_session(c, plain_in, plain_out)
    log = dc.wait_log(rf"imap\(alice\)<(?!{pid}>)\d+>.*Disconnected").string
    assert_no_crash(log)
    ins = [p for p in rawlog_dir.iterdir() if p.suffix == ".in"]
    after = [p for p in ins if b"z3 LOGOUT" in p.read_bytes()]
    assert len(ins) == 2 and len(after) == 1, ins
    # imap-hibernate consumed DONE; the rest is the new process's.
    assert strip_timestamps(after[0].read_bytes()) == bytes(plain_in)[len(b"DONE\r\n"):]
    out = after[0].with_suffix(".out")
    assert strip_timestamps(out.read_bytes()) == bytes(plain_out)


FAULT_DIR = os.environ.get("RAWLOG_EXT_FAULT_MODULE_DIR")


@pytest.mark.skipif(FAULT_DIR is None, reason="no fault-injection build (RAWLOG_EXT_FAULT_MODULE_DIR)")
@pytest.mark.skipif(line_under_test() != "2.4", reason="2.3's COMPRESS asserts nothing about core rawlog")
def test_compress_where_ours_cannot_follow_core_rawlog_stops_logging(logged_dovecot, rawlog_dir):
    # As if ours could not take core rawlog's place (an unknown layout):
    # taken off before COMPRESS, one Warning, the session goes on.
    core_dir, conf = core_rawlog_dir(rawlog_dir)
    dc = logged_dovecot(extra_conf=conf, module_dir=FAULT_DIR,
                        import_env={"RAWLOG_EXT_REFUSE": "imap_core_rawlog_follow"},
                        **COMPRESS_PLUGINS)
    c, sent_from, received_from = imap_login(dc.imap_port, pipelined=b"p NOOP\r\n")
    c.read_until(rb"^p OK[^\r\n]*\r\n", received_from)
    c.imap("c", b"COMPRESS DEFLATE")
    before_in = bytes(c.sent[sent_from:])
    compressed_session(c, bytearray(), bytearray())
    log = dc.wait_log(r"imap\(alice\).*Disconnected").string
    assert not re.search(r"Fatal|Panic|killed with signal", log), log
    warnings = re.findall(r"Warning: rawlog_ext: [^\n]*", log)
    assert warnings == ["Warning: rawlog_ext: core rawlog_dir's streams are not "
                        "where COMPRESS needs them: logging stopped"], log
    files = session_files(rawlog_dir, "imap")
    assert strip_timestamps(files[".in"].read_bytes()) == before_in
