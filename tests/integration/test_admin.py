"""Integration tests of the music-admin CLI and of the database roles, on the real PostgreSQL.

Run as `MUSIC_API_STACK=DIR python3 tests/integration/test_admin.py` against a running stack
(see tests/support/musicapi.py). What music-admin stored is read back through the API (the
stack's nginx) or, for the role checks, through psql as the API's read-only role.
"""

import datetime
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from musicapi import (  # noqa: E402
    ApiTestCase, World, admin, admin_id, key_id, key_secret, load_env, now_utc, psql, q,
    request, sql_ident, sql_literal, tracks_path, unique)

ID_RES = {
    "org": re.compile(r"^org_[A-Za-z0-9_-]+$"),
    "user": re.compile(r"^usr_[A-Za-z0-9_-]+$"),
    "track": re.compile(r"^mtrack_[A-Za-z0-9_-]+$"),
    # must be what the endpoint itself accepts as collection_id
    "collection": re.compile(r"^mcoll_[A-Za-z0-9_-]{1,64}$"),
    "key": re.compile(r"^mk_[A-Za-z0-9-]+_[A-Za-z0-9_~.+/=-]{16,}$"),
}
LICENCES = ("commercial_cleared", "commercial_enterprise", "personal_only", "unclear")
CRASH_RE = re.compile(r"terminate called|Segmentation|core dumped|Aborted|std::|what\(\)", re.I)
SYSTEM_SCHEMA_SQL = "nspname !~ '^pg_' AND nspname <> 'information_schema'"


def rows(out):
    return [ln.split("|") for ln in out.splitlines() if ln.strip()]


class AdminCase(ApiTestCase):
    def assert_fails(self, *args, **kw):
        rc, out, err = admin(*args, check=False, **kw)
        self.assertGreater(rc, 0, "music-admin %r should fail with a non-zero exit (no signal): "
                           "rc=%d stdout=%r stderr=%r" % (args, rc, out, err))
        self.assertEqual(out.strip(), "", "stdout of a failed command: %r" % out)
        self.assertTrue(err.strip(), "a failed command must say why on stderr")
        self.assertIsNone(CRASH_RE.search(err), "crash output on stderr: %r" % err)
        return err


# =========================================================================== outputs

class MigrateTests(AdminCase):
    def test_migrate_is_idempotent(self):
        for _ in range(2):
            rc, out, err = admin("migrate")
            self.assertEqual(rc, 0)
            self.assertIsNone(CRASH_RE.search(err))


class CreateOutputTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        cls.w = World("out")

    def assert_only_id(self, kind, *args):
        rc, out, err = admin(*args)
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, "stdout must be only the new id: %r" % out)
        self.assertEqual(lines[0], lines[0].strip())
        self.assertRegex(lines[0], ID_RES[kind])
        return lines[0]

    def test_each_create_prints_only_the_new_id(self):
        org = self.assert_only_id("org", "org", "create", unique("Org name with spaces"))
        user = self.assert_only_id("user", "user", "create", unique("u") + "@example.test")
        admin("member", "add", org, user, "--capability", "USE_MUSIC_GENERATION")
        key = self.assert_only_id("key", "key", "create", user)
        track = self.assert_only_id("track", "track", "create", org, "--engine", "studio",
                                    "--mode", "creation")
        coll = self.assert_only_id("collection", "collection", "create", org, user,
                                   "My collection ☕")
        admin("library", "save", org, user, track)
        admin("collection", "add", coll, track)
        self.assertEqual(self.ids(org, key, "collection_id=" + coll), [track])
        self.assertTrue(key.startswith(key_id(key) + "_"))

    def test_ids_are_unique(self):
        orgs = {self.w.org() for _ in range(3)}
        users = {self.w.user() for _ in range(3)}
        o = next(iter(orgs))
        u = next(iter(users))
        tracks = {self.w.track(o) for _ in range(3)}
        colls = {self.w.collection(o, u) for _ in range(3)}
        keys = {self.w.key(u) for _ in range(3)}
        for s in (orgs, users, tracks, colls, keys):
            self.assertEqual(len(s), 3)
        self.assertEqual(len({key_id(k) for k in keys}), 3)

    def test_same_names_give_distinct_ids(self):
        o = self.w.org()
        u = self.w.user()
        name = unique("same")
        self.assertNotEqual(self.w.collection(o, u, name), self.w.collection(o, u, name))

    def test_key_create_past_expiry_allowed(self):
        u = self.w.user()
        self.assert_only_id("key", "key", "create", u, "--expires-at", "2020-01-01T00:00:00Z")
        self.assert_only_id("key", "key", "create", u, "--expires-at",
                            "2021-06-01T08:00:00.123+05:30")


