"""Collections through the API: create, list, get, patch and delete; their tracks (add, remove,
reorder) with positions that stay exactly 0..n-1, even under parallel requests; the JSON body
rules; who may see what; and the methods each route answers.

Everything goes through nginx over TLS, as a client would, and every answer is checked against
docs/openapi.yaml. Each class builds its own uniquely named data (World).
"""

import concurrent.futures
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402
import openapi  # noqa: E402

DOC = openapi.load()
NO_STORE = "private, no-store"
COLLECTION_KEYS = ["id", "name", "description", "cover_track_id", "cover_image_url", "track_count",
                   "created_at", "updated_at"]
COLL_ID_RE = r"^mcoll_[A-Za-z0-9_-]{1,64}$"
MISSING = "mcoll_doesnotexist0000000000"
NOT_AN_ID = ["not-a-collection", "mcoll_%27%20OR%201%3D1", "mcoll_" + "a" * 65]
ADDED, REMOVED, REORDERED = "Track added to collection.", "Track removed from collection.", "Collection reordered."


def colls_path(org, query=None):
    return "/v1/music/%s/collections%s" % (org, "?" + query if query is not None else "")


def coll_path(org, coll, suffix=""):
    return "/v1/music/%s/collections/%s%s" % (org, coll, suffix)


def track_path(org, track):
    return "/v1/music/%s/tracks/%s" % (org, track)


