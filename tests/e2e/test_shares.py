"""Share links: create (the creator only), open anonymously (with a playable signed URL), save
into another member's library, revoke (API and music-admin), expiry; the audit log line that never
holds the token; one indistinguishable 404 for every dead link, in content and in time; and the
resolve's own rate limit (last in this file).

Everything goes through nginx over TLS, as a client would, and every answer is checked against
docs/openapi.yaml. Each class builds its own uniquely named data (World).
"""

import concurrent.futures
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402
import openapi  # noqa: E402

DOC = openapi.load()
NO_STORE = "private, no-store"
AUDIO = {}
SHARE_KEYS = ["id", "token", "url", "target_type", "visibility", "expires_at", "created_at"]
RESOLVE_KEYS = ["kind", "available", "message", "share", "track", "collection", "tracks"]
TRACK_KEYS = ["id", "title", "engine", "mode", "measured_duration_seconds", "instrumental", "playback_url", "licence"]
LICENCE_KEYS = ["licence_class", "licence_version", "commercial_use", "requires_attribution"]
SAVE_KEYS = ["id", "track_id", "source", "share_link_id", "created_at"]
TOKEN_RE = r"^shr_[A-Za-z0-9]{43}$"
LINK_RE = r"^mslink_[A-Za-z0-9_-]{1,64}$"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MALFORMED = ["nope", "shr_short", "shr_" + "a" * 44, "SHR_" + "a" * 43, "shr_" + "a" * 300, "shr_%27%20OR%201%3D1",
             "shr_" + "a" * 42 + "%21", "mslink_abc"]
DAY = 86400


def setUpModule():
    d = tempfile.mkdtemp(prefix="music-api-share-audio-")
    AUDIO["master"] = os.path.join(d, "master.ogg")
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", AUDIO["master"], "synth", "2", "pluck", "E3"],
                   check=True, capture_output=True)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def unknown_token():
    rng = random.SystemRandom()
    return "shr_" + "".join(rng.choice(BASE62) for _ in range(43))


def share_path(org, track):
    return "/v1/music/%s/tracks/%s/share" % (org, track)


def shared_path(token, suffix=""):
    return "/v1/music/shared/%s%s" % (token, suffix)


def revoke_path(org, link):
    return "/v1/music/%s/shares/%s" % (org, link)


def track_path(org, track):
    return "/v1/music/%s/tracks/%s" % (org, track)


