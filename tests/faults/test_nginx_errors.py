"""Every response nginx makes itself is the API's JSON error envelope (issue 4).

Run as `MUSIC_API_STACK=DIR python3 tests/faults/test_nginx_errors.py` against a running stack
(see tests/support/musicapi.py). Through nginx over HTTPS (HTTP/1.1):

- music-api stopped: 503 SERVICE_UNAVAILABLE with Retry-After, then music-api restarted the way
  scripts/lib/stack.sh starts it and 200s again;
- oversized request headers: 431 HEADERS_TOO_LARGE; long URIs: 414 URI_TOO_LONG; a request body
  over 1 KB: 413 PAYLOAD_TOO_LARGE; malformed requests: 400 BAD_REQUEST;
- the rate limit (music-api-http.conf: 20 r/s per key id, burst 40): 429 RATE_LIMIT_EXCEEDED with
  Retry-After, per key id (not per header, not per secret), a different key unaffected.

This file stops and restarts music-api, so it must not run beside other tests of the same stack.
Whatever happens, the stack is left running (tearDown restarts music-api if it is down).
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import apiproc  # noqa: E402
from processes import alive, children, proc_stat, read_pid  # noqa: E402,F401
from musicapi import (  # noqa: E402
    ApiTestCase, Headers, Response, World, conf_value, key_id, load_env, psql, raw_exchange, request,
    ssl_context, tracks_path, unique)

RATE = 20      # requests per second per key id and address (nginx/music-api-ratelimit.conf)
BURST = 40     # its burst (nginx/music-api-location.conf)
ADDR_RATE = 100   # requests per second per address, whatever the key (music-api-ratelimit.conf)
ADDR_BURST = 200  # its burst (music-api-location.conf)


# --------------------------------------------------------------------------- processes

def api_running():
    return alive(read_pid(load_env()["api_pid_file"]))


def start_api():
    """Start music-api as scripts/lib/stack.sh api_up does; writes the PID file, waits for the socket."""
    p = apiproc.start_api()
    apiproc.wait_socket(load_env()["api_socket"], p, 15)
    return p.pid


def stop_api():
    """SIGTERM the master from the PID file and wait for it to exit."""
    apiproc.stop_api(read_pid(load_env()["api_pid_file"]), 20)


def ensure_api_running():
    if not api_running():
        start_api()


class NginxErrorCase(ApiTestCase):
    def assert_nginx_error(self, r, status, code, etype):
        self.assertNotIn(b"<html", r.body.lower(), r.body[:300])
        return self.assert_error(r, status, code, etype)

    def assert_retry_after(self, r):
        value = r.headers.get("Retry-After")
        self.assertIsNotNone(value, "no Retry-After in %r" % (r.headers,))
        self.assertRegex(value, r"^[0-9]+$")
        self.assertGreaterEqual(int(value), 1)
        self.assertLessEqual(int(value), 120)
        return int(value)


# =========================================================================== workers stopped

class WorkersStoppedTests(NginxErrorCase):
    @classmethod
    def setUpClass(cls):
        ensure_api_running()
        w = cls.w = World("nx-stop")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        t = w.track(cls.org)
        w.save(cls.org, cls.user, t, "2025-04-01T10:00:00Z")

    def tearDown(self):
        ensure_api_running()

    def test_workers_stopped_503_then_200_after_restart(self):
        e = load_env()
        before = self.listing(self.org, self.key)
        old_pid = read_pid(e["api_pid_file"])
        self.assertTrue(alive(old_pid), "music-api is not running before the test")
        cases = [
            ("GET", tracks_path(self.org), {"X-API-Key": self.key}, None),
            ("GET", tracks_path(self.org, "limit=5&mode=focus"),
             {"Authorization": "Bearer " + self.key}, None),
            ("GET", tracks_path(self.org), {}, None),
            ("GET", "/v1/music/%s/other" % self.org, {"X-API-Key": self.key}, None),
            ("GET", tracks_path("org_nope", "limit=abc"), {"X-API-Key": "garbage"}, None),
            ("POST", tracks_path(self.org), {"X-API-Key": self.key}, b"{}"),
            ("HEAD", tracks_path(self.org), {"X-API-Key": self.key}, None),
        ]
        answered = {}
        try:
            stop_api()
            self.assertFalse(api_running())
            for method, path, headers, body in cases:
                with self.subTest(method=method, path=path[:60]):
                    t0 = time.monotonic()
                    r = request(method, path, headers, body=body, timeout=20)
                    elapsed = time.monotonic() - t0
                    answered[r.status] = answered.get(r.status, 0) + 1
                    self.assertLess(elapsed, 6.0, "answer took %.1f s" % elapsed)
                    if method == "HEAD":
                        self.assertEqual(r.status, 503)
                        self.assert_common_headers(r)
                    else:
                        self.assert_nginx_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
                    self.assert_retry_after(r)
        finally:
            restarted_at = time.monotonic()
            ensure_api_running()
        new_pid = read_pid(e["api_pid_file"])
        self.assertTrue(alive(new_pid))
        self.assertNotEqual(new_pid, old_pid)
        deadline = time.monotonic() + 15
        while True:
            r = request("GET", tracks_path(self.org), {"X-API-Key": self.key})
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print("\nmusic-api stopped: %d requests sent, answered %s; first 200 %.2f s after the "
              "restart began" % (len(cases), answered, time.monotonic() - restarted_at))
        self.assertEqual(r.status, 200, r.body[:300])
        self.assert_common_headers(r)
        self.assertEqual(r.json(), before)
        # and every worker of the new pool answers
        for _ in range(12):
            self.assertEqual(self.listing(self.org, self.key), before)

    def test_a_create_whose_host_failed_after_receiving_it_is_outcome_unknown(self):
        """A create (no Idempotency-Key) that reached a worker which then died: nginx cannot know
        whether it committed, so it answers WRITE_OUTCOME_UNKNOWN without Retry-After. With a
        key, or when nothing reached a worker (stopped: the test above), the 503 with Retry-After."""
        e = load_env()
        coll_path = "/v1/music/%s/collections" % self.org
        for idem in (None, unique("idem")):
            with self.subTest(idempotency_key=idem is not None):
                # The collections table held, so the create waits inside a worker.
                holder = subprocess.Popen(
                    [e["psql"], "-X", "-q", "-d", e["db_owner"], "-c",
                     "BEGIN; LOCK TABLE collections IN EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                answer = {}
                headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
                if idem:
                    headers["Idempotency-Key"] = idem
                try:
                    # (pg_locks, not pg_stat_activity: another role's query text is hidden)
                    waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'collections'::regclass AND NOT granted"
                    apiproc.wait_for(lambda: psql(e["db_owner"], "SELECT count(*) FROM pg_locks WHERE "
                                                  "relation = 'collections'::regclass AND mode = 'ExclusiveLock' "
                                                  "AND granted")[1].strip() == "1", 3, 0.05, "the table lock")
                    sender = threading.Thread(target=lambda: answer.update(r=request(
                        "POST", coll_path, headers, body=b'{"name":"in flight"}', timeout=20)))
                    sender.start()
                    apiproc.wait_for(lambda: psql(e["db_owner"], waiting)[1].strip() == "1", 3, 0.05,
                                     "the create to wait on the lock")
                    master = read_pid(e["api_pid_file"])
                    for pid in children(master):
                        os.kill(pid, signal.SIGKILL)
                    sender.join(20)
                finally:
                    holder.communicate(timeout=30)
                r = answer["r"]
                if idem is None:
                    self.assert_nginx_error(r, 503, "WRITE_OUTCOME_UNKNOWN", "server_error")
                    self.assertNotIn("Retry-After", r.headers)
                else:
                    self.assert_nginx_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
                    self.assert_retry_after(r)
                apiproc.wait_for(lambda: request("GET", tracks_path(self.org), {"X-API-Key": self.key}).status
                                 == 200, 15, 0.2, "the workers to be replaced")


# =========================================================================== limits on requests

class RequestLimitTests(NginxErrorCase):
    @classmethod
    def setUpClass(cls):
        ensure_api_running()
        w = cls.w = World("nx-limit")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.path = tracks_path(cls.org)

    def test_one_oversized_header_is_431(self):
        big = "a" * 10240
        for name, headers in (
                ("X-Filler", {"X-API-Key": self.key, "X-Filler": big}),
                ("X-API-Key", {"X-API-Key": "mk_" + big}),
                ("Authorization", {"Authorization": "Bearer mk_" + big}),
                ("Cookie", {"X-API-Key": self.key, "Cookie": "c=" + big}),
                ("no key", {"X-Filler": big})):
            with self.subTest(header=name):
                r = request("GET", self.path, headers)
                self.assert_nginx_error(r, 431, "HEADERS_TOO_LARGE", "invalid_request_error")

    def test_headers_too_large_in_total_is_431(self):
        headers = [("X-API-Key", self.key)] + [("X-Filler-%d" % i, "b" * 7000) for i in range(6)]
        r = request("GET", self.path, headers)
        self.assert_nginx_error(r, 431, "HEADERS_TOO_LARGE", "invalid_request_error")

    def test_header_limit_elsewhere_under_v1_music(self):
        r = request("GET", "/v1/music/%s/other" % self.org, {"X-Filler": "c" * 10240})
        self.assert_nginx_error(r, 431, "HEADERS_TOO_LARGE", "invalid_request_error")

    def test_long_query_is_414(self):
        for size in (9000, 20000):
            for key in (self.key, None):
                with self.subTest(size=size, key=bool(key)):
                    r = request("GET", tracks_path(self.org, "mode=" + "a" * size),
                                {"X-API-Key": key} if key else {})
                    self.assert_nginx_error(r, 414, "URI_TOO_LONG", "invalid_request_error")

    def test_long_path_is_414(self):
        r = request("GET", tracks_path("org_" + "a" * 20000), {"X-API-Key": self.key})
        self.assert_nginx_error(r, 414, "URI_TOO_LONG", "invalid_request_error")
        r = request("GET", "/v1/music/" + "x/" * 10000, {})
        self.assert_nginx_error(r, 414, "URI_TOO_LONG", "invalid_request_error")

    def test_body_over_1k_is_413(self):
        for method, size in (("POST", 2000), ("GET", 1025), ("PUT", 64 * 1024),
                             ("DELETE", 5000)):
            with self.subTest(method=method, size=size):
                r = request(method, self.path, {"X-API-Key": self.key,
                                                "Content-Type": "application/json"},
                            body=b"x" * size)
                self.assert_nginx_error(r, 413, "PAYLOAD_TOO_LARGE", "invalid_request_error")

    def test_body_at_1k_reaches_the_api(self):
        r = request("POST", self.path, {"X-API-Key": self.key}, body=b"x" * 1024)
        self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")

    def test_announced_huge_body_is_413_without_sending_it(self):
        e = load_env()
        t0 = time.monotonic()
        r = raw_exchange(b"POST %s HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\n"
                         b"Content-Length: 1000000000\r\nConnection: close\r\n\r\n"
                         % (self.path.encode(), e["host"].encode(), self.key.encode()))
        self.assertLess(time.monotonic() - t0, 5)
        self.assert_nginx_error(r, 413, "PAYLOAD_TOO_LARGE", "invalid_request_error")

    def test_chunked_body_over_1k_is_413(self):
        e = load_env()
        chunk = b"y" * 2048
        r = raw_exchange(b"POST %s HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\n"
                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         b"%x\r\n%s\r\n0\r\n\r\n"
                         % (self.path.encode(), e["host"].encode(), self.key.encode(),
                            len(chunk), chunk))
        self.assert_nginx_error(r, 413, "PAYLOAD_TOO_LARGE", "invalid_request_error")

    def test_malformed_request_line_is_400(self):
        for line in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n",
                     b"GET /v1/music/x/tracks HTTP/1.1 extra\r\nHost: a\r\n\r\n"):
            with self.subTest(line=line[:30]):
                r = raw_exchange(line)
                self.assert_nginx_error(r, 400, "BAD_REQUEST", "invalid_request_error")

    def test_malformed_headers_are_400(self):
        e = load_env()
        host = b"Host: %s\r\n" % e["host"].encode()
        path = self.path.encode()
        for name, data in (
                ("header line without colon",
                 b"GET " + path + b" HTTP/1.1\r\n" + host + b"Bad Header Line\r\n\r\n"),
                ("no Host in HTTP/1.1", b"GET " + path + b" HTTP/1.1\r\n\r\n"),
                ("bad Content-Length",
                 b"GET " + path + b" HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n"),
                ("two Hosts", b"GET " + path + b" HTTP/1.1\r\n" + host + host + b"\r\n")):
            with self.subTest(case=name):
                r = raw_exchange(data)
                self.assert_nginx_error(r, 400, "BAD_REQUEST", "invalid_request_error")


# =========================================================================== rate limit

class RateLimitTests(NginxErrorCase):
    @classmethod
    def setUpClass(cls):
        ensure_api_running()
        w = cls.w = World("nx-rate")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.other_user, cls.other_key = w.principal(cls.org)
        t = w.track(cls.org)
        w.save(cls.org, cls.user, t, "2025-04-01T10:00:00Z")
        cls.path = tracks_path(cls.org)

    def burst(self, headers_for, n=100, threads=4, source="127.0.0.1"):
        """n quick requests on `threads` kept-alive connections; headers_for(i) -> dict.

        `source` is the client address (any of 127.0.0.0/8 on Linux), as another host would be.
        Returns ([Response], seconds). Raw http.client: no retry on 429.
        """
        e = load_env()
        results = [None] * n
        errors = []

        def run(tid):
            conn = None
            try:
                for i in range(tid, n, threads):
                    for attempt in range(2):
                        if conn is None:
                            conn = http.client.HTTPSConnection(
                                e["host"], int(e["port"]), context=ssl_context(), timeout=15,
                                source_address=(source, 0))
                        try:
                            conn.request("GET", self.path, headers=headers_for(i))
                            resp = conn.getresponse()
                            body = resp.read()
                        except (http.client.HTTPException, OSError):
                            conn.close()
                            conn = None
                            if attempt:
                                raise
                            continue
                        results[i] = Response(resp.status, Headers(resp.getheaders()), body)
                        if resp.will_close:
                            conn.close()
                            conn = None
                        break
            except Exception as ex:  # noqa: BLE001 - reported by the main thread
                errors.append(repr(ex))
            finally:
                if conn is not None:
                    conn.close()

        t0 = time.monotonic()
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        elapsed = time.monotonic() - t0
        self.assertEqual(errors, [])
        self.assertNotIn(None, results)
        return results, elapsed

    def max_allowed(self, elapsed, burst=BURST, rate=RATE):
        # nginx's leaky bucket: the burst, plus what drains while the burst is being sent
        return burst + 1 + int(rate * elapsed) + 2

    def check_429s(self, responses):
        for r in responses:
            if r.status == 429:
                self.assert_nginx_error(r, 429, "RATE_LIMIT_EXCEEDED", "rate_limit_error")
                self.assert_retry_after(r)

    @staticmethod
    def count(responses):
        out = {}
        for r in responses:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def test_burst_with_one_key_is_limited_and_other_keys_are_not(self):
        u, k = self.w.principal(self.org)
        rs, elapsed = self.burst(lambda i: {"X-API-Key": k})
        counts = self.count(rs)
        print("\nrate limit: 100 requests with one key in %.2f s -> %s" % (elapsed, counts))
        self.assertEqual(set(counts) - {200, 429}, set(), counts)
        self.assertGreaterEqual(counts.get(429, 0), 1, counts)
        self.assertGreaterEqual(counts.get(200, 0), BURST, counts)
        self.assertLessEqual(counts.get(200, 0), self.max_allowed(elapsed), counts)
        self.check_429s(rs)
        retry = int([r for r in rs if r.status == 429][0].headers["Retry-After"])
        # another key (of another user, or of the same user) is not held back by that burst
        for other in (self.other_key, self.w.key(u)):
            with self.subTest(other=key_id(other)):
                rs2, _ = self.burst(lambda i, other=other: {"X-API-Key": other}, n=30, threads=3)
                self.assertEqual(self.count(rs2), {200: 30})
        # and once Retry-After has passed, the limited key is served again
        time.sleep(retry + 0.5)
        r = request("GET", self.path, {"X-API-Key": k}, retry_rate_limited=False)
        self.assertEqual(r.status, 200, r.body[:300])

    def test_bearer_and_x_api_key_share_the_key_ids_limit(self):
        _, k = self.w.principal(self.org)
        rs, elapsed = self.burst(lambda i: {"X-API-Key": k} if i % 2
                                 else {"Authorization": "Bearer " + k})
        counts = self.count(rs)
        self.assertEqual(set(counts) - {200, 429}, set(), counts)
        self.assertGreaterEqual(counts.get(429, 0), 1, counts)
        self.assertLessEqual(counts.get(200, 0), self.max_allowed(elapsed), counts)
        self.check_429s(rs)

    def test_wrong_secrets_for_one_key_id_are_limited(self):
        _, k = self.w.principal(self.org)
        kid = key_id(k)
        rs, elapsed = self.burst(lambda i: {"X-API-Key": "%s_%s" % (kid, unique("s"))})
        counts = self.count(rs)
        self.assertEqual(set(counts) - {401, 429}, set(), counts)
        self.assertGreaterEqual(counts.get(429, 0), 1, counts)
        self.assertLessEqual(counts.get(401, 0), self.max_allowed(elapsed), counts)
        self.check_429s(rs)
        for r in rs:
            if r.status == 401:
                self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")

    def test_requests_without_key_are_limited_per_address(self):
        try:
            rs, elapsed = self.burst(lambda i: {})
            counts = self.count(rs)
            self.assertEqual(set(counts) - {401, 429}, set(), counts)
            self.assertGreaterEqual(counts.get(429, 0), 1, counts)
            self.assertLessEqual(counts.get(401, 0), self.max_allowed(elapsed), counts)
            self.check_429s(rs)
            # a client with a key has its own allowance
            r = request("GET", self.path, {"X-API-Key": self.other_key},
                        retry_rate_limited=False)
            self.assertEqual(r.status, 200, r.body[:300])
        finally:
            time.sleep(BURST / RATE + 0.5)   # let the address bucket drain for later tests

    def test_another_address_cannot_spend_a_customers_budget(self):
        # The attacker knows the victim's key id (logs show ids) and sends it from elsewhere.
        _, victim = self.w.principal(self.org)
        kid = key_id(victim)
        rs, _ = self.burst(lambda i: {"X-API-Key": "%s_%s" % (kid, unique("s"))}, n=120,
                           source="127.0.0.2")
        counts = self.count(rs)
        self.assertGreaterEqual(counts.get(429, 0), 1, counts)   # the attacker is limited…
        self.check_429s(rs)
        # …and the victim, right after, from its own address, is not held back at all.
        rs2, _ = self.burst(lambda i: {"X-API-Key": victim}, n=30, threads=3)
        self.assertEqual(self.count(rs2), {200: 30})

    def test_random_key_ids_from_one_address_are_limited_per_address(self):
        # Each fresh well-formed id is a fresh (id, address) bucket; the address's own bucket
        # still bounds what reaches the workers.
        def random_key(i):
            return {"X-API-Key": "mk_%s_%s" % (uuid.uuid4().hex[:16], "A" * 32)}
        try:
            rs, elapsed = self.burst(random_key, n=400, threads=4, source="127.0.0.3")
            counts = self.count(rs)
            print("\nrate limit: 400 random key ids in %.2f s -> %s" % (elapsed, counts))
            self.assertEqual(set(counts) - {401, 429}, set(), counts)
            self.assertGreaterEqual(counts.get(429, 0), 1, counts)
            self.assertLessEqual(counts.get(401, 0),
                                 self.max_allowed(elapsed, ADDR_BURST, ADDR_RATE), counts)
            self.check_429s(rs)
            # another address is not affected
            r = request("GET", self.path, {"X-API-Key": self.other_key}, retry_rate_limited=False)
            self.assertEqual(r.status, 200, r.body[:300])
        finally:
            time.sleep(ADDR_BURST / ADDR_RATE + 0.5)


# =========================================================================== nginx-made headers

class NginxMadeHeadersTests(NginxErrorCase):
    def assert_server_headers(self, r):
        # add_header in an error location would drop the server's; they are repeated there.
        self.assertEqual(r.headers.get("Strict-Transport-Security"), "max-age=63072000")
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")

    def test_v1_music_without_slash_is_a_json_404(self):
        for method in ("GET", "HEAD"):
            with self.subTest(method=method):
                r = request(method, "/v1/music")
                self.assertEqual(r.status, 404)
                self.assertIsNone(r.headers.get("Location"))
                if method == "GET":
                    self.assert_nginx_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
                self.assert_server_headers(r)

    def test_trace_unknown_transfer_encoding_and_http_versions_are_json(self):
        """What nginx refuses before any location (music-api-errors.conf) is the envelope too."""
        cases = [(b"TRACE /v1/music/org_x/tracks HTTP/1.1\r\nHost: localhost\r\n\r\n",
                  405, "METHOD_NOT_ALLOWED", "invalid_request_error"),
                 (b"TRACE /v1/media/mtrack_x/master.mp3 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                  405, "METHOD_NOT_ALLOWED", "invalid_request_error"),
                 (b"POST /v1/music/org_x/collections HTTP/1.1\r\nHost: localhost\r\n"
                  b"Transfer-Encoding: gzip\r\n\r\n", 501, "NOT_IMPLEMENTED", "invalid_request_error"),
                 (b"GET /v1/music/org_x/tracks HTTP/3.0\r\nHost: localhost\r\n\r\n",
                  505, "HTTP_VERSION_NOT_SUPPORTED", "invalid_request_error"),
                 (b"GET /v1/music/org_x/tracks HTTP/2.0\r\nHost: localhost\r\n\r\n",
                  505, "HTTP_VERSION_NOT_SUPPORTED", "invalid_request_error")]
        for raw, status, code, etype in cases:
            with self.subTest(request=raw.split(b"\r\n")[0]):
                r = raw_exchange(raw)
                self.assert_nginx_error(r, status, code, etype)
                self.assert_server_headers(r)
                if status == 405:
                    self.assertEqual(r.headers.get("Allow"), "GET, HEAD, POST, PATCH, DELETE")

    def test_nginx_made_errors_carry_hsts_and_nosniff(self):
        cases = [("GET", "/v1/music", None, 404),
                 ("GET", "/v1/music/x/tracks?" + "a" * 9000, None, 414),
                 ("POST", "/v1/music/x/tracks", b"x" * 2048, 413),
                 ("GET", "/music-api/ping", None, 200)]
        for method, path, body, status in cases:
            with self.subTest(path=path[:40]):
                r = request(method, path, {"Content-Type": "text/plain"} if body else None, body=body)
                self.assertEqual(r.status, status, r.body[:200])
                self.assert_server_headers(r)
        # and the API's own answers carry them too
        r = request("GET", "/v1/music/org_nope/tracks")
        self.assertEqual(r.status, 401)
        self.assert_server_headers(r)

    def test_nginx_503_retry_after_matches_the_apps(self):
        # Both say the configured retry_after (the stack's is 2), so clients see one figure.
        e = load_env()
        want = conf_value("retry_after", "2")
        loc = os.path.join(e["root"], "nginx", "music-api-location.conf")
        with open(loc, encoding="utf-8") as f:
            text = f.read()
        block = text[text.index("location = /_music_api/error/503"):]
        block = block[:block.index("}")]
        self.assertIn("add_header Retry-After %s always;" % want, block)


if __name__ == "__main__":
    load_env()
    unittest.main(verbosity=2)