# =========================================================================== errors

class ErrorExitTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("err")
        cls.org = w.org()
        cls.other_org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org)
        cls.foreign_track = w.track(cls.other_org)
        cls.coll = w.collection(cls.org, cls.user)

    def track_args(self, *extra, org=None):
        return ["track", "create", org or self.org, "--engine", "studio", "--mode", "creation"] \
            + list(extra)

    def test_usage_errors(self):
        for args in ([], ["frobnicate"], ["org"], ["org", "explode"], ["org", "create"],
                     ["user", "create"], ["member", "add", self.org], ["key", "create"],
                     ["track", "create"], ["library", "save", self.org],
                     ["collection", "create", self.org]):
            with self.subTest(args=args):
                self.assert_fails(*args)

    def test_licence_class_must_be_one_of_four(self):
        for c in ("public_domain", "Unclear", "UNCLEAR", "", "commercial", "personal_only "):
            with self.subTest(licence=c):
                self.assert_fails(*self.track_args("--licence-class", c))

    def test_engine_and_mode_at_most_64_bytes(self):
        for flag in ("--engine", "--mode"):
            for v in ("x" * 65, "é" * 33, "☕" * 21 + "ab"):
                with self.subTest(flag=flag, value=v[:10]):
                    args = ["track", "create", self.org, "--engine", "studio", "--mode", "m"]
                    args[args.index(flag) + 1] = v
                    self.assert_fails(*args)

    def test_engine_and_mode_required(self):
        self.assert_fails("track", "create", self.org, "--mode", "creation")
        self.assert_fails("track", "create", self.org, "--engine", "studio")

    def test_bad_values(self):
        for extra in (["--created-at", "yesterday"], ["--created-at", "2025-02-30T00:00:00Z"],
                      ["--created-at", "2025-01-01T25:00:00Z"], ["--created-at", ""],
                      ["--duration", "abc"], ["--duration", ""]):
            with self.subTest(extra=extra):
                self.assert_fails(*self.track_args(*extra))

    def test_unknown_references(self):
        for args in (
                self.track_args(org="org_doesnotexist"),
                ["member", "add", self.org, "usr_doesnotexist"],
                ["member", "add", "org_doesnotexist", self.user],
                ["key", "create", "usr_doesnotexist"],
                ["key", "revoke", "mk_doesnotexist"],
                ["key", "revoke", "garbage"],
                ["library", "save", self.org, self.user, "mtrack_doesnotexist"],
                ["library", "save", "org_doesnotexist", self.user, self.track],
                ["library", "save", self.org, "usr_doesnotexist", self.track],
                ["collection", "create", "org_doesnotexist", self.user, "n"],
                ["collection", "create", self.org, "usr_doesnotexist", "n"],
                ["collection", "add", "mcoll_doesnotexist", self.track],
                ["collection", "add", self.coll, "mtrack_doesnotexist"]):
            with self.subTest(args=args):
                self.assert_fails(*args)

    def test_bad_timestamps(self):
        self.assert_fails("key", "create", self.user, "--expires-at", "never")
        self.assert_fails("key", "create", self.user, "--expires-at", "2025-13-01T00:00:00Z")
        self.assert_fails("library", "save", self.org, self.user, self.track, "--saved-at", "soon")

    def test_saving_another_orgs_track_fails(self):
        self.assert_fails("library", "save", self.org, self.user, self.foreign_track,
                          "--saved-at", "2025-01-01T00:00:00Z")
        self.assertNotIn(self.foreign_track, self.ids(self.org, self.key))

    def test_seed_bad_numbers(self):
        self.assert_fails("seed", "--users", "abc", "--tracks", "1", "--saves-per-user", "1")
        self.assert_fails("seed", "--users", "-1", "--tracks", "1", "--saves-per-user", "1")

    def test_unreachable_database(self):
        bad = "host=127.0.0.1 port=1 dbname=nope user=nope connect_timeout=3"
        self.assert_fails("org", "create", unique("o"), env_extra={"MUSIC_API_DB": bad})


