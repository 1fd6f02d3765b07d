"""Workers cache successful authorizations; these tests prove a stale cache never serves data.

The notification that clears the caches is suppressed on purpose (the trigger is disabled inside
the revoking transaction), so only the listing statement's own re-check stands between a revoked
key, or a removed member, and the data.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402

WARM_REQUESTS = 12  # enough to reach every worker of the test stack (3) several times


def change_silently(sql):
    """Run `sql` as the owner with the auth-change notifications disabled for that transaction."""
    env = m.load_env()
    m.psql(env["db_owner"],
           "BEGIN; ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify_auth; "
           "ALTER TABLE memberships DISABLE TRIGGER memberships_notify_auth; " + sql +
           "; ALTER TABLE api_keys ENABLE TRIGGER api_keys_notify_auth; "
           "ALTER TABLE memberships ENABLE TRIGGER memberships_notify_auth; COMMIT;")


def auth_sources(trace_ids, timeout=5.0):
    """The request log's `auth` field (cache, db, unknown_cache) for each trace id."""
    wanted, found = set(trace_ids), {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(m.load_env()["api_log"], encoding="utf-8", errors="replace") as f:
            for line in f:
                t = re.search(r"\btrace_id=(\S+)", line)
                a = re.search(r"\bauth=(\S+)", line)
                if t and a and t.group(1) in wanted and " event=request " in line:
                    found[t.group(1)] = a.group(1)
        if len(found) == len(wanted):
            break
        time.sleep(0.1)
    return [found.get(t) for t in trace_ids]


def workers():
    return int(m.conf_value("workers", "3"))


class CacheUseTests(m.ApiTestCase):
    """The log says how each key was judged, so these prove the cache is really used."""

    def test_repeated_requests_are_served_from_the_cache(self):
        w = m.World("cache-use")
        org = w.org()
        _, key = w.principal(org)
        ids = []
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(org), key=key)
            self.assertEqual(r.status, 200, r.body[:200])
            ids.append(r.headers.get("X-Request-ID"))
        sources = auth_sources(ids)
        # Each worker asks the database once; every later request it serves is a cache hit.
        self.assertLessEqual(sources.count("db"), workers(), sources)
        self.assertGreaterEqual(sources.count("cache"), WARM_REQUESTS - workers(), sources)
        self.assertEqual(sources.count("db") + sources.count("cache"), WARM_REQUESTS, sources)

    def test_an_unknown_key_id_is_remembered_briefly(self):
        w = m.World("cache-unknown")
        org = w.org()
        bogus = "mk_%s_%s" % ("z" * 16, "A" * 32)
        ids = []
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(org), key=bogus)
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
            ids.append(r.headers.get("X-Request-ID"))
        sources = auth_sources(ids)
        self.assertLessEqual(sources.count("db"), workers(), sources)
        self.assertGreaterEqual(sources.count("unknown_cache"), WARM_REQUESTS - workers(), sources)


class StaleCacheTests(m.ApiTestCase):
    def setUp(self):
        self.world = m.World("cache")
        self.org = self.world.org()
        self.user, self.key = self.world.principal(self.org)
        self.track = self.world.track(self.org, title="secret track")
        self.world.save(self.org, self.user, self.track)
        for _ in range(WARM_REQUESTS):
            body = self.listing(self.org, self.key)
            self.assertEqual([i["id"] for i in body["items"]], [self.track])

    def test_revoked_key_is_refused_even_when_no_worker_was_told(self):
        change_silently("UPDATE api_keys SET revoked_at = now() WHERE id = %s" % m.sql_literal(m.key_id(self.key)))
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(self.org), key=self.key)
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_removed_member_is_refused_even_when_no_worker_was_told(self):
        change_silently("DELETE FROM memberships WHERE user_id = %s AND org_id = %s"
                        % (m.sql_literal(self.user), m.sql_literal(self.org)))
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(self.org), key=self.key)
            self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_lost_capability_is_refused_even_when_no_worker_was_told(self):
        change_silently("UPDATE memberships SET capabilities = '{}' WHERE user_id = %s AND org_id = %s"
                        % (m.sql_literal(self.user), m.sql_literal(self.org)))
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(self.org), key=self.key)
            self.assert_error(r, 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")

    def test_expiry_set_later_takes_effect_without_a_notification(self):
        change_silently("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s"
                        % m.sql_literal(m.key_id(self.key)))
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(self.org), key=self.key)
            self.assert_error(r, 401, "API_KEY_EXPIRED", "authentication_error")

    def test_notified_revocation_also_fixes_error_order(self):
        # With the notification (the normal path), even a request with bad parameters learns of
        # the revocation first: 401 before 422.
        m.admin("key", "revoke", m.key_id(self.key))
        for _ in range(WARM_REQUESTS):
            r = self.get(m.tracks_path(self.org, "limit=abc"), key=self.key)
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")


if __name__ == "__main__":
    unittest.main(verbosity=2)
