"""Tracks you can play: get (with signed URLs), save, unsave, delete, and the media nginx serves.

Everything goes through nginx over TLS, as a client would. Audio is real (made with sox) and
imported with `music-admin track create … --audio … --stem …`; the signed URLs are checked
byte for byte against the files' SHA-256, and every way of changing a URL is tried.
"""

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
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
TRACK_CACHE_CONTROL = "private, no-store"
AUDIO = {}


def setUpModule():
    # Short real audio: an Ogg Vorbis master and a WAV stem.
    d = tempfile.mkdtemp(prefix="music-api-audio-")
    AUDIO["dir"] = d
    AUDIO["master"] = os.path.join(d, "master.ogg")
    AUDIO["stem"] = os.path.join(d, "drums.wav")
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", AUDIO["master"], "synth", "2", "pluck", "C3"],
                   check=True, capture_output=True)
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", AUDIO["stem"], "synth", "1", "sine", "220"],
                   check=True, capture_output=True)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def media_keys():
    with open(m.load_env()["media_keys_file"], encoding="utf-8") as f:
        return json.load(f)


def sign(path, exp, kid, secret):
    """What the workers sign (core/media_keys.hpp): PATH "\\n" EXP "\\n" KID, HMAC-SHA-256."""
    mac = hmac.new(secret.encode(), ("%s\n%s\n%s" % (path, exp, kid)).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def local_path(url):
    """An absolute playback URL as the path+query to send to the test's nginx."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def url_parts(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


def track_path(org, track, suffix=""):
    return "/v1/music/%s/tracks/%s%s" % (org, track, suffix)


class TrackTestCase(m.ApiTestCase):
    def call(self, method, path, key=None, headers=None):
        r = self.get(path, key, headers, method=method)
        openapi.check_response(DOC, method, path.split("?")[0], r.status, r.headers.raw, r.body)
        return r

    def media(self, path, headers=None, method="GET"):
        r = m.request(method, path, headers or {})
        openapi.check_response(DOC, method, path.split("?")[0], r.status, r.headers.raw, r.body)
        return r

    def fetch_track(self, org, track, key):
        r = self.call("GET", track_path(org, track), key)
        self.assertEqual(r.status, 200, r.body[:400])
        self.assert_common_headers(r, TRACK_CACHE_CONTROL)
        self.assertNotIn("ETag", r.headers, "a track's answer is never revalidated: its URLs are fresh each time")
        return r.json()

    def assert_not_found(self, r):
        return self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")


class AccessMatrixTests(TrackTestCase):
    """Two orgs × two users × own / saved / organization's / foreign / deleted tracks."""

    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("trk")
        cls.org, cls.org_b = w.org(), w.org()
        cls.alice, cls.alice_key = w.principal(cls.org)
        cls.bob, cls.bob_key = w.principal(cls.org)
        cls.carol, cls.carol_key = w.principal(cls.org_b)
        cls.own = w.track(cls.org, title="Alice's", creator=cls.alice, audio=AUDIO["master"],
                          stems={"drums": AUDIO["stem"]})
        cls.bobs_saved = w.track(cls.org, title="Bob's, saved by Alice", creator=cls.bob)
        w.save(cls.org, cls.alice, cls.bobs_saved)
        cls.orgs_saved = w.track(cls.org, title="The org's, saved by Alice")
        w.save(cls.org, cls.alice, cls.orgs_saved)
        cls.bobs_unsaved = w.track(cls.org, title="Bob's, not saved by Alice", creator=cls.bob)
        cls.foreign = w.track(cls.org_b, title="Carol's", creator=cls.carol)
        w.save(cls.org_b, cls.carol, cls.foreign)

    def test_get_own_saved_and_the_orgs_saved(self):
        for track in (self.own, self.bobs_saved, self.orgs_saved):
            body = self.fetch_track(self.org, track, self.alice_key)
            self.assertEqual(list(body), m.ITEM_KEYS)
            self.assertEqual(body["id"], track)
            self.assertEqual(body["title"], self.world.track_info[track]["title"])
        own = self.fetch_track(self.org, self.own, self.alice_key)
        self.assertIsInstance(own["playback_url"], str)
        self.assertEqual(sorted(own["stem_urls"]), ["drums"])
        saved = self.fetch_track(self.org, self.bobs_saved, self.alice_key)
        self.assertIsNone(saved["playback_url"], "no audio stored: null")
        self.assertIsNone(saved["stem_urls"])

    def test_everything_else_is_one_identical_404(self):
        missing = "mtrack_doesnotexist0000000000"
        cases = [
            (self.org, self.bobs_unsaved),  # same org, neither created nor saved
            (self.org, self.foreign),       # another org's track under this org
            (self.org, missing),
            (self.org, "not-a-track-id"),
            (self.org, "mtrack_%27%20OR%201%3D1"),
        ]
        errors = []
        for org, track in cases:
            for method, suffix in (("GET", ""), ("POST", "/save"), ("DELETE", "")):
                r = self.call(method, track_path(org, track, suffix), self.alice_key)
                errors.append(self.assert_not_found(r))
        for e in errors[1:]:
            self.assert_same_error(errors[0], e)
        # The org the caller is not in: the org check comes first, for every route.
        for method, suffix in (("GET", ""), ("POST", "/save"), ("DELETE", "/save"), ("DELETE", "")):
            r = self.call(method, track_path(self.org_b, self.foreign, suffix), self.alice_key)
            self.assert_error(r, 403, "ORGANIZATION_ACCESS_DENIED", "authorization_error")

    def test_other_org_member_sees_only_their_own(self):
        self.fetch_track(self.org_b, self.foreign, self.carol_key)
        for track in (self.own, self.bobs_saved, self.orgs_saved):
            self.assert_not_found(self.call("GET", track_path(self.org_b, track), self.carol_key))

    def test_authentication_and_capability_come_first(self):
        user = self.world.user()
        self.world.member(self.org, user, caps=())
        key = self.world.key(user)
        for method, suffix in (("GET", ""), ("POST", "/save"), ("DELETE", "/save"), ("DELETE", "")):
            path = track_path(self.org, self.own, suffix)
            self.assert_error(self.call(method, path, None), 401, "AUTHENTICATION_REQUIRED", "authentication_error")
            self.assert_error(self.call(method, path, "mk_aaaaaaaaaaaaaaaa_" + "b" * 32), 401, "INVALID_API_KEY",
                              "authentication_error")
            self.assert_error(self.call(method, path, key), 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")

    def test_every_route_answers_405_with_its_own_allow(self):
        routes = [(track_path(self.org, self.own), "GET, HEAD, DELETE", ("POST", "PUT", "PATCH")),
                  (track_path(self.org, self.own, "/save"), "POST, DELETE", ("GET", "PUT", "PATCH", "HEAD"))]
        for path, allow, methods in routes:
            for method in methods:
                r = self.call(method, path, self.alice_key)
                self.assertEqual(r.status, 405, (method, path))
                self.assertEqual(r.headers.get_all("Allow"), [allow], (method, path))
                if method != "HEAD":
                    self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")

    def test_a_request_body_over_the_limit_is_refused_by_nginx(self):
        r = m.request("POST", track_path(self.org, self.own, "/save"),
                      {"X-API-Key": self.alice_key, "Content-Type": "application/json"}, body=b"x" * 4096)
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["error"]["code"], "PAYLOAD_TOO_LARGE")


class SaveUnsaveDeleteTests(TrackTestCase):
    def setUp(self):
        w = self.world = m.World("sav")
        self.org = w.org()
        self.alice, self.alice_key = w.principal(self.org)
        self.bob, self.bob_key = w.principal(self.org)
        self.own = w.track(self.org, creator=self.alice)
        self.bobs = w.track(self.org, creator=self.bob)

    def save(self, track, key=None):
        return self.call("POST", track_path(self.org, track, "/save"), key or self.alice_key)

    def test_save_is_the_vendors_entry_and_idempotent(self):
        first = self.save(self.own)
        self.assertEqual(first.status, 200, first.body)
        self.assert_common_headers(first)
        entry = first.ordered()
        self.assertEqual([k for k, _ in entry], ["id", "track_id", "source", "created_at", "saved"])
        body = first.json()
        self.assertRegex(body["id"], r"^mlib_[A-Za-z0-9_-]+$")
        self.assertEqual(body["track_id"], self.own)
        self.assertEqual(body["source"], "own")
        self.assertIs(body["saved"], True)
        self.assertRegex(body["created_at"], m.TIMESTAMP_RE)
        time.sleep(1.1)
        again = self.save(self.own)
        self.assertEqual(again.json(), body, "saving again returns the same entry")
        self.assertEqual(self.ids(self.org, self.alice_key), [self.own])

    def test_save_only_what_the_caller_may_see(self):
        self.assert_not_found(self.save(self.bobs))
        # Once in Alice's library (here by the owner's tool), saving answers that entry.
        self.world.save(self.org, self.alice, self.bobs)
        r = self.save(self.bobs)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["track_id"], self.bobs)

    def test_unsave_is_idempotent_and_tells_nothing(self):
        self.save(self.own)
        for _ in range(2):
            r = self.call("DELETE", track_path(self.org, self.own, "/save"), self.alice_key)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual([list(p) for p in r.ordered()], [["success", True], ["id", self.own],
                                           ["detail", "Track removed from library."]])
        self.assertEqual(self.ids(self.org, self.alice_key), [])
        # Own track: still visible after unsave (Alice created it).
        self.fetch_track(self.org, self.own, self.alice_key)
        # Bob's track, never saved, and one that does not exist: the same acknowledgement.
        for track in (self.bobs, "mtrack_nothere"):
            r = self.call("DELETE", track_path(self.org, track, "/save"), self.alice_key)
            self.assertEqual(r.status, 200, r.body)
        # Unsaving Bob's saved track takes away Alice's access to it.
        self.world.save(self.org, self.alice, self.bobs)
        self.fetch_track(self.org, self.bobs, self.alice_key)
        self.call("DELETE", track_path(self.org, self.bobs, "/save"), self.alice_key)
        self.assert_not_found(self.call("GET", track_path(self.org, self.bobs), self.alice_key))

    def test_delete_creator_only_then_gone_everywhere(self):
        self.world.save(self.org, self.bob, self.own)  # in Bob's library too
        self.save(self.own)
        coll = self.world.collection(self.org, self.bob)
        self.world.collect(coll, self.own)
        self.assertEqual(self.ids(self.org, self.bob_key, "collection_id=" + coll), [self.own])
        r = self.call("DELETE", track_path(self.org, self.own), self.bob_key)
        err = self.assert_error(r, 403, "INSUFFICIENT_PERMISSIONS", "authorization_error")
        self.assertIn("creator", err["system_message"])
        r = self.call("DELETE", track_path(self.org, self.own), self.alice_key)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([list(p) for p in r.ordered()], [["success", True], ["id", self.own], ["detail", "Track deleted."]])
        # Gone at once from every listing and every get, for everyone.
        for key in (self.alice_key, self.bob_key):
            self.assert_not_found(self.call("GET", track_path(self.org, self.own), key))
            self.assertEqual(self.ids(self.org, key), [])
        self.assertEqual(self.ids(self.org, self.bob_key, "collection_id=" + coll), [])
        self.assert_not_found(self.save(self.own))
        # A repeated delete (a retry) by its creator answers the same 200 (issue 15); anyone else 404.
        again = self.call("DELETE", track_path(self.org, self.own), self.alice_key)
        self.assertEqual((again.status, again.body), (200, r.body))
        self.assert_not_found(self.call("DELETE", track_path(self.org, self.own), self.bob_key))
        # The row survives (audit history), with its creator and deletion time.
        _, out, _ = m.psql(m.load_env()["db_owner"], "SELECT creator_user_id, deleted_at IS NOT NULL FROM tracks "
                           "WHERE id = %s" % m.sql_literal(self.own))
        self.assertEqual(out.strip(), "%s|t" % self.alice)

    def test_concurrent_saves_make_one_entry_with_one_answer(self):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: self.save(self.own), range(16)))
        self.assertEqual({r.status for r in answers}, {200}, [r.body[:200] for r in answers])
        self.assertEqual(len({r.body for r in answers}), 1, "every save answers the same entry")
        _, out, _ = m.psql(m.load_env()["db_owner"], "SELECT count(*) FROM library_saves WHERE track_id = %s"
                           % m.sql_literal(self.own))
        self.assertEqual(out.strip(), "1")

    def test_racing_save_and_unsave_leave_a_state_one_of_them_made(self):
        for round_ in range(5):
            calls = [("POST" if i % 2 == 0 else "DELETE") for i in range(12)]
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(
                    lambda method: self.call(method, track_path(self.org, self.own, "/save"), self.alice_key), calls))
            self.assertEqual({r.status for r in answers}, {200}, round_)
            _, out, _ = m.psql(m.load_env()["db_owner"], "SELECT count(*) FROM library_saves WHERE track_id = %s "
                               "AND user_id = %s" % (m.sql_literal(self.own), m.sql_literal(self.alice)))
            rows = int(out.strip())
            self.assertIn(rows, (0, 1))
            self.assertEqual(self.ids(self.org, self.alice_key), [self.own] * rows)
            # The collection copy agrees with the final state (music-admin check finds no drift).
            rc, _, err = m.admin("check", check=False)
            self.assertEqual(rc, 0, err)

    def test_a_save_is_visible_at_once_to_the_next_list_and_get(self):
        for _ in range(10):
            track = self.world.track(self.org, creator=self.alice)
            self.assertEqual(self.save(track).status, 200)
            self.assertEqual(self.ids(self.org, self.alice_key, "limit=1"), [track])
            self.call("DELETE", track_path(self.org, track, "/save"), self.alice_key)
            self.assertNotIn(track, self.ids(self.org, self.alice_key))