class DbFlagTests(AdminCase):
    def test_db_flag_replaces_environment(self):
        owner = load_env()["db_owner"]
        name = unique("dbflag")
        tried = []
        for args in (["--db", owner, "org", "create", name],
                     ["org", "create", name, "--db", owner]):
            rc, out, err = admin(*args, check=False, with_db=False)
            tried.append((rc, out, err))
            if rc == 0:
                self.assertRegex(out.strip(), ID_RES["org"])
                return
        self.fail("--db CONNINFO did not work before or after the command: %r" % tried)


# =========================================================================== stored values

class TrackFieldTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("fields")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.t = {}
        specs = {
            "e64": dict(engine="x" * 64, mode="y" * 64),
            "utf64": dict(engine="ü" * 32, mode="é" * 32, title="Café ☕ 夜"),
            "dur": dict(duration="119.4", instrumental=True),
            "int": dict(duration="180"),
        }
        for c in LICENCES:
            specs["lic-" + c] = dict(licence=c)
        for i, (name, spec) in enumerate(sorted(specs.items())):
            cls.t[name] = w.track(cls.org, **spec)
            w.save(cls.org, cls.user, cls.t[name], "2025-02-01T00:00:%02dZ" % i)
        r = request("GET", tracks_path(cls.org, "limit=100"), {"X-API-Key": cls.key})
        cls.items = {i["id"]: i for i in r.json()["items"]} if r.status == 200 else {}
        cls.status = r.status

    def setUp(self):
        self.assertEqual(self.status, 200, "listing the tracks failed")

    def test_64_byte_engine_and_mode_accepted(self):
        item = self.items[self.t["e64"]]
        self.assertEqual((item["engine"], item["mode"]), ("x" * 64, "y" * 64))
        item = self.items[self.t["utf64"]]
        self.assertEqual((item["engine"], item["mode"], item["title"]),
                         ("ü" * 32, "é" * 32, "Café ☕ 夜"))
        self.assertEqual(self.ids(self.org, self.key, "mode=" + q("é" * 32)),
                         [self.t["utf64"]])

    def test_licence_classes_and_default(self):
        for c in LICENCES:
            self.assertEqual(self.items[self.t["lic-" + c]]["licence_class"], c)
        self.assertEqual(self.items[self.t["dur"]]["licence_class"], "unclear")

    def test_duration_and_instrumental(self):
        self.assertEqual(self.items[self.t["dur"]]["measured_duration_seconds"], 119.4)
        self.assertIs(self.items[self.t["dur"]]["instrumental"], True)
        self.assertEqual(self.items[self.t["int"]]["measured_duration_seconds"], 180)
        self.assertIs(self.items[self.t["int"]]["instrumental"], False)
        self.assertIsNone(self.items[self.t["e64"]]["measured_duration_seconds"])
        self.assertIsNone(self.items[self.t["e64"]]["title"])


