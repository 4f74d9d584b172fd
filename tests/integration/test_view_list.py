"""rawlog-ext-view list and --session on real sessions: the module's logs
(one directory per user) and the login companion's, two users and a failed
login."""

import base64
import calendar
import json
import os
import re
import time

import pytest

from dovecot_fixture import User, conf_value
from rawlog import RawClient, log_files
from test_login import SECRET, login_dir, make, wait_login  # noqa: F401
from test_view import json_legs, view

NAME = re.compile(r"^\d{8}T\d{6}Z_([^_]+)_([^_]+)_")


def session_of(path) -> str:
    return NAME.match(path.name).group(2)


def name_time(path) -> int:
    return calendar.timegm(time.strptime(path.name[:16], "%Y%m%dT%H%M%SZ"))


def wait_files(directory, count: int):
    """Until count log files are in directory: a login log is complete
    when its session ends, after the login line."""
    deadline = time.monotonic() + 10
    while len(log_files(directory)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return log_files(directory)


def login_session(dc, user: str, password: str = SECRET) -> RawClient:
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("a", b"CAPABILITY")
    c.imap("b", f"LOGIN {user} {password}".encode())
    c.imap("c", b"NOOP")
    c.imap("d", b"LOGOUT")
    c.read_to_eof()
    return c


@pytest.fixture
def three_sessions(dovecot_factory, login_dir, rawlog_dir):  # noqa: F811
    """alice and bob log in (both logged by the module into a directory of
    their own and by the login companion); then, in a later second, a
    failed login (only the companion logs it: SELECT=all)."""
    dc = make(dovecot_factory, login_dir, protocols=("imap",),
              env={"RAWLOG_EXT_LOGIN_SELECT": "all",
                   "RAWLOG_EXT_LOGIN_IP_IN_NAME": "yes"},
              users=[User("alice", password=SECRET), User("bob", password=SECRET)],
              plugin={"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"),
                      "rawlog_ext_autocreate": "yes"},
              mail_plugins="$mail_plugins rawlog_ext")
    alice = login_session(dc, "alice")
    dc.wait_log(r"imap\(alice\).*Disconnected")
    wait_login(dc, "imap", "alice")
    bob = login_session(dc, "bob")
    dc.wait_log(r"imap\(bob\).*Disconnected")
    wait_login(dc, "imap", "bob")
    wait_files(login_dir, 2)
    # The failed login starts in a second of its own, for --since.
    since = int(time.time()) + 1
    while time.time() < since:
        time.sleep(0.05)
    failed = RawClient(dc.imap_port)
    failed.read_until(rb"^\* OK[^\r\n]*\r\n")
    failed.imap("a", b"LOGIN alice wrong-password")
    failed.imap("z", b"LOGOUT")
    failed.read_to_eof()
    logins = wait_files(login_dir, 3)
    mails = wait_files(rawlog_dir, 4)
    by_user = {}
    for p in logins:
        rel = p.relative_to(login_dir)
        by_user.setdefault(rel.parts[0] if len(rel.parts) > 1 else None,
                           set()).add(session_of(p))
    assert set(by_user) == {"alice", "bob", None}, logins
    ids = {u: s.pop() for u, s in by_user.items()}
    # The mail process's session id is the login process's.
    assert {session_of(p) for p in mails} == {ids["alice"], ids["bob"]}, mails
    assert all(name_time(p) < since for p in mails)
    return {"dirs": (login_dir, rawlog_dir), "ids": ids, "since": since,
            "clients": {"alice": alice, "bob": bob, None: failed}}