class PlaybackTests(TrackTestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = m.World("play")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org, creator=cls.user, audio=AUDIO["master"], stems={"drums": AUDIO["stem"]})

    def urls(self):
        body = self.fetch_track(self.org, self.track, self.key)
        return body["playback_url"], body["stem_urls"]["drums"]

    def test_signed_urls_serve_the_exact_bytes_with_ranges(self):
        master_url, stem_url = self.urls()
        e = m.load_env()
        self.assertTrue(master_url.startswith("https://%s:%s/v1/media/%s/" % (e["host"], e["port"], self.track)),
                        master_url)
        for url, source, mime in ((master_url, AUDIO["master"], "audio/ogg"), (stem_url, AUDIO["stem"], "audio/wav")):
            want = file_bytes(source)
            r = self.media(local_path(url))
            self.assertEqual(r.status, 200, r.body[:200])
            self.assertEqual(sha256(r.body), sha256(want))
            self.assertEqual(r.headers["Content-Type"], mime)
            self.assertEqual(r.headers["Accept-Ranges"], "bytes")
            cache = r.headers.get_all("Cache-Control")
            self.assertEqual(len(cache), 1, cache)
            self.assertRegex(cache[0], r"^private, max-age=\d+$")
            max_age = int(cache[0].rsplit("=", 1)[1])
            self.assertTrue(0 < max_age <= 300, cache)
            size = len(want)
            for spec, start, end in (("0-0", 0, 0), ("0-99", 0, 99), ("100-", 100, size - 1),
                                     ("-64", size - 64, size - 1), ("%d-%d" % (size // 2, size + 50), size // 2,
                                                                    size - 1)):
                r = self.media(local_path(url), {"Range": "bytes=" + spec})
                self.assertEqual(r.status, 206, spec)
                self.assertEqual(r.headers["Content-Range"], "bytes %d-%d/%d" % (start, end, size), spec)
                self.assertEqual(r.body, want[start:end + 1], spec)
            r = self.media(local_path(url), {"Range": "bytes=%d-" % (size + 10)})
            self.assertEqual(r.status, 416)
            self.assertEqual(r.json()["error"]["code"], "RANGE_NOT_SATISFIABLE")
            head = self.media(local_path(url), method="HEAD")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.headers["Content-Length"], str(size))
            self.assertEqual(head.body, b"")
        # What the database recorded matches the file served.
        _, out, _ = m.psql(e["db_owner"], "SELECT name, mime_type, size_bytes, sha256 FROM track_media WHERE "
                           "track_id = %s ORDER BY name" % m.sql_literal(self.track))
        self.assertEqual(out.split(), ["drums|audio/wav|%d|%s" % (len(file_bytes(AUDIO["stem"])),
                                                                  sha256(file_bytes(AUDIO["stem"]))),
                                       "master|audio/ogg|%d|%s" % (len(file_bytes(AUDIO["master"])),
                                                                   sha256(file_bytes(AUDIO["master"])))])

    def assert_refused(self, path, status=403, code="PLAYBACK_URL_INVALID"):
        r = self.media(path)
        self.assertEqual(r.status, status, "%s -> %d %r" % (path, r.status, r.body[:200]))
        self.assertEqual(r.headers.get_all("Content-Type"), [m.JSON_CONTENT_TYPE], path)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, path)
        self.assertEqual(r.headers.get_all("Cache-Control"), ["private, no-store"], path)
        return err

    def test_every_changed_part_is_refused(self):
        url, _ = self.urls()
        path, args = url_parts(url)
        good = local_path(url)
        self.assertEqual(self.media(good).status, 200)

        def build(p=path, **changes):
            a = dict(args)
            for k, v in changes.items():
                if v is None:
                    a.pop(k, None)
                else:
                    a[k] = v
            return p + "?" + urllib.parse.urlencode(a)

        other = self.world.track(self.org, creator=self.user, audio=AUDIO["master"])
        flip = lambda s: s[:-1] + ("A" if s[-1] != "A" else "B")
        cases = [
            build(p=path.replace(self.track, other)),                 # another track, same signature
            build(p=path.replace("master.ogg", "stem-drums.wav")),   # another file
            build(exp=str(int(args["exp"]) + 1)),                    # a longer life
            build(exp=str(int(args["exp"]) - 1)),
            build(kid=args["kid"] + "x"),                            # a key that does not exist
            build(sig=flip(args["sig"])),
            build(sig=args["sig"][:-1]),
            build(sig=args["sig"] + "="),
            build(sig=None), build(exp=None), build(kid=None),
            build(exp="1e12"), build(exp="-1"), build(exp=""),
            path,                                                    # no query at all
            good + "&sig=" + args["sig"],                            # a repeated argument
        ]
        for case in cases:
            self.assert_refused(case)
        # Signed with a key nginx does not hold, under the current key's id.
        exp = str(int(time.time()) + 60)
        forged = path + "?exp=%s&kid=%s&sig=%s" % (exp, args["kid"], sign(path, exp, args["kid"], "x" * 43))
        self.assert_refused(forged)

    def test_expired_is_its_own_envelope_but_only_when_genuinely_signed(self):
        url, _ = self.urls()
        path, args = url_parts(url)
        keys = media_keys()
        kid = keys["current"]
        exp = str(int(time.time()) - 5)
        expired = path + "?exp=%s&kid=%s&sig=%s" % (exp, kid, sign(path, exp, kid, keys["keys"][kid]))
        err = self.assert_refused(expired, 410, "PLAYBACK_URL_EXPIRED")
        self.assertEqual(err["status"], 410)
        tampered = path + "?exp=%s&kid=%s&sig=%s" % (exp, kid, sign(path, exp, kid, "y" * 43))
        self.assert_refused(tampered)

    def test_paths_that_try_to_leave_the_media_root_never_serve(self):
        keys = media_keys()
        kid = keys["current"]
        secret = keys["keys"][kid]
        exp = str(int(time.time()) + 120)
        media_root = m.load_env()["media_root"]
        # A symlink planted in the track's folder, to a file outside the media root.
        link = os.path.join(media_root, self.track, "evil.ogg")
        if not os.path.lexists(link):
            os.symlink("/etc/passwd", link)
        tricks = [
            "/v1/media/%s/../../../../etc/passwd" % self.track,
            "/v1/media/%s/..%%2F..%%2Fetc%%2Fpasswd" % self.track,
            "/v1/media/%s%%2Fmaster.ogg" % self.track,
            "/v1/media/%s/master.ogg%%00.txt" % self.track,
            "/v1/media/%s/%%2e%%2e/%s/master.ogg" % (self.track, self.track),
            "/v1/media/%s//master.ogg" % self.track,
            "/v1/media/%s/evil.ogg" % self.track,
        ]
        for trick in tricks:
            # Signed properly, with the real key, over exactly the path sent: still never served.
            path = trick + "?exp=%s&kid=%s&sig=%s" % (exp, kid, sign(trick, exp, kid, secret))
            r = m.request("GET", path, {})  # sent as is: no document path matches a trick
            self.assertIn(r.status, (400, 403, 404), "%s -> %d" % (trick, r.status))
            self.assertNotIn(b"root:", r.body, trick)
            self.assertEqual(r.headers.get("Content-Type"), m.JSON_CONTENT_TYPE, trick)

    def test_media_answers_only_get_and_head(self):
        url, _ = self.urls()
        r = self.media(local_path(url), method="POST")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers.get_all("Allow"), ["GET, HEAD"])
        self.assertEqual(r.json()["error"]["code"], "METHOD_NOT_ALLOWED")

    def test_a_deleted_tracks_urls_work_until_they_expire_and_no_longer(self):
        track = self.world.track(self.org, creator=self.user, audio=AUDIO["master"])
        url = self.fetch_track(self.org, track, self.key)["playback_url"]
        _, args = url_parts(url)
        # The URL's life is the TTL, never more: the most a deleted track can still be played.
        self.assertLessEqual(int(args["exp"]) - time.time(), 300 + 2)
        self.assertEqual(self.call("DELETE", track_path(self.org, track), self.key).status, 200)
        self.assertEqual(self.media(local_path(url)).status, 200, "signed before the delete: valid until exp")
        self.assert_not_found(self.call("GET", track_path(self.org, track), self.key))
        # The same path with its expiry passed (signed with the real key) is refused.
        path, _ = url_parts(url)
        keys = media_keys()
        exp = str(int(time.time()) - 1)
        self.assert_refused(path + "?exp=%s&kid=%s&sig=%s" % (exp, keys["current"],
                                                             sign(path, exp, keys["current"],
                                                                  keys["keys"][keys["current"]])),
                            410, "PLAYBACK_URL_EXPIRED")


