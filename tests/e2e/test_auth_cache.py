"""Workers cache successful authorizations; these tests prove a stale cache never serves data.

The notification that clears the caches is suppressed on purpose (the trigger is disabled inside
the revoking transaction), so only the listing statement's own re-check stands between a revoked
key, or a removed member, and the data.
"""

import os
import sys
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