def listed(*args) -> list[dict]:
    r = view("list", "--json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_list_filters_find_exactly_the_right_sessions(three_sessions):
    dirs, ids = three_sessions["dirs"], three_sessions["ids"]
    everything = listed(*dirs)
    # By start: alice and bob may share a second (then by id), the failed
    # login is in a later one.
    assert {s["session"] for s in everything[:2]} == {ids["alice"], ids["bob"]}
    assert everything[2]["session"] == ids[None]
    assert [s["start_time"] for s in everything] == sorted(s["start_time"] for s in everything)
    by_user = {s["user"]: s for s in everything}
    assert set(by_user) == {"alice", "bob", None}
    for user in ("alice", "bob", None):
        assert by_user[user]["session"] == ids[user]
    assert [by_user[u]["result"] for u in ("alice", "bob", None)] == ["ok", "ok", "failed"]
    assert by_user["alice"]["services"] == ["imap-login", "imap"]
    assert by_user[None]["services"] == ["imap-login"]
    assert all(s["ips"] == ["127.0.0.1"] for s in everything)
    for s in everything:
        assert s["bytes"] == sum(os.path.getsize(f) for f in s["files"])
        assert s["duration"] >= 0
    # Each user's files: the companion's pair and the mail process's.
    assert len(by_user["alice"]["files"]) == 4 and len(by_user["bob"]["files"]) == 4
    assert len(by_user[None]["files"]) == 2

    assert [s["session"] for s in listed("--user", "alice", *dirs)] == [ids["alice"]]
    assert [s["session"] for s in listed("--user", "bob", *dirs)] == [ids["bob"]]
    assert listed("--user", "carol", *dirs) == []
    assert [s["session"] for s in listed("--session", ids["bob"], *dirs)] == [ids["bob"]]
    assert [s["session"] for s in listed("--failed", *dirs)] == [ids[None]]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(three_sessions["since"]))
    assert [s["session"] for s in listed("--since", since, *dirs)] == [ids[None]]
    assert [s["session"] for s in listed("--until", since, "--user", "alice", *dirs)] \
        == [ids["alice"]]
    assert len(listed("--ip", "127.0.0.1", *dirs)) == 3
    assert listed("--ip", "192.0.2.1", *dirs) == []
    # The module's tree alone: the user from the directory names.
    assert sorted(s["user"] for s in listed(dirs[1])) == ["alice", "bob"]

    # Text: one line per session, names and sizes only (no result read).
    r = view("list", *dirs)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3
    assert [f.split()[1:4] for f in lines[:2] if f.split()[1] == "alice"] == \
        [["alice", "imap-login,imap", ids["alice"]]]
    assert lines[2].split()[1] == "-" and lines[2].split()[-1] == "-"
    r = view("list", "--failed", *dirs)
    assert r.stdout.decode().split()[3] == ids[None]
    assert r.stdout.decode().split()[-1] == "failed"

    assert view("list").returncode == 2
    assert view("list", "--since", "yesterday", *dirs).returncode == 2
    assert view("list", "/nonexistent-rawlog-dir").returncode == 1


def redacted(sent: bytes) -> bytes:
    return sent.replace(SECRET.encode(), b"***")


def test_session_stitches_pre_login_and_post_login(three_sessions):
    dirs, ids = three_sessions["dirs"], three_sessions["ids"]
    c = three_sessions["clients"]["alice"]
    r = view("--json", "--session", ids["alice"], *dirs)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    legs = [rec["leg"] for rec in records]
    assert set(legs) == {"pre-login", "session"}
    # One story in time order: the login process's part, then the mail
    # process's.
    assert legs == sorted(legs, key=lambda leg: leg != "pre-login")
    times = [rec["time"] for rec in records]
    assert times == sorted(times)
    got = {"client": b"", "server": b""}
    for rec in records:
        got[rec["from"]] += base64.b64decode(rec["data_b64"])
    # Together the two legs are the whole conversation, the password
    # redacted by the companion.
    assert got["client"] == redacted(bytes(c.sent))
    assert got["server"] == bytes(c.received)

    # Given one of its files: the same story.
    mail_file = [p for p in log_files(dirs[1]) if session_of(p) == ids["alice"]][0]
    r2 = view("--json", "--session", mail_file, *dirs)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r.stdout

    # As text: the header, then each leg under its label.
    r = view("--no-pager", "--session", ids["alice"], *dirs)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    header = text.splitlines()[:3]
    assert f"session {ids['alice']}: user alice" in header[0]
    assert "service imap-login, imap" in header[0] and "127.0.0.1" in header[0]
    assert re.search(r"duration \d+\.\d{3} s", header[1])
    assert f"from the client {len(redacted(bytes(c.sent)))}," in header[2]
    assert f"from the server {len(c.received)};" in header[2]
    # CAPABILITY, LOGIN, NOOP, LOGOUT; no failure.
    assert "commands 4; failures 0" in header[2]
    assert text.index("[pre-login]") < text.index("b LOGIN alice ***") \
        < text.index("[session]") < text.index("c NOOP")

    # The failed login: its one file, its failure counted.
    r = view("--no-pager", "--session", ids[None], *dirs)
    assert r.returncode == 0, r.stderr
    assert "user -" in r.stdout.decode() and "failures 1" in r.stdout.decode()
    r = view("--session", "no-such-session", *dirs)
    assert r.returncode == 1 and b"no log file" in r.stderr