def encode(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class CollectionTestCase(m.ApiTestCase):
    def call(self, method, path, key=None, body=None, content_type="application/json", headers=None):
        h = dict(m.key_headers(key))
        if body is not None and content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        r = m.request(method, path, h, body=encode(body))
        openapi.check_response(DOC, method, path.split("?")[0], r.status, r.headers.raw, r.body)
        return r

    def ok(self, r, status=200):
        self.assertEqual(r.status, status, "%d %r" % (r.status, r.body[:500]))
        self.assert_common_headers(r)
        return r.json()

    def assert_collection(self, r, status=200):
        body = self.ok(r, status)
        self.assertEqual([k for k, _ in r.ordered()], COLLECTION_KEYS)
        self.assertRegex(body["id"], COLL_ID_RE)
        for f in ("created_at", "updated_at"):
            self.assertRegex(body[f], m.TIMESTAMP_RE)
        return body

    def create(self, org, key, **fields):
        fields.setdefault("name", m.unique("coll"))
        body = self.assert_collection(self.call("POST", colls_path(org), key, fields), 201)
        self.assertEqual(body["track_count"], 0)
        return body

    def fetch(self, org, key, coll):
        body = self.assert_collection(self.call("GET", coll_path(org, coll), key))
        self.assertIsInstance(body["track_count"], int)
        return body

    def listing_of(self, org, key, query=None):
        body = self.ok(self.call("GET", colls_path(org, query), key))
        self.assertEqual(list(body), ["items", "limit", "offset"])
        for item in body["items"]:
            self.assertEqual(list(item), COLLECTION_KEYS)
            self.assertIsNone(item["track_count"], "track_count is null in the list view")
        return body

    def tracks_of(self, org, key, coll, query=None):
        r = self.call("GET", coll_path(org, coll, "/tracks") + ("?" + query if query else ""), key)
        body = self.ok(r)
        self.assertEqual(list(body), ["collection_id", "items", "limit", "offset"])
        self.assertEqual(body["collection_id"], coll)
        for item in body["items"]:
            self.assertEqual(list(item), ["track_id", "position", "added_at"])
            self.assertRegex(item["added_at"], m.TIMESTAMP_RE)
        return body

    def order(self, org, key, coll):
        items = self.tracks_of(org, key, coll, "limit=500")["items"]
        self.assertEqual([i["position"] for i in items], list(range(len(items))), items)
        return [i["track_id"] for i in items]

    def add(self, org, key, coll, track):
        return self.call("POST", coll_path(org, coll, "/tracks"), key, {"track_id": track})

    def remove(self, org, key, coll, track):
        return self.call("DELETE", coll_path(org, coll, "/tracks/" + track), key)

    def reorder(self, org, key, coll, ids):
        return self.call("PATCH", coll_path(org, coll, "/order"), key, {"ordered_track_ids": ids})

    def assert_ack(self, r, id_, detail):
        self.assertEqual(r.status, 200, r.body[:500])
        self.assert_common_headers(r, NO_STORE)
        self.assertEqual([list(p) for p in r.ordered()], [["success", True], ["id", id_], ["detail", detail]])

    def assert_not_found(self, r):
        return self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")

    def assert_422(self, r, field):
        return self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error", field)

    def db_rows(self, coll):
        _, out, _ = m.psql(m.load_env()["db_owner"], "SELECT track_id, position FROM collection_tracks WHERE "
                           "collection_id = %s ORDER BY position, track_id" % m.sql_literal(coll))
        return [(t, int(p)) for t, p in (line.split("|") for line in out.split())]

    def assert_dense(self, org, key, coll, expected):
        """API and database agree: positions exactly 0..n-1, each expected track once."""
        rows = self.db_rows(coll)
        self.assertEqual([p for _, p in rows], list(range(len(rows))), rows)
        tracks = [t for t, _ in rows]
        self.assertEqual(len(tracks), len(set(tracks)), rows)
        self.assertEqual(set(tracks), set(expected))
        self.assertEqual(self.order(org, key, coll), tracks)
        self.assertEqual(self.fetch(org, key, coll)["track_count"], len(tracks))
        return tracks


class CollectionCrudTests(CollectionTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("colc")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org, creator=cls.user)

    def test_create_answers_201_with_the_object(self):
        before = m.now_utc()
        c = self.create(self.org, self.key, name="Morning", description="Line one\nand\ttabs",
                        cover_track_id=self.track, cover_image_url="https://img.example.test/a.png?x=1")
        self.assertEqual((c["name"], c["description"], c["cover_track_id"], c["cover_image_url"]),
                         ("Morning", "Line one\nand\ttabs", self.track, "https://img.example.test/a.png?x=1"))
        self.assertEqual(c["created_at"], c["updated_at"])
        self.assertLess(abs((m.utc(c["created_at"]) - before).total_seconds()), 120)
        minimal = self.create(self.org, self.key, name="Only a name", colour="red", extra={"a": [1]})
        self.assertEqual((minimal["description"], minimal["cover_track_id"], minimal["cover_image_url"]),
                         (None, None, None))
        self.assertNotEqual(minimal["id"], c["id"])
        self.assertEqual(self.fetch(self.org, self.key, c["id"]), dict(c, track_count=0))

    def test_list_newest_first_with_paging(self):
        user, key = self.world.principal(self.org)
        self.assertEqual(self.listing_of(self.org, key), {"items": [], "limit": 50, "offset": 0})
        made = [self.create(self.org, key, name="n%d" % i) for i in range(4)]
        page = self.listing_of(self.org, key)
        self.assertEqual([i["id"] for i in page["items"]], [c["id"] for c in reversed(made)])
        self.assertEqual(page["items"][0], dict(made[-1], track_count=None))
        page = self.listing_of(self.org, key, "limit=2&offset=1")
        self.assertEqual((page["limit"], page["offset"]), (2, 1))
        self.assertEqual([i["id"] for i in page["items"]], [made[2]["id"], made[1]["id"]])
        self.assertEqual(self.listing_of(self.org, key, "offset=4")["items"], [])
        self.assertEqual(len(self.listing_of(self.org, key, "limit=100")["items"]), 4)
        self.assertEqual(len(self.listing_of(self.org, key, "limit=1")["items"]), 1)
        # Created the same instant (the owner's tool, equal created_at): ties go by id, descending.
        a, b = self.world.collection(self.org, user), self.world.collection(self.org, user)
        m.psql(m.load_env()["db_owner"], "UPDATE collections SET created_at = '2030-01-01T00:00:00Z' WHERE id IN (%s, %s)"
               % (m.sql_literal(a), m.sql_literal(b)))
        ids = [i["id"] for i in self.listing_of(self.org, key, "limit=2")["items"]]
        self.assertEqual(ids, sorted([a, b], key=lambda s: s.encode(), reverse=True))

    def test_list_validates_limit_and_offset(self):
        for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"),
                             ("limit=-1", "limit"), ("limit=1.5", "limit"), ("offset=-1", "offset"),
                             ("offset=abc", "offset"), ("limit=5&offset=x", "offset")):
            with self.subTest(query=query):
                self.assert_422(self.call("GET", colls_path(self.org, query), self.key), field)

    def test_patch_changes_only_what_it_names_and_moves_updated_at(self):
        c = self.create(self.org, self.key, name="Before", description="d", cover_track_id=self.track,
                        cover_image_url="http://img.example.test/c.jpg")
        time.sleep(1.1)
        r = self.call("PATCH", coll_path(self.org, c["id"]), self.key, {"name": "After", "unknown": 1})
        p = self.assert_collection(r)
        self.assertEqual(p, dict(c, name="After", updated_at=p["updated_at"], track_count=0))
        self.assertGreater(m.utc(p["updated_at"]), m.utc(c["updated_at"]))
        self.assertEqual(p["created_at"], c["created_at"])
        time.sleep(1.1)
        r = self.call("PATCH", coll_path(self.org, c["id"]), self.key,
                      {"description": None, "cover_track_id": None, "cover_image_url": None})
        q = self.assert_collection(r)
        self.assertEqual((q["name"], q["description"], q["cover_track_id"], q["cover_image_url"]),
                         ("After", None, None, None))
        self.assertGreater(m.utc(q["updated_at"]), m.utc(p["updated_at"]))
        self.assertEqual(self.fetch(self.org, self.key, c["id"]), q)
        self.assert_422(self.call("PATCH", coll_path(self.org, c["id"]), self.key, {"name": None}), "name")
        self.assertEqual(self.fetch(self.org, self.key, c["id"]), q, "a refused patch changes nothing")

    def test_delete_leaves_the_tracks_and_everything_else_404s(self):
        c = self.create(self.org, self.key)
        self.assert_ack(self.add(self.org, self.key, c["id"], self.track), self.track, ADDED)
        r = self.call("DELETE", coll_path(self.org, c["id"]), self.key)
        self.assert_ack(r, c["id"], "Collection deleted.")
        for method, suffix, body in (("GET", "", None), ("GET", "/tracks", None), ("PATCH", "", {"name": "x"}),
                                     ("POST", "/tracks", {"track_id": self.track}),
                                     ("DELETE", "/tracks/" + self.track, None),
                                     ("PATCH", "/order", {"ordered_track_ids": [self.track]})):
            with self.subTest(method=method, suffix=suffix):
                self.assert_not_found(self.call(method, coll_path(self.org, c["id"], suffix), self.key, body))
        # A repeated delete (a retry) by its owner answers the same 200 (issue 15).
        self.assert_ack(self.call("DELETE", coll_path(self.org, c["id"]), self.key), c["id"], "Collection deleted.")
        self.assert_not_found(self.call("GET", m.tracks_path(self.org, "collection_id=" + c["id"]), self.key))
        self.assertNotIn(c["id"], [i["id"] for i in self.listing_of(self.org, self.key, "limit=100")["items"]])
        self.assertEqual(self.call("GET", track_path(self.org, self.track), self.key).status, 200)
        _, out, _ = m.psql(m.load_env()["db_owner"], "SELECT count(*) FROM collection_tracks WHERE collection_id = %s"
                           % m.sql_literal(c["id"]))
        self.assertEqual(out.strip(), "0")


