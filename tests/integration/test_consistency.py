#!/usr/bin/env python3
"""The denormalized copies the listing reads, on a real PostgreSQL: they stay exact when the two
sides race (deterministic two-session interleavings), `music-admin check` reports drift, and
`music-admin explain` shows every listing variant planned as the README says."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from musicapi import World, admin, load_env, psql  # noqa: E402


class Session:
    """An open psql session fed statement by statement (a transaction can stay open)."""

    def __init__(self):
        e = load_env()
        self.p = subprocess.Popen([e.get("psql") or "psql", "-X", "-q", "-A", "-t", "-v",
                                   "ON_ERROR_STOP=1", "-d", e["db_owner"]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.send("SELECT pg_backend_pid();")
        self.pid = None

    def send(self, sql):
        self.p.stdin.write(sql + "\n")
        self.p.stdin.flush()

    def finish(self, timeout=20):
        out, err = self.p.communicate("\\q\n", timeout=timeout)
        if self.p.returncode != 0:
            raise AssertionError("psql session failed: %s" % err)
        return out


def waiting_on_advisory_lock():
    _, out, _ = psql(load_env()["db_owner"],
                     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    return int(out.strip() or 0)


def entry_saved_at(coll, track):
    _, out, _ = psql(load_env()["db_owner"],
                     "SELECT coalesce(saved_at::text, 'NULL') FROM collection_tracks "
                     "WHERE collection_id = '%s' AND track_id = '%s'" % (coll, track))
    return out.strip()


def save_saved_at(user, track):
    _, out, _ = psql(load_env()["db_owner"],
                     "SELECT coalesce(saved_at::text, 'NULL') FROM library_saves "
                     "WHERE user_id = '%s' AND track_id = '%s'" % (user, track))
    return out.strip() or "NULL"


class CollectionCopyRaceTests(unittest.TestCase):
    """Session A adds the track to a collection and keeps its transaction open; session B saves
    (or unsaves) the same track meanwhile; then A commits. Without a lock both sides take, B
    never sees A's entry and A never sees B's save: the copy goes stale."""

    def setUp(self):
        w = self.w = World("race")
        self.org = w.org()
        self.user = w.user()
        w.member(self.org, self.user)
        self.track = w.track(self.org)
        self.coll = w.collection(self.org, self.user)

    def interleave(self, b_sql):
        a = Session()
        a.send("BEGIN;")
        a.send("INSERT INTO collection_tracks (collection_id, track_id, org_id, position) "
               "VALUES ('%s', '%s', '%s', 0);" % (self.coll, self.track, self.org))
        a.send("SELECT 'a-inserted';")
        time.sleep(0.5)   # A's insert has run (psql executes each line as it arrives)
        b = Session()
        b.send(b_sql)
        b.send("SELECT 'b-done';")
        # With the fix B blocks on A's lock until A commits; without it B commits at once.
        deadline = time.monotonic() + 5
        blocked = False
        while time.monotonic() < deadline:
            if waiting_on_advisory_lock() >= 1:
                blocked = True
                break
            time.sleep(0.05)
        a.send("COMMIT;")
        a.finish()
        out = b.finish()
        self.assertIn("b-done", out)
        return blocked

    def test_add_concurrent_with_save_keeps_the_copy(self):
        blocked = self.interleave(
            "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, saved_at) "
            "SELECT '%s', id, org_id, mode, engine, '2026-01-02T03:04:05Z' FROM tracks "
            "WHERE id = '%s';" % (self.user, self.track))
        self.assertTrue(blocked, "the save did not wait for the open collection add")
        self.assertNotEqual(save_saved_at(self.user, self.track), "NULL")
        self.assertEqual(entry_saved_at(self.coll, self.track), save_saved_at(self.user, self.track))
        self.check_clean()

    def test_add_concurrent_with_unsave_clears_the_copy(self):
        self.w.save(self.org, self.user, self.track, "2026-01-02T03:04:05Z")
        blocked = self.interleave("DELETE FROM library_saves WHERE user_id = '%s' AND track_id = '%s';"
                                  % (self.user, self.track))
        self.assertTrue(blocked, "the unsave did not wait for the open collection add")
        self.assertEqual(save_saved_at(self.user, self.track), "NULL")
        self.assertEqual(entry_saved_at(self.coll, self.track), "NULL")
        self.check_clean()

    def check_clean(self):
        rc, out, err = admin("check", check=False)
        self.assertEqual(rc, 0, out + err)


class CheckTests(unittest.TestCase):
    def test_check_reports_drift_and_exits_non_zero(self):
        w = World("drift")
        org = w.org()
        user = w.user()
        w.member(org, user)
        track = w.track(org)
        w.save(org, user, track, "2026-02-01T00:00:00Z")
        coll = w.collection(org, user)
        w.collect(coll, track)
        rc, out, _ = admin("check", check=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("every copy is exact", out)
        db = load_env()["db_owner"]
        # Break the copy behind the triggers' back (saved_at alone fires no trigger).
        psql(db, "UPDATE collection_tracks SET saved_at = NULL WHERE collection_id = '%s'" % coll)
        try:
            rc, out, _ = admin("check", check=False)
            self.assertEqual(rc, 1, out)
            self.assertRegex(out, r"DRIFT\s+1 rows: collection entries")
        finally:
            psql(db, "UPDATE collection_tracks ct SET saved_at = s.saved_at FROM library_saves s "
                     "WHERE ct.collection_id = '%s' AND s.user_id = '%s' AND s.track_id = ct.track_id"
                     % (coll, user))
        rc, out, _ = admin("check", check=False)
        self.assertEqual(rc, 0, out)


class PlanTests(unittest.TestCase):
    """README: every library filter is an index-only walk of its own index in page order; a
    collection page is an index-only walk of collection_tracks_page_idx (mode and engine read
    from the track by its key). No variant sorts or scans a whole table of saves or entries."""

    EXPECTED = {
        (0, 0, 0): "library_saves_page_idx", (1, 0, 0): "library_saves_mode_page_idx",
        (0, 1, 0): "library_saves_engine_page_idx", (1, 1, 0): "library_saves_mode_engine_page_idx",
    }

    @classmethod
    def setUpClass(cls):
        # Enough rows that the planner's choice is the one production makes, then statistics.
        admin("seed", "--users", "2", "--tracks", "2000", "--saves-per-user", "1000")
        psql(load_env()["db_owner"], "VACUUM ANALYZE api_keys, memberships, tracks, library_saves, "
             "collections, collection_tracks")
        _, out, _ = admin("explain")
        cls.plans = {}
        current = None
        for line in out.splitlines():
            if line.startswith("variant "):
                f = dict(p.split("=") for p in line.split()[1:])
                current = (int(f["mode"]), int(f["engine"]), int(f["collection"]))
                cls.plans[current] = []
            elif current is not None:
                cls.plans[current].append(line.strip())

    def test_every_variant_is_planned(self):
        self.assertEqual(len(self.plans), 8, self.plans.keys())

    def test_each_variant_walks_its_index_without_sorting_the_page(self):
        for variant, lines in sorted(self.plans.items()):
            with self.subTest(variant=variant):
                text = "\n".join(lines)
                index = self.EXPECTED.get(variant, "collection_tracks_page_idx")
                table = "collection_tracks ct" if variant[2] else "library_saves s"
                self.assertIn("Index Only Scan using %s on %s" % (index, table), text)
                self.assertNotIn("Seq Scan on library_saves", text)
                self.assertNotIn("Seq Scan on collection_tracks", text)
                # The filters probe tracks by key per entry (the page's final join to tracks of at
                # most `limit` rows is left to the planner: on this small table it may hash it).
                self.assertNotIn("Seq Scan on tracks ft", text)
                # One Sort only: the outer ORDER BY of at most `limit` rows, never the walk.
                sorts = [l for l in lines if l.lstrip("-> ").startswith("Sort") and "Sort Key" not in l]
                self.assertLessEqual(len(sorts), 1, text)
                if sorts:
                    self.assertEqual(lines[0], "Sort", text)


if __name__ == "__main__":
    load_env()
    unittest.main(verbosity=2)