class KeyRotationTests(TrackTestCase):
    """`music-admin media-key rotate`, then reload nginx and music-api (the README's procedure)."""

    def setUp(self):
        w = self.world = m.World("rot")
        self.org = w.org()
        self.user, self.key = w.principal(self.org)
        self.track = w.track(self.org, creator=self.user, audio=AUDIO["master"])

    def rotate_and_reload(self):
        e = m.load_env()
        _, out, _ = m.admin("media-key", "rotate", "--file", e["media_keys_file"])
        new_kid = out.strip()
        self.assertEqual(os.stat(e["media_keys_file"]).st_mode & 0o777, 0o640)
        with open(os.path.join(e["nginx_dir"], "nginx.pid")) as f:
            os.kill(int(f.read().strip()), 1)  # SIGHUP: nginx re-reads the key file
        with open(e["api_pid_file"]) as f:
            os.kill(int(f.read().strip()), 1)  # SIGHUP: new workers sign with the new key
        deadline = time.time() + 20
        while time.time() < deadline:
            url = self.fetch_track(self.org, self.track, self.key)["playback_url"]
            if url_parts(url)[1]["kid"] == new_kid and self.media(local_path(url)).status == 200:
                return new_kid, url
            time.sleep(0.2)
        self.fail("after the reload, URLs are not signed with %s and served" % new_kid)

    def test_rotation_keeps_links_for_one_generation(self):
        old_url = self.fetch_track(self.org, self.track, self.key)["playback_url"]
        self.assertEqual(self.media(local_path(old_url)).status, 200)
        _, new_url = self.rotate_and_reload()
        self.assertEqual(self.media(local_path(old_url)).status, 200, "the previous key still verifies")
        self.assertEqual(self.media(local_path(new_url)).status, 200)
        self.rotate_and_reload()
        self.assert_refused_url(old_url)  # two rotations later: its key is gone
        self.assertEqual(self.media(local_path(new_url)).status, 200)

    def assert_refused_url(self, url):
        r = self.media(local_path(url))
        self.assertEqual(r.status, 403, r.body[:200])
        self.assertEqual(r.json()["error"]["code"], "PLAYBACK_URL_INVALID")


