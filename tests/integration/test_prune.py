"""doveadm rawlog prune (issue #15 item 1): retention over the log tree
against a real Dovecot and its doveadm: oldest logs first, whole logs, a
live session's files (their flock held) kept, symlinks never followed,
bad options refused with nothing deleted."""
import json
import os
import pathlib
import shutil
import time

from dovecot_fixture import conf_value, for_line
from rawlog import RawClient, log_files, wait_closed

DAY = 86400


def imap_session(dc, user="alice") -> None:
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("l", f"LOGIN {user} pass".encode())
    c.imap("n", b"NOOP")
    c.imap("x", b"LOGOUT")
    wait_closed(c)


def live_session(dc) -> RawClient:
    c = RawClient(dc.imap_port)
    c.read_until(rb"^\* OK[^\r\n]*\r\n")
    c.imap("l", b"LOGIN alice pass")
    c.imap("n", b"NOOP")
    return c


def stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def aged(path: pathlib.Path, age: float, copy=True,
         session: str | None = None) -> pathlib.Path:
    """A copy (or the file renamed) named and dated age seconds ago; with
    session, under another session id (so copies of one log differ)."""
    t = time.time() - age
    rest = path.name[16:]
    if session is not None:
        fields = rest.split("_")
        fields[2] = session
        rest = "_".join(fields)
    new = path.with_name(stamp(t) + rest)
    if copy:
        shutil.copy2(path, new)
    else:
        path.rename(new)
    os.utime(new, (t, t))
    return new


def prune(dc, *args):
    r = dc.doveadm("-f", "json", "rawlog", "prune", *args)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return {e["path"]: e for e in json.loads(r.stdout)}, r