class BodyRulesTests(CollectionTestCase):
    """The JSON rules of every collection body: types, lengths, controls, duplicates, size."""

    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("colb")
        cls.org, cls.org_b = w.org(), w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.other, _ = w.principal(cls.org)
        cls.stranger, _ = w.principal(cls.org_b)
        cls.own = w.track(cls.org, creator=cls.user)
        cls.saved = w.track(cls.org, creator=cls.other)
        w.save(cls.org, cls.user, cls.saved)
        cls.unsaved = w.track(cls.org, creator=cls.other)
        cls.foreign = w.track(cls.org_b, creator=cls.stranger)
        cls.deleted = w.track(cls.org, creator=cls.user)
        r = m.request("DELETE", track_path(cls.org, cls.deleted), {"X-API-Key": cls.key})
        assert r.status == 200, r.body
        cls.coll = w.collection(cls.org, cls.user)

    def post(self, body, content_type="application/json"):
        return self.call("POST", colls_path(self.org), self.key, body, content_type)

    def test_name_length_is_counted_in_code_points(self):
        for name in ("a" * 512, "é" * 512, "\U0001F600" * 512, "x", "\u00a0spaced\u00a0"):
            with self.subTest(name=name[:3], n=len(name)):
                self.assertEqual(self.create(self.org, self.key, name=name)["name"], name)
        # Escaped in the JSON text (a surrogate pair is one character).
        self.assertEqual(self.assert_collection(self.post('{"name": "%s"}' % ("\\ud83d\\ude00" * 512)), 201)["name"],
                         "\U0001F600" * 512)
        for name in ("a" * 513, "é" * 513, "\U0001F600" * 513, ""):
            with self.subTest(name=name[:3], n=len(name)):
                self.assert_422(self.post({"name": name}), "name")

    def test_control_characters_are_refused(self):
        for c in ("\x00", "\x01", "\n", "\t", "\r", "\x1f", "\x7f", "\x80", "\x85", "\x9f"):
            with self.subTest(char=hex(ord(c))):
                self.assert_422(self.post({"name": "a%sb" % c}), "name")
        self.assert_422(self.post('{"name": "a\\u0000b"}'), "name")
        self.assertEqual(self.create(self.org, self.key, name="x", description="a\nb\tc")["description"], "a\nb\tc")
        for c in ("\x00", "\r", "\x0b", "\x7f", "\x85"):
            with self.subTest(description=hex(ord(c))):
                self.assert_422(self.post({"name": "x", "description": "a%sb" % c}), "description")

    def test_description_length_and_types(self):
        self.assertEqual(len(self.create(self.org, self.key, description="é" * 2000)["description"]), 2000)
        self.assertIsNone(self.create(self.org, self.key, description=None)["description"])
        self.assert_422(self.post({"name": "x", "description": "é" * 2001}), "description")
        for field, value in (("name", 5), ("name", True), ("name", ["a"]), ("name", {"a": 1}), ("name", None),
                             ("description", 3), ("description", ["x"]), ("cover_track_id", 7),
                             ("cover_track_id", [self.own]), ("cover_image_url", False), ("cover_image_url", {})):
            with self.subTest(field=field, value=value):
                body = {"name": "x", field: value}
                self.assert_422(self.post(body), field)
        self.assert_422(self.post({"description": "no name"}), "name")

    def test_cover_track_must_be_one_the_caller_can_access(self):
        self.assertEqual(self.create(self.org, self.key, cover_track_id=self.own)["cover_track_id"], self.own)
        self.assertEqual(self.create(self.org, self.key, cover_track_id=self.saved)["cover_track_id"], self.saved)
        for track in (self.unsaved, self.foreign, self.deleted, "mtrack_doesnotexist000", "not-a-track", ""):
            with self.subTest(track=track):
                self.assert_422(self.post({"name": "x", "cover_track_id": track}), "cover_track_id")
                self.assert_422(self.call("PATCH", coll_path(self.org, self.coll), self.key,
                                          {"cover_track_id": track}), "cover_track_id")

    def test_cover_image_url(self):
        for url in ("https://img.example.test/a.png", "http://img.example.test:8080/p/a.jpg?s=1#f",
                    "https://img.example.test/" + "a" * (1024 - len("https://img.example.test/"))):
            with self.subTest(url=url[:40]):
                self.assertEqual(self.create(self.org, self.key, cover_image_url=url)["cover_image_url"], url)
        for url in ("ftp://img.example.test/a.png", "img.example.test/a.png", "/a.png", "javascript:alert(1)",
                    "https://img.example.test/a b.png", "https://img.example.test/\x01", "https://img.example.test/\x7f",
                    " https://img.example.test/a.png", "https://img.example.test/" + "a" * (1025 - 25), ""):
            with self.subTest(url=url[:40]):
                self.assert_422(self.post({"name": "x", "cover_image_url": url}), "cover_image_url")

    def test_malformed_bodies(self):
        deep_ok = '{"name": "x", "n": %s1%s}' % ("[" * 7, "]" * 7)     # 8 levels counting the object
        deep_bad = '{"name": "x", "n": %s1%s}' % ("[" * 8, "]" * 8)    # 9 levels
        self.assert_collection(self.post(deep_ok), 201)
        for body in ("{", '{"name": "x",}', "", "[]", '["x"]', '"x"', "null", "42", "{'name': 'x'}", deep_bad,
                     '{"name": "x"} {}', b'{"name": "\xff"}', '{"name": "x", "n": %s}' % ("[" * 50 + "]" * 50)):
            with self.subTest(body=body[:30]):
                self.assert_422(self.post(body), "body")

    def test_duplicate_keys_name_the_key(self):
        for body, field in (('{"name": "a", "name": "b"}', "name"),
                            ('{"name": "a", "description": "x", "description": "y"}', "description"),
                            ('{"name": "a", "zz": 1, "zz": 1}', "zz")):
            with self.subTest(body=body):
                self.assert_422(self.post(body), field)
        self.assert_422(self.call("PATCH", coll_path(self.org, self.coll), self.key,
                                  '{"cover_image_url": null, "cover_image_url": null}'), "cover_image_url")

    def test_content_type_must_be_json(self):
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                      "multipart/form-data; boundary=x"):
            with self.subTest(content_type=ctype):
                r = self.post('{"name": "x"}', ctype)
                self.assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error")
                r = self.call("PATCH", coll_path(self.org, self.coll), self.key, '{"name": "x"}', ctype)
                self.assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error")
        for ctype in ("application/json; charset=utf-8", "application/json;charset=UTF-8"):
            with self.subTest(content_type=ctype):
                self.assert_collection(self.post('{"name": "x"}', ctype), 201)

    def test_bodies_over_16_kib_are_refused_by_nginx(self):
        pad = 16 * 1024 - 200
        self.assert_collection(self.post({"name": "near the limit", "padding": "p" * pad}), 201)
        r = m.request("POST", colls_path(self.org), {"X-API-Key": self.key, "Content-Type": "application/json"},
                      body=encode({"name": "over", "padding": "p" * (16 * 1024)}))
        self.assert_error(r, 413, "PAYLOAD_TOO_LARGE", "invalid_request_error")
        r = m.request("POST", coll_path(self.org, self.coll, "/tracks"),
                      {"X-API-Key": self.key, "Content-Type": "application/json"}, body=b" " * (16 * 1024 + 1))
        self.assert_error(r, 413, "PAYLOAD_TOO_LARGE", "invalid_request_error")