class PollingTests(TrackTestCase):
    """ETag / If-None-Match and RFC 8288 Link on list pages, over a walk of a whole library."""

    def setUp(self):
        w = self.world = m.World("poll")
        self.org = w.org()
        self.user, self.key = w.principal(self.org)
        self.tracks = []
        for i in range(7):
            t = w.track(self.org, mode="focus mode" if i % 2 else "creation")
            w.save(self.org, self.user, t, "2026-05-01T00:00:%02dZ" % i)
            self.tracks.append(t)

    def links(self, r):
        out = {}
        for part in r.headers.get("Link", "").split(", "):
            if not part:
                continue
            target, rel = part.split(">; rel=")
            out[rel.strip('"')] = target[1:]
        return out

    def test_walk_the_library_by_next_links(self):
        expected = self.world.expected_order(self.org, self.user)
        path = m.tracks_path(self.org, "limit=3")
        seen, pages = [], 0
        while path:
            r = self.call("GET", path, self.key)
            self.assertEqual(r.status, 200)
            self.assert_common_headers(r, m.LIST_CACHE_CONTROL)
            self.assertEqual(list(r.json()), ["items", "limit", "offset"])
            links = self.links(r)
            self.assertEqual(links["first"], "/v1/music/%s/tracks?limit=3&offset=0" % self.org)
            offset = r.json()["offset"]
            if offset:
                self.assertEqual(links["prev"], "/v1/music/%s/tracks?limit=3&offset=%d" % (self.org, offset - 3))
            else:
                self.assertNotIn("prev", links)
            seen += [i["id"] for i in r.json()["items"]]
            path = links.get("next")
            pages += 1
        self.assertEqual(seen, expected)
        self.assertEqual(pages, 3)

    def test_no_next_link_when_the_page_ends_the_library_exactly(self):
        r = self.call("GET", m.tracks_path(self.org, "limit=7"), self.key)
        self.assertEqual(len(r.json()["items"]), 7)
        self.assertNotIn("next", self.links(r))
        r = self.call("GET", m.tracks_path(self.org, "limit=6"), self.key)
        self.assertEqual(self.links(r)["next"], "/v1/music/%s/tracks?limit=6&offset=6" % self.org)

    def test_filters_ride_along_percent_encoded(self):
        r = self.call("GET", m.tracks_path(self.org, "limit=1&offset=1&mode=focus%20mode"), self.key)
        links = self.links(r)
        self.assertEqual(links["next"], "/v1/music/%s/tracks?limit=1&offset=2&mode=focus%%20mode" % self.org)
        self.assertEqual(links["prev"], "/v1/music/%s/tracks?limit=1&offset=0&mode=focus%%20mode" % self.org)

    def test_if_none_match_gives_304_until_the_page_changes(self):
        path = m.tracks_path(self.org, "limit=5")
        first = self.call("GET", path, self.key)
        etag = first.headers["ETag"]
        self.assertRegex(etag, r'^W/"[0-9a-f]{32}"$')
        self.assertEqual(first.headers.get_all("Vary"), ["Authorization, X-API-Key"])
        self.assertEqual(self.call("GET", path, self.key).headers["ETag"], etag, "same page, same validator")
        for header in (etag, etag[2:], '"nope", ' + etag, "*"):
            r = self.call("GET", path, self.key, {"If-None-Match": header})
            self.assertEqual(r.status, 304, header)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.headers["ETag"], etag)
            self.assertEqual(r.headers["Cache-Control"], m.LIST_CACHE_CONTROL)
            self.assertEqual(r.headers["Vary"], "Authorization, X-API-Key")
            self.assertEqual(r.headers["Link"], first.headers["Link"])
            self.assertRegex(r.headers["X-Request-ID"], m.REQUEST_ID_RE)
        self.assertEqual(self.call("GET", path, self.key, {"If-None-Match": 'W/"other"'}).status, 200)
        # A new save changes the page: 200 with a new validator.
        t = self.world.track(self.org)
        self.world.save(self.org, self.user, t, "2026-06-01T00:00:00Z")
        changed = self.call("GET", path, self.key, {"If-None-Match": etag})
        self.assertEqual(changed.status, 200)
        self.assertNotEqual(changed.headers["ETag"], etag)

    def test_304_only_after_authentication(self):
        path = m.tracks_path(self.org, "limit=5")
        etag = self.call("GET", path, self.key).headers["ETag"]
        m.admin("key", "revoke", self.key)
        deadline = time.time() + 10
        while True:
            r = self.call("GET", path, self.key, {"If-None-Match": etag})
            self.assertNotEqual(r.status, 304, "a revoked key never gets a 304")
            if r.status == 401 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
        self.assert_error(self.call("GET", path, None, {"If-None-Match": "*"}), 401, "AUTHENTICATION_REQUIRED",
                          "authentication_error")


if __name__ == "__main__":
    unittest.main(verbosity=2)