def local_path(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def db(sql):
    return m.psql(m.load_env()["db_owner"], sql)[1].strip()


class ShareTestCase(m.ApiTestCase):
    def call(self, method, path, key=None, body=None, content_type="application/json", headers=None, retry=True):
        h = dict(m.key_headers(key))
        if body is not None and content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        data = body if body is None or isinstance(body, bytes) else (
            body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8"))
        r = m.request(method, path, h, body=data, retry_rate_limited=retry)
        openapi.check_response(DOC, method, path.split("?")[0], r.status, r.headers.raw, r.body)
        return r

    def share(self, org, track, key, body=None, content_type="application/json"):
        r = self.call("POST", share_path(org, track), key, body, content_type)
        self.assertEqual(r.status, 201, r.body[:500])
        self.assert_common_headers(r, NO_STORE)
        self.assertEqual([k for k, _ in r.ordered()], SHARE_KEYS)
        s = r.json()
        self.assertRegex(s["id"], LINK_RE)
        self.assertRegex(s["token"], TOKEN_RE)
        self.assertEqual(s["url"], m.load_env()["base_url"] + "/v1/music/shared/" + s["token"])
        self.assertEqual(s["target_type"], "track")
        self.assertRegex(s["created_at"], m.TIMESTAMP_RE)
        self.assertLess(abs((m.utc(s["created_at"]) - m.now_utc()).total_seconds()), 120)
        if s["expires_at"] is not None:
            self.assertRegex(s["expires_at"], m.TIMESTAMP_RE)
        return s

    def resolve(self, token):
        return self.call("GET", shared_path(token))

    def resolved(self, token):
        r = self.resolve(token)
        self.assertEqual(r.status, 200, r.body[:500])
        self.assert_common_headers(r, NO_STORE)
        ordered = r.ordered()
        self.assertEqual([k for k, _ in ordered], RESOLVE_KEYS)
        body = r.json()
        if body["available"]:
            self.assertEqual([k for k, _ in dict(ordered)["share"]], ["target_type", "visibility", "expires_at"])
            track = dict(dict(ordered)["track"])
            self.assertEqual([k for k, _ in dict(ordered)["track"]], TRACK_KEYS)
            self.assertEqual([k for k, _ in track["licence"]], LICENCE_KEYS)
        return body

    def save_shared(self, token, key):
        return self.call("POST", shared_path(token, "/save"), key)

    def revoke(self, org, link, key):
        return self.call("DELETE", revoke_path(org, link), key)

    def assert_not_found(self, r):
        return self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")

    def assert_422(self, r, field):
        return self.assert_error(r, 422, "VALIDATION_ERROR", "validation_error", field)

    def dead(self):
        """The 404 of a link that never existed: every dead link must look exactly like it."""
        return self.assert_not_found(self.resolve(unknown_token()))

    def expire(self, link):
        m.psql(m.load_env()["db_owner"], "UPDATE share_links SET expires_at = now() - interval '1 second' WHERE id = %s"
               % m.sql_literal(link))


class ShareCreateTests(ShareTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shc")
        cls.org, cls.org_b = w.org(), w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        cls.bob, cls.bob_key = w.principal(cls.org)
        cls.carol, cls.carol_key = w.principal(cls.org_b)
        cls.track = w.track(cls.org, creator=cls.alice, title="Alice's to share")
        w.save(cls.org, cls.bob, cls.track)
        cls.orgs_track = w.track(cls.org)
        w.save(cls.org, cls.alice, cls.orgs_track)
        cls.foreign = w.track(cls.org_b, creator=cls.carol)

    def test_defaults_with_no_body_an_empty_body_or_an_empty_object(self):
        for body, ctype in ((None, None), ("", "application/json"), ({}, "application/json"),
                            ({"expires_in_days": None}, "application/json")):
            with self.subTest(body=body):
                s = self.share(self.org, self.track, self.alice_key, body, ctype)
                self.assertEqual((s["visibility"], s["expires_at"]), ("link_only", None))

    def test_visibility_and_expiry_clamped_to_90_days(self):
        for body, visibility, days in (({"visibility": "public", "expires_in_days": 7}, "public", 7),
                                       ({"visibility": "link_only", "expires_in_days": 1}, "link_only", 1),
                                       ({"expires_in_days": 90}, "link_only", 90),
                                       ({"expires_in_days": 91}, "link_only", 90),
                                       ({"visibility": "public", "expires_in_days": 100000}, "public", 90)):
            with self.subTest(body=body):
                s = self.share(self.org, self.track, self.alice_key, body)
                self.assertEqual(s["visibility"], visibility)
                lifetime = (m.utc(s["expires_at"]) - m.utc(s["created_at"])).total_seconds()
                self.assertLessEqual(abs(lifetime - days * DAY), 2, s)

    def test_bad_bodies(self):
        cases = [({"visibility": v}, "visibility") for v in ("private", "", "PUBLIC", 5, ["public"], True)]
        cases += [({"expires_in_days": v}, "expires_in_days") for v in (0, -1, -90, 1.5, "7", True, [7], {"d": 7})]
        cases += [("{", "body"), ("[]", "body"), ('"public"', "body"),
                  ('{"visibility": "public", "visibility": "public"}', "visibility")]
        for body, field in cases:
            with self.subTest(body=body):
                self.assert_422(self.call("POST", share_path(self.org, self.track), self.alice_key, body), field)

    def test_tokens_are_unique_and_only_their_hash_is_stored(self):
        a = self.share(self.org, self.track, self.alice_key)
        b = self.share(self.org, self.track, self.alice_key)
        self.assertNotEqual(a["id"], b["id"])
        self.assertNotEqual(a["token"], b["token"])
        for s in (a, b):
            raw = s["token"][len("shr_"):]
            self.assertEqual(db("SELECT count(*) FROM share_links WHERE id = %s" % m.sql_literal(s["id"])), "1")
            self.assertEqual(db("SELECT count(*) FROM share_links WHERE token_hash LIKE '%%' || %s || '%%'"
                                % m.sql_literal(raw)), "0")
            # No column of any link holds the token or its secret part, in any text form.
            self.assertEqual(db("SELECT count(*) FROM share_links s WHERE strpos(CAST(s AS text), %s) > 0"
                                % m.sql_literal(raw)), "0")

    def test_only_the_creator_may_share(self):
        deleted = self.world.track(self.org, creator=self.alice)
        self.assertEqual(self.call("DELETE", track_path(self.org, deleted), self.alice_key).status, 200)
        cases = [(self.bob_key, self.track),            # can see it (saved), not its creator
                 (self.alice_key, self.orgs_track),     # the org's track, saved by Alice
                 (self.alice_key, self.foreign),        # another org's track
                 (self.alice_key, deleted),
                 (self.alice_key, "mtrack_doesnotexist000"),
                 (self.alice_key, "not-a-track")]
        errors = [self.assert_not_found(self.call("POST", share_path(self.org, t), k, {})) for k, t in cases]
        for e in errors[1:]:
            self.assert_same_error(errors[0], e)
        self.assert_error(self.call("POST", share_path(self.org, self.track), None), 401, "AUTHENTICATION_REQUIRED",
                          "authentication_error")
        self.assert_error(self.call("POST", share_path(self.org, self.track), self.carol_key), 403,
                          "ORGANIZATION_ACCESS_DENIED", "authorization_error")
        nocap = self.world.user()
        self.world.member(self.org, nocap, caps=())
        self.assert_error(self.call("POST", share_path(self.org, self.track), self.world.key(nocap)), 403,
                          "INSUFFICIENT_PERMISSIONS", "authorization_error")


class ResolveTests(ShareTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shr")
        cls.org = w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        cls.bob, cls.bob_key = w.principal(cls.org)
        cls.track = w.track(cls.org, creator=cls.alice, title="Played by anyone", duration="2",
                            licence="commercial_cleared", instrumental=True, audio=AUDIO["master"])
        cls.silent = w.track(cls.org, creator=cls.alice, title="No audio")

    def test_an_anonymous_resolve_shows_the_track_and_plays_it(self):
        for visibility, days in (("link_only", None), ("public", 3)):
            with self.subTest(visibility=visibility):
                s = self.share(self.org, self.track, self.alice_key, {"visibility": visibility, "expires_in_days": days})
                body = self.resolved(s["token"])
                self.assertEqual((body["kind"], body["available"], body["message"], body["collection"], body["tracks"]),
                                 ("track", True, None, None, None))
                self.assertEqual(body["share"], {"target_type": "track", "visibility": visibility,
                                                 "expires_at": s["expires_at"]})
                own = self.call("GET", track_path(self.org, self.track), self.alice_key).json()
                t = body["track"]
                for f in ("id", "title", "engine", "mode", "measured_duration_seconds", "instrumental"):
                    self.assertEqual(t[f], own[f], f)
                self.assertEqual(t["licence"]["licence_class"], "commercial_cleared")
                self.assertIsInstance(t["licence"]["licence_version"], (str, type(None)))
                self.assertIsInstance(t["licence"]["commercial_use"], bool)
                self.assertIsInstance(t["licence"]["requires_attribution"], bool)
                self.assertTrue(t["playback_url"].startswith("%s/v1/media/%s/" % (m.load_env()["base_url"], self.track)),
                                t["playback_url"])
                r = m.request("GET", local_path(t["playback_url"]), {})
                openapi.check_response(DOC, "GET", local_path(t["playback_url"]).split("?")[0], r.status,
                                       r.headers.raw, r.body)
                self.assertEqual(r.status, 200, r.body[:200])
                self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                                 hashlib.sha256(file_bytes(AUDIO["master"])).hexdigest())
                # The url handed out at creation opens the same share.
                self.assertEqual(self.resolved(local_path(s["url"])[len("/v1/music/shared/"):])["track"]["id"],
                                 self.track)

    def test_a_track_without_audio_has_no_playback_url(self):
        s = self.share(self.org, self.silent, self.alice_key)
        body = self.resolved(s["token"])
        self.assertEqual(body["track"]["id"], self.silent)
        self.assertIsNone(body["track"]["playback_url"])

    def test_every_dead_link_is_one_identical_404(self):
        revoked = self.share(self.org, self.track, self.alice_key)
        self.assertEqual(self.revoke(self.org, revoked["id"], self.alice_key).status, 200)
        expired = self.share(self.org, self.track, self.alice_key, {"expires_in_days": 1})
        self.resolved(expired["token"])
        self.expire(expired["id"])
        first = self.dead()
        for token in MALFORMED + [unknown_token(), revoked["token"], expired["token"],
                                  revoked["token"][:-1] + ("A" if revoked["token"][-1] != "A" else "B")]:
            with self.subTest(token=token[:50]):
                self.assert_same_error(first, self.assert_not_found(self.resolve(token)))

    def test_a_deleted_track_is_unavailable_with_a_message(self):
        track = self.world.track(self.org, creator=self.alice, title="Soon gone", audio=AUDIO["master"])
        s = self.share(self.org, track, self.alice_key)
        self.assertEqual(self.call("DELETE", track_path(self.org, track), self.alice_key).status, 200)
        r = self.resolve(s["token"])
        body = self.resolved(s["token"])
        self.assertIsInstance(body["message"], str)
        self.assertIn(" ", body["message"].strip(), "a sentence")
        self.assertEqual(body, {"kind": "track", "available": False, "message": body["message"], "share": None,
                                "track": None, "collection": None, "tracks": None})
        self.assertNotIn(b"Soon gone", r.body)
        self.assertNotIn(track.encode(), r.body)

    def test_each_resolve_logs_one_line_and_never_the_token(self):
        log = m.load_env()["api_log"]
        start = os.path.getsize(log)
        live = self.share(self.org, self.track, self.alice_key)
        gone_track = self.world.track(self.org, creator=self.alice)
        gone = self.share(self.org, gone_track, self.alice_key)
        self.assertEqual(self.call("DELETE", track_path(self.org, gone_track), self.alice_key).status, 200)
        unknown = unknown_token()
        for _ in range(3):
            self.resolved(live["token"])
        self.resolved(gone["token"])
        for token in (unknown, unknown, "nope"):
            self.assert_not_found(self.resolve(token))

        def lines():
            with open(log, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
            return text, [ln for ln in text.splitlines() if re.search(r"\bevent=share_resolved\b", ln)]

        def link_ids(found):
            return [mm.group(1) if (mm := re.search(r"\blink_id=(\S+)", ln)) else None for ln in found]

        deadline = time.time() + 10
        while True:
            text, found = lines()
            ids = link_ids(found)
            if (ids.count(live["id"]) >= 3 and ids.count(gone["id"]) >= 1 and ids.count("-") >= 3) \
                    or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(ids.count(live["id"]), 3, found)
        self.assertEqual(ids.count(gone["id"]), 1, found)
        self.assertGreaterEqual(ids.count("-"), 3, found)
        for ln in found:
            if re.search(r"\blink_id=(%s|%s|-)(\s|$)" % (re.escape(live["id"]), re.escape(gone["id"])), ln):
                self.assertRegex(ln, r"\bclient=%s(\s|$)" % re.escape(m.load_env()["host"]))
        with open(log, "rb") as f:
            whole = f.read().decode("utf-8", "replace")
        for token in (live["token"], gone["token"], unknown):
            self.assertNotIn(token[len("shr_"):], whole)


class SaveSharedTests(ShareTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shs")
        cls.org, cls.org_b = w.org(), w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        cls.bob, cls.bob_key = w.principal(cls.org)
        cls.carol, cls.carol_key = w.principal(cls.org_b)

    def test_save_adds_one_shared_entry(self):
        track = self.world.track(self.org, creator=self.alice, title="Shared with Bob")
        s = self.share(self.org, track, self.alice_key)
        self.assert_not_found(self.call("GET", track_path(self.org, track), self.bob_key))
        r = self.save_shared(s["token"], self.bob_key)
        self.assertEqual(r.status, 201, r.body[:500])
        self.assert_common_headers(r, NO_STORE)
        self.assertEqual([k for k, _ in r.ordered()], SAVE_KEYS)
        entry = r.json()
        self.assertRegex(entry["id"], r"^mlib_[A-Za-z0-9_-]+$")
        self.assertEqual((entry["track_id"], entry["source"], entry["share_link_id"]), (track, "shared", s["id"]))
        self.assertRegex(entry["created_at"], m.TIMESTAMP_RE)
        time.sleep(1.1)
        again = self.save_shared(s["token"], self.bob_key)
        self.assertIn(again.status, (200, 201), again.body[:500])
        self.assertEqual(again.json(), entry, "saving again answers the same entry")
        self.assertEqual(self.ids(self.org, self.bob_key), [track])
        self.assertEqual(self.call("GET", track_path(self.org, track), self.bob_key).status, 200)
        self.assertEqual(db("SELECT source || ' ' || count(*) OVER () FROM library_saves WHERE user_id = %s AND "
                            "track_id = %s" % (m.sql_literal(self.bob), m.sql_literal(track))), "shared 1")
        self.assertEqual(self.ids(self.org, self.alice_key), [], "the creator's library is unchanged")

    def test_a_key_is_required(self):
        s = self.share(self.org, self.world.track(self.org, creator=self.alice), self.alice_key)
        self.assert_error(self.save_shared(s["token"], None), 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        self.assert_error(self.save_shared(s["token"], "mk_aaaaaaaaaaaaaaaa_" + "b" * 32), 401, "INVALID_API_KEY",
                          "authentication_error")

    def test_dead_links_and_non_members_get_the_same_404(self):
        def shared():
            return self.share(self.org, self.world.track(self.org, creator=self.alice), self.alice_key)
        revoked, expired, removed, live = shared(), shared(), shared(), shared()
        self.assertEqual(self.revoke(self.org, revoked["id"], self.alice_key).status, 200)
        self.expire(expired["id"])
        removed_track = self.resolved(removed["token"])["track"]["id"]
        self.assertEqual(self.call("DELETE", track_path(self.org, removed_track), self.alice_key).status, 200)
        first = self.assert_not_found(self.save_shared(unknown_token(), self.bob_key))
        cases = [(t, self.bob_key) for t in (revoked["token"], expired["token"], removed["token"], "nope")]
        cases.append((live["token"], self.carol_key))  # not a member of the track's organization
        for token, key in cases:
            with self.subTest(token=token[:12]):
                self.assert_same_error(first, self.assert_not_found(self.save_shared(token, key)))
        self.assertEqual(self.ids(self.org_b, self.carol_key), [])
        self.assertEqual(db("SELECT count(*) FROM library_saves WHERE user_id = %s" % m.sql_literal(self.carol)), "0")


class RevokeTests(ShareTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shv")
        cls.org, cls.org_b = w.org(), w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        cls.bob, cls.bob_key = w.principal(cls.org)
        cls.carol, cls.carol_key = w.principal(cls.org_b)
        cls.track = w.track(cls.org, creator=cls.alice)
        w.save(cls.org, cls.bob, cls.track)

    def test_the_creator_revokes_idempotently(self):
        s = self.share(self.org, self.track, self.alice_key)
        self.resolved(s["token"])
        for _ in range(2):
            r = self.revoke(self.org, s["id"], self.alice_key)
            self.assertEqual(r.status, 200, r.body[:500])
            self.assert_common_headers(r, NO_STORE)
            self.assertEqual([list(p) for p in r.ordered()], [["success", True], ["id", s["id"]],
                                                              ["detail", "Share link revoked."]])
        self.assert_same_error(self.dead(), self.assert_not_found(self.resolve(s["token"])))
        other = self.share(self.org, self.track, self.alice_key)
        self.resolved(other["token"])  # revoking one link leaves the track's other links alone

    def test_nobody_else_can_revoke(self):
        s = self.share(self.org, self.track, self.alice_key)
        first = self.assert_not_found(self.revoke(self.org, s["id"], self.bob_key))
        for org, link, key in ((self.org_b, s["id"], self.carol_key), (self.org, "mslink_doesnotexist000", self.alice_key),
                               (self.org, "not-a-link", self.alice_key), (self.org, "mslink_%27%20OR%201%3D1", self.bob_key)):
            self.assert_same_error(first, self.assert_not_found(self.revoke(org, link, key)))
        self.assert_error(self.revoke(self.org, s["id"], self.carol_key), 403, "ORGANIZATION_ACCESS_DENIED",
                          "authorization_error")
        self.assert_error(self.revoke(self.org_b, s["id"], self.alice_key), 403, "ORGANIZATION_ACCESS_DENIED",
                          "authorization_error")
        self.assert_error(self.revoke(self.org, s["id"], None), 401, "AUTHENTICATION_REQUIRED", "authentication_error")
        self.assertTrue(self.resolved(s["token"])["available"], "still open")

    def test_music_admin_revokes(self):
        s = self.share(self.org, self.track, self.alice_key)
        self.resolved(s["token"])
        m.admin("share", "revoke", s["id"])
        self.assert_same_error(self.dead(), self.assert_not_found(self.resolve(s["token"])))
        self.assert_not_found(self.save_shared(s["token"], self.bob_key))

    def test_an_expired_link_is_dead(self):
        s = self.share(self.org, self.track, self.alice_key, {"expires_in_days": 1})
        self.resolved(s["token"])
        self.expire(s["id"])
        self.assert_same_error(self.dead(), self.assert_not_found(self.resolve(s["token"])))


class WalkTests(ShareTestCase):
    def test_collect_reorder_share_resolve_save_and_list(self):
        w = m.World("shw")
        org = w.org()
        alice, alice_key = w.principal(org)
        bob, bob_key = w.principal(org)
        t1 = w.track(org, creator=alice, title="First")
        t2 = w.track(org, creator=alice, title="Second", audio=AUDIO["master"])
        r = self.call("POST", "/v1/music/%s/collections" % org, alice_key, {"name": "Walk"})
        self.assertEqual(r.status, 201, r.body[:300])
        coll = r.json()["id"]
        for t in (t1, t2):
            self.assertEqual(self.call("POST", "/v1/music/%s/collections/%s/tracks" % (org, coll), alice_key,
                                       {"track_id": t}).status, 200)
        r = self.call("PATCH", "/v1/music/%s/collections/%s/order" % (org, coll), alice_key, {"ordered_track_ids": [t2, t1]})
        self.assertEqual(r.status, 200, r.body[:300])
        items = self.call("GET", "/v1/music/%s/collections/%s/tracks" % (org, coll), alice_key).json()["items"]
        self.assertEqual([(i["track_id"], i["position"]) for i in items], [(t2, 0), (t1, 1)])
        s = self.share(org, t2, alice_key, {"visibility": "public"})
        body = self.resolved(s["token"])
        self.assertEqual((body["track"]["id"], body["track"]["title"]), (t2, "Second"))
        audio = m.request("GET", local_path(body["track"]["playback_url"]), {})
        openapi.check_response(DOC, "GET", urllib.parse.urlsplit(body["track"]["playback_url"]).path, audio.status,
                               audio.headers.raw, audio.body)
        self.assertEqual(audio.status, 200, audio.body[:200])
        self.assertEqual(audio.body, file_bytes(AUDIO["master"]))
        r = self.save_shared(s["token"], bob_key)
        self.assertEqual(r.status, 201, r.body[:300])
        self.assertEqual(self.ids(org, bob_key), [t2])
        self.assertEqual(self.call("GET", track_path(org, t2), bob_key).status, 200)
        self.assert_not_found(self.call("GET", track_path(org, t1), bob_key))
        self.assertEqual(self.call("GET", "/v1/music/%s/collections" % org, bob_key).json()["items"], [])


class AccessMatrixTests(ShareTestCase):
    """Two orgs × two users, both in both orgs; each (org, user) shares its own track. Every other
    caller gets the same 404 for sharing that track or revoking that link, and sees nothing of it."""

    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shm")
        cls.orgs = [w.org(), w.org()]
        users = [w.principal(*cls.orgs) for _ in range(2)]
        cls.keys, cls.tracks = {}, {}
        for o in cls.orgs:
            for i, (u, k) in enumerate(users):
                cls.keys[(o, i)] = k
                cls.tracks[(o, i)] = w.track(o, creator=u, title=m.unique("secret"))

    def test_every_other_caller_gets_one_identical_404(self):
        links = {owner: self.share(owner[0], t, self.keys[owner]) for owner, t in self.tracks.items()}
        first = {}  # per route: the share route's 404 names the track, the revoke's the link
        for owner, t in self.tracks.items():
            s = links[owner]
            secrets = [s["id"], s["token"], t, self.world.track_info[t]["title"]]
            for caller in self.keys:
                if caller == owner:
                    continue
                for route, r in (("share", self.call("POST", share_path(caller[0], t), self.keys[caller])),
                                 ("revoke", self.revoke(caller[0], s["id"], self.keys[caller]))):
                    err = self.assert_not_found(r)
                    first.setdefault(route, err)
                    self.assert_same_error(first[route], err)
                    for secret in secrets:
                        self.assertNotIn(secret.encode(), r.body)
        for owner, s in links.items():
            body = self.resolved(s["token"])
            self.assertEqual(body["track"]["id"], self.tracks[owner], "nobody else's revoke took effect")
            for other, t in self.tracks.items():
                if other != owner:
                    self.assertNotIn(t, json.dumps(body))
        for owner, s in links.items():
            self.assertEqual(self.revoke(owner[0], s["id"], self.keys[owner]).status, 200)
            self.assert_not_found(self.resolve(s["token"]))


class ResolveLimitsTests(ShareTestCase):
    """Last in this file (see load_tests): the burst drains the resolve's own rate-limit bucket."""

    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("shl")
        cls.org = w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        track = w.track(cls.org, creator=cls.alice)
        h = {"X-API-Key": cls.alice_key}
        r = m.request("POST", share_path(cls.org, track), h)
        assert r.status == 201, r.body
        cls.revoked = json.loads(r.body)
        r = m.request("DELETE", revoke_path(cls.org, cls.revoked["id"]), h)
        assert r.status == 200, r.body

    def timed(self, token):
        """One resolve, timed; a 429 is waited out and not counted."""
        while True:
            start = time.perf_counter()
            r = m.request("GET", shared_path(token), {}, retry_rate_limited=False)
            elapsed = time.perf_counter() - start
            if r.status != 429:
                return r, elapsed
            time.sleep(min(max(float(r.headers.get("Retry-After", "1")), 0.1), 5.0))

    def test_1_unknown_and_revoked_links_take_the_same_time(self):
        unknown = unknown_token()
        for _ in range(10):  # warm up caches and plans
            self.timed(unknown)
            self.timed(self.revoked["token"])
        times = {"unknown": [], "revoked": []}
        answers = []
        for i in range(200):
            order = (("unknown", unknown), ("revoked", self.revoked["token"]))
            for name, token in (order if i % 2 == 0 else order[::-1]):
                r, elapsed = self.timed(token)
                times[name].append(elapsed)
                answers.append(r)
        first = self.assert_not_found(answers[0])
        for r in answers[1:]:
            openapi.check_response(DOC, "GET", "/v1/music/shared/x", r.status, r.headers.raw, r.body)
            self.assertEqual(r.status, 404, r.body[:200])
        self.assert_same_error(first, self.assert_not_found(answers[-1]))
        unknown_ms = statistics.median(times["unknown"]) * 1000
        revoked_ms = statistics.median(times["revoked"]) * 1000
        self.assertLess(abs(unknown_ms - revoked_ms), 5.0, "median unknown %.2f ms, revoked %.2f ms"
                        % (unknown_ms, revoked_ms))

    def test_2_a_burst_from_one_address_is_rate_limited(self):
        path = shared_path(unknown_token())
        try:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: self.call("GET", path, retry=False), range(60)))
            # The authenticated API from the same address is not in the resolve's zone.
            after = self.call("GET", m.tracks_path(self.org), self.alice_key, retry=False)
        finally:
            time.sleep(3)
        statuses = [r.status for r in answers]
        self.assertEqual(set(statuses) - {404, 429}, set(), statuses)
        limited = [r for r in answers if r.status == 429]
        self.assertTrue(limited, "60 quick resolves from one address: some must be refused")
        for r in limited:
            self.assert_error(r, 429, "RATE_LIMIT_EXCEEDED", "rate_limit_error")
            self.assertIn("Retry-After", r.headers)
        self.assertEqual(after.status, 200, after.body[:200])


def load_tests(loader, tests, pattern):
    """Run the classes in the usual order, except ResolveLimitsTests last."""
    groups = list(tests)
    return unittest.TestSuite(sorted(groups, key=lambda g: any(isinstance(t, ResolveLimitsTests) for t in g)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