class CollectionTracksTests(CollectionTestCase):
    def setUp(self):
        w = self.world = m.World("colt")
        self.org, self.org_b = w.org(), w.org()
        self.user, self.key = w.principal(self.org)
        self.other, self.other_key = w.principal(self.org)
        self.stranger, _ = w.principal(self.org_b)
        self.t = [w.track(self.org, creator=self.user) for _ in range(5)]
        self.coll = self.create(self.org, self.key)["id"]

    def fill(self, tracks):
        for t in tracks:
            self.assert_ack(self.add(self.org, self.key, self.coll, t), t, ADDED)

    def test_add_appends_and_is_idempotent(self):
        self.fill(self.t[:3])
        body = self.tracks_of(self.org, self.key, self.coll)
        self.assertEqual((body["limit"], body["offset"]), (200, 0))
        self.assertEqual([(i["track_id"], i["position"]) for i in body["items"]], [(t, n) for n, t in enumerate(self.t[:3])])
        time.sleep(1.1)
        again = self.add(self.org, self.key, self.coll, self.t[0])
        self.assert_ack(again, self.t[0], ADDED)
        self.assertEqual(self.tracks_of(self.org, self.key, self.coll), body, "already there: no change at all")
        self.assertEqual(self.fetch(self.org, self.key, self.coll)["track_count"], 3)
        self.fill([self.t[3]])
        self.assertEqual(self.order(self.org, self.key, self.coll), self.t[:4])
        page = self.tracks_of(self.org, self.key, self.coll, "limit=2&offset=1")
        self.assertEqual([(i["track_id"], i["position"]) for i in page["items"]], [(self.t[1], 1), (self.t[2], 2)])
        self.assertEqual(len(self.tracks_of(self.org, self.key, self.coll, "limit=500")["items"]), 4)
        for query, field in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")):
            self.assert_422(self.call("GET", coll_path(self.org, self.coll, "/tracks?" + query), self.key), field)

    def test_only_tracks_the_caller_may_access(self):
        saved = self.world.track(self.org, creator=self.other)
        self.world.save(self.org, self.user, saved)
        orgs = self.world.track(self.org)
        self.world.save(self.org, self.user, orgs)
        self.fill([saved, orgs])
        unsaved = self.world.track(self.org, creator=self.other)
        foreign = self.world.track(self.org_b, creator=self.stranger)
        deleted = self.world.track(self.org, creator=self.user)
        self.assertEqual(self.call("DELETE", track_path(self.org, deleted), self.key).status, 200)
        errors = [self.assert_not_found(self.add(self.org, self.key, self.coll, t))
                  for t in (unsaved, foreign, deleted, self.world.track(self.org), "mtrack_doesnotexist000",
                            "mtrack_%27%20OR%201%3D1")]
        for e in errors[1:]:
            self.assert_same_error(errors[0], e)
        self.assertEqual(self.order(self.org, self.key, self.coll), [saved, orgs])
        for body in ({}, {"track_id": None}, {"track_id": 5}, {"track_id": [self.t[0]]}, {"trackid": self.t[0]}):
            with self.subTest(body=body):
                self.assert_422(self.call("POST", coll_path(self.org, self.coll, "/tracks"), self.key, body), "track_id")
        self.assert_422(self.call("POST", coll_path(self.org, self.coll, "/tracks"), self.key, "{"), "body")
        self.assert_422(self.call("POST", coll_path(self.org, self.coll, "/tracks"), self.key,
                                  '{"track_id": "%s", "track_id": "%s"}' % (self.t[0], self.t[0])), "track_id")
        r = self.call("POST", coll_path(self.org, self.coll, "/tracks"), self.key, {"track_id": self.t[0]}, "text/plain")
        self.assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error")
        self.assertEqual(self.order(self.org, self.key, self.coll), [saved, orgs])

    def test_remove_keeps_positions_dense_and_is_idempotent(self):
        self.fill(self.t)
        self.assert_ack(self.remove(self.org, self.key, self.coll, self.t[2]), self.t[2], REMOVED)
        self.assertEqual(self.assert_dense(self.org, self.key, self.coll, self.t[:2] + self.t[3:]),
                         self.t[:2] + self.t[3:])
        for track in (self.t[2], "mtrack_neverthere", self.t[0]):
            self.assert_ack(self.remove(self.org, self.key, self.coll, track), track, REMOVED)
        self.assert_ack(self.remove(self.org, self.key, self.coll, self.t[4]), self.t[4], REMOVED)
        self.assertEqual(self.assert_dense(self.org, self.key, self.coll, [self.t[1], self.t[3]]), [self.t[1], self.t[3]])
        self.assertEqual(self.call("GET", track_path(self.org, self.t[0]), self.key).status, 200, "the track stays")
        self.fill([self.t[0]])
        self.assertEqual(self.order(self.org, self.key, self.coll), [self.t[1], self.t[3], self.t[0]])

    def test_reorder(self):
        a, b, c, d, e = self.t
        self.fill([a, b, c, d, e])
        for ids, want in (([d, b], [d, b, a, c, e]),                      # the rest keep their order after them
                          ([a, "mtrack_unknown", a, e, d], [a, e, d, b, c]),  # first occurrence wins, unknown ignored
                          ([], [a, e, d, b, c]),
                          ([e, d, c, b, a], [e, d, c, b, a]),
                          ([c], [c, e, d, b, a])):
            with self.subTest(ids=ids):
                self.assert_ack(self.reorder(self.org, self.key, self.coll, ids), self.coll, REORDERED)
                self.assertEqual(self.assert_dense(self.org, self.key, self.coll, self.t), want)
        path = coll_path(self.org, self.coll, "/order")
        for body in ({}, {"ordered_track_ids": None}, {"ordered_track_ids": a}, {"ordered_track_ids": [a, 5]},
                     {"ordered_track_ids": {"0": a}}, {"ordered_track_ids": [[a]]}):
            with self.subTest(body=body):
                self.assert_422(self.call("PATCH", path, self.key, body), "ordered_track_ids")
        self.assert_422(self.call("PATCH", path, self.key, "[1]"), "body")
        self.assertEqual(self.order(self.org, self.key, self.coll), [c, e, d, b, a], "refused: unchanged")

    def test_a_deleted_track_leaves_every_collection(self):
        a, b, c = self.t[:3]
        self.world.save(self.org, self.other, a)
        self.world.save(self.org, self.other, b)
        other_coll = self.create(self.org, self.other_key)["id"]
        self.fill([a, b, c])
        for t in (b, a):
            self.assert_ack(self.add(self.org, self.other_key, other_coll, t), t, ADDED)
        self.assertEqual(self.call("DELETE", track_path(self.org, b), self.key).status, 200)
        self.assertEqual(self.assert_dense(self.org, self.key, self.coll, [a, c]), [a, c])
        self.assertEqual(self.assert_dense(self.org, self.other_key, other_coll, [a]), [a])

    def test_the_list_filter_still_means_saves_in_the_collection(self):
        a, b, c = self.t[:3]
        self.world.save(self.org, self.user, a, "2026-03-01T00:00:00Z")
        self.world.save(self.org, self.user, b, "2026-03-03T00:00:00Z")
        self.fill([a, b, c])  # c: own, never saved
        page = lambda: self.ids(self.org, self.key, "collection_id=" + self.coll)
        self.assertEqual(page(), [b, a])
        self.assert_ack(self.reorder(self.org, self.key, self.coll, [a, c, b]), self.coll, REORDERED)
        self.assertEqual(page(), [b, a], "collection order is not the list's order")
        self.world.save(self.org, self.user, c, "2026-03-02T00:00:00Z")
        self.assertEqual(page(), [b, c, a])
        self.assert_ack(self.remove(self.org, self.key, self.coll, b), b, REMOVED)
        self.assertEqual(page(), [c, a])
        rc, _, err = m.admin("check", check=False)
        self.assertEqual(rc, 0, err)


