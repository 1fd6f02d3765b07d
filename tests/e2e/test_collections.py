"""Collection pages follow the owner's saves exactly, whatever the order of saves and adds.

Collection entries keep a copy of the owner's saved_at (sql/004_collection_saved_at.sql); these
tests walk every path that must update the copy, through the API.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402


class CollectionPageTests(m.ApiTestCase):
    def setUp(self):
        self.world = m.World("coll")
        self.org = self.world.org()
        self.user, self.key = self.world.principal(self.org)
        self.other_user, _ = self.world.principal(self.org)
        self.coll = self.world.collection(self.org, self.user)
        self.a = self.world.track(self.org, mode="focus")
        self.b = self.world.track(self.org, mode="creation")
        self.c = self.world.track(self.org, mode="focus")

    def page(self, query=""):
        return self.ids(self.org, self.key, "collection_id=%s%s" % (self.coll, query))

    def test_track_added_before_it_is_saved_appears_once_saved(self):
        self.world.collect(self.coll, self.a)
        self.assertEqual(self.page(), [])
        self.world.save(self.org, self.user, self.a, "2026-03-01T00:00:00Z")
        self.assertEqual(self.page(), [self.a])

    def test_order_follows_saved_at_and_unsave_removes(self):
        self.world.save(self.org, self.user, self.a, "2026-03-01T00:00:00Z")
        self.world.save(self.org, self.user, self.b, "2026-03-03T00:00:00Z")
        self.world.save(self.org, self.user, self.c, "2026-03-02T00:00:00Z")
        for t in (self.a, self.b, self.c):
            self.world.collect(self.coll, t)
        self.assertEqual(self.page(), [self.b, self.c, self.a])
        self.assertEqual(self.page("&mode=focus"), [self.c, self.a])
        self.assertEqual(self.page("&limit=1&offset=1"), [self.c])
        m.admin("library", "unsave", self.org, self.user, self.c)
        self.assertEqual(self.page(), [self.b, self.a])
        # Saved again later: it comes back, now the newest.
        self.world.saved_at.pop((self.org, self.user, self.c), None)
        self.world.save(self.org, self.user, self.c, "2026-04-01T00:00:00Z")
        self.assertEqual(self.page(), [self.c, self.b, self.a])

    def test_another_users_save_of_the_same_track_does_not_count(self):
        self.world.collect(self.coll, self.a)
        self.world.save(self.org, self.other_user, self.a, "2026-03-01T00:00:00Z")
        self.assertEqual(self.page(), [])
        m.admin("library", "unsave", self.org, self.other_user, self.a)
        self.world.save(self.org, self.user, self.a, "2026-03-05T00:00:00Z")
        self.assertEqual(self.page(), [self.a])

    def test_the_owner_of_a_collection_cannot_change(self):
        env = m.load_env()
        code, _, err = m.psql(env["db_owner"], "UPDATE collections SET user_id = %s WHERE id = %s"
                              % (m.sql_literal(self.other_user), m.sql_literal(self.coll)), check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("cannot change", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
