"""Hostile input against GET /v1/music/{org}/tracks (OWASP API Security Top 10, 2023; issue 4).

Run as `MUSIC_API_STACK=DIR python3 tests/e2e/test_hostile.py` against a running stack (see
tests/support/musicapi.py). Complements tests/e2e/test_endpoint.py:

- injection: every parameter, the org path segment and both key headers tried with quotes, %00,
  invalid UTF-8, overlong values, SQL fragments, repeated and empty keys: a 4xx envelope or a 200
  page, never 5xx (API1/API8);
- broken authentication: keys in the query string never accepted, revoked and expired keys
  refused on the very next request by every worker (API2);
- resource consumption: the deepest offset answers at once on a large library, and the caps on
  query-string length and parameter count (API4);
- BOLA: two orgs x two users x collections, every combination of key, org and collection (API1);
- the API's database role can only SELECT (API5/API8).

Each class builds its own data. nginx limits each key id to 20 r/s (burst 40), so classes that
send many requests rotate over several keys of the same user.
"""

import datetime
import itertools
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from musicapi import (  # noqa: E402
    ApiTestCase, World, admin, admin_id, key_id, load_env, now_utc, psql, q, request,
    sql_literal, tracks_path, unique)

FIELDS = ("limit", "offset", "mode", "engine", "collection_id")

# Values as they appear in the query string or path (already percent-encoded where needed).
HOSTILE = [
    "'", "%27", "''", '"', "%22", "`", "\\", "%5C", "%00", "a%00b", "%00%27", "%ff", "%FE%FF",
    "%c0%af", "%c0%80", "%ed%a0%80", "%f4%90%80%80", "%e2%98", "x" * 5000, q("é" * 700),
    q("' OR 1=1 --"), "'%20OR%20'1'='1", q("1;DROP TABLE tracks"), "1;DROP%20TABLE%20tracks",
    q("'; DROP TABLE library_saves; --"), q("1 UNION SELECT secret_hash FROM api_keys--"),
    q("$$; SELECT pg_sleep(10); $$"), q("'||pg_sleep(10)||'"), "%25", "%2527", "%%", "%",
    "%u0027", "%0d%0aSet-Cookie:%20x=1", q("${jndi:ldap://x/a}"), q("{{7*7}}"), "%3Cscript%3E",
    "-1", "1e309", "NaN", "0x7fffffff", "%2B1", "1.0", "[]", "%5B%5D", "a[]=1", "null", "true",
    "mcoll_x%27", "mcoll_x'--", "mcoll_" + "a" * 5000, "mcoll_%00", "..%2F..%2F", "%2e%2e",
]


def other_key_like(key):
    return key[:-2] + ("zz" if not key.endswith("zz") else "yy")


class Pool:
    """Several keys of one user, used in turn so that nginx's per-key limit is not reached."""

    def __init__(self, w, user, n):
        self.keys = [w.key(user) for _ in range(n)]
        self._cycle = itertools.cycle(self.keys)
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            return next(self._cycle)


class HostileCase(ApiTestCase):
    def assert_4xx_or_page(self, r, allowed_errors, expected_ids=None):
        """r is a 4xx envelope whose (status, code) is allowed, or a 200 page.

        allowed_errors: {(status, code): fields or None}. expected_ids: the exact item ids of a
        200 (None: any subset of nothing is checked by the caller).
        """
        self.assertLess(r.status, 500, "server error: %d %r" % (r.status, r.body[:300]))
        if r.status == 200:
            self.assert_common_headers(r)
            body = r.json()
            self.assertEqual(list(body), ["items", "limit", "offset"], body)
            ids = [i["id"] for i in body["items"]]
            if expected_ids is not None:
                self.assertEqual(ids, expected_ids)
            return None
        err = r.json().get("error", {}) if r.body[:1] == b"{" else {}
        key = (r.status, err.get("code"))
        self.assertIn(key, allowed_errors, "unexpected %d %r" % (r.status, r.body[:300]))
        fields = allowed_errors[key]
        etype = {401: "authentication_error", 403: "authorization_error",
                 404: "not_found_error", 422: "validation_error"}[r.status]
        return self.assert_error(r, r.status, key[1], etype, fields)


# =========================================================================== injection