class ConcurrencyTests(CollectionTestCase):
    """Adds, removes and reorders at once on one collection: positions stay 0..n-1."""

    def setUp(self):
        w = self.world = m.World("colx")
        self.org = w.org()
        self.user, self.key = w.principal(self.org)
        self.coll = self.create(self.org, self.key)["id"]

    def test_parallel_adds_removes_and_reorders(self):
        rng = random.Random(7)
        present = [self.world.track(self.org, creator=self.user) for _ in range(8)]
        for t in present:
            self.assert_ack(self.add(self.org, self.key, self.coll, t), t, ADDED)
        absent = [self.world.track(self.org, creator=self.user) for _ in range(6)]
        for round_ in range(4):
            leaving = rng.sample(present, 3)
            coming = rng.sample(absent, 3)
            everything = present + absent
            ops = [("add", t) for t in coming] + [("add", coming[0])] * 3 + [("remove", t) for t in leaving]
            ops += [("reorder", rng.sample(everything, len(everything))) for _ in range(6)]
            rng.shuffle(ops)

            def run(op):
                kind, arg = op
                if kind == "add":
                    return self.add(self.org, self.key, self.coll, arg)
                if kind == "remove":
                    return self.remove(self.org, self.key, self.coll, arg)
                return self.reorder(self.org, self.key, self.coll, arg)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(run, ops))
            self.assertEqual([r.status for r in answers], [200] * len(ops), [r.body[:200] for r in answers if r.status != 200])
            present = [t for t in present if t not in leaving] + coming
            absent = [t for t in absent if t not in coming] + leaving
            with self.subTest(round=round_):
                self.assert_dense(self.org, self.key, self.coll, present)

    def test_track_deletes_racing_removes_and_reorders_keep_positions_dense(self):
        # A delete's trigger takes the track out of every collection under the collection's lock,
        # reading the entry's position only then: a remove or reorder that held the lock first
        # must not leave a gap or a duplicate (which would fail the delete with a 500).
        for round_ in range(3):
            tracks = [self.world.track(self.org, creator=self.user) for _ in range(8)]
            for t in tracks:
                self.add(self.org, self.key, self.coll, t)
            doomed, leaving = tracks[1:4], tracks[4:6]
            ops = ([("delete", t) for t in doomed] + [("remove", t) for t in leaving]
                   + [("reorder", list(reversed(tracks)))] * 3)

            def run(op):
                kind, arg = op
                if kind == "delete":
                    return self.call("DELETE", "/v1/music/%s/tracks/%s" % (self.org, arg), self.key)
                if kind == "remove":
                    return self.remove(self.org, self.key, self.coll, arg)
                return self.reorder(self.org, self.key, self.coll, arg)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(run, ops))
            # A deadlock between the two lock orders is refused as a 503 to retry, never a 500.
            self.assertTrue(all(r.status in (200, 503) for r in answers), [(r.status, r.body[:200]) for r in answers])
            for op, r in zip(ops, answers):
                if r.status == 503:
                    self.assertEqual(run(op).status, 200, op)
            remaining = [t for t in tracks if t not in doomed and t not in leaving]
            with self.subTest(round=round_):
                self.assert_dense(self.org, self.key, self.coll, remaining)
            for t in remaining:
                self.remove(self.org, self.key, self.coll, t)

    def test_parallel_adds_of_new_tracks_each_get_their_own_position(self):
        tracks = [self.world.track(self.org, creator=self.user) for _ in range(16)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: self.add(self.org, self.key, self.coll, t), tracks + tracks[:4]))
        self.assertEqual({r.status for r in answers}, {200}, [r.body[:200] for r in answers])
        self.assert_dense(self.org, self.key, self.coll, tracks)