def test_live_session_kept_while_older_ones_go(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    imap_session(dc)
    imap_session(dc)
    finished = log_files(rawlog_dir)
    assert len(finished) == 4          # two split logs
    # Old copies of the finished logs, each split pair under one name.
    old = [aged(p, 5 * DAY + i // 2, session=f"old{i // 2}")
           for i, p in enumerate(finished)]
    c = live_session(dc)
    live = [p for p in log_files(rawlog_dir) if p not in finished + old]
    assert len(live) == 2
    # Oldest of all by name and mtime: only its lock keeps it.
    live = [aged(p, 10 * DAY, copy=False) for p in live]
    total = sum(p.stat().st_size for p in log_files(rawlog_dir))
    # Room for the live session and the recent finished ones only.
    budget = sum(p.stat().st_size for p in live + finished)

    # No DIR: the configuration's rawlog_ext_dir.
    rows, _ = prune(dc, "--max-total", str(budget))
    left = log_files(rawlog_dir)
    assert sum(p.stat().st_size for p in left) <= budget < total
    for p in live:
        assert p in left
        assert rows[str(p)]["action"] == "kept: running", rows
    assert sorted(left) == sorted(live + finished)
    for p in old:
        assert not p.exists()
        assert rows[str(p)]["action"] == "deleted"
        assert int(rows[str(p)]["bytes"]) > 0

    c.imap("x", b"LOGOUT")
    wait_closed(c)
    dc.wait_log(r"imap\(alice\).*Disconnected: Logged out")
    rows, _ = prune(dc, "--max-total", "0", str(rawlog_dir))
    assert log_files(rawlog_dir) == []
    assert {e["action"] for e in rows.values()} == {"deleted"}


def test_older_than_deletes_only_old_logs(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    imap_session(dc)
    current = log_files(rawlog_dir)
    old = [aged(p, 40 * DAY, session="old") for p in current]
    recent = [aged(p, 10 * DAY, session="recent") for p in current]
    other = rawlog_dir / "notes.txt"
    other.write_text("not a log")
    os.utime(other, (0, 0))
    rows, _ = prune(dc, "--older-than", "30d", str(rawlog_dir))
    assert sorted(rows) == sorted(str(p) for p in old)
    assert all(not p.exists() for p in old)
    assert all(p.exists() for p in current + recent)
    assert other.exists()


def test_dry_run_deletes_nothing(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    imap_session(dc)
    before = log_files(rawlog_dir)
    rows, _ = prune(dc, "--dry-run", "--max-total", "0", "--older-than", "1s",
                    str(rawlog_dir))
    assert sorted(rows) == sorted(str(p) for p in before)
    assert {e["action"] for e in rows.values()} == {"would delete"}
    assert log_files(rawlog_dir) == before


def test_symlinks_are_not_followed(logged_dovecot, rawlog_dir, tmp_path):
    dc = logged_dovecot()
    imap_session(dc)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [aged(p, 40 * DAY) for p in log_files(rawlog_dir)]
    victims = [pathlib.Path(shutil.move(str(p), outside / p.name))
               for p in victims]
    (rawlog_dir / "bob").symlink_to(outside)
    link = rawlog_dir / victims[0].name
    link.symlink_to(victims[0])
    rows, _ = prune(dc, "--max-total", "0", str(rawlog_dir))
    assert all(p.exists() for p in victims)
    assert link.is_symlink() and (rawlog_dir / "bob").is_symlink()
    assert not any("outside" in path or path == str(link) for path in rows)
    assert [p for p in rawlog_dir.rglob("*") if not p.is_symlink()] == []
    # A DIR that is a symlink is refused, not followed.
    r = dc.doveadm("rawlog", "prune", "--max-total", "0",
                   str(rawlog_dir / "bob"))
    assert r.returncode != 0 and "symlink" in r.stderr, r.stderr
    assert all(p.exists() for p in victims)


def test_bad_options_exit_64_and_delete_nothing(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    imap_session(dc)
    before = log_files(rawlog_dir)
    for args, said in [
            ([], "--older-than or --max-total is required"),
            (["--dry-run"], "--older-than or --max-total is required"),
            (["--older-than", "soon"], "--older-than soon"),
            (["--older-than", "0"], "--older-than 0"),
            (["--max-total", "12x", "--older-than", "1s"], "--max-total 12x"),
            (["--max-total", "-1"], "--max-total -1"),
            (["--bogus", "--max-total", "0"], "")]:
        r = dc.doveadm("rawlog", "prune", *args, str(rawlog_dir))
        assert r.returncode == 64, (args, r.returncode, r.stdout, r.stderr)
        assert said in r.stderr, (args, r.stderr)
        assert log_files(rawlog_dir) == before


def test_per_user_tree_from_the_configuration(logged_dovecot, rawlog_dir):
    # rawlog_ext_dir=<dir>/%u: the tree pruned is <dir>, users' directories
    # included; the emptied directories stay.
    dc = logged_dovecot({"rawlog_ext_dir": conf_value(f"{rawlog_dir}/%{{user}}"),
                         "rawlog_ext_autocreate": "yes"})
    imap_session(dc, "alice")
    imap_session(dc, "bob")
    current = log_files(rawlog_dir)
    assert {p.parent.name for p in current} == {"alice", "bob"}
    old = [aged(p, 40 * DAY, session="old") for p in current]
    rows, _ = prune(dc, "--older-than", "30d")
    assert sorted(rows) == sorted(str(p) for p in old)
    assert log_files(rawlog_dir) == current
    rows, _ = prune(dc, "--max-total", "0")
    assert log_files(rawlog_dir) == []
    assert (rawlog_dir / "alice").is_dir() and (rawlog_dir / "bob").is_dir()


def test_dir_starting_with_a_variable_is_skipped(dovecot_factory, rawlog_dir):
    home_dir = for_line("%h/rawlog", "%{home}/rawlog")
    dc = dovecot_factory(plugin={"rawlog_ext_dir": home_dir,
                                 "rawlog_ext_lmtp_dir": str(rawlog_dir)})
    stale = rawlog_dir / (stamp(time.time() - 40 * DAY) +
                          "_lmtp_S1_42_host.log")
    stale.write_text("x")
    os.utime(stale, (time.time() - 40 * DAY,) * 2)
    rows, r = prune(dc, "--older-than", "30d")
    assert "cannot be pruned globally" in r.stderr, r.stderr
    assert home_dir in r.stderr
    assert list(rows) == [str(stale)] and not stale.exists()


def test_missing_dir(logged_dovecot, rawlog_dir):
    dc = logged_dovecot()
    r = dc.doveadm("rawlog", "prune", "--max-total", "0",
                   str(rawlog_dir / "nothing-here"))
    assert r.returncode == 66, (r.returncode, r.stderr)
    assert "nothing-here" in r.stderr