class TimestampTests(AdminCase):
    CREATED = [
        ("2026-01-02T03:04:05.987+02:00", "2026-01-02T01:04:05Z"),
        ("2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00Z"),
        ("2025-12-31T23:59:59.999999Z", "2025-12-31T23:59:59Z"),
        ("2024-02-29T12:00:00+14:00", "2024-02-28T22:00:00Z"),
        ("2026-03-01T00:00:00.5-12:00", "2026-03-01T12:00:00Z"),
        ("2025-06-15T10:20:30+00:00", "2025-06-15T10:20:30Z"),
        ("2025-06-15T10:20:30-00:30", "2025-06-15T10:50:30Z"),
    ]

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("ts")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.created = {}
        for i, (given, _) in enumerate(cls.CREATED):
            t = w.track(cls.org, created_at=given)
            cls.created[given] = t
            w.save(cls.org, cls.user, t, "2024-01-01T00:00:%02dZ" % i)
        # saved_at order across offsets and fractions
        cls.s_user, cls.s_key = w.principal(cls.org)
        cls.a = w.track(cls.org)
        cls.b = w.track(cls.org)
        cls.c = w.track(cls.org)
        cls.d = w.track(cls.org)
        cls.e = w.track(cls.org)
        cls.f = w.track(cls.org)
        w.save(cls.org, cls.s_user, cls.a, "2025-01-01T12:00:00+02:00")      # 10:00:00Z
        w.save(cls.org, cls.s_user, cls.b, "2025-01-01T11:00:00Z")           # 11:00:00Z
        w.save(cls.org, cls.s_user, cls.c, "2025-01-01T10:00:00.500Z")       # 10:00:00.5Z
        w.save(cls.org, cls.s_user, cls.d, "2025-01-01T05:30:00-05:00")      # 10:30:00Z
        w.save(cls.org, cls.s_user, cls.e)                                   # now
        future = (now_utc() + datetime.timedelta(days=1)).isoformat(timespec="seconds")
        w.save(cls.org, cls.s_user, cls.f, future)

    def test_created_at_rendered_in_utc_truncated(self):
        items = {i["id"]: i for i in self.listing(self.org, self.key, "limit=100")["items"]}
        for given, rendered in self.CREATED:
            with self.subTest(created_at=given):
                self.assertEqual(items[self.created[given]]["created_at"], rendered)

    def test_saved_at_offsets_fractions_and_default_now(self):
        self.assertEqual(self.ids(self.org, self.s_key),
                         [self.f, self.e, self.b, self.d, self.c, self.a])


class LibraryTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("lib")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)

    def setUp(self):
        # fresh tracks for each test, saved by a fresh user
        self.u, self.k = self.w.principal(self.org)
        self.t1 = self.w.track(self.org)
        self.t2 = self.w.track(self.org)
        admin("library", "save", self.org, self.u, self.t1, "--saved-at", "2025-01-01T10:00:00Z")
        admin("library", "save", self.org, self.u, self.t2, "--saved-at", "2025-01-01T11:00:00Z")

    def test_save_is_idempotent_and_keeps_saved_at(self):
        self.assertEqual(self.ids(self.org, self.k), [self.t2, self.t1])
        rc, _, _ = admin("library", "save", self.org, self.u, self.t1,
                         "--saved-at", "2025-01-01T12:00:00Z")
        self.assertEqual(rc, 0)
        rc, _, _ = admin("library", "save", self.org, self.u, self.t1)
        self.assertEqual(rc, 0)
        self.assertEqual(self.ids(self.org, self.k), [self.t2, self.t1])

    def test_unsave_removes_and_resave_uses_new_saved_at(self):
        coll = self.w.collection(self.org, self.u)
        admin("collection", "add", coll, self.t1)
        admin("collection", "add", coll, self.t2)
        self.assertEqual(self.ids(self.org, self.k, "collection_id=" + coll), [self.t2, self.t1])
        rc, _, _ = admin("library", "unsave", self.org, self.u, self.t2)
        self.assertEqual(rc, 0)
        self.assertEqual(self.ids(self.org, self.k), [self.t1])
        self.assertEqual(self.ids(self.org, self.k, "collection_id=" + coll), [self.t1])
        admin("library", "save", self.org, self.u, self.t2, "--saved-at", "2025-01-01T09:00:00Z")
        self.assertEqual(self.ids(self.org, self.k), [self.t1, self.t2])
        self.assertEqual(self.ids(self.org, self.k, "collection_id=" + coll), [self.t1, self.t2])

    def test_unsave_affects_only_that_user(self):
        admin("library", "save", self.org, self.user, self.t1, "--saved-at", "2025-01-02T00:00:00Z")
        admin("library", "unsave", self.org, self.u, self.t1)
        self.assertEqual(self.ids(self.org, self.k), [self.t2])
        self.assertIn(self.t1, self.ids(self.org, self.key, "limit=100"))

    def test_two_users_save_the_same_track(self):
        u2, k2 = self.w.principal(self.org)
        admin("library", "save", self.org, u2, self.t1, "--saved-at", "2025-01-01T12:00:00Z")
        admin("library", "save", self.org, u2, self.t2, "--saved-at", "2025-01-01T08:00:00Z")
        self.assertEqual(self.ids(self.org, k2), [self.t1, self.t2])
        self.assertEqual(self.ids(self.org, self.k), [self.t2, self.t1])


class MemberKeyTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("mk")
        cls.org = w.org()

    def test_capability_decides_permission(self):
        u, k = self.w.principal(self.org, caps=())
        r = request("GET", tracks_path(self.org), {"X-API-Key": k})
        self.assert_error(r, 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")
        u2, k2 = self.w.principal(self.org)
        self.assertEqual(self.listing(self.org, k2)["items"], [])

    def test_member_remove(self):
        u, k = self.w.principal(self.org)
        self.assertEqual(self.listing(self.org, k)["items"], [])
        rc, _, _ = admin("member", "remove", self.org, u)
        self.assertEqual(rc, 0)
        r = request("GET", tracks_path(self.org), {"X-API-Key": k})
        self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_revoke_by_id_and_by_key(self):
        u, k1 = self.w.principal(self.org)
        k2 = self.w.key(u)
        rc, _, _ = admin("key", "revoke", key_id(k1))
        self.assertEqual(rc, 0)
        rc, _, _ = admin("key", "revoke", k2)
        self.assertEqual(rc, 0)
        for k in (k1, k2):
            r = request("GET", tracks_path(self.org), {"X-API-Key": k})
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_expiry(self):
        u, _ = self.w.principal(self.org)
        past = self.w.key(u, "2020-01-01T00:00:00+01:00")
        future = self.w.key(u, "2099-12-31T23:59:59-08:00")
        r = request("GET", tracks_path(self.org), {"X-API-Key": past})
        self.assert_error(r, 401, "API_KEY_EXPIRED", "authentication_error")
        self.assertEqual(self.listing(self.org, future)["items"], [])

    def test_plaintext_secret_not_stored(self):
        u, k = self.w.principal(self.org)
        secret = key_secret(k)
        self.assertGreaterEqual(len(secret), 16)
        owner = load_env()["db_owner"]
        _, out, _ = psql(owner, "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
                                "FROM pg_tables WHERE schemaname !~ '^pg_' "
                                "AND schemaname <> 'information_schema'")
        tables = [t for t in out.split() if t]
        self.assertTrue(tables)
        parts = ["SELECT %s AS t, count(*) AS n FROM %s x WHERE strpos(x::text, %s) > 0 "
                 "OR strpos(x::text, %s) > 0" % (sql_literal(t), t, sql_literal(secret),
                                                 sql_literal(k)) for t in tables]
        _, out, _ = psql(owner, " UNION ALL ".join(parts))
        hits = [r for r in rows(out) if r[1] != "0"]
        self.assertEqual(hits, [], "plaintext key stored in: %r" % hits)


class SeedTests(AdminCase):
    def test_tiny_seed(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "keys.txt")
            rc, out, err = admin("seed", "--users", "2", "--tracks", "20", "--saves-per-user", "5",
                                 "--keys-file", path)
            self.assertEqual(rc, 0)
            self.assertTrue(os.path.exists(path), "seed did not write --keys-file")
            with open(path, encoding="utf-8") as f:
                text = f.read()
        keys = re.findall(r"mk_[A-Za-z0-9-]+_[A-Za-z0-9_~.+/=-]{16,}", text)
        self.assertGreaterEqual(len(set(keys)), 2, text[:500])
        orgs = re.findall(r"org_[A-Za-z0-9_-]+", text)
        if orgs:
            for k in set(keys):
                with self.subTest(key=key_id(k)):
                    body = self.listing(orgs[0], k)
                    self.assertEqual(len(body["items"]), 5)


# =========================================================================== database role

class DbRoleTests(AdminCase):
    @classmethod
    def setUpClass(cls):
        e = load_env()
        cls.owner, cls.api = e["db_owner"], e["db_api"]
        w = World("role")
        org = w.org()
        u, _ = w.principal(org)
        t = w.track(org)
        w.save(org, u, t, "2025-01-01T00:00:00Z")
        c = w.collection(org, u)
        w.collect(c, t)
        _, out, _ = psql(cls.owner, "SELECT n.nspname, c.relname, "
                         "(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid "
                         "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) "
                         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r', 'p') AND " + SYSTEM_SCHEMA_SQL +
                         " ORDER BY 1, 2")
        cls.tables = [(s, t, col) for s, t, col in rows(out)]
        _, out, _ = psql(cls.owner, "SELECT nspname FROM pg_namespace WHERE " + SYSTEM_SCHEMA_SQL)
        cls.schemas = out.split()

    def api_refused(self, sql):
        rc, out, err = psql(self.api, sql, check=False)
        self.assertNotEqual(rc, 0, "the API role was allowed: %s" % sql)
        self.assertIn("permission denied", err.lower(), err)

    def test_there_is_a_schema(self):
        self.assertGreaterEqual(len(self.tables), 5, self.tables)

    def test_api_role_is_not_privileged(self):
        _, out, _ = psql(self.api, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
                                   "rolreplication FROM pg_roles WHERE rolname = current_user")
        self.assertEqual(out.strip(), "f|f|f|f|f")
        _, me, _ = psql(self.api, "SELECT current_user")
        _, owner, _ = psql(self.owner, "SELECT current_user")
        self.assertNotEqual(me.strip(), owner.strip())

    # The only writes the API's routes make (sql/007_playback.sql: save, unsave, soft delete;
    # 008_collections_shares.sql: collections and share links). Collection entries change only
    # through SECURITY DEFINER functions that keep positions dense: no direct write at all.
    ALLOWED_TABLE_WRITES = ["public.collections:DELETE", "public.library_saves:DELETE"]
    ALLOWED_COLUMN_WRITES = sorted(
        ["library_saves.%s:INSERT" % c for c in ("user_id", "track_id", "org_id", "mode", "engine", "source",
                                                  "share_link_id")]
        + ["tracks.deleted_at:UPDATE"]
        + ["collections.%s:INSERT" % c for c in ("id", "org_id", "user_id", "name", "description",
                                                  "cover_track_id", "cover_image_url")]
        + ["collections.%s:UPDATE" % c for c in ("name", "description", "cover_track_id", "cover_image_url",
                                                  "updated_at")]
        + ["share_links.%s:INSERT" % c for c in ("id", "token_hash", "org_id", "creator_user_id", "target_type",
                                                  "track_id", "visibility", "expires_at")]
        + ["share_links.revoked_at:UPDATE"])

    def test_api_role_owns_nothing_and_writes_only_what_the_routes_need(self):
        _, out, _ = psql(self.api, """
            SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) || ':' || p
            FROM pg_tables, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
            WHERE schemaname !~ '^pg_' AND schemaname <> 'information_schema'
              AND (pg_has_role(current_user, tableowner, 'USAGE')
                   OR has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename), p))
            ORDER BY 1""")
        self.assertEqual(out.split(), self.ALLOWED_TABLE_WRITES, "table-level writes of the API role")
        _, out, _ = psql(self.api, """
            SELECT c.relname || '.' || a.attname || ':' || p
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
            unnest(ARRAY['INSERT', 'UPDATE', 'REFERENCES']) p
            WHERE c.relkind IN ('r', 'p') AND """ + SYSTEM_SCHEMA_SQL + """
              AND has_column_privilege(c.oid, a.attnum, p)
            ORDER BY 1""")
        self.assertEqual(out.split(), self.ALLOWED_COLUMN_WRITES, "column-level writes of the API role")
        _, out, _ = psql(self.api, """
            SELECT count(*) FROM pg_tables
            WHERE schemaname !~ '^pg_' AND schemaname <> 'information_schema'
              AND has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),
                                      'SELECT')""")
        self.assertGreaterEqual(int(out.strip()), 3, "the API role must read its tables")
        _, out, _ = psql(self.api, """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'S' AND """ + SYSTEM_SCHEMA_SQL + """
              AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'UPDATE')
                       ELSE false END""")
        self.assertEqual(out.split(), [])

    def test_api_role_dml_refused(self):
        for schema, table, col in self.tables:
            name = sql_ident(schema) + "." + sql_ident(table)
            statements = ["UPDATE %s SET %s = %s WHERE false" % (name, sql_ident(col), sql_ident(col)),
                          "TRUNCATE %s" % name]
            # Column-level INSERT lets DEFAULT VALUES past the privilege check (a constraint stops it).
            if table not in ("library_saves", "collections", "share_links"):
                statements.append("INSERT INTO %s DEFAULT VALUES" % name)
            if table not in ("library_saves", "collections"):  # the unsave and the collection delete
                statements.append("DELETE FROM %s WHERE false" % name)
            for sql in statements:
                with self.subTest(sql=sql):
                    # inside a transaction that is rolled back should the server ever allow it
                    self.api_refused("BEGIN; %s; ROLLBACK;" % sql)
        # Within the allowed tables, every other column stays closed: no choosing an entry's id
        # or saved_at, no editing a track or undeleting one's title.
        for sql in ("INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, id) "
                    "SELECT 'u', 't', 'o', 'm', 'e', 'mlib_x' WHERE false",
                    "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, saved_at) "
                    "SELECT 'u', 't', 'o', 'm', 'e', now() WHERE false",
                    "UPDATE library_saves SET saved_at = now() WHERE false",
                    "UPDATE tracks SET title = 'x' WHERE false",
                    "UPDATE tracks SET creator_user_id = NULL WHERE false",
                    "DELETE FROM tracks WHERE false",
                    "INSERT INTO track_media DEFAULT VALUES",
                    "UPDATE collection_tracks SET saved_at = NULL WHERE false",
                    "UPDATE collection_tracks SET position = 0 WHERE false",
                    "UPDATE collections SET user_id = 'usr_x' WHERE false",
                    "UPDATE share_links SET revoked_at = NULL, expires_at = NULL WHERE false",
                    "UPDATE share_links SET token_hash = token_hash WHERE false"):
            with self.subTest(sql=sql):
                self.api_refused("BEGIN; %s; ROLLBACK;" % sql)

    def test_api_role_may_make_exactly_the_routes_writes(self):
        for sql in ("INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, source) "
                    "SELECT 'u', 't', 'o', 'm', 'e', 'own' WHERE false",
                    "DELETE FROM library_saves WHERE false",
                    "UPDATE tracks SET deleted_at = now() WHERE false"):
            with self.subTest(sql=sql):
                psql(self.api, "BEGIN; %s; ROLLBACK;" % sql)

    def test_api_role_ddl_refused(self):
        for schema in self.schemas:
            with self.subTest(schema=schema):
                self.api_refused("BEGIN; CREATE TABLE %s.%s (i int); ROLLBACK;"
                                 % (sql_ident(schema), sql_ident(unique("probe"))))
        self.api_refused("BEGIN; CREATE SCHEMA %s; ROLLBACK;" % sql_ident(unique("probe")))
        for schema, table, col in self.tables[:3]:
            with self.subTest(table=table):
                rc, _, err = psql(self.api, "BEGIN; ALTER TABLE %s.%s ADD COLUMN zz_probe int; "
                                  "ROLLBACK;" % (sql_ident(schema), sql_ident(table)),
                                  check=False)
                self.assertNotEqual(rc, 0)
                self.assertTrue("must be owner" in err or "permission denied" in err, err)

    def test_licence_class_constrained_in_database(self):
        _, out, _ = psql(self.owner, "SELECT table_schema, table_name FROM "
                         "information_schema.columns WHERE column_name = 'licence_class' "
                         "AND table_schema !~ '^pg_' AND table_schema <> 'information_schema'")
        found = rows(out)
        self.assertTrue(found, "no licence_class column")
        for schema, table in found:
            name = sql_ident(schema) + "." + sql_ident(table)
            with self.subTest(table=name):
                _, n, _ = psql(self.owner, "SELECT count(*) FROM %s" % name)
                if int(n.strip()) == 0:
                    continue
                rc, _, err = psql(self.owner, "BEGIN; UPDATE %s SET licence_class = 'bogus' "
                                  "WHERE ctid = (SELECT ctid FROM %s LIMIT 1); ROLLBACK;"
                                  % (name, name), check=False)
                self.assertNotEqual(rc, 0, "the database accepted licence_class 'bogus'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
