"""End-to-end tests of GET /v1/music/{org}/tracks through nginx over HTTPS.

Run as `MUSIC_API_STACK=DIR python3 tests/e2e/test_endpoint.py` against a running stack
(see tests/support/musicapi.py). Each class builds its own data with music-admin.
"""

import datetime
import os
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from musicapi import (  # noqa: E402
    CACHE_CONTROL, ITEM_KEYS, ISSUED_KEYS, JSON_CONTENT_TYPE, REQUEST_ID_RE, TIMESTAMP_RE,
    ApiTestCase, World, admin, key_headers, key_id, key_secret, load_env, now_utc, q,
    request, shown, ssl_context, tracks_path, unique)

MISSING_KEY_MESSAGE = "Authentication required. Please provide a valid API key."
NO_PERMISSION_MESSAGE = "You do not have permission to access this resource."
CAP_SYSTEM_MESSAGE = "USE_MUSIC_GENERATION capability required"

# Keys deliberately sent in a query string: checked separately by the log test.
QUERY_KEYS = []
# Every key-like string a test sent in a header (valid or not), for the log test.
SENT_SECRETS = []


def wrong_secret(key):
    """The same key id with the last secret character changed."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def rfc3339(dt, offset_minutes=0):
    tz = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    return dt.astimezone(tz).isoformat(timespec="seconds")


def error_of(r):
    return r.json()["error"]


# =========================================================================== routing

class RoutingTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("route")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.t1 = w.track(cls.org)
        w.save(cls.org, cls.user, cls.t1, "2025-03-01T10:00:00Z")

    def test_get_route(self):
        body = self.listing(self.org, self.key)
        self.assertEqual([i["id"] for i in body["items"]], [self.t1])

    def test_trailing_slash_is_same_route(self):
        a = self.listing(self.org, self.key)
        b = self.listing(self.org, self.key, slash=True)
        self.assertEqual(a, b)
        c = self.listing(self.org, self.key, "limit=1", slash=True)
        self.assertEqual(c["limit"], 1)

    def test_empty_query_string(self):
        body = self.listing(self.org, self.key, "")
        self.assertEqual([i["id"] for i in body["items"]], [self.t1])

    def test_other_methods_get_405_with_allow(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for slash in (False, True):
                for key in (None, self.key):
                    with self.subTest(method=method, slash=slash, key=bool(key)):
                        r = request(method, tracks_path(self.org, slash=slash), key_headers(key))
                        self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")
                        self.assertEqual(r.headers.get_all("Allow"), ["GET, HEAD"])

    def test_405_comes_before_key_org_and_params(self):
        cases = [
            (tracks_path("org_" + unique("x").replace("-", "")), {}),
            (tracks_path("not-an-org", "limit=abc&%zz"), {"X-API-Key": "garbage"}),
            (tracks_path(self.org, "limit=0&collection_id=bad"), {}),
        ]
        for path, headers in cases:
            with self.subTest(path=path):
                r = request("DELETE", path, headers)
                self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")
                self.assertEqual(r.headers.get("Allow"), "GET, HEAD")

    def test_post_with_body_gets_405(self):
        r = request("POST", tracks_path(self.org), {"X-API-Key": self.key,
                                                    "Content-Type": "application/json"},
                    body=b'{"track_id": "mtrack_x"}')
        self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")
        self.assertEqual(r.headers.get("Allow"), "GET, HEAD")

    def test_other_paths_under_v1_music_are_404(self):
        o = self.org
        paths = [
            "/v1/music/%s/other" % o,
            # /tracks/{id} and /tracks/{id}/save are routes (test_tracks.py); deeper paths are not.
            "/v1/music/%s/tracks/extra/more" % o,
            "/v1/music/%s/tracks/%s/extra/" % (o, self.t1),
            "/v1/music/%s/tracks/%s/save/x" % (o, self.t1),
            "/v1/music/%s/tracks/%s/play" % (o, self.t1),
            "/v1/music/%s/tracks//" % o,
            "/v1/music/%s/trackss" % o,
            "/v1/music/%s/Tracks" % o,
            "/v1/music/%s" % o,
            "/v1/music/%s/" % o,
            "/v1/music/",
            "/v1/music/x/y/tracks",
            "/v1/music/org_x/other",
            "/v1/music/org_x/tracks/extra/more",
        ]
        for path in paths:
            for key in (None, self.key):
                with self.subTest(path=path, key=bool(key)):
                    r = self.get(path, key)
                    self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")

    def test_404_route_comes_before_method_and_key(self):
        for method in ("GET", "POST", "DELETE"):
            with self.subTest(method=method):
                r = request(method, "/v1/music/%s/other?limit=abc" % self.org)
                self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")


# =========================================================================== authentication

class AuthTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("auth")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.user2, cls.key2 = w.principal(cls.org)
        cls.t1 = w.track(cls.org)
        cls.t2 = w.track(cls.org)
        w.save(cls.org, cls.user, cls.t1, "2025-03-01T10:00:00Z")
        w.save(cls.org, cls.user2, cls.t2, "2025-03-01T10:00:00Z")
        # A key used only in query strings (the log test treats it apart).
        cls.qkey = w.key(cls.user)
        QUERY_KEYS.append(cls.qkey)
        ISSUED_KEYS.remove(cls.qkey)
        cls.path = tracks_path(cls.org)

    def ok_ids(self, headers, path=None):
        r = request("GET", path or self.path, headers)
        self.assertEqual(r.status, 200, (headers, r.body[:300]))
        self.assert_common_headers(r)
        return [i["id"] for i in r.json()["items"]]

    def test_missing_key(self):
        r = request("GET", self.path)
        err = self.assert_error(r, 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        self.assertEqual(err["message"], MISSING_KEY_MESSAGE)

    def test_x_api_key(self):
        self.assertEqual(self.ok_ids({"X-API-Key": self.key}), [self.t1])
        self.assertEqual(self.ok_ids({"x-api-key": self.key2}), [self.t2])

    def test_bearer_scheme_case_insensitive(self):
        for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
            with self.subTest(scheme=scheme):
                self.assertEqual(self.ok_ids({"Authorization": "%s %s" % (scheme, self.key)}),
                                 [self.t1])

    def test_x_api_key_wins_over_authorization(self):
        self.assertEqual(self.ok_ids({"X-API-Key": self.key,
                                      "Authorization": "Bearer garbage"}), [self.t1])
        self.assertEqual(self.ok_ids({"X-API-Key": self.key,
                                      "Authorization": "Bearer " + self.key2}), [self.t1])
        self.assertEqual(self.ok_ids({"X-API-Key": self.key2,
                                      "Authorization": "Bearer " + self.key}), [self.t2])
        r = request("GET", self.path, {"X-API-Key": "mk_garbage_garbage",
                                       "Authorization": "Bearer " + self.key})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_empty_values_count_as_absent(self):
        for headers in ({"X-API-Key": ""}, {"Authorization": ""}, {"Authorization": "Bearer "},
                        {"X-API-Key": "", "Authorization": ""}):
            with self.subTest(headers=headers):
                r = request("GET", self.path, headers)
                err = self.assert_error(r, 401, "AUTHENTICATION_REQUIRED",
                                        "authentication_error")
                self.assertEqual(err["message"], MISSING_KEY_MESSAGE)
        self.assertEqual(self.ok_ids({"X-API-Key": "", "Authorization": "Bearer " + self.key}),
                         [self.t1])

    def test_key_in_query_string_is_ignored(self):
        k = self.qkey
        for query in ("api_key=" + k, "key=" + k, "apikey=" + k, "access_token=" + k,
                      "X-API-Key=" + k):
            with self.subTest(query=query.split("=")[0]):
                r = request("GET", tracks_path(self.org, query))
                err = self.assert_error(r, 401, "AUTHENTICATION_REQUIRED",
                                        "authentication_error")
                self.assertEqual(err["message"], MISSING_KEY_MESSAGE)
        # The same key in a header works: the 401s above were only about where it was.
        self.assertEqual(self.ok_ids({"X-API-Key": k}), [self.t1])

    def test_invalid_keys(self):
        k = self.key
        bad = ["garbage", "mk_", "mk_x", "mk_doesnotexist_secretsecretsecret",
               key_id(k), key_id(k) + "_", k + "x", k[:-1], wrong_secret(k),
               key_id(k) + "_" + "A" * len(key_secret(k)), "Bearer " + k, "mk_" + "9" * 1000,
               k + k]
        if k.upper() != k:
            bad.append(k.upper())
        for value in bad:
            SENT_SECRETS.append(value)
            for headers in ({"X-API-Key": value}, {"Authorization": "Bearer " + value}):
                with self.subTest(value=value[:40], header=list(headers)[0]):
                    r = request("GET", self.path, headers)
                    self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_other_authorization_scheme_is_not_a_key(self):
        for value in ("Basic dXNlcjpwYXNz", "Token " + self.key, self.key):
            with self.subTest(value=value[:20]):
                r = request("GET", self.path, {"Authorization": value})
                self.assertEqual(r.status, 401, r.body)
                self.assertIn(error_of(r)["code"], ("AUTHENTICATION_REQUIRED", "INVALID_API_KEY"))
                self.assert_error(r, 401, error_of(r)["code"], "authentication_error")

    def test_key_checked_before_org_and_params(self):
        unknown_org = "org_" + unique("z").replace("-", "")
        r = request("GET", tracks_path(unknown_org, "limit=abc&mode=%ff"))
        self.assert_error(r, 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        r = request("GET", tracks_path("not-an-org", "limit=0"), {"X-API-Key": "garbage"})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        r = request("GET", tracks_path(self.org, "collection_id=mcoll_nope"),
                    {"X-API-Key": wrong_secret(self.key)})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")


class KeyLifecycleTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("keys")
        cls.org = w.org()
        cls.user, _ = w.principal(cls.org)
        cls.t1 = w.track(cls.org)
        w.save(cls.org, cls.user, cls.t1, "2025-03-01T10:00:00Z")
        cls.path = tracks_path(cls.org)

    def status_code(self, key):
        r = request("GET", self.path, {"X-API-Key": key})
        if r.status == 200:
            self.assert_common_headers(r)
            return 200, None
        return r.status, self.assert_error(r, r.status, error_of(r)["code"],
                                           "authentication_error")["code"]

    def test_revoke_by_key_id(self):
        k = self.w.key(self.user)
        self.assertEqual(self.status_code(k), (200, None))
        admin("key", "revoke", key_id(k))
        self.assertEqual(self.status_code(k), (401, "INVALID_API_KEY"))
        r = request("GET", self.path, {"Authorization": "Bearer " + k})
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_revoke_by_full_key(self):
        k = self.w.key(self.user)
        self.assertEqual(self.status_code(k), (200, None))
        admin("key", "revoke", k)
        self.assertEqual(self.status_code(k), (401, "INVALID_API_KEY"))

    def test_revoking_one_key_leaves_others(self):
        k1 = self.w.key(self.user)
        k2 = self.w.key(self.user)
        admin("key", "revoke", key_id(k1))
        self.assertEqual(self.status_code(k1), (401, "INVALID_API_KEY"))
        self.assertEqual(self.status_code(k2), (200, None))

    def test_expired_key(self):
        for exp in ("2020-01-01T00:00:00Z",
                    rfc3339(now_utc() - datetime.timedelta(minutes=5), 330),
                    rfc3339(now_utc() - datetime.timedelta(minutes=5), -420)):
            with self.subTest(expires_at=exp):
                k = self.w.key(self.user, exp)
                self.assertEqual(self.status_code(k), (401, "API_KEY_EXPIRED"))

    def test_future_expiry_works(self):
        for exp in ("2099-01-01T00:00:00Z",
                    # an hour ahead, written at UTC-07:00: wrong if the offset were ignored
                    rfc3339(now_utc() + datetime.timedelta(hours=1), -420),
                    rfc3339(now_utc() + datetime.timedelta(hours=1), 600)):
            with self.subTest(expires_at=exp):
                k = self.w.key(self.user, exp)
                self.assertEqual(self.status_code(k), (200, None))

    def test_expired_key_with_wrong_secret_is_invalid(self):
        k = self.w.key(self.user, "2020-01-01T00:00:00Z")
        SENT_SECRETS.append(wrong_secret(k))
        self.assertEqual(self.status_code(wrong_secret(k)), (401, "INVALID_API_KEY"))

    def test_revoked_key_with_wrong_secret_is_invalid(self):
        k = self.w.key(self.user)
        admin("key", "revoke", key_id(k))
        SENT_SECRETS.append(wrong_secret(k))
        self.assertEqual(self.status_code(wrong_secret(k)), (401, "INVALID_API_KEY"))


# =========================================================================== organization access

class OrgAccessTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("orgs")
        cls.org = w.org()
        cls.foreign = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.nocap_user, cls.nocap_key = w.principal(cls.org, caps=())
        cls.coll = w.collection(cls.org, cls.user)
        cls.t1 = w.track(cls.org)
        w.save(cls.org, cls.user, cls.t1, "2025-03-01T10:00:00Z")
        # The foreign org has a member and data of its own.
        fu, _ = w.principal(cls.foreign)
        ft = w.track(cls.foreign)
        w.save(cls.foreign, fu, ft, "2025-03-01T10:00:00Z")

    def denied_orgs(self):
        return [
            "org_" + unique("u").replace("-", ""),
            self.foreign,
            "org_%27",
            "org_%27%20OR%201=1--",
            "not-an-org",
            "org_" + "a" * 300,
            "org_",
            self.org.upper() if self.org.upper() != self.org else self.org + "X",
            self.org + "x",
        ]

    def test_denied_orgs_are_indistinguishable(self):
        first = None
        for org in self.denied_orgs():
            for slash in (False, True):
                with self.subTest(org=org[:40], slash=slash):
                    r = request("GET", tracks_path(org, slash=slash), {"X-API-Key": self.key})
                    err = self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED",
                                            "authorization_error")
                    self.assertNotIn(org, r.body.decode("utf-8"))
                    if first is None:
                        first = err
                    self.assert_same_error(first, err)

    def test_missing_capability(self):
        r = request("GET", tracks_path(self.org), {"X-API-Key": self.nocap_key})
        err = self.assert_error(r, 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")
        self.assertEqual(err["system_message"], CAP_SYSTEM_MESSAGE)
        self.assertEqual(err["message"], NO_PERMISSION_MESSAGE)

    def test_nocap_member_of_other_org_is_denied_not_insufficient(self):
        r = request("GET", tracks_path(self.foreign), {"X-API-Key": self.nocap_key})
        self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_member_remove_revokes_access(self):
        u, k = self.w.principal(self.org)
        self.assertEqual(self.listing(self.org, k)["items"], [])
        admin("member", "remove", self.org, u)
        r = request("GET", tracks_path(self.org), {"X-API-Key": k})
        self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_org_checked_before_params_and_collection(self):
        for query in ("limit=abc", "offset=-1&mode=%ff", "%zz", "limit=1&limit=2",
                      "collection_id=" + self.coll, "collection_id=mcoll_nope",
                      "collection_id=bad"):
            with self.subTest(query=query):
                r = request("GET", tracks_path(self.foreign, query), {"X-API-Key": self.key})
                self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")
                r = request("GET", tracks_path("not-an-org", query), {"X-API-Key": self.key})
                self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")
                r = request("GET", tracks_path(self.org, query), {"X-API-Key": self.nocap_key})
                err = self.assert_error(r, 403, "INSUFFICIENT_PERMISSIONS",
                                        "authorization_error")
                self.assertEqual(err["system_message"], CAP_SYSTEM_MESSAGE)


# =========================================================================== parameters

class ParamValidationTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("params")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.tracks = [w.track(cls.org) for _ in range(3)]
        for i, t in enumerate(cls.tracks):
            w.save(cls.org, cls.user, t, "2025-03-01T10:00:0%dZ" % i)
        cls.expected = w.expected_order(cls.org, cls.user)

    def assert_422(self, query, field):
        r = request("GET", tracks_path(self.org, query), {"X-API-Key": self.key})
        return self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error", field)

    def test_bad_limit(self):
        for v in ("abc", "1.5", "-1", "+5", "%2B5", "%205", "5%20", "101", "0", "00", "0x10",
                  "1e2", "5a", "1000", "99999999999999999999", "2147483648", "4294967297",
                  "18446744073709551617", "%EF%BC%95", "%D9%A1", "%00", "5%00"):
            with self.subTest(limit=v):
                self.assert_422("limit=" + v, "limit")

    def test_bad_offset(self):
        for v in ("abc", "1.5", "-1", "-0", "+5", "%2B5", "%205", "5%20", "0x10", "1e2",
                  "2147483648", "4294967296", "99999999999999999999", "18446744073709551616",
                  "%EF%BC%95", "%00"):
            with self.subTest(offset=v):
                self.assert_422("offset=" + v, "offset")

    def test_limit_and_offset_bounds_accepted(self):
        for query, limit, offset, ids in (
                ("limit=1", 1, 0, self.expected[:1]),
                ("limit=100", 100, 0, self.expected),
                ("limit=2&offset=1", 2, 1, self.expected[1:3]),
                ("offset=0", 50, 0, self.expected),
                ("offset=3", 50, 3, []),
                ("offset=2147483647", 50, 2147483647, []),
                ("limit=100&offset=2147483647", 100, 2147483647, [])):
            with self.subTest(query=query):
                body = self.listing(self.org, self.key, query)
                self.assertEqual(body["limit"], limit)
                self.assertEqual(body["offset"], offset)
                self.assertEqual([i["id"] for i in body["items"]], ids)

    def test_empty_values_mean_default(self):
        for query in ("limit=", "offset=", "limit=&offset=", "mode=", "engine=",
                      "collection_id=", "limit=&offset=&mode=&engine=&collection_id="):
            with self.subTest(query=query):
                body = self.listing(self.org, self.key, query)
                self.assertEqual((body["limit"], body["offset"]), (50, 0))
                self.assertEqual([i["id"] for i in body["items"]], self.expected)

    def test_bad_mode_and_engine(self):
        bad = ["%ff", "%FE", "%00", "a%00b", "%0a", "%0d", "%09", "%1f", "%7f", "%c0%af",
               "%ed%a0%80", "%e2%98", "%f8%88%80%80%80", "x" * 65, q("é" * 33),
               q("☕" * 21) + "ab"]
        for name in ("mode", "engine"):
            for v in bad:
                with self.subTest(name=name, value=v[:30]):
                    self.assert_422("%s=%s" % (name, v), name)

    def test_mode_and_engine_length_is_in_bytes(self):
        for name in ("mode", "engine"):
            for v in ("x" * 64, q("é" * 32), q("☕" * 21) + "a", q("x" * 63 + " ")):
                with self.subTest(name=name, value=v[:30]):
                    self.assertEqual(self.listing(self.org, self.key, "%s=%s" % (name, v))
                                     ["items"], [])

    def test_bad_collection_id(self):
        for v in ("foo", "mcoll_", "mcoll", "MCOLL_abc", "Mcoll_abc", "mcoll_" + "a" * 65,
                  "mcoll_a.b", "mcoll_a%20b", "mcoll_a+b", "mcoll_%C3%A9", "mcoll_a%2Fb",
                  "mcoll_a%00", "%20mcoll_a", "mcoll_a%20", "xmcoll_a", "mtrack_abc",
                  "mcoll_a%27", "mcoll_a%3Bb"):
            with self.subTest(collection_id=v):
                self.assert_422("collection_id=" + v, "collection_id")

    def test_well_formed_unknown_collection_id_is_404(self):
        for v in ("mcoll_" + "a" * 64, "mcoll_A-z_09", "mcoll_x", "mcoll_-", "mcoll__"):
            with self.subTest(collection_id=v):
                r = request("GET", tracks_path(self.org, "collection_id=" + v),
                            {"X-API-Key": self.key})
                self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")

    def test_repeated_known_parameter(self):
        for query, field in (("limit=1&limit=2", "limit"), ("limit=5&limit=5", "limit"),
                             ("offset=0&offset=1", "offset"), ("mode=a&mode=b", "mode"),
                             ("mode=a&mode=a", "mode"), ("engine=a&engine=b", "engine"),
                             ("collection_id=mcoll_a&collection_id=mcoll_b", "collection_id"),
                             ("limit=1&offset=2&limit=1", "limit")):
            with self.subTest(query=query):
                self.assert_422(query, field)

    def test_malformed_percent_encoding(self):
        for query in ("foo=%zz", "%zz=1", "foo=%", "%=1", "foo=%4", "foo=a%2", "foo=%g0",
                      "limit=5&foo=%zz", "fo%zzo=bar", "%", "a=b&%", "foo=%%31"):
            with self.subTest(query=query):
                self.assert_422(query, "query")
        # In a known parameter's own value that parameter is named, first in the order
        # limit, offset, mode, engine, collection_id.
        for query, field in (("limit=%zz", "limit"), ("mode=%", "mode"), ("mode=%zz", "mode"),
                             ("engine=ab%2", "engine"), ("collection_id=mcoll_%zz",
                                                         "collection_id"),
                             ("engine=%zz&offset=-1", "offset"),
                             ("collection_id=%zz&mode=%4", "mode")):
            with self.subTest(query=query):
                self.assert_422(query, field)

    def test_unknown_parameters_ignored_and_names_case_sensitive(self):
        for query in ("foo=bar", "LIMIT=500", "Limit=abc", "OFFSET=-1", "limit2=x",
                      "offset_=x", "Mode=%00", "COLLECTION_ID=bad", "foo", "foo=bar&foo=baz",
                      "limit%20=abc"):
            with self.subTest(query=query):
                body = self.listing(self.org, self.key, query)
                self.assertEqual((body["limit"], body["offset"]), (50, 0))
                self.assertEqual([i["id"] for i in body["items"]], self.expected)

    def test_first_bad_parameter_is_reported(self):
        for query, field in (
                ("offset=x&limit=y", "limit"),
                ("collection_id=bad&engine=%ff&mode=%00&offset=-1&limit=0", "limit"),
                ("collection_id=bad&engine=%ff&mode=%00&offset=-1", "offset"),
                ("collection_id=bad&engine=%ff&mode=%00", "mode"),
                ("collection_id=bad&engine=%ff", "engine"),
                ("mode=x&mode=y&limit=0", "limit"),
                ("limit=abc&offset=1&offset=2", "limit"),
                ("collection_id=mcoll_a&collection_id=mcoll_b&engine=%ff", "engine"),
                ("offset=a&offset=b&mode=%ff", "offset"),
                ("engine=e&collection_id=x&engine=f", "engine")):
            with self.subTest(query=query):
                self.assert_422(query, field)

    def test_parameters_checked_before_collection(self):
        for query, field in (("collection_id=mcoll_doesnotexist&limit=0", "limit"),
                             ("collection_id=mcoll_doesnotexist&mode=%ff", "mode"),
                             ("collection_id=mcoll_doesnotexist&offset=1.5", "offset")):
            with self.subTest(query=query):
                self.assert_422(query, field)


# =========================================================================== filters

class FilterTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("filter")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        specs = {
            "focus": ("studio", "focus"),
            "Focus": ("studio", "Focus"),
            "deep": ("lofi", "deep focus"),
            "plus": ("Studio", "a+b"),
            "creation": ("studio", "creation"),
            "long": ("e" * 64, "m" * 64),
            "accent": ("moteur-é", "é" * 32),
            "cup": ("☕ engine", "modé ☕ 夜"),
            "pct": ("studio", "50%"),
            "amp": ("studio", "a&b=c"),
        }
        cls.t = {}
        for i, (name, (engine, mode)) in enumerate(sorted(specs.items())):
            cls.t[name] = w.track(cls.org, engine=engine, mode=mode)
            w.save(cls.org, cls.user, cls.t[name], "2025-04-01T10:%02d:00Z" % i)
        # Another user's save with the same mode must never show up.
        other, _ = w.principal(cls.org)
        cls.other_track = w.track(cls.org, engine="studio", mode="focus")
        w.save(cls.org, other, cls.other_track, "2025-04-02T10:00:00Z")

    def order(self, names):
        return self.w.expected_order(self.org, self.user, {self.t[n] for n in names})

    def test_mode_filters(self):
        for query, names in (
                ("mode=focus", ["focus"]),
                ("mode=Focus", ["Focus"]),
                ("mode=FOCUS", []),
                ("mode=foc", []),
                ("mode=focus%20", []),
                ("mode=%20focus", []),
                ("mode=deep+focus", ["deep"]),
                ("mode=deep%20focus", ["deep"]),
                ("mode=deep", []),
                ("mode=a%2Bb", ["plus"]),
                ("mode=a%2bb", ["plus"]),
                ("mode=a+b", []),
                ("mode=" + "m" * 64, ["long"]),
                ("mode=" + q("é" * 32), ["accent"]),
                ("mode=" + q("modé ☕ 夜"), ["cup"]),
                ("mode=50%25", ["pct"]),
                ("mode=a%26b%3Dc", ["amp"]),
                ("mode=creation", ["creation"])):
            with self.subTest(query=query):
                self.assertEqual(self.ids(self.org, self.key, query), self.order(names))

    def test_engine_filters(self):
        for query, names in (
                ("engine=studio", ["focus", "Focus", "creation", "pct", "amp"]),
                ("engine=Studio", ["plus"]),
                ("engine=STUDIO", []),
                ("engine=stud", []),
                ("engine=lofi", ["deep"]),
                ("engine=" + "e" * 64, ["long"]),
                ("engine=" + q("moteur-é"), ["accent"]),
                ("engine=" + q("☕ engine"), ["cup"]),
                ("engine=%E2%98%95+engine", ["cup"])):
            with self.subTest(query=query):
                self.assertEqual(self.ids(self.org, self.key, query), self.order(names))

    def test_mode_and_engine_together(self):
        self.assertEqual(self.ids(self.org, self.key, "engine=studio&mode=focus"),
                         self.order(["focus"]))
        self.assertEqual(self.ids(self.org, self.key, "mode=focus&engine=lofi"), [])

    def test_filter_with_paging(self):
        names = ["focus", "Focus", "creation", "pct", "amp"]
        expected = self.order(names)
        got = []
        for off in range(0, 6, 2):
            body = self.listing(self.org, self.key, "engine=studio&limit=2&offset=%d" % off)
            self.assertEqual((body["limit"], body["offset"]), (2, off))
            got += [i["id"] for i in body["items"]]
        self.assertEqual(got, expected)


# =========================================================================== collections

class CollectionTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("coll")
        cls.org = w.org()
        cls.org2 = w.org()
        cls.a, cls.key_a = w.principal(cls.org, cls.org2)
        cls.b, cls.key_b = w.principal(cls.org)
        t = cls.t = [w.track(cls.org, mode="focus" if i % 2 else "creation") for i in range(5)]
        for i in range(4):
            w.save(cls.org, cls.a, t[i], "2025-05-01T10:00:0%dZ" % i)
        w.save(cls.org, cls.b, t[4], "2025-05-01T11:00:00Z")
        w.save(cls.org, cls.b, t[0], "2025-05-01T11:00:01Z")
        cls.ca = w.collection(cls.org, cls.a)
        for i in (0, 1, 3, 4):        # t4 is in A's collection but A never saved it
            w.collect(cls.ca, t[i])
        cls.empty = w.collection(cls.org, cls.a)
        cls.cb = w.collection(cls.org, cls.b)
        for i in (0, 4):
            w.collect(cls.cb, t[i])
        cls.t2 = w.track(cls.org2)
        w.save(cls.org2, cls.a, cls.t2, "2025-05-01T12:00:00Z")
        cls.ca2 = w.collection(cls.org2, cls.a)
        w.collect(cls.ca2, cls.t2)

    def test_collection_lists_only_own_saves_in_it(self):
        body = self.listing(self.org, self.key_a, "collection_id=" + self.ca)
        self.assertEqual([i["id"] for i in body["items"]], [self.t[3], self.t[1], self.t[0]])
        self.assertEqual((body["limit"], body["offset"]), (50, 0))

    def test_trailing_slash_with_collection(self):
        body = self.listing(self.org, self.key_a, "collection_id=" + self.ca, slash=True)
        self.assertEqual([i["id"] for i in body["items"]], [self.t[3], self.t[1], self.t[0]])

    def test_empty_own_collection(self):
        body = self.listing(self.org, self.key_a, "collection_id=" + self.empty)
        self.assertEqual(body, {"items": [], "limit": 50, "offset": 0})

    def test_collection_with_mode_and_paging(self):
        self.assertEqual(self.ids(self.org, self.key_a, "collection_id=%s&mode=focus" % self.ca),
                         [self.t[3], self.t[1]])
        self.assertEqual(self.ids(self.org, self.key_a,
                                  "limit=1&offset=1&collection_id=" + self.ca), [self.t[1]])
        self.assertEqual(self.ids(self.org, self.key_a,
                                  "offset=3&collection_id=" + self.ca), [])

    def test_other_users_collection_is_404(self):
        self.assertEqual(self.ids(self.org, self.key_b, "collection_id=" + self.cb),
                         [self.t[0], self.t[4]])
        first = None
        for key, org, coll in ((self.key_a, self.org, self.cb),
                               (self.key_b, self.org, self.ca),
                               (self.key_b, self.org, self.empty),
                               (self.key_a, self.org, self.ca2),
                               (self.key_a, self.org2, self.ca),
                               (self.key_a, self.org, "mcoll_doesnotexist"),
                               (self.key_a, self.org, "mcoll_" + "Z" * 64),
                               (self.key_a, self.org, self.ca + "x")):
            with self.subTest(org=org, coll=coll):
                r = request("GET", tracks_path(org, "collection_id=" + coll),
                            {"X-API-Key": key})
                err = self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
                self.assertNotIn(coll, r.body.decode("utf-8"))
                if first is None:
                    first = err
                self.assert_same_error(first, err)

    def test_collection_in_its_own_org(self):
        self.assertEqual(self.ids(self.org2, self.key_a, "collection_id=" + self.ca2), [self.t2])
        self.assertEqual(self.ids(self.org2, self.key_a), [self.t2])


# =========================================================================== body

class BodyShapeTests(ApiTestCase):
    TITLE_ESC = 'He said "hi" \\ back\n\ttab </script> \u2028 end'

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("body")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.full = w.track(cls.org, engine="studio", mode="creation", title="Late Night Study",
                           duration="119.4", instrumental=True, licence="personal_only",
                           created_at="2026-06-28T10:31:00Z")
        cls.bare = w.track(cls.org, engine="lofi", mode="focus",
                           created_at="2026-01-02T03:04:05.987+02:00")
        cls.cafe = w.track(cls.org, engine="studio", mode="creation", title="Café ☕ 夜",
                           duration="180", licence="commercial_cleared",
                           created_at="2025-12-31T23:59:59.999-05:00")
        cls.esc = w.track(cls.org, engine="studio", mode="creation", title=cls.TITLE_ESC,
                          licence="commercial_enterprise", duration="0.5")
        cls.before = now_utc()
        cls.now = w.track(cls.org, engine="studio", mode="creation", licence="unclear")
        cls.after = now_utc()
        for i, t in enumerate((cls.full, cls.bare, cls.cafe, cls.esc, cls.now)):
            w.save(cls.org, cls.user, t, "2025-06-01T10:00:%02dZ" % (50 - i))
        cls.r = request("GET", tracks_path(cls.org), {"X-API-Key": cls.key})

    def items(self):
        self.assertEqual(self.r.status, 200, self.r.body[:300])
        return {i["id"]: i for i in self.r.json()["items"]}

    def test_top_level_keys_in_order(self):
        pairs = self.r.ordered()
        self.assertEqual([k for k, _ in pairs], ["items", "limit", "offset"])
        self.assertEqual(dict(pairs)["limit"], 50)
        self.assertEqual(dict(pairs)["offset"], 0)

    def test_item_keys_in_order(self):
        items = dict(self.r.ordered())["items"]
        self.assertEqual(len(items), 5)
        for item in items:
            self.assertEqual([k for k, _ in item], ITEM_KEYS)

    def test_order_is_newest_save_first(self):
        self.assertEqual([i["id"] for i in self.r.json()["items"]],
                         [self.full, self.bare, self.cafe, self.esc, self.now])

    def test_full_item(self):
        self.assertEqual(self.items()[self.full], {
            "id": self.full, "title": "Late Night Study", "engine": "studio",
            "mode": "creation", "measured_duration_seconds": 119.4, "instrumental": True,
            "licence_class": "personal_only", "created_at": "2026-06-28T10:31:00Z",
            "playback_url": None, "stem_urls": None})

    def test_unknowns_are_null_and_defaults(self):
        self.assertEqual(self.items()[self.bare], {
            "id": self.bare, "title": None, "engine": "lofi", "mode": "focus",
            "measured_duration_seconds": None, "instrumental": False,
            "licence_class": "unclear", "created_at": "2026-01-02T01:04:05Z",
            "playback_url": None, "stem_urls": None})

    def test_non_ascii_and_offsets(self):
        item = self.items()[self.cafe]
        self.assertEqual(item["title"], "Café ☕ 夜")
        self.assertEqual(item["created_at"], "2026-01-01T04:59:59Z")
        self.assertEqual(item["measured_duration_seconds"], 180)
        self.assertEqual(item["licence_class"], "commercial_cleared")

    def test_json_escaping_round_trips(self):
        item = self.items()[self.esc]
        self.assertEqual(item["title"], self.TITLE_ESC)
        self.assertEqual(item["measured_duration_seconds"], 0.5)
        self.assertEqual(item["licence_class"], "commercial_enterprise")

    def test_types(self):
        for item in self.items().values():
            self.assertRegex(item["id"], r"^mtrack_")
            self.assertIsInstance(item["instrumental"], bool)
            d = item["measured_duration_seconds"]
            self.assertTrue(d is None or (isinstance(d, (int, float))
                                          and not isinstance(d, bool)))
            self.assertIn(item["licence_class"], ("commercial_cleared", "commercial_enterprise",
                                                  "personal_only", "unclear"))
            self.assertRegex(item["created_at"], TIMESTAMP_RE)
            self.assertIsNone(item["playback_url"])
            self.assertIsNone(item["stem_urls"])

    def test_default_created_at_is_now(self):
        created = datetime.datetime.strptime(self.items()[self.now]["created_at"],
                                             "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertGreaterEqual(created, self.before.replace(microsecond=0)
                                - datetime.timedelta(seconds=5))
        self.assertLessEqual(created, self.after + datetime.timedelta(seconds=5))

    def test_body_is_utf8_json_without_bom(self):
        self.assertFalse(self.r.body.startswith(b"\xef\xbb\xbf"))
        self.r.body.decode("utf-8")
        self.assertTrue(self.r.body.lstrip().startswith(b"{"))


# =========================================================================== order and paging

class OrderingPagingTests(ApiTestCase):
    N = 55

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("page")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        tracks = [w.track(cls.org, title="t%02d" % i) for i in range(cls.N)]
        base = datetime.datetime(2025, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
        offsets = [0, 120, -330, 60]
        for i, t in enumerate(tracks[:-2]):
            group, pos = divmod(i, 5)
            # in each group of five, the first three share one instant (written with
            # different UTC offsets), the other two are a second apart
            at = base - datetime.timedelta(hours=group) + datetime.timedelta(
                seconds=max(0, pos - 2))
            w.save(cls.org, cls.user, t, rfc3339(at, offsets[i % 4]))
        # Two saves in the same second, a fraction apart: the later one must come first
        # even though its id sorts lower (fractional seconds are kept).
        lo, hi = sorted(tracks[-2:], key=lambda s: s.encode())
        w.save(cls.org, cls.user, hi, "2025-05-01T13:00:00.2Z")
        w.save(cls.org, cls.user, lo, "2025-05-01T13:00:00.7Z")
        cls.lo, cls.hi = lo, hi
        cls.expected = w.expected_order(cls.org, cls.user)

    def test_full_order(self):
        self.assertEqual(self.ids(self.org, self.key, "limit=100"), self.expected)

    def test_fractional_seconds_decide_order(self):
        got = self.ids(self.org, self.key, "limit=2")
        self.assertEqual(got, [self.lo, self.hi])

    def test_ties_broken_by_id_descending(self):
        got = self.ids(self.org, self.key, "limit=100")
        by_instant = {}
        for (_, _, t), at in self.w.saved_at.items():
            by_instant.setdefault(at, []).append(t)
        ties = [ts for ts in by_instant.values() if len(ts) > 1]
        self.assertEqual(len(ties), 11)
        for ts in ties:
            self.assertEqual([t for t in got if t in ts],
                             sorted(ts, key=lambda s: s.encode(), reverse=True))

    def test_default_limit_is_50(self):
        body = self.listing(self.org, self.key)
        self.assertEqual((body["limit"], body["offset"]), (50, 0))
        self.assertEqual([i["id"] for i in body["items"]], self.expected[:50])

    def test_page_walk_yields_every_save_once_in_order(self):
        for k in (1, 2, 3, 7, 10, 50, 100):
            with self.subTest(limit=k):
                got, off = [], 0
                while True:
                    body = self.listing(self.org, self.key, "limit=%d&offset=%d" % (k, off))
                    self.assertEqual((body["limit"], body["offset"]), (k, off))
                    page = [i["id"] for i in body["items"]]
                    self.assertEqual(len(page), max(0, min(k, self.N - off)))
                    if not page:
                        break
                    got += page
                    off += k
                self.assertEqual(got, self.expected)

    def test_offset_near_end(self):
        self.assertEqual(self.ids(self.org, self.key, "offset=53"), self.expected[53:])
        self.assertEqual(self.ids(self.org, self.key, "offset=55"), [])
        self.assertEqual(self.ids(self.org, self.key, "offset=1000&limit=100"), [])


# =========================================================================== headers and HEAD

class HeaderTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.w = World("hdr")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.nocap_user, cls.nocap_key = w.principal(cls.org, caps=())
        t = w.track(cls.org)
        w.save(cls.org, cls.user, t, "2025-03-01T10:00:00Z")
        cls.cases = [
            ("200", tracks_path(cls.org), {"X-API-Key": cls.key}, 200),
            ("200 slash", tracks_path(cls.org, "limit=1", slash=True), {"X-API-Key": cls.key},
             200),
            ("401 missing", tracks_path(cls.org), {}, 401),
            ("401 invalid", tracks_path(cls.org), {"X-API-Key": "mk_nope_nope"}, 401),
            ("403 org", tracks_path("org_nope"), {"X-API-Key": cls.key}, 403),
            ("403 cap", tracks_path(cls.org), {"X-API-Key": cls.nocap_key}, 403),
            ("404 path", "/v1/music/%s/other" % cls.org, {"X-API-Key": cls.key}, 404),
            ("404 collection", tracks_path(cls.org, "collection_id=mcoll_nope"),
             {"X-API-Key": cls.key}, 404),
            ("422", tracks_path(cls.org, "limit=0"), {"X-API-Key": cls.key}, 422),
        ]

    def test_headers_on_every_response(self):
        for name, path, headers, status in self.cases + [
                ("405", tracks_path(self.org), {"X-API-Key": self.key}, 405)]:
            with self.subTest(case=name):
                r = request("DELETE" if status == 405 else "GET", path, headers)
                self.assertEqual(r.status, status, r.body[:300])
                self.assert_common_headers(r)
                if status >= 400:
                    self.assertEqual(r.json()["error"]["trace_id"], r.headers["X-Request-ID"])

    def test_head_matches_get(self):
        for name, path, headers, status in self.cases:
            with self.subTest(case=name):
                g = request("GET", path, headers)
                h = request("HEAD", path, headers)
                self.assertEqual(g.status, status)
                self.assertEqual(h.status, g.status)
                self.assertEqual(h.body, b"")
                for hn in ("Content-Type", "Cache-Control"):
                    self.assertEqual(h.headers.get_all(hn), g.headers.get_all(hn), hn)
                self.assert_common_headers(h)
                self.assertNotEqual(h.headers["X-Request-ID"], g.headers["X-Request-ID"])
                if "Content-Length" in h.headers and "Content-Length" in g.headers:
                    self.assertEqual(h.headers["Content-Length"], g.headers["Content-Length"])

    def test_head_with_trailing_slash(self):
        r = request("HEAD", tracks_path(self.org, slash=True), {"X-API-Key": self.key})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_incoming_request_id_is_not_trusted(self):
        mine = "req_clientchosen0123456789abcdef"
        for name, path, headers, status in self.cases:
            with self.subTest(case=name):
                h = dict(headers)
                h["X-Request-ID"] = mine
                r = request("GET", path, h)
                self.assertEqual(r.status, status)
                rid = self.assert_common_headers(r)
                self.assertNotEqual(rid, mine)
                self.assertNotIn(mine.encode(), r.body)

    def test_request_ids_are_unique(self):
        ids = set()
        for i in range(12):
            name, path, headers, status = self.cases[i % len(self.cases)]
            ids.add(request("GET", path, headers).headers["X-Request-ID"])
        self.assertEqual(len(ids), 12)


# =========================================================================== isolation

class IsolationTests(ApiTestCase):
    """Two orgs x two users, each with saves and collections in both orgs."""

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("iso")
        o1, o2 = cls.o1, cls.o2 = w.org(), w.org()
        a, cls.key_a = w.principal(o1, o2)
        b, cls.key_b = w.principal(o1, o2)
        c, cls.key_c = w.principal(o1)
        cls.users = {"a": a, "b": b, "c": c}
        cls.keys = {"a": cls.key_a, "b": cls.key_b, "c": cls.key_c}
        p = [w.track(o1, engine="eng-p%d" % i, mode="m") for i in range(4)]
        qq = [w.track(o2, engine="eng-q%d" % i, mode="m") for i in range(3)]
        w.save(o1, a, p[0], "2025-07-01T10:00:01Z")
        w.save(o1, a, p[1], "2025-07-01T10:00:02Z")
        w.save(o1, a, p[2], "2025-07-01T10:00:03Z")
        w.save(o1, b, p[2], "2025-07-01T09:00:00Z")   # the same track, saved earlier by b
        w.save(o1, b, p[3], "2025-07-01T10:00:04Z")
        w.save(o2, a, qq[0], "2025-07-01T10:00:05Z")
        w.save(o2, b, qq[1], "2025-07-01T10:00:06Z")
        w.save(o2, b, qq[2], "2025-07-01T10:00:07Z")
        cls.colls = {}
        for owner, org, members in (("a", o1, [p[0], p[2], p[3]]), ("b", o1, [p[2], p[3], p[0]]),
                                    ("a", o2, [qq[0], qq[1]]), ("b", o2, [qq[1], qq[2], qq[0]])):
            cid = w.collection(org, cls.users[owner])
            for t in members:
                w.collect(cid, t)
            cls.colls[cid] = (owner, org, set(members))
        cls.p, cls.q = p, qq

    def test_matrix(self):
        for who in ("a", "b", "c"):
            user, key = self.users[who], self.keys[who]
            for org in (self.o1, self.o2):
                for coll in [None] + sorted(self.colls):
                    with self.subTest(user=who, org=org, coll=coll):
                        query = None if coll is None else "collection_id=" + coll
                        r = request("GET", tracks_path(org, query), {"X-API-Key": key})
                        if who == "c" and org == self.o2:
                            self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED",
                                              "authorization_error")
                            continue
                        if coll is not None:
                            owner, corg, members = self.colls[coll]
                            if owner != who or corg != org:
                                self.assert_error(r, 404, "RESOURCE_NOT_FOUND",
                                                  "not_found_error")
                                continue
                        else:
                            members = None
                        self.assertEqual(r.status, 200, r.body[:300])
                        got = [i["id"] for i in r.json()["items"]]
                        self.assertEqual(got, self.w.expected_order(org, user, members))

    def test_exact_expected_lists(self):
        p, qq = self.p, self.q
        self.assertEqual(self.ids(self.o1, self.key_a), [p[2], p[1], p[0]])
        self.assertEqual(self.ids(self.o1, self.key_b), [p[3], p[2]])
        self.assertEqual(self.ids(self.o2, self.key_a), [qq[0]])
        self.assertEqual(self.ids(self.o2, self.key_b), [qq[2], qq[1]])
        self.assertEqual(self.ids(self.o1, self.key_c), [])

    def test_filters_never_reach_other_users_or_orgs(self):
        for engine in ["eng-p3"] + ["eng-q%d" % i for i in range(3)]:
            with self.subTest(engine=engine):
                self.assertEqual(self.ids(self.o1, self.key_a, "engine=" + engine), [])
        self.assertEqual(self.ids(self.o2, self.key_a, "engine=eng-q1"), [])
        self.assertEqual(self.ids(self.o1, self.key_c, "mode=m"), [])

    def test_paging_never_reaches_other_rows(self):
        for off in range(0, 6):
            with self.subTest(offset=off):
                got = self.ids(self.o1, self.key_b, "limit=1&offset=%d" % off)
                self.assertEqual(got, [self.p[3], self.p[2]][off:off + 1])


# =========================================================================== TLS

class TlsTests(unittest.TestCase):
    def handshake(self, ctx, server_hostname="127.0.0.1"):
        e = load_env()
        with socket.create_connection((e["host"], int(e["port"])), timeout=15) as s:
            with ctx.wrap_socket(s, server_hostname=server_hostname) as t:
                return t.version(), t.selected_alpn_protocol()

    def test_http2_offered(self):
        ctx = ssl_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.assertEqual(self.handshake(ctx)[1], "h2")

    def test_http11_offered(self):
        ctx = ssl_context()
        ctx.set_alpn_protocols(["http/1.1"])
        self.assertIn(self.handshake(ctx)[1], ("http/1.1", None))

    def test_certificate_names(self):
        self.assertIn(self.handshake(ssl_context(), "localhost")[0], ("TLSv1.2", "TLSv1.3"))

    def test_tls_below_1_2_refused(self):
        ctx = ssl_context()
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError) as ex:
            self.skipTest("client cannot offer old TLS: %s" % ex)
        with self.assertRaises(ssl.SSLError) as refused:
            self.handshake(ctx)
        # The server's refusal (its protocol_version alert), not the client failing to offer old
        # TLS, which would prove nothing about nginx.
        self.assertEqual(refused.exception.reason, "TLSV1_ALERT_PROTOCOL_VERSION", refused.exception)


# =========================================================================== API log (runs last)

class ZzApiLogTests(ApiTestCase):
    """The API log has a line per request with its trace_id, and never a plaintext key."""

    @classmethod
    def setUpClass(cls):
        w = cls.w = World("log")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        revoked = w.key(cls.user)
        admin("key", "revoke", key_id(revoked))
        expired = w.key(cls.user, "2020-01-01T00:00:00Z")
        cls.rids = {}
        for name, headers, status in (
                ("ok", {"X-API-Key": cls.key}, 200),
                ("bearer", {"Authorization": "Bearer " + cls.key}, 200),
                ("revoked", {"X-API-Key": revoked}, 401),
                ("expired", {"X-API-Key": expired}, 401),
                ("wrong", {"X-API-Key": wrong_secret(cls.key)}, 401),
                ("missing", {}, 401),
                ("422", {"X-API-Key": cls.key, "X-Request-ID": "req_x"}, 422)):
            path = tracks_path(cls.org, "limit=0" if status == 422 else None)
            r = request("GET", path, headers)
            cls.rids[name] = (r.headers.get("X-Request-ID"), r.status, status)
        # A key sent only in query strings, by this class itself: the log test below never depends
        # on another class having run first.
        cls.query_key = w.key(cls.user)
        ISSUED_KEYS.remove(cls.query_key)
        for param in ("api_key", "key", "access_token"):
            r = request("GET", tracks_path(cls.org, "%s=%s" % (param, cls.query_key)))
            cls.rids["query " + param] = (r.headers.get("X-Request-ID"), r.status, 401)
        SENT_SECRETS.append(wrong_secret(cls.key))
        cls.log = cls.read_log_until([rid for rid, _, _ in cls.rids.values() if rid])

    @staticmethod
    def read_log_until(rids, timeout=10):
        path = load_env()["api_log"]
        deadline = time.time() + timeout
        while True:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if all(("trace_id=" + r) in text for r in rids) or time.time() > deadline:
                return text
            time.sleep(0.2)

    def test_responses_were_as_expected(self):
        for name, (rid, got, want) in self.rids.items():
            with self.subTest(case=name):
                self.assertEqual(got, want)
                self.assertRegex(rid or "", REQUEST_ID_RE)

    def test_one_line_per_request_with_trace_id_and_status(self):
        lines = self.log.splitlines()
        for name, (rid, got, _) in self.rids.items():
            with self.subTest(case=name):
                mine = [ln for ln in lines if ("trace_id=" + rid) in ln]
                self.assertEqual(len(mine), 1, "log lines for %s: %r" % (rid, mine))
                self.assertIn(str(got), mine[0])

    def test_no_plaintext_key_in_log(self):
        self.assertTrue(ISSUED_KEYS)
        for k in ISSUED_KEYS + SENT_SECRETS:
            # only strings that carry a real-looking secret (key ids may be logged)
            if not k.startswith("mk_") or len(key_secret(k)) < 12:
                continue
            with self.subTest(key=key_id(k)):
                self.assertNotIn(k, self.log)
                self.assertNotIn(key_secret(k), self.log)

    def test_no_key_from_query_string_in_log(self):
        for k in QUERY_KEYS + [self.query_key]:
            self.assertNotIn(k, self.log)
            self.assertNotIn(key_secret(k), self.log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