class InjectionTests(HostileCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("inj")
        cls.org = w.org()
        cls.user = w.user()
        w.member(cls.org, cls.user)
        cls.pool = Pool(w, cls.user, 8)
        cls.tracks = [w.track(cls.org, engine="studio", mode="creation") for _ in range(3)]
        for i, t in enumerate(cls.tracks):
            w.save(cls.org, cls.user, t, "2025-05-01T10:00:0%dZ" % i)
        cls.coll = w.collection(cls.org, cls.user)
        w.collect(cls.coll, cls.tracks[0])
        cls.all_ids = w.expected_order(cls.org, cls.user)
        # another user's data in the same org must never show up
        other, _ = w.principal(cls.org)
        ot = w.track(cls.org, engine="studio", mode="creation")
        w.save(cls.org, other, ot, "2025-05-01T11:00:00Z")

    def get_q(self, query, key=None, org=None):
        return request("GET", tracks_path(org or self.org, query),
                       {"X-API-Key": key or self.pool.next()})

    def allowed_for(self, name):
        v422 = {(422, "VALIDATION_ERROR"): (name, "query")}
        if name == "collection_id":
            v422[(404, "RESOURCE_NOT_FOUND")] = None
        return v422

    def test_every_parameter_with_hostile_values(self):
        for name in FIELDS:
            for value in HOSTILE:
                with self.subTest(param=name, value=value[:40]):
                    r = self.get_q("%s=%s" % (name, value))
                    # a hostile value never matches a real filter: an empty page at most
                    self.assert_4xx_or_page(r, self.allowed_for(name), expected_ids=[])
                    if name in ("limit", "offset"):
                        self.assertEqual(r.status, 422, r.body[:300])

    def test_hostile_value_after_a_valid_query(self):
        for name in FIELDS:
            for value in ("%27", "%00", "%ff", q("' OR 1=1 --"), "x" * 5000):
                with self.subTest(param=name, value=value[:40]):
                    r = self.get_q("limit=2&mode=creation&%s=%s" % (name, value)
                                   if name not in ("limit", "mode") else
                                   "offset=0&engine=studio&%s=%s" % (name, value))
                    self.assert_4xx_or_page(r, self.allowed_for(name), expected_ids=[])

    def test_repeated_parameters_with_hostile_values(self):
        for name in FIELDS:
            for first, second in (("1", "%27"), ("%27", "1"), ("", "%00"), ("%ff", ""),
                                  (q("' OR 1=1 --"), q("' OR 1=1 --")), ("", "")):
                with self.subTest(param=name, values=(first, second)):
                    r = self.get_q("%s=%s&%s=%s" % (name, first, name, second))
                    err = self.assert_4xx_or_page(r, {(422, "VALIDATION_ERROR"): (name, "query")})
                    self.assertIsNotNone(err, "a repeated %s was accepted" % name)

    def test_empty_and_odd_keys(self):
        for query in ("=", "=1", "==", "&", "&&&", "&=&=&", "=%27", "%3D=1", "%26=1", "limit",
                      "offset", "mode", "engine", "collection_id", "limit&offset&mode",
                      "lim%00it=0", "limit%27=0", "%ff=1", "%c0%af=1", q("' OR 1=1 --") + "=1",
                      "limit=1=2", "mode==creation", "a=1;limit=0", "limit[]=0",
                      "limit%5B%5D=0", "LIMIT=0", "?limit=0", "#limit=0"):
            with self.subTest(query=query):
                r = self.get_q(query)
                self.assert_4xx_or_page(r, {(422, "VALIDATION_ERROR"): None})
                if r.status == 200:
                    body = r.json()
                    ids = [i["id"] for i in body["items"]]
                    self.assertTrue(set(ids) <= set(self.all_ids), ids)

    def test_org_segment_is_never_confused_with_a_real_org(self):
        bad = [self.org + s for s in ("%27", "'", "%00", "%ff", "%c0%af", q("' OR 1=1 --"),
                                      "%20", "+", "%2F", "%22", ";", "%3B", "..")]
        bad += ["org_%27", "'", "%27%20OR%201%3D1--", "org_%00", "%00", "org_%ff",
                "org_%c0%af", "org_" + "a" * 5000, "org_" + q("é") * 500,
                q("1;DROP TABLE tracks"), "1;DROP%20TABLE%20tracks", "org_x%2Ftracks",
                "%2e", self.org.replace("org_", "ORG_"), "org_*", "org_%25",
                "org_" + q("' OR '1'='1"), q("org_x' UNION SELECT 1--")]
        first = None
        for org in bad:
            with self.subTest(org=org[:60]):
                r = request("GET", tracks_path(org), {"X-API-Key": self.pool.next()})
                if "%00" in org and r.status == 400:
                    # nginx itself refuses a NUL in the path, with the JSON envelope.
                    self.assert_error(r, 400, "BAD_REQUEST", "invalid_request_error")
                    continue
                self.assertIn(r.status, (403, 404), r.body[:300])
                if r.status == 404:
                    self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
                    continue
                err = self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED",
                                        "authorization_error")
                if first is None:
                    first = err
                self.assert_same_error(first, err)
        # "%6Frg_…" names the same org in an encoded form: judged as the decoded org or denied
        r = request("GET", tracks_path("%6Frg_" + self.org[4:]), {"X-API-Key": self.pool.next()})
        self.assertIn(r.status, (200, 403), r.body[:300])
        if r.status == 200:
            self.assertEqual([i["id"] for i in r.json()["items"]], self.all_ids)
        else:
            self.assert_same_error(first, self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED",
                                                            "authorization_error"))

    def test_dot_segments_in_the_path(self):
        for path in ("/v1/music/x/../%s/tracks" % self.org,
                     "/v1/music/%s/../%s/tracks" % (self.org, self.org),
                     "/v1/music/%s/./tracks" % self.org,
                     "/v1/music/%s/tracks/." % self.org,
                     "/v1/music/%s/%%2e%%2e/%s/tracks" % (self.org, self.org),
                     "/v1/music/%s//tracks" % self.org,
                     "/v1/music//%s/tracks" % self.org):
            with self.subTest(path=path):
                r = request("GET", path, {"X-API-Key": self.pool.next()})
                self.assert_4xx_or_page(r, {(404, "RESOURCE_NOT_FOUND"): None,
                                            (403, "ORGANIZATION_ACCESS_DENIED"): None},
                                        expected_ids=self.all_ids)

    def test_hostile_key_headers(self):
        k = self.pool.keys[0]
        values = ["'", '"', "`", "\\", "%00", "mk_%00_x", "mk_%00", "\xff\xfe", "\xc0\xaf",
                  "mk_\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff_x",
                  "x" * 5000, "mk_" + "a" * 5000, key_id(k) + "_" + "s" * 5000,
                  "' OR 1=1 --", "mk_' OR '1'='1_x", key_id(k) + "_' OR '1'='1",
                  "1;DROP TABLE tracks", key_id(k) + "_x;DROP TABLE api_keys",
                  k + "'", k + "%00", k + "\xff", "'" + k, k.replace("_", "%5F"),
                  key_id(k) + "%5F" + k[len(key_id(k)) + 1:], key_id(k), key_id(k) + "_",
                  key_id(k).upper() + k[len(key_id(k)):], other_key_like(k), "${jndi:ldap://x}",
                  "mk_aaaaaaaaaaaaaaaa_" + "%27" * 10, "mk__", "mk_" + "_" * 30]
        for value in values:
            for headers in ({"X-API-Key": value}, {"Authorization": "Bearer " + value},
                            {"Authorization": value}):
                with self.subTest(header=list(headers)[0], value=value[:40]):
                    r = request("GET", tracks_path(self.org), headers)
                    self.assert_4xx_or_page(r, {(401, "INVALID_API_KEY"): None,
                                                (401, "AUTHENTICATION_REQUIRED"): None})
                    self.assertEqual(r.status, 401, r.body[:300])

    def test_empty_and_repeated_key_headers(self):
        k, other = self.pool.keys[0], self.pool.keys[1]
        for headers in ([("X-API-Key", "")], [("Authorization", "Bearer")],
                        [("Authorization", "Bearer  ")], [("Authorization", " ")],
                        [("X-API-Key", ""), ("Authorization", "")],
                        [("X-API-Key", ""), ("X-API-Key", "")]):
            with self.subTest(headers=headers):
                r = request("GET", tracks_path(self.org), headers)
                self.assertEqual(r.status, 401, r.body[:300])
                self.assert_4xx_or_page(r, {(401, "AUTHENTICATION_REQUIRED"): None,
                                            (401, "INVALID_API_KEY"): None})
        # two key headers: refused, or served as exactly one of the presented keys' owner
        for headers in ([("X-API-Key", k), ("X-API-Key", "garbage")],
                        [("X-API-Key", "garbage"), ("X-API-Key", k)],
                        [("X-API-Key", k), ("X-API-Key", other)],
                        [("X-API-Key", "%27"), ("X-API-Key", k)],
                        [("Authorization", "Bearer " + k), ("Authorization", "Bearer x")],
                        [("Authorization", "Bearer x"), ("Authorization", "Bearer " + k)]):
            with self.subTest(headers=[(n, v[:12]) for n, v in headers]):
                r = request("GET", tracks_path(self.org), headers)
                self.assertLess(r.status, 500, r.body[:300])
                if r.status == 400:   # nginx refuses a repeated Authorization header itself
                    self.assert_error(r, 400, "BAD_REQUEST", "invalid_request_error")
                else:
                    self.assert_4xx_or_page(r, {(401, "AUTHENTICATION_REQUIRED"): None,
                                                (401, "INVALID_API_KEY"): None},
                                            expected_ids=self.all_ids)

    def test_method_and_url_override_headers_are_ignored(self):
        foreign = self.w.org()
        for headers in ({"X-HTTP-Method-Override": "DELETE"}, {"X-Method-Override": "PUT"},
                        {"X-Original-URL": tracks_path(foreign)},
                        {"X-Rewrite-URL": tracks_path(foreign)},
                        {"X-Forwarded-For": "127.0.0.1' OR 1=1 --"},
                        {"X-Request-ID": "req_' OR 1=1 --"}):
            with self.subTest(headers=headers):
                h = dict(headers)
                h["X-API-Key"] = self.pool.next()
                r = request("GET", tracks_path(self.org), h)
                self.assertEqual(r.status, 200, r.body[:300])
                self.assertEqual([i["id"] for i in r.json()["items"]], self.all_ids)

    def test_the_other_users_track_never_appears(self):
        # whatever the filters, only this user's saves come back
        for query in ("mode=creation", "engine=studio", "mode=creation&engine=studio",
                      "limit=100", "offset=0&limit=100", "collection_id=" + self.coll):
            with self.subTest(query=query):
                r = self.get_q(query)
                self.assertEqual(r.status, 200, r.body[:300])
                ids = [i["id"] for i in r.json()["items"]]
                self.assertTrue(set(ids) <= set(self.all_ids), ids)


