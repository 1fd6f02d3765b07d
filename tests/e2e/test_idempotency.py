"""Writes a client can retry: Idempotency-Key on every POST, PATCH and DELETE (the stored first
answer replayed with Idempotent-Replayed: true, 422 for another request under the same key, 409
while the first still runs, the 1-255 printable ASCII rule, 24 h then pruned), and, without a
key, repeated deletes answering their deleter the same 200 while anyone else gets the one 404.

Everything goes through nginx over TLS, as a client would, and every answer is checked against
docs/openapi.yaml.
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402
import openapi  # noqa: E402
from test_collections_api import CollectionTestCase, coll_path, colls_path, track_path  # noqa: E402

DOC = openapi.load()
# pipeline: the advisory lock a claim holds (db/statements.hpp kIdempotencyLock).
LOCK_CLASS = 1296124235


def owner_sql(sql):
    return m.psql(m.load_env()["db_owner"], sql)[1].strip()


def stored_rows(key):
    return int(owner_sql("SELECT count(*) FROM idempotency_keys WHERE api_key_id = %s"
                         % m.sql_literal(m.key_id(key))))


class IdempotencyKeyTest(CollectionTestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = m.World("idem")
        cls.org = cls.w.org()
        cls.user, cls.key = cls.w.principal(cls.org)
        cls.other_user, cls.other_key = cls.w.principal(cls.org)

    def keyed(self, method, path, idem, body=None, key=None):
        return self.call(method, path, key or self.key, body, headers={"Idempotency-Key": idem})

    def collection_count(self, user=None):
        return int(owner_sql("SELECT count(*) FROM collections WHERE user_id = %s"
                             % m.sql_literal(user or self.user)))

    def test_a_repeat_gets_the_first_answer_and_writes_nothing_more(self):
        idem = m.unique("create")
        before = self.collection_count()
        first = self.keyed("POST", colls_path(self.org), idem, {"name": "Road trip"})
        body = self.assert_collection(first, 201)
        self.assertNotIn("Idempotent-Replayed", first.headers)
        for _ in range(3):
            again = self.keyed("POST", colls_path(self.org), idem, {"name": "Road trip"})
            self.assertEqual(again.status, 201)
            self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
            self.assertEqual(again.json(), body)
            self.assert_common_headers(again)
        self.assertEqual(self.collection_count(), before + 1)
        # The stored answer is the one the write made: the collection it names exists.
        self.assert_collection(self.call("GET", coll_path(self.org, body["id"]), self.key))

    def test_another_request_under_the_same_key_is_422(self):
        idem = m.unique("reuse")
        self.assert_collection(self.keyed("POST", colls_path(self.org), idem, {"name": "One"}), 201)
        before = self.collection_count()
        for method, path, body in (("POST", colls_path(self.org), {"name": "Two"}),
                                   ("POST", colls_path(self.org) + "?x=1", {"name": "One"}),
                                   ("DELETE", coll_path(self.org, "mcoll_idemother"), None)):
            with self.subTest(method=method, path=path):
                r = self.keyed(method, path, idem, body)
                self.assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED", "invalid_request_error",
                                  field="Idempotency-Key")
        self.assertEqual(self.collection_count(), before)

    def test_keys_belong_to_the_api_key_that_sent_them(self):
        idem = m.unique("shared-name")
        mine = self.assert_collection(self.keyed("POST", colls_path(self.org), idem, {"name": "A"}), 201)
        theirs = self.assert_collection(
            self.keyed("POST", colls_path(self.org), idem, {"name": "A"}, key=self.other_key), 201)
        self.assertNotEqual(mine["id"], theirs["id"])
        r = self.call("GET", coll_path(self.org, mine["id"]), self.other_key)
        self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")

    def test_a_key_must_be_1_to_255_printable_ascii(self):
        before = self.collection_count()
        for bad in ("", "x" * 256, "caf\u00e9"):
            with self.subTest(length=len(bad)):
                h = dict(m.key_headers(self.key))
                h["Content-Type"] = "application/json"
                h["Idempotency-Key"] = bad
                r = m.request("POST", colls_path(self.org), h, body=b'{"name":"bad key"}')
                self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error", field="Idempotency-Key")
        self.assertEqual(self.collection_count(), before)
        for good in ("x" * 255, "a b ~!", "8e03978e-40d5-43e8-bc93-6894a57f9324"):
            with self.subTest(good=good[:20]):
                self.assert_collection(self.keyed("POST", colls_path(self.org), good, {"name": m.unique("ok")}), 201)
                # the same key again is now a replay or a reuse, never a second write
                r = self.keyed("POST", colls_path(self.org), good, {"name": "different"})
                self.assertEqual(r.status, 422)

    def test_a_repeat_while_the_first_runs_is_409_with_retry_after(self):
        idem = m.unique("busy")
        # The first request's claim is an advisory lock its transaction holds: hold it here.
        lock = "pg_advisory_xact_lock(%d, hashtext(%s || ' ' || %s))" % (
            LOCK_CLASS, m.sql_literal(m.key_id(self.key)), m.sql_literal(idem))
        e = m.load_env()
        holder = subprocess.Popen([e["psql"], "-X", "-q", "-d", e["db_owner"], "-c",
                                   "BEGIN; SELECT %s; SELECT pg_sleep(4); COMMIT;" % lock],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                held = owner_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %d"
                                 % LOCK_CLASS)
                if held != "0":
                    break
                time.sleep(0.05)
            self.assertNotEqual(held, "0", "the test's psql never took the lock")
            before = self.collection_count()
            r = self.keyed("POST", colls_path(self.org), idem, {"name": "Busy"})
            self.assert_error(r, 409, "IDEMPOTENCY_KEY_IN_USE", "conflict_error")
            self.assertRegex(r.headers.get("Retry-After", ""), r"^[1-9][0-9]*$")
            self.assertEqual(self.collection_count(), before)
        finally:
            holder.communicate(timeout=30)
        self.assert_collection(self.keyed("POST", colls_path(self.org), idem, {"name": "Busy"}), 201)

    def test_errors_are_not_stored_and_nothing_is_written(self):
        idem = m.unique("err")
        missing = track_path(self.org, "mtrack_idemmissing") + "/save"
        for _ in range(2):
            r = self.keyed("POST", missing, idem)
            self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
            self.assertNotIn("Idempotent-Replayed", r.headers)
        self.assertEqual(int(owner_sql("SELECT count(*) FROM idempotency_keys WHERE key = %s"
                                       % m.sql_literal(idem))), 0)

    def test_every_write_route_replays(self):
        track = self.w.track(self.org, creator=self.user)
        coll = self.create(self.org, self.key)["id"]
        steps = [
            ("POST", track_path(self.org, track) + "/save", None, 200),
            ("POST", coll_path(self.org, coll, "/tracks"), {"track_id": track}, 200),
            ("PATCH", coll_path(self.org, coll), {"description": "edited"}, 200),
            ("PATCH", coll_path(self.org, coll, "/order"), {"ordered_track_ids": [track]}, 200),
            ("POST", track_path(self.org, track) + "/share", {}, 201),
            ("DELETE", coll_path(self.org, coll, "/tracks/" + track), None, 200),
            ("DELETE", coll_path(self.org, coll), None, 200),
            ("DELETE", track_path(self.org, track) + "/save", None, 200),
            ("DELETE", track_path(self.org, track), None, 200),
        ]
        for method, path, body, status in steps:
            with self.subTest(method=method, path=path):
                idem = m.unique("route")
                first = self.keyed(method, path, idem, body)
                self.assertEqual(first.status, status, first.body[:300])
                again = self.keyed(method, path, idem, body)
                self.assertEqual(again.status, status, again.body[:300])
                self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
                self.assertEqual(again.body, first.body)
        # A share link replayed is the same link (one row), its token shown again to its creator.
        self.assertEqual(int(owner_sql("SELECT count(*) FROM share_links WHERE track_id = %s"
                                       % m.sql_literal(track))), 1)

    def test_a_revoked_key_gets_no_replay(self):
        user, key = self.w.principal(self.org)
        idem = m.unique("revoked")
        self.assert_collection(self.keyed("POST", colls_path(self.org), idem, {"name": "R"}, key=key), 201)
        m.admin("key", "revoke", m.key_id(key))
        r = self.keyed("POST", colls_path(self.org), idem, {"name": "R"}, key=key)
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_kept_24_hours_then_pruned_a_few_per_new_answer(self):
        user, key = self.w.principal(self.org)
        old = [m.unique("old") for _ in range(3)]
        for idem in old:
            self.assert_collection(self.keyed("POST", colls_path(self.org), idem, {"name": "Old"}, key=key), 201)
        self.assertEqual(stored_rows(key), 3)
        # old[0] the youngest of the expired: the prune (oldest first) does not reach it, so
        # reusing it must free the key itself.
        owner_sql("UPDATE idempotency_keys SET created_at = now() - interval '30 hours' WHERE key IN (%s)"
                  % ", ".join(m.sql_literal(i) for i in old[1:]))
        owner_sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = %s"
                  % m.sql_literal(old[0]))
        # Older than 24 h: forgotten, so the key runs again (a new collection).
        again = self.assert_collection(self.keyed("POST", colls_path(self.org), old[0], {"name": "New"}, key=key), 201)
        self.assertEqual(again["name"], "New")
        # Each new answer deletes at most two expired rows, oldest first: the table never needs a sweep.
        remaining_old = int(owner_sql("SELECT count(*) FROM idempotency_keys WHERE created_at < now() - "
                                      "interval '24 hours' AND api_key_id = %s" % m.sql_literal(m.key_id(key))))
        self.assertEqual(remaining_old, 0)


class RepeatedDeletesWithoutKey(CollectionTestCase):
    """A retried DELETE (by nginx, the worker or the client) answers its deleter the same 200."""

    @classmethod
    def setUpClass(cls):
        cls.w = m.World("redel")
        cls.org = cls.w.org()
        cls.user, cls.key = cls.w.principal(cls.org)
        cls.other_user, cls.other_key = cls.w.principal(cls.org)

    def test_track_delete_twice(self):
        track = self.w.track(self.org, creator=self.user)
        self.w.save(self.org, self.other_user, track)
        first = self.call("DELETE", track_path(self.org, track), self.key)
        self.assertEqual(first.status, 200, first.body)
        again = self.call("DELETE", track_path(self.org, track), self.key)
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.json(), first.json())
        # Anyone else, even who had it saved, and an id that never existed: the one 404.
        other = self.assert_error(self.call("DELETE", track_path(self.org, track), self.other_key),
                                  404, "RESOURCE_NOT_FOUND", "not_found_error")
        never = self.assert_error(self.call("DELETE", track_path(self.org, "mtrack_neverexisted"), self.other_key),
                                  404, "RESOURCE_NOT_FOUND", "not_found_error")
        self.assert_same_error(other, never)
        self.assert_error(self.call("GET", track_path(self.org, track), self.key),
                          404, "RESOURCE_NOT_FOUND", "not_found_error")

    def test_collection_delete_twice(self):
        coll = self.create(self.org, self.key)["id"]
        first = self.call("DELETE", coll_path(self.org, coll), self.key)
        self.assertEqual(first.status, 200, first.body)
        again = self.call("DELETE", coll_path(self.org, coll), self.key)
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.json(), first.json())
        other = self.assert_error(self.call("DELETE", coll_path(self.org, coll), self.other_key),
                                  404, "RESOURCE_NOT_FOUND", "not_found_error")
        never = self.assert_error(self.call("DELETE", coll_path(self.org, "mcoll_neverexisted"), self.other_key),
                                  404, "RESOURCE_NOT_FOUND", "not_found_error")
        self.assert_same_error(other, never)
        self.assert_error(self.call("GET", coll_path(self.org, coll), self.key),
                          404, "RESOURCE_NOT_FOUND", "not_found_error")

    def test_entry_and_share_link_delete_twice(self):
        track = self.w.track(self.org, creator=self.user)
        coll = self.create(self.org, self.key)["id"]
        self.ok(self.call("POST", coll_path(self.org, coll, "/tracks"), self.key, {"track_id": track}))
        for _ in range(2):
            self.ok(self.call("DELETE", coll_path(self.org, coll, "/tracks/" + track), self.key))
        link = self.ok(self.call("POST", track_path(self.org, track) + "/share", self.key, {}), 201)
        path = "/v1/music/%s/shares/%s" % (self.org, link["id"])
        first = self.ok(self.call("DELETE", path, self.key))
        self.assertEqual(self.ok(self.call("DELETE", path, self.key)), first)
        self.assert_error(self.call("DELETE", path, self.other_key), 404, "RESOURCE_NOT_FOUND", "not_found_error")


if __name__ == "__main__":
    unittest.main(verbosity=2)