def test_list_never_follows_symlinks(tmp_path):
    """Names only (nothing is read): a linked directory or file is not
    listed, a real one is, a file that is no log name is ignored."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "alice").mkdir(parents=True)
    outside.mkdir()
    (tree / "alice" / "20261202T101010Z_imap_S1_10_mx.in").write_bytes(b"x")
    (tree / "alice" / "20261202T101010Z_imap_S1_10_mx.out").write_bytes(b"yy")
    (tree / "alice" / "notes.txt").write_bytes(b"")
    (outside / "20261202T101011Z_imap_S2_11_mx.in").write_bytes(b"")
    (outside / "20261202T101012Z_imap_S3_12_mx.log").write_bytes(b"")
    (tree / "linked").symlink_to(outside)
    (tree / "20261202T101012Z_imap_S3_12_mx.log").symlink_to(
        outside / "20261202T101012Z_imap_S3_12_mx.log")
    r = view("list", tree)
    assert r.returncode == 0, r.stderr
    assert [line.split() for line in r.stdout.decode().splitlines()] == \
        [["2026-12-02T10:10:10Z", "alice", "imap", "S1"] +
         r.stdout.decode().split()[4:5] + ["3", "-"]]
    # The top given may be a link: it is the user's choice.
    r = view("list", tree / "linked")
    assert [line.split()[3] for line in r.stdout.decode().splitlines()] == ["S2", "S3"]
    assert [line.split()[1] for line in r.stdout.decode().splitlines()] == ["-", "-"]


def test_session_stitches_the_relay_leg(dovecot_factory, rawlog_dir):
    """A submission with its relay leg: one story, the leg labelled
    "relay", Dovecot the client on it."""
    from test_imap import message
    from rawlog import SmtpSink
    from test_submission import submit
    dc = dovecot_factory(mail_plugins="$mail_plugins rawlog_ext",
                         protocols=("submission",), users=[User("alice")],
                         plugin={"rawlog_ext_dir": str(rawlog_dir)})
    relay = SmtpSink(dc.relay_port)
    try:
        c = submit(dc.submission_port, b"Subject: relayed\r\n\r\n" +
                   message(20 * 1024, seed=4) + b"\r\n")
    finally:
        dc.wait_log(r"submission\(alice\).*Disconnected")
        relay.close()
    files = log_files(rawlog_dir)
    assert len(files) == 4, files
    (session,) = {session_of(p) for p in files}
    got, _ = json_legs("--session", session, rawlog_dir)
    assert set(got) == {("session", "client"), ("session", "server"),
                        ("relay", "client"), ("relay", "server")}
    assert got[("relay", "client")] == bytes(relay.sessions[0]["in"])
    assert got[("relay", "server")] == bytes(relay.sessions[0]["out"])
    # The mail process logs from the login on.
    sent, received = bytes(c.sent), bytes(c.received)
    assert got[("session", "client")] == sent[sent.index(b"MAIL FROM"):]
    assert got[("session", "server")] == received[received.index(b"235 "):]

    r = view("--no-pager", "--session", session, rawlog_dir)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "service submission, submission-relay" in text.splitlines()[0]
    assert f"127.0.0.1-{dc.relay_port}" in text.splitlines()[0]
    # The relay's lines come after the client's DATA body, under their label.
    assert text.index("[session]") < text.index("[relay]")
    assert "failures 0" in text.splitlines()[2]