# =========================================================================== authentication

class KeyHandlingTests(HostileCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("hkey")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.other_user, cls.other_key = w.principal(cls.org)
        t = w.track(cls.org)
        w.save(cls.org, cls.user, t, "2025-05-02T10:00:00Z")
        t2 = w.track(cls.org)
        w.save(cls.org, cls.other_user, t2, "2025-05-02T10:00:00Z")
        cls.mine, cls.theirs = [t], [t2]
        cls.workers = 3
        try:
            with open(load_env()["api_conf"], encoding="utf-8") as f:
                for line in f:
                    name, _, value = line.partition("=")
                    if name.strip() == "workers" and value.strip().isdigit():
                        cls.workers = max(1, int(value.strip()))
        except OSError:
            pass

    def concurrently(self, headers, rounds=3):
        """rounds x (workers + 1) requests, workers + 1 at a time, so that every worker answers."""
        out = []
        lock = threading.Lock()

        def one():
            r = request("GET", tracks_path(self.org), headers)
            with lock:
                out.append(r)

        for _ in range(rounds):
            ts = [threading.Thread(target=one) for _ in range(self.workers + 1)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
        self.assertEqual(len(out), rounds * (self.workers + 1))
        return out

    def test_key_in_query_string_is_never_accepted(self):
        k = self.w.key(self.user)
        names = ("api_key", "apiKey", "api-key", "apikey", "key", "token", "access_token",
                 "x-api-key", "X-API-Key", "x_api_key", "authorization", "Authorization",
                 "bearer", "auth", "mk", "k")
        for name in names:
            for value in (k, q(k), q("Bearer " + k)):
                with self.subTest(name=name, form=value[:8]):
                    r = request("GET", tracks_path(self.org, "%s=%s" % (name, value)))
                    self.assert_error(r, 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        for query in (k, "limit=5&" + k, "api_key=" + k + "&api_key=" + k):
            with self.subTest(query=query[:20]):
                r = request("GET", tracks_path(self.org, query))
                self.assert_error(r, 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        # with a bad key in the header, the good one in the query does not rescue it
        r = request("GET", tracks_path(self.org, "api_key=" + k), {"X-API-Key": "garbage"})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        # with another user's key in the header, the query's key does not switch the user
        r = request("GET", tracks_path(self.org, "api_key=" + k), {"X-API-Key": self.other_key})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([i["id"] for i in r.json()["items"]], self.theirs)
        # in the path it is no key either
        r = request("GET", "/v1/music/%s/tracks;api_key=%s" % (self.org, k))
        self.assertIn(r.status, (401, 404), r.body[:300])

    def test_two_users_keys_in_one_request(self):
        for headers in ([("X-API-Key", self.key), ("X-API-Key", self.other_key)],
                        [("X-API-Key", self.other_key), ("X-API-Key", self.key)],
                        [("X-API-Key", self.key), ("Authorization", "Bearer " + self.other_key)]):
            with self.subTest(headers=[n for n, _ in headers]):
                r = request("GET", tracks_path(self.org), headers)
                self.assertIn(r.status, (200, 400, 401), r.body[:300])
                if r.status != 200:
                    self.assertEqual(r.json()["success"], False)
                    continue
                # served as one of the two, never a mix of both
                self.assertIn([i["id"] for i in r.json()["items"]], (self.mine, self.theirs))

    def test_revoked_key_refused_by_every_worker_on_the_next_request(self):
        k = self.w.key(self.user)
        for r in self.concurrently({"X-API-Key": k}):
            self.assertEqual(r.status, 200, r.body[:300])
        admin("key", "revoke", key_id(k))
        for r in self.concurrently({"X-API-Key": k}, rounds=2):
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        for r in self.concurrently({"Authorization": "Bearer " + k}, rounds=1):
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        # and revoking it again changes nothing
        admin("key", "revoke", k)
        r = request("GET", tracks_path(self.org), {"X-API-Key": k})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_key_expiring_now_is_refused_at_once(self):
        expires = now_utc() + datetime.timedelta(seconds=3)
        k = self.w.key(self.user, expires.isoformat(timespec="milliseconds"))
        before = self.concurrently({"X-API-Key": k}, rounds=1)
        if now_utc() < expires:
            for r in before:
                self.assertEqual(r.status, 200, r.body[:300])
        wait = (expires - now_utc()).total_seconds() + 0.3
        if wait > 0:
            time.sleep(wait)
        for r in self.concurrently({"X-API-Key": k}, rounds=2):
            self.assert_error(r, 401, "API_KEY_EXPIRED", "authentication_error")


# =========================================================================== resource consumption

class ResourceTests(HostileCase):
    SAVES = 10000

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("res")
        with tempfile.TemporaryDirectory() as d:
            keys_file = os.path.join(d, "keys")
            cls.big_org = admin_id("seed", "--users", "1", "--tracks", cls.SAVES,
                                   "--saves-per-user", cls.SAVES, "--keys-file", keys_file)
            with open(keys_file, encoding="utf-8") as f:
                rows = [ln.rstrip("\n").split("\t") for ln in f if not ln.startswith("#")]
        _, cls.big_user, cls.big_key, cls.big_coll = rows[0]
        cls.org = w.org()
        cls.user = w.user()
        w.member(cls.org, cls.user)
        cls.pool = Pool(w, cls.user, 4)
        cls.tracks = [w.track(cls.org) for _ in range(2)]
        for i, t in enumerate(cls.tracks):
            w.save(cls.org, cls.user, t, "2025-05-03T10:00:0%dZ" % i)
        cls.ids = w.expected_order(cls.org, cls.user)

    def test_seeded_library_is_large(self):
        r = request("GET", tracks_path(self.big_org, "limit=100&offset=%d" % (self.SAVES - 50)),
                    {"X-API-Key": self.big_key})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(len(r.json()["items"]), 50)

    def test_deepest_offset_answers_at_once(self):
        budget = 2.0   # the request budget is 5 s (request_timeout); this must be far below it
        for query in ("offset=2147483647", "offset=2147483647&limit=100",
                      "offset=2147483647&limit=1&mode=creation",
                      "offset=2147483647&engine=aria", "offset=2147483646&limit=100",
                      "offset=2147483647&collection_id=" + self.big_coll,
                      "offset=%d&limit=100" % self.SAVES):
            with self.subTest(query=query):
                t0 = time.monotonic()
                r = request("GET", tracks_path(self.big_org, query),
                            {"X-API-Key": self.big_key})
                elapsed = time.monotonic() - t0
                self.assertEqual(r.status, 200, r.body[:300])
                self.assert_common_headers(r)
                body = r.json()
                self.assertEqual(body["items"], [])
                self.assertEqual(body["offset"], int(query.split("offset=")[1].split("&")[0]))
                self.assertLess(elapsed, budget, "%s took %.2f s" % (query, elapsed))

    def query_status(self, query):
        return request("GET", tracks_path(self.org, query), {"X-API-Key": self.pool.next()})

    def test_parameter_count_cap(self):
        at_cap = "&".join("p%d=1" % i for i in range(64))
        r = self.query_status(at_cap)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([i["id"] for i in r.json()["items"]], self.ids)
        for query in (at_cap + "&p64=1", "&".join("p%d" % i for i in range(65)),
                      "&".join("=%d" % i for i in range(65)),
                      "&".join("p=1" for _ in range(500)),
                      "limit=5&" + "&".join("p%d=1" % i for i in range(200))):
            with self.subTest(query=query[:30], n=query.count("&") + 1):
                self.assert_error(self.query_status(query), 422, "VALIDATION_ERROR",
                                  "validation_error", "query")
        r = self.query_status("&".join("limit=1" for _ in range(65)))
        self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error", ("query", "limit"))

    def test_query_length_cap(self):
        def of_length(n):
            s = "limit=2&pad="
            return s + "a" * (n - len(s))
        r = self.query_status(of_length(4096))
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([i["id"] for i in r.json()["items"]], self.ids[:2])
        for n in (4097, 5000, 7500):
            with self.subTest(bytes=n):
                self.assert_error(self.query_status(of_length(n)), 422, "VALIDATION_ERROR",
                                  "validation_error", "query")
        for name in FIELDS:
            with self.subTest(param=name):
                r = self.query_status("%s=%s" % (name, "7" * 5000))
                self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error",
                                  ("query", name))

    def test_caps_do_not_come_before_authentication(self):
        r = request("GET", tracks_path(self.org, "&".join("p%d=1" % i for i in range(100))))
        self.assert_error(r, 401, "AUTHENTICATION_REQUIRED", "authentication_error")


# =========================================================================== BOLA

class BolaMatrixTests(HostileCase):
    """Orgs O1, O2 with users A and B in both (saves and a collection each in each org); O3 is
    a third org with its own member C. Every (key, org, collection) combination is tried."""

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("bola")
        cls.orgs = {"O1": w.org(), "O2": w.org(), "O3": w.org()}
        o1, o2, o3 = cls.orgs["O1"], cls.orgs["O2"], cls.orgs["O3"]
        cls.users = {"A": w.user(), "B": w.user(), "C": w.user()}
        for u in ("A", "B"):
            w.member(o1, cls.users[u])
            w.member(o2, cls.users[u])
        w.member(o3, cls.users["C"])
        cls.pools = {u: Pool(w, cls.users[u], 4) for u in ("A", "B")}
        tracks = {}
        for name, org in cls.orgs.items():
            tracks[name] = [w.track(org, engine="e%d" % (i % 2), mode="m%d" % (i % 3))
                            for i in range(6)]
        sec = itertools.count()

        def save(org_name, user, idx):
            w.save(cls.orgs[org_name], cls.users[user], tracks[org_name][idx],
                   "2025-06-01T10:%02d:%02dZ" % divmod(next(sec), 60))

        # overlapping saves: some tracks saved by both users, some by one only
        for idx in (0, 1, 2, 3):
            save("O1", "A", idx)
        for idx in (2, 3, 4, 5):
            save("O1", "B", idx)
        for idx in (0, 5):
            save("O2", "A", idx)
        for idx in (1, 2, 3, 4, 5):
            save("O2", "B", idx)
        for idx in range(6):
            save("O3", "C", idx)
        cls.colls = {}
        # each collection holds tracks saved by its owner *and* by the other user
        for owner, org_name, members in (("A", "O1", (0, 2, 4)), ("B", "O1", (1, 2, 3, 5)),
                                         ("A", "O2", (0, 1, 5)), ("B", "O2", (0, 2, 4)),
                                         ("C", "O3", (0, 1, 2, 3, 4, 5))):
            cid = w.collection(cls.orgs[org_name], cls.users[owner])
            for idx in members:
                w.collect(cid, tracks[org_name][idx])
            cls.colls[cid] = (owner, org_name, {tracks[org_name][i] for i in members})
        cls.missing_coll = "mcoll_" + unique("nx").replace("-", "")
        cls.missing_org = "org_" + unique("nx").replace("-", "")
        cls.tracks = tracks

    def key_headers_for(self, user, style):
        k = self.pools[user].next()
        return {"X-API-Key": k} if style == "x" else {"Authorization": "Bearer " + k}

    def expected(self, user, org_name, coll, mode):
        org = self.orgs[org_name]
        members = None
        if coll is not None:
            members = self.colls[coll][2]
        ids = self.w.expected_order(org, self.users[user], members)
        if mode is not None:
            ids = [t for t in ids if self.w.track_info[t]["mode"] == mode]
        return ids

    def test_matrix(self):
        org_names = ["O1", "O2", "O3", "missing"]
        colls = [None] + sorted(self.colls) + [self.missing_coll]
        first_403 = first_404 = None
        counted = {"200": 0, "403": 0, "404": 0}
        for user in ("A", "B"):
            for style in ("x", "bearer"):
                for org_name in org_names:
                    org = self.orgs.get(org_name, self.missing_org)
                    for coll in colls:
                        for mode in (None, "m1"):
                            params = []
                            if coll is not None:
                                params.append("collection_id=" + coll)
                            if mode is not None:
                                params.append("mode=" + mode)
                            query = "&".join(params) if params else None
                            with self.subTest(user=user, style=style, org=org_name, coll=coll,
                                              mode=mode):
                                r = request("GET", tracks_path(org, query),
                                            self.key_headers_for(user, style))
                                if org_name in ("O3", "missing"):
                                    err = self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED",
                                                            "authorization_error")
                                    first_403 = first_403 or err
                                    self.assert_same_error(first_403, err)
                                    counted["403"] += 1
                                    continue
                                owned = coll is None or (coll in self.colls and self.colls[coll][
                                    :2] == (user, org_name))
                                if not owned:
                                    err = self.assert_error(r, 404, "RESOURCE_NOT_FOUND",
                                                            "not_found_error")
                                    first_404 = first_404 or err
                                    self.assert_same_error(first_404, err)
                                    self.assertNotIn(coll, r.body.decode("utf-8"))
                                    counted["404"] += 1
                                    continue
                                self.assertEqual(r.status, 200, r.body[:300])
                                self.assert_common_headers(r)
                                got = [i["id"] for i in r.json()["items"]]
                                self.assertEqual(got, self.expected(user, org_name, coll, mode))
                                counted["200"] += 1
        print("\nBOLA matrix: %s" % counted)

    def test_foreign_and_missing_collection_answers_are_identical(self):
        # the same (key, org): a collection of the other user, of the same user in the other
        # org, of another org, and one that does not exist at all
        for user, org_name in (("A", "O1"), ("A", "O2"), ("B", "O1"), ("B", "O2")):
            org = self.orgs[org_name]
            foreign = [c for c, (o, on, _) in self.colls.items() if (o, on) != (user, org_name)]
            answers = {}
            for coll in foreign + [self.missing_coll, "mcoll_" + "Z" * 64]:
                for extra in ("", "&limit=1", "&offset=5&mode=m0"):
                    r = request("GET", tracks_path(org, "collection_id=" + coll + extra),
                                self.key_headers_for(user, "x"))
                    answers[(coll, extra)] = r
            ref = None
            for (coll, extra), r in answers.items():
                with self.subTest(user=user, org=org_name, coll=coll, extra=extra):
                    err = self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
                    ref = ref or err
                    self.assert_same_error(ref, err)
                    self.assertEqual(self.comparable_headers(r),
                                     self.comparable_headers(answers[(self.missing_coll, extra)]))

    @staticmethod
    def comparable_headers(r):
        return sorted((k.lower(), v) for k, v in r.headers.raw
                      if k.lower() not in ("date", "x-request-id"))

    def test_tracks_of_other_users_and_orgs_never_leak_through_filters(self):
        for user in ("A", "B"):
            mine = set()
            for org_name in ("O1", "O2"):
                mine |= set(self.w.expected_order(self.orgs[org_name], self.users[user]))
            for org_name in ("O1", "O2"):
                for query in ("engine=e0", "engine=e1", "mode=m0", "mode=m2&engine=e1",
                              "limit=100", "limit=1&offset=3"):
                    with self.subTest(user=user, org=org_name, query=query):
                        r = request("GET", tracks_path(self.orgs[org_name], query),
                                    self.key_headers_for(user, "x"))
                        self.assertEqual(r.status, 200, r.body[:300])
                        got = {i["id"] for i in r.json()["items"]}
                        own_here = set(self.w.expected_order(self.orgs[org_name],
                                                             self.users[user]))
                        self.assertTrue(got <= own_here, got - own_here)
                        self.assertTrue(got <= mine)

    def test_membership_removal_closes_every_door(self):
        w = self.w
        u = w.user()
        o = w.org()
        w.member(o, u)
        k = w.key(u)
        t = w.track(o)
        w.save(o, u, t, "2025-06-02T10:00:00Z")
        c = w.collection(o, u)
        w.collect(c, t)
        r = request("GET", tracks_path(o, "collection_id=" + c), {"X-API-Key": k})
        self.assertEqual(r.status, 200, r.body[:300])
        admin("member", "remove", o, u)
        for query in (None, "collection_id=" + c, "collection_id=" + self.missing_coll):
            with self.subTest(query=query):
                r = request("GET", tracks_path(o, query), {"X-API-Key": k})
                self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")


# =========================================================================== database role

class ApiDbRoleTests(HostileCase):
    """The workers' login role (env.json db_api) can read, never write."""

    @classmethod
    def setUpClass(cls):
        e = load_env()
        cls.api_db, cls.owner_db = e["db_api"], e["db_owner"]
        w = cls.w = World("dbrole")
        cls.org = w.org()
        cls.foreign = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org, title="original")
        cls.unsaved = w.track(cls.org)
        w.save(cls.org, cls.user, cls.track, "2025-06-03T10:00:00Z")
        cls.coll = w.collection(cls.org, cls.user)
        w.collect(cls.coll, cls.track)
        cls.revoked = w.key(cls.user)
        admin("key", "revoke", key_id(cls.revoked))

    def refused(self, sql):
        rc, out, err = psql(self.api_db, sql, check=False)
        self.assertNotEqual(rc, 0, "the API role was allowed: %s -> %s" % (sql, out))
        self.assertIn("permission denied", err.lower(), err)

    def owner_value(self, sql):
        return psql(self.owner_db, sql)[1].strip()

    def listing_ids(self, key=None):
        r = request("GET", tracks_path(self.org), {"X-API-Key": key or self.key})
        self.assertEqual(r.status, 200, r.body[:300])
        return [i["id"] for i in r.json()["items"]]

    def test_selects_what_the_listing_reads(self):
        for table in ("api_keys", "memberships", "library_saves", "tracks", "collections",
                      "collection_tracks"):
            with self.subTest(table=table):
                rc, out, err = psql(self.api_db, "SELECT count(*) FROM %s" % table, check=False)
                self.assertEqual(rc, 0, err)

    def test_cannot_read_what_the_listing_does_not_need(self):
        for table in ("users", "organizations"):
            with self.subTest(table=table):
                self.refused("SELECT * FROM %s LIMIT 1" % table)

    def test_real_writes_are_refused_and_change_nothing(self):
        u, o, t, c = (sql_literal(x) for x in (self.user, self.org, self.unsaved, self.coll))
        kid = sql_literal(key_id(self.revoked))
        before = self.listing_ids()
        statements = [
            # The role may save and unsave (the routes' writes, sql/007_playback.sql) but never
            # choose an entry's id or saved_at, nor write anything else.
            "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, saved_at) "
            "SELECT %s, id, org_id, mode, engine, now() FROM tracks WHERE id = %s" % (u, t),
            "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, id) "
            "SELECT %s, id, org_id, mode, engine, 'mlib_x' FROM tracks WHERE id = %s" % (u, t),
            "INSERT INTO memberships (user_id, org_id, capabilities) VALUES (%s, %s, "
            "ARRAY['USE_MUSIC_GENERATION'])" % (u, sql_literal(self.foreign)),
            "INSERT INTO api_keys (id, user_id, secret_hash) VALUES ('mk_aaaaaaaaaaaaaaaa', "
            "%s, repeat('0', 64))" % u,
            "INSERT INTO collection_tracks (collection_id, track_id, org_id) VALUES (%s, %s, %s)"
            % (c, t, o),
            "UPDATE api_keys SET revoked_at = NULL WHERE id = %s" % kid,
            "UPDATE tracks SET title = 'pwned' WHERE org_id = %s" % o,
            "UPDATE library_saves SET saved_at = now() WHERE user_id = %s" % u,
            "UPDATE memberships SET capabilities = '{}' WHERE user_id = %s" % u,
            "DELETE FROM collection_tracks WHERE collection_id = %s" % c,
            "DELETE FROM api_keys WHERE user_id = %s" % u,
            "DELETE FROM tracks WHERE org_id = %s" % o,
            "TRUNCATE library_saves",
            "TRUNCATE api_keys CASCADE",
            "WITH gone AS (DELETE FROM api_keys WHERE user_id = %s RETURNING 1) "
            "SELECT count(*) FROM gone" % u,
            "UPDATE tracks SET deleted_at = NULL, title = 'pwned' WHERE org_id = %s" % o,
            "SELECT * FROM library_saves WHERE user_id = %s FOR UPDATE" % u,
            "SELECT * FROM api_keys FOR SHARE",
            "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE",
            "COPY api_keys FROM STDIN",
        ]
        for sql in statements:
            with self.subTest(sql=sql[:60]):
                # in a transaction that is rolled back should the server ever allow it
                self.refused("BEGIN; %s; ROLLBACK;" % sql)
        self.assertEqual(self.listing_ids(), before)
        self.assertEqual(self.owner_value("SELECT title FROM tracks WHERE id = %s"
                                          % sql_literal(self.track)), "original")
        self.assertEqual(self.owner_value("SELECT revoked_at IS NOT NULL FROM api_keys "
                                          "WHERE id = %s" % kid), "t")
        r = request("GET", tracks_path(self.org), {"X-API-Key": self.revoked})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        r = request("GET", tracks_path(self.foreign), {"X-API-Key": self.key})
        self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_cannot_become_the_owner(self):
        rc, _, err = psql(self.api_db, "SET ROLE music_owner", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied", err.lower(), err)
        rc, _, err = psql(self.api_db, "SET SESSION AUTHORIZATION music_owner", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied", err.lower(), err)


if __name__ == "__main__":
    load_env()
    unittest.main(verbosity=2)