class AccessMatrixTests(CollectionTestCase):
    """Two orgs × two users, both in both orgs: each (org, user) owns one collection; every other
    caller gets the same 404 on every route and sees nothing of it."""

    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("colm")
        cls.orgs = [w.org(), w.org()]
        cls.keys = {}
        cls.colls = {}
        users = [w.principal(*cls.orgs) for _ in range(2)]
        for o in cls.orgs:
            for i, (u, k) in enumerate(users):
                cls.keys[(o, i)] = k
                t = w.track(o, creator=u, title=m.unique("secret-title"))
                name = m.unique("secret-name")
                c = cls.create_via_api(o, k, name, t)
                cls.colls[(o, i)] = dict(id=c, track=t, name=name)
        cls.outsider, cls.outsider_key = w.principal(cls.orgs[0])
        cls.nocap = w.user()
        w.member(cls.orgs[0], cls.nocap, caps=())
        cls.nocap_key = w.key(cls.nocap)

    @classmethod
    def create_via_api(cls, org, key, name, track):
        h = {"X-API-Key": key, "Content-Type": "application/json"}
        r = m.request("POST", colls_path(org), h, encode({"name": name, "cover_track_id": track}))
        assert r.status == 201, r.body
        coll = json.loads(r.body)["id"]
        r = m.request("POST", coll_path(org, coll, "/tracks"), h, encode({"track_id": track}))
        assert r.status == 200, r.body
        return coll

    def routes(self, coll, track):
        return [("GET", "", None), ("PATCH", "", {"name": "stolen"}), ("DELETE", "", None), ("GET", "/tracks", None),
                ("POST", "/tracks", {"track_id": track}), ("DELETE", "/tracks/" + track, None),
                ("PATCH", "/order", {"ordered_track_ids": [track]})]

    def secrets(self, owner):
        c = self.colls[owner]
        return [c["id"], c["track"], c["name"], self.world.track_info[c["track"]]["title"]]

    def test_every_other_caller_gets_one_identical_404(self):
        first = None
        for owner, c in self.colls.items():
            for caller_org in self.orgs:
                for caller in (0, 1):
                    if (caller_org, caller) == owner:
                        continue
                    key = self.keys[(caller_org, caller)]
                    for method, suffix, body in self.routes(c["id"], c["track"]):
                        r = self.call(method, coll_path(caller_org, c["id"], suffix), key, body)
                        err = self.assert_not_found(r)
                        first = first or err
                        self.assert_same_error(first, err)
                        for s in self.secrets(owner):
                            self.assertNotIn(s.encode(), r.body)
        for bad in [MISSING] + NOT_AN_ID:
            for method, suffix, body in self.routes(bad, self.colls[(self.orgs[0], 0)]["track"]):
                self.assert_same_error(first, self.assert_not_found(
                    self.call(method, coll_path(self.orgs[0], bad, suffix), self.keys[(self.orgs[0], 0)], body)))
        # Nothing changed for the owners.
        for (o, i), c in self.colls.items():
            got = self.fetch(o, self.keys[(o, i)], c["id"])
            self.assertEqual((got["name"], got["track_count"]), (c["name"], 1))
            self.assertEqual(self.order(o, self.keys[(o, i)], c["id"]), [c["track"]])

    def test_each_list_shows_only_the_callers_own_in_that_org(self):
        for (o, i), c in self.colls.items():
            r = self.call("GET", colls_path(o), self.keys[(o, i)])
            self.assertEqual([x["id"] for x in self.ok(r)["items"]], [c["id"]])
            for owner in self.colls:
                if owner != (o, i):
                    for s in self.secrets(owner):
                        self.assertNotIn(s.encode(), r.body)
        r = self.call("GET", colls_path(self.orgs[0]), self.outsider_key)
        self.assertEqual(self.ok(r)["items"], [])

    def test_authentication_org_and_capability_come_first(self):
        o, c = self.orgs[1], self.colls[(self.orgs[1], 0)]
        routes = [("GET", colls_path(o), None), ("POST", colls_path(o), "{")]
        routes += [(method, coll_path(o, c["id"], suffix), body) for method, suffix, body in self.routes(c["id"], c["track"])]
        for method, path, body in routes:
            with self.subTest(method=method, path=path):
                self.assert_error(self.call(method, path, None, body), 401, "AUTHENTICATION_REQUIRED", "authentication_error")
                self.assert_error(self.call(method, path, "mk_aaaaaaaaaaaaaaaa_" + "b" * 32, body), 401,
                                  "INVALID_API_KEY", "authentication_error")
                self.assert_error(self.call(method, path, self.outsider_key, body), 403, "ORGANIZATION_ACCESS_DENIED",
                                  "authorization_error")
                p0 = path.replace(o, self.orgs[0], 1)
                self.assert_error(self.call(method, p0, self.nocap_key, body), 403, "INSUFFICIENT_PERMISSIONS",
                                  "authorization_error")
        r = self.call("GET", colls_path(o), headers={"Authorization": "Bearer " + self.keys[(o, 0)]})
        self.assertEqual([x["id"] for x in self.ok(r)["items"]], [c["id"]])


