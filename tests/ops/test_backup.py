"""Backups that restore: pgBackRest, point-in-time recovery and the restore drill (single server).

Run as `MUSIC_API_STACK=DIR python3 tests/ops/test_backup.py` against a running stack (tests/support/
stack up DIR BIN_DIR), as root or as the owner of its PostgreSQL cluster, and not beside other tests
of the same stack: it stops PostgreSQL and restores its data in place, twice.

- scripts/backup makes a backup (the stanza on first use) and names it on its last line; the drill
  restores it into a scratch directory, `music-admin check` passes there and every table's rows and
  checksum equal the figures recorded at the backup; the metrics file passes `promtool check`.
- Writes A, then (at time T) B after the backup. PostgreSQL stopped cleanly, `scripts/restore
  --latest`: A and B are back (the last, partly filled WAL segment too). Then `scripts/restore --to
  T`: A is there, B is not; the drill to T equals the figures recorded at T.
- A key made before the backup works through nginx after each restore (the pepper is in the stack).

Archiving needs PostgreSQL started with the stack's options (stack.sh's pg_up): earlier fault tests
restart it without them, so this test restarts it first. PostgreSQL runs again when the file ends.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from musicapi import ApiTestCase, World, load_env, psql, request, key_headers  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def say(msg):
    print("[backup] %s" % msg, flush=True)


def run(argv, timeout=300, check=True):
    """Runs a command with output to a file (a started postmaster must not hold our pipes)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                           timeout=timeout, cwd="/")
        seconds = time.monotonic() - t0
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("%r exited %d:\n%s" % (argv, p.returncode, text))
    return p.returncode, text, seconds


def stack_bash(code):
    """Runs CODE in bash with stack.sh and backup.sh loaded for this stack."""
    stack = os.environ["MUSIC_API_STACK"]
    script = ('source %s/scripts/lib/stack.sh; source %s/scripts/lib/backup.sh; stack_paths %s; %s'
              % (ROOT, ROOT, stack, code))
    return run(["bash", "-c", script])


def pg_stop():
    e = load_env()
    argv = [os.path.join(e["pg_bin"], "pg_ctl"), "-D", e["pg_data"], "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    run(argv, timeout=90, check=False)


def pg_start():
    stack_bash("pg_is_running || backup_pg_start")


def tool(*args):
    return run([os.path.join(ROOT, "scripts", args[0]), "--stack", os.environ["MUSIC_API_STACK"]]
               + list(args[1:]))


class BackupRestore(ApiTestCase):

    @classmethod
    def setUpClass(cls):
        e = load_env()
        cls.owner = e["db_owner"]
        # With archiving from the start, as scripts/run and the fixture start it.
        pg_stop()
        pg_start()
        _, out, _ = psql(cls.owner, "SHOW archive_mode")
        if out.strip() != "on":
            raise AssertionError("archive_mode is %r after the restart" % out.strip())

    @classmethod
    def tearDownClass(cls):
        pg_start()

    def has_track(self, track):
        _, out, _ = psql(self.owner, "SELECT count(*) FROM tracks WHERE id = '%s'" % track)
        return out.strip() == "1"

    def listing_ids(self, org, key, seconds=15):
        """The caller's library (track ids) through nginx, once the workers are back on the database."""
        deadline = time.monotonic() + seconds
        while True:
            r = request("GET", "/v1/music/%s/tracks?limit=100" % org, dict(key_headers(key)))
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(r.status, 200, r.body[:300])
        return {i["id"] for i in r.json()["items"]}

    def test_backup_restore_and_drill(self):
        w = World("backup")
        org = w.org()
        user, key = w.principal(org)
        before = w.track(org, title="before the backup")
        w.save(org, user, before)

        _, out, secs = tool("backup")
        label = out.strip().splitlines()[-1]
        self.assertRegex(label, r"^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$", out)
        say("backup %s in %.1f s: %s" % (label, secs, out.strip().splitlines()[-2]))

        _, out, secs = tool("backup", "--drill")
        say("drill of %s in %.1f s:\n%s" % (label, secs, out.rstrip()))
        self.assertIn("rows and checksums equal", out)
        self.assertIn("music-admin check: ok", out)
        prom = os.path.join(os.environ["MUSIC_API_STACK"], "metrics", "music_api_backup.prom")
        with open(prom, encoding="utf-8") as f:
            text = f.read()
        for name in ("music_api_backup_last_success_timestamp_seconds",
                     "music_api_backup_restore_drill_last_success_timestamp_seconds",
                     "music_api_backup_restore_drill_duration_seconds"):
            self.assertRegex(text, r"(?m)^%s [0-9.]+$" % name)
        rc, out, _ = run(["sh", "-c", "promtool check metrics < %s" % prom], check=False)
        self.assertEqual((rc, out.strip()), (0, ""), "promtool: %s" % out)

        # A, the figures and the time T; B a second later.
        a = w.track(org, title="A: before T")
        w.save(org, user, a)
        _, figures, _ = tool("backup", "--figures")
        _, t, _ = psql(self.owner, "SELECT clock_timestamp()")
        t = t.strip()
        time.sleep(1.1)
        b = w.track(org, title="B: after T")
        w.save(org, user, b)
        self.assertTrue(self.has_track(a) and self.has_track(b))

        # Stopped cleanly: --latest brings back every acknowledged write, B included.
        pg_stop()
        _, out, secs = tool("restore", "--latest", "--ignore-api")
        pg_start()
        say("restore --latest: %.1f s to restore and archive the last WAL (%s)" % (secs, out.strip()))
        self.assertTrue(self.has_track(before) and self.has_track(a), "A lost by restore --latest")
        self.assertTrue(self.has_track(b), "B (the last write before the stop) lost by --latest")
        self.assertTrue({before, a, b} <= self.listing_ids(org, key))

        pg_stop()
        t0 = time.monotonic()
        _, out, _ = tool("restore", "--to", t, "--ignore-api")
        pg_start()
        say("restore --to %s: %.1f s until PostgreSQL accepted connections"
            % (t, time.monotonic() - t0))
        self.assertTrue(self.has_track(a), "A (before T) missing after restore --to T")
        self.assertFalse(self.has_track(b), "B (after T) present after restore --to T")
        ids = self.listing_ids(org, key)
        self.assertIn(a, ids)
        self.assertNotIn(b, ids)

        with tempfile.NamedTemporaryFile("w", suffix=".figures", delete=False) as f:
            f.write(figures)
        os.chmod(f.name, 0o644)
        try:
            _, out, secs = tool("backup", "--drill", "--to", t, "--figures", f.name)
        finally:
            os.unlink(f.name)
        say("drill to %s in %.1f s:\n%s" % (t, secs, out.rstrip()))
        self.assertIn("rows and checksums equal", out)
        self.assertTrue(re.search(r"^drill ok", out, re.M), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