class MethodTests(CollectionTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("colv")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org, creator=cls.user)
        cls.coll = w.collection(cls.org, cls.user)
        w.collect(cls.coll, cls.track)

    def test_every_route_answers_405_with_its_own_allow(self):
        routes = [(colls_path(self.org), "GET, HEAD, POST", ("PUT", "PATCH", "DELETE")),
                  (coll_path(self.org, self.coll), "GET, HEAD, PATCH, DELETE", ("POST", "PUT")),
                  (coll_path(self.org, self.coll, "/tracks"), "GET, HEAD, POST", ("PUT", "PATCH", "DELETE")),
                  (coll_path(self.org, self.coll, "/tracks/" + self.track), "DELETE",
                   ("GET", "HEAD", "POST", "PUT", "PATCH")),
                  (coll_path(self.org, self.coll, "/order"), "PATCH", ("GET", "HEAD", "POST", "PUT", "DELETE"))]
        for path, allow, methods in routes:
            for method in methods:
                with self.subTest(method=method, path=path):
                    r = self.call(method, path, self.key)
                    self.assertEqual(r.status, 405, r.body[:300])
                    self.assertEqual(r.headers.get_all("Allow"), [allow])
                    if method != "HEAD":
                        self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")
        self.assertEqual(self.order(self.org, self.key, self.coll), [self.track], "nothing was changed")

    def test_head_answers_like_get_without_a_body(self):
        for path in (colls_path(self.org), coll_path(self.org, self.coll), coll_path(self.org, self.coll, "/tracks")):
            with self.subTest(path=path):
                get = self.call("GET", path, self.key)
                head = self.call("HEAD", path, self.key)
                self.assertEqual((get.status, head.status), (200, 200))
                self.assertEqual(head.body, b"")
                self.assertEqual(head.headers.get("Content-Type"), get.headers.get("Content-Type"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
