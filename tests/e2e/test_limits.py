"""The edges nginx and the service left open, closed and tested through nginx over TLS:

- public URLs (playback, share links) come from `media_base_url` alone: a forged `Host` (or
  `X-Forwarded-Host`, or none at all) never shapes one, and `--test` refuses an empty or
  malformed value;
- at most N requests in flight per client address (nginx's limit_conn, N read from
  nginx/music-api-location.conf): one more is the JSON 429, made by nginx without a worker,
  while another address is still served;
- share tokens never reach nginx's error log: after refused bursts (limit_req, limit_conn) and
  upstream failures (workers stopped: the socket is gone; workers killed mid-request) on share
  URLs, the log holds no token, while the same events on other routes are logged;
- per-user quotas on collections and live share links (422 QUOTA_EXCEEDED, details.field naming
  the limit): up to the limit, one more refused, a delete (or a revoke, or an expiry) frees a
  slot, an Idempotency-Key repeat still replays, and threads creating at once never pass it.

Slow requests are made deterministic by an owner's session holding a table lock. This file stops
and restarts music-api (tiny quotas for the quota tests, the stack's own configuration after
them); tearDownModule leaves it running with the stack's configuration, whatever happened.
"""

import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import apiproc  # noqa: E402
import musicapi as m  # noqa: E402
import openapi  # noqa: E402
from processes import alive, read_pid, workers  # noqa: E402

DOC = openapi.load()
E = m.load_env()
QUOTA_COLLECTIONS = 3   # the quota tests' own configuration (the defaults are 1000 and 10000)
QUOTA_LINKS = 4
AUDIO = {}


def location_conf():
    with open(os.path.join(E["root"], "nginx", "music-api-location.conf"), encoding="utf-8") as f:
        return f.read()


# Requests in flight per address, as nginx/music-api-location.conf sets it.
IN_FLIGHT = int(re.search(r"^\s*limit_conn music_api_conn (\d+);", location_conf(), re.M).group(1))


def setUpModule():
    d = tempfile.mkdtemp(prefix="music-api-limits-audio-")
    AUDIO["master"] = os.path.join(d, "master.ogg")
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", AUDIO["master"], "synth", "1", "pluck", "E3"],
                   check=True, capture_output=True)


def tearDownModule():
    # The stack's own configuration, running, whatever a test left.
    pid = read_pid(E["api_pid_file"])
    if not alive(pid) or api_conf_of(pid) != E["api_conf"]:
        restart_api(E["api_conf"])


# --------------------------------------------------------------------------- the API process

def api_conf_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        return argv[argv.index(b"--config") + 1].decode()
    except (OSError, ValueError, IndexError, TypeError):
        return None


def stop_api():
    pid = read_pid(E["api_pid_file"])
    if alive(pid):
        apiproc.stop_api(pid, 20)


def restart_api(conf):
    """music-api stopped, then started as the harness does with `conf`; returns once it serves."""
    stop_api()
    p = apiproc.start_api(conf=conf)
    apiproc.wait_socket(E["api_socket"], p, 15)
    wait_serving()


def wait_serving(timeout=20):
    # /music-api/ping: a database round trip through a worker (host-only, not rate limited).
    def ok():
        try:
            return exchange("GET", "/music-api/ping").status == 200
        except OSError:
            return False
    apiproc.wait_for(ok, timeout, 0.2, "music-api to serve")


# --------------------------------------------------------------------------- HTTP

def exchange(method, path, headers=None, body=None, source=None, host=None, timeout=30):
    """One HTTPS request on its own connection, from `source` (any 127.0.0.0/8 address: another
    client as far as nginx's per-address limits go), with `host` as the Host header when given.
    No retry: a 429 is returned like any answer."""
    conn = http.client.HTTPSConnection(E["host"], int(E["port"]), context=m.ssl_context(), timeout=timeout,
                                       source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None or method in ("POST", "PATCH"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        return m.Response(resp.status, m.Headers(resp.getheaders()), resp.read())
    finally:
        conn.close()


def json_body(value):
    return json.dumps(value).encode("utf-8")


def key_json(key):
    return {"X-API-Key": key, "Content-Type": "application/json"}


# --------------------------------------------------------------------------- the database

def db(sql):
    return m.psql(E["db_owner"], sql)[1].strip()


class TableLock:
    """An owner's session holding ACCESS EXCLUSIVE on `table` for `seconds`: every statement that
    reads it waits, so the requests that run one are slow for exactly that long."""

    def __init__(self, table, seconds):
        self.table = table
        self.proc = subprocess.Popen(
            [E["psql"], "-X", "-q", "-d", E["db_owner"], "-c",
             "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%s); COMMIT;" % (table, seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        apiproc.wait_for(lambda: self.locks("AND mode = 'AccessExclusiveLock' AND granted") == 1, 5, 0.05,
                         "the lock on " + table)

    def locks(self, condition):
        # pg_locks, not pg_stat_activity: another role's query text is hidden.
        return int(db("SELECT count(*) FROM pg_locks WHERE relation = '%s'::regclass %s" % (self.table, condition)))

    def waiting(self):
        return self.locks("AND NOT granted")

    def held(self):
        return self.proc.poll() is None

    def release(self):
        self.proc.communicate(timeout=60)


class UserRowHold:
    """An owner's session holding the user's row FOR UPDATE for `seconds`. A create's foreign-key
    check on its new row (collections.user_id, share_links.creator_user_id) waits for it: the
    create has counted the user's rows and inserted its own by then, and waits with both. Without
    a lock around count and insert, every create waiting here would have counted the same number."""

    def __init__(self, user, seconds):
        self.proc = subprocess.Popen(
            [E["psql"], "-X", "-q", "-d", E["db_owner"], "-c", "SET application_name = 'h3-user-hold'",
             "-c", "BEGIN; SELECT 1 FROM users WHERE id = %s FOR UPDATE; SELECT pg_sleep(%s); COMMIT;"
             % (m.sql_literal(user), seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        apiproc.wait_for(lambda: db("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'h3-user-hold' "
                                    "AND wait_event = 'PgSleep'") == "1", 5, 0.05, "the hold on the user's row")

    def release(self):
        self.proc.communicate(timeout=60)


def pool_size():
    return int(m.conf_value("workers", "3"))


# --------------------------------------------------------------------------- assertions

class LimitsCase(m.ApiTestCase):
    def assert_quota_error(self, r, limit, value, method, template_path):
        self.assertEqual(r.status, 422, r.body[:300])
        openapi.check_response(DOC, method, template_path, r.status, r.headers.raw, r.body)
        self.assert_common_headers(r)
        self.assertNotIn("Retry-After", r.headers, "waiting does not help: no Retry-After")
        err = r.json()["error"]
        self.assertEqual(err["code"], "QUOTA_EXCEEDED", err)
        self.assertEqual(err["type"], "invalid_request_error", err)
        self.assertEqual(err["status"], 422, err)
        self.assertEqual(err["details"], {"field": limit}, err)
        self.assertIn(str(value), err["system_message"], err)
        self.assertEqual(err["trace_id"], r.headers["X-Request-ID"])
        self.assert_no_leak(json.dumps(err))

    def assert_limited(self, r, why):
        self.assertNotIn(b"<html", r.body.lower(), r.body[:300])
        err = self.assert_error(r, 429, "RATE_LIMIT_EXCEEDED", "rate_limit_error")
        self.assertEqual(err["system_message"], why, err)
        self.assertRegex(r.headers.get("Retry-After", ""), r"^[1-9][0-9]*$")


# =========================================================================== public URLs

class PublicUrlTests(LimitsCase):
    """Playback and share URLs are built from media_base_url (the stack sets it to its own
    https://127.0.0.1:PORT), whatever Host the request carries."""

    @classmethod
    def setUpClass(cls):
        restart_if_not_stack_conf()
        w = cls.w = m.World("lim-url")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.track = w.track(cls.org, creator=cls.user, audio=AUDIO["master"])
        cls.base = E["base_url"]
        cls.forged = ["evil.example", "evil.example:%s" % E["port"], "127.0.0.1.evil.example", "localhost"]

    def assert_base(self, url, path_prefix):
        self.assertTrue(url.startswith(self.base + path_prefix), "%r is not under %s%s" % (url, self.base, path_prefix))

    def test_forged_host_never_shapes_a_playback_or_share_url(self):
        for host in self.forged:
            with self.subTest(host=host):
                forged = {"X-API-Key": self.key, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
                          "Forwarded": "host=evil.example;proto=http"}
                r = exchange("GET", "/v1/music/%s/tracks/%s" % (self.org, self.track), forged, host=host)
                self.assertEqual(r.status, 200, r.body[:300])
                track = r.json()
                self.assert_base(track["playback_url"], "/v1/media/%s/" % self.track)
                self.assertNotIn("evil", r.body.decode())

                r = exchange("POST", "/v1/music/%s/tracks/%s/share" % (self.org, self.track),
                             dict(forged, **{"Content-Type": "application/json"}), body=b"{}", host=host)
                self.assertEqual(r.status, 201, r.body[:300])
                link = r.json()
                self.assertEqual(link["url"], self.base + "/v1/music/shared/" + link["token"])

                r = exchange("GET", "/v1/music/shared/%s" % link["token"],
                             {"X-Forwarded-Host": "evil.example"}, host=host)
                self.assertEqual(r.status, 200, r.body[:300])
                self.assert_base(r.json()["track"]["playback_url"], "/v1/media/%s/" % self.track)
                self.assertNotIn("evil", r.body.decode())
        # And such a URL plays: it is the one nginx serves.
        path = urllib.parse.urlsplit(track["playback_url"])
        r = exchange("GET", path.path + "?" + path.query, {"Range": "bytes=0-3"})
        self.assertEqual(r.status, 206, r.body[:300])

    def test_a_request_without_host_gets_the_configured_base_too(self):
        # HTTP/1.0 needs no Host: before, an empty Host made relative URLs.
        r = m.raw_exchange(("GET /v1/music/%s/tracks/%s HTTP/1.0\r\nX-API-Key: %s\r\n\r\n"
                        % (self.org, self.track, self.key)).encode())
        self.assertEqual(r.status, 200, r.body[:300])
        self.assert_base(json.loads(r.body)["playback_url"], "/v1/media/%s/" % self.track)

    def test_without_the_key_urls_take_the_default_not_the_host(self):
        with open(E["api_conf"], encoding="utf-8") as f:
            lines = [line for line in f if not line.startswith("media_base_url")]
        conf_dir = tempfile.mkdtemp(prefix="url-", dir=os.path.dirname(E["api_conf"]))
        conf = os.path.join(conf_dir, "music-api.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.writelines(lines)
        try:
            restart_api(conf)
            for host in ("127.0.0.1:%s" % E["port"], "evil.example"):
                with self.subTest(host=host):
                    r = exchange("GET", "/v1/music/%s/tracks/%s" % (self.org, self.track), {"X-API-Key": self.key},
                                 host=host)
                    self.assertEqual(r.status, 200, r.body[:300])
                    self.assertTrue(r.json()["playback_url"].startswith("https://localhost/v1/media/"), r.body[:300])
        finally:
            restart_api(E["api_conf"])
            shutil.rmtree(conf_dir, ignore_errors=True)

    def test_config_check_refuses_an_empty_or_pathed_base(self):
        with open(E["api_conf"], encoding="utf-8") as f:
            stack_conf = f.read()
        d = tempfile.mkdtemp(prefix="music-api-limits-conf-")
        cases = [("", True), ("media_base_url =\n", False), ("media_base_url = https://api.example.com/v1\n", False),
                 ("media_base_url = api.example.com\n", False), ("media_base_url = https://api.example.com/\n", False),
                 ("max_collections_per_user = 0\n", False), ("max_share_links_per_user = 100001\n", False)]
        for extra, good in cases:
            with self.subTest(extra=extra.strip() or "(the stack's own)"):
                conf = os.path.join(d, "music-api.conf")
                with open(conf, "w", encoding="utf-8") as f:
                    f.write(stack_conf + "\n" + extra)  # a later line wins
                p = subprocess.run([E["api"], "--config", conf, "--test"], env=apiproc.api_environment(),
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
                out = (p.stdout + p.stderr).decode("utf-8", "replace")
                if good:
                    self.assertEqual(p.returncode, 0, out)
                else:
                    self.assertNotEqual(p.returncode, 0, out)
                    self.assertIn(extra.split("=")[0].strip(), out)
                    self.assertIn("%s:%d" % (conf, stack_conf.count("\n") + 2), out)  # file:line


def restart_if_not_stack_conf():
    pid = read_pid(E["api_pid_file"])
    if not alive(pid) or api_conf_of(pid) != E["api_conf"]:
        restart_api(E["api_conf"])


# =========================================================================== requests in flight

class InFlightLimitTests(LimitsCase):
    """nginx's limit_conn: at most IN_FLIGHT requests in progress per client address."""

    @classmethod
    def setUpClass(cls):
        restart_if_not_stack_conf()
        w = m.World("lim-conn")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        w.collection(cls.org, cls.user)
        cls.path = "/v1/music/%s/collections" % cls.org

    def test_one_request_more_than_the_limit_is_a_json_429_and_other_addresses_are_served(self):
        self.assertLess(IN_FLIGHT, 16)
        held, other = {}, {}
        lock = TableLock("collections", 4)
        try:
            # IN_FLIGHT slow listings from one address: the pool's workers wait on the lock, the
            # rest in the socket's backlog; all of them are in progress as far as nginx knows.
            pool = concurrent.futures.ThreadPoolExecutor(IN_FLIGHT + 1)
            futures = [pool.submit(exchange, "GET", self.path, {"X-API-Key": self.key}, None, "127.0.0.71")
                       for _ in range(IN_FLIGHT)]
            apiproc.wait_for(lambda: lock.waiting() >= min(IN_FLIGHT, pool_size()), 5, 0.05,
                             "the listings to wait on the lock")
            time.sleep(0.5)   # the ones beyond the pool reach nginx too
            t0 = time.monotonic()
            refused = exchange("GET", self.path, {"X-API-Key": self.key}, source="127.0.0.71")
            elapsed = time.monotonic() - t0
            self.assertTrue(lock.held(), "the lock ended before the refusal was checked")
            # Another address is not refused (it waits for a worker like anyone).
            other_future = pool.submit(exchange, "GET", self.path, {"X-API-Key": self.key}, None, "127.0.0.72")
            held = [f.result(timeout=30) for f in futures]
            other = other_future.result(timeout=30)
            pool.shutdown()
        finally:
            lock.release()
        print("\nlimit_conn: %d in flight from one address, one more answered %d in %.3f s; held: %s; "
              "another address: %d" % (IN_FLIGHT, refused.status, elapsed, sorted(r.status for r in held),
                                       other.status))
        self.assert_limited(refused, "Too many requests in progress from this address")
        self.assertLess(elapsed, 2.0, "the refusal must not wait for a worker")
        openapi.check_response(DOC, "GET", self.path, refused.status, refused.headers.raw, refused.body)
        # Made by nginx: no worker saw it.
        with open(E["api_log"], encoding="utf-8", errors="replace") as f:
            self.assertNotIn(refused.headers["X-Request-ID"], f.read())
        self.assertEqual([r.status for r in held], [200] * IN_FLIGHT, [r.body[:200] for r in held])
        self.assertEqual(other.status, 200, other.body[:300])
        # Once they are answered, the address is served again.
        self.assertEqual(exchange("GET", self.path, {"X-API-Key": self.key}, source="127.0.0.71").status, 200)

    def test_the_429_page_still_names_the_rate_limit_for_a_rate_refusal(self):
        # Keyless requests from one address: music_api's bucket (20 r/s, burst 40), not limit_conn.
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: exchange("GET", self.path, source="127.0.0.73"), range(80)))
        limited = [r for r in answers if r.status == 429]
        self.assertTrue(limited, sorted({r.status for r in answers}))
        self.assertEqual({r.status for r in answers} - {401, 429}, set())
        self.assert_limited(limited[0], "Rate limit exceeded")
        time.sleep(3)


# =========================================================================== tokens and the error log

class ShareTokenLogTests(LimitsCase):
    """nginx writes the request line into every error-log line about a request; a share URL's
    path is its token. None of those lines may be written for /v1/music/shared/."""

    @classmethod
    def setUpClass(cls):
        restart_if_not_stack_conf()
        w = m.World("lim-log")
        cls.org = w.org()
        cls.user, cls.key = w.principal(cls.org)
        cls.member, cls.member_key = w.principal(cls.org)
        track = w.track(cls.org, creator=cls.user, audio=AUDIO["master"])
        r = exchange("POST", "/v1/music/%s/tracks/%s/share" % (cls.org, track), key_json(cls.key), b"{}")
        if r.status != 201:
            raise AssertionError("share: %d %r" % (r.status, r.body[:300]))
        cls.token = r.json()["token"]
        cls.unknown = "shr_" + "Q" * 43
        cls.error_log = os.path.join(E["nginx_dir"], "error.log")

    def log_size(self):
        try:
            return os.path.getsize(self.error_log)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.error_log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def assert_no_token(self, text):
        for secret in (self.token, self.token[4:], self.unknown, "/v1/music/shared/"):
            leaked = [line[:240] for line in text.splitlines() if secret in line]
            self.assertEqual(leaked[:3], [], "nginx's error log holds a share URL (%d lines)" % len(leaked))

    def test_1_refused_bursts_on_share_urls_leave_no_token(self):
        start = self.log_size()
        # limit_req: the resolve's own zone, 10 r/s with a burst of 20.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: exchange("GET", "/v1/music/shared/%s" % (
                self.token if i % 2 else self.unknown), source="127.0.0.81"), range(60)))
        rate_limited = [r for r in answers if r.status == 429]
        self.assertTrue(rate_limited, sorted({r.status for r in answers}))
        self.assert_limited(rate_limited[0], "Rate limit exceeded")
        # limit_conn: one resolve more than the address may have in progress.
        lock = TableLock("share_links", 4)
        try:
            pool = concurrent.futures.ThreadPoolExecutor(IN_FLIGHT)
            futures = [pool.submit(exchange, "GET", "/v1/music/shared/%s" % self.token, None, None, "127.0.0.82")
                       for _ in range(IN_FLIGHT)]
            apiproc.wait_for(lambda: lock.waiting() >= min(IN_FLIGHT, pool_size()), 5, 0.05,
                             "the resolves to wait on the lock")
            time.sleep(0.5)
            refused = exchange("POST", "/v1/music/shared/%s/save" % self.token, {"X-API-Key": self.member_key},
                               source="127.0.0.82")
            held = [f.result(timeout=30) for f in futures]
            pool.shutdown()
        finally:
            lock.release()
        self.assert_limited(refused, "Too many requests in progress from this address")
        self.assertEqual({r.status for r in held}, {200}, [r.body[:200] for r in held])
        # The same refusal elsewhere is logged, with its request line: the log does record them.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            control = list(pool.map(lambda _: exchange("GET", "/v1/music/%s/tracks" % self.org, source="127.0.0.83"),
                                    range(80)))
        self.assertIn(429, {r.status for r in control})
        time.sleep(0.3)
        text = self.log_since(start)
        self.assertRegex(text, r"limiting requests.*/v1/music/%s/tracks" % re.escape(self.org))
        self.assert_no_token(text)
        time.sleep(3)   # the buckets drain for the tests after

    def test_2_upstream_failures_on_share_urls_leave_no_token(self):
        start = self.log_size()
        try:
            # Workers stopped: the socket is gone, nginx's connect() fails (logged at crit).
            stop_api()
            for method, path, headers in (
                    ("GET", "/v1/music/shared/%s" % self.token, {}),
                    ("GET", "/v1/music/shared/%s" % self.unknown, {}),
                    ("POST", "/v1/music/shared/%s/save" % self.token, {"X-API-Key": self.member_key})):
                with self.subTest(method=method, path=path[:30]):
                    r = exchange(method, path, headers, source="127.0.0.84")
                    self.assert_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
            control = exchange("GET", "/v1/music/%s/tracks" % self.org, {"X-API-Key": self.key}, source="127.0.0.84")
            self.assert_error(control, 503, "SERVICE_UNAVAILABLE", "server_error")
        finally:
            restart_api(E["api_conf"])
        # A worker killed while it answers a resolve: "upstream prematurely closed".
        lock = TableLock("share_links", 3)
        answer = {}
        try:
            sender = threading.Thread(target=lambda: answer.update(r=exchange(
                "GET", "/v1/music/shared/%s" % self.token, source="127.0.0.85")))
            sender.start()
            apiproc.wait_for(lambda: lock.waiting() >= 1, 5, 0.05, "the resolve to wait on the lock")
            for pid in workers(read_pid(E["api_pid_file"])):
                os.kill(pid, signal.SIGKILL)
            sender.join(30)
        finally:
            lock.release()
        self.assert_error(answer["r"], 503, "SERVICE_UNAVAILABLE", "server_error")
        wait_serving()
        time.sleep(0.3)
        text = self.log_since(start)
        # The control request's failure is there, request line and all.
        self.assertRegex(text, r"connect\(\) to unix:.*/v1/music/%s/tracks" % re.escape(self.org))
        self.assert_no_token(text)
        with open(self.error_log, encoding="utf-8", errors="replace") as f:
            whole = f.read()
        self.assertNotIn(self.token, whole)


# =========================================================================== quotas

class QuotaTests(LimitsCase):
    """Per-user quotas, with music-api restarted on tiny ones (3 collections, 4 live links)."""

    @classmethod
    def setUpClass(cls):
        with open(E["api_conf"], encoding="utf-8") as f:
            text = f.read()
        cls.conf_dir = tempfile.mkdtemp(prefix="quota-", dir=os.path.dirname(E["api_conf"]))
        cls.conf = os.path.join(cls.conf_dir, "music-api.conf")
        with open(cls.conf, "w", encoding="utf-8") as f:
            f.write(text + "\nmax_collections_per_user = %d\nmax_share_links_per_user = %d\n"
                    % (QUOTA_COLLECTIONS, QUOTA_LINKS))
        restart_api(cls.conf)
        w = cls.w = m.World("lim-quota")
        cls.org, cls.org2 = w.org(), w.org()

    @classmethod
    def tearDownClass(cls):
        restart_api(E["api_conf"])
        shutil.rmtree(cls.conf_dir, ignore_errors=True)

    def collections_path(self, org=None):
        return "/v1/music/%s/collections" % (org or self.org)

    def create_collection(self, key, org=None, source=None, idempotency_key=None, name=None):
        headers = key_json(key)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return exchange("POST", self.collections_path(org), headers, json_body({"name": name or m.unique("q")}),
                        source=source)

    def share(self, key, track, source=None, org=None):
        return exchange("POST", "/v1/music/%s/tracks/%s/share" % (org or self.org, track), key_json(key), b"{}",
                        source=source)

    def owned(self, user):
        return int(db("SELECT count(*) FROM collections WHERE user_id = %s" % m.sql_literal(user)))

    def live_links(self, user):
        return int(db("SELECT count(*) FROM share_links WHERE creator_user_id = %s AND revoked_at IS NULL "
                      "AND (expires_at IS NULL OR expires_at > now())" % m.sql_literal(user)))

    def test_collections_up_to_the_quota_in_all_orgs_then_422_and_a_delete_frees_one(self):
        user, key = self.w.principal(self.org, self.org2)
        made = []
        for org in (self.org, self.org, self.org2):   # the quota is the user's, all orgs together
            r = self.create_collection(key, org)
            self.assertEqual(r.status, 201, r.body[:300])
            made.append((org, r.json()["id"]))
        for org in (self.org, self.org2):
            self.assert_quota_error(self.create_collection(key, org), "max_collections_per_user", QUOTA_COLLECTIONS,
                                    "POST", self.collections_path(org))
        self.assertEqual(self.owned(user), QUOTA_COLLECTIONS)
        # Another member's quota is their own.
        _, other_key = self.w.principal(self.org)
        self.assertEqual(self.create_collection(other_key).status, 201)
        # A delete frees one slot, exactly one.
        org, first = made[0]
        r = exchange("DELETE", "%s/%s" % (self.collections_path(org), first), {"X-API-Key": key})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.create_collection(key, self.org2).status, 201)
        self.assert_quota_error(self.create_collection(key), "max_collections_per_user", QUOTA_COLLECTIONS,
                                "POST", self.collections_path())
        self.assertEqual(self.owned(user), QUOTA_COLLECTIONS)

    def test_an_idempotency_key_repeat_still_replays_at_the_quota(self):
        user, key = self.w.principal(self.org)
        for _ in range(QUOTA_COLLECTIONS - 1):
            self.assertEqual(self.create_collection(key).status, 201)
        idem = m.unique("idem")
        first = self.create_collection(key, idempotency_key=idem, name="last one")
        self.assertEqual(first.status, 201, first.body[:300])
        again = self.create_collection(key, idempotency_key=idem, name="last one")
        self.assertEqual(again.status, 201, again.body[:300])
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(again.body, first.body)
        self.assert_quota_error(self.create_collection(key, idempotency_key=m.unique("idem")),
                                "max_collections_per_user", QUOTA_COLLECTIONS, "POST", self.collections_path())
        self.assertEqual(self.owned(user), QUOTA_COLLECTIONS)

    def race(self, send, n, hold_user=None):
        """n requests at once, each from its own address (so nginx's per-address limits stay out of
        it), released together by a barrier; with `hold_user`, while that user's row is held (each
        create then waits after its count, see UserRowHold). Returns their answers."""
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait(10)
            return send("127.0.3.%d" % (100 + i), i)
        hold = UserRowHold(hold_user, 2) if hold_user else None
        try:
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return list(pool.map(one, range(n)))
        finally:
            if hold:
                hold.release()

    def test_concurrent_creates_never_pass_the_collection_quota(self):
        user, key = self.w.principal(self.org)
        # Room for one, fewer than the workers that run creates at once: each of them would pass a
        # count that the others' inserts do not change yet. Then room for all, without the hold.
        for round_, (room, keyed, hold) in enumerate(((1, False, True), (1, True, True), (QUOTA_COLLECTIONS, False, False),
                                                      (QUOTA_COLLECTIONS, True, False))):
            db("DELETE FROM collections WHERE user_id = %s" % m.sql_literal(user))
            for _ in range(QUOTA_COLLECTIONS - room):
                self.w.collection(self.org, user)
            answers = self.race(lambda source, i: self.create_collection(
                key, source=source, idempotency_key=m.unique("idem") if keyed else None), 12,
                hold_user=user if hold else None)
            statuses = sorted(r.status for r in answers)
            print("\nquota race %d (%s%s): 12 creates at once with room for %d -> %s"
                  % (round_, "keyed" if keyed else "plain", ", row held" if hold else "", room, statuses))
            self.assertEqual(statuses, [201] * room + [422] * (12 - room),
                             [r.body[:200] for r in answers if r.status not in (201, 422)])
            for r in answers:
                if r.status == 422:
                    self.assert_quota_error(r, "max_collections_per_user", QUOTA_COLLECTIONS, "POST",
                                            self.collections_path())
            self.assertEqual(self.owned(user), QUOTA_COLLECTIONS)

    def test_concurrent_share_creates_never_pass_the_link_quota(self):
        user, key = self.w.principal(self.org)
        track = self.w.track(self.org, creator=user)
        for round_, (room, hold) in enumerate(((1, True), (QUOTA_LINKS, False))):
            db("UPDATE share_links SET revoked_at = now() WHERE creator_user_id = %s AND revoked_at IS NULL"
               % m.sql_literal(user))
            for _ in range(QUOTA_LINKS - room):
                self.assertEqual(self.share(key, track).status, 201)
            answers = self.race(lambda source, i: self.share(key, track, source=source), 10,
                                hold_user=user if hold else None)
            statuses = sorted(r.status for r in answers)
            print("\nshare quota race %d%s: 10 creates at once with room for %d -> %s"
                  % (round_, " (row held)" if hold else "", room, statuses))
            self.assertEqual(statuses, [201] * room + [422] * (10 - room),
                             [r.body[:200] for r in answers if r.status not in (201, 422)])
            self.assertEqual(self.live_links(user), QUOTA_LINKS)

    def test_share_links_count_while_live_and_a_revoke_or_an_expiry_frees_one(self):
        user, key = self.w.principal(self.org)
        t1 = self.w.track(self.org, creator=user)
        t2 = self.w.track(self.org, creator=user)
        links = []
        for track in (t1, t1, t2, t2):   # per user, whatever the track
            r = self.share(key, track)
            self.assertEqual(r.status, 201, r.body[:300])
            links.append(r.json()["id"])
        share_path = "/v1/music/%s/tracks/%s/share" % (self.org, t1)
        self.assert_quota_error(self.share(key, t1), "max_share_links_per_user", QUOTA_LINKS, "POST", share_path)
        # Someone who may not share the track gets its 404, whatever the creator's count.
        _, other_key = self.w.principal(self.org)
        self.assertEqual(self.share(other_key, t1).status, 404)
        # A revoked link no longer counts…
        r = exchange("DELETE", "/v1/music/%s/shares/%s" % (self.org, links[0]), {"X-API-Key": key})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.share(key, t1).status, 201)
        self.assert_quota_error(self.share(key, t2), "max_share_links_per_user", QUOTA_LINKS, "POST",
                                "/v1/music/%s/tracks/%s/share" % (self.org, t2))
        # …nor an expired one.
        db("UPDATE share_links SET expires_at = now() - interval '1 second' WHERE id = %s" % m.sql_literal(links[1]))
        self.assertEqual(self.share(key, t2).status, 201)
        self.assert_quota_error(self.share(key, t2), "max_share_links_per_user", QUOTA_LINKS, "POST",
                                "/v1/music/%s/tracks/%s/share" % (self.org, t2))
        self.assertEqual(self.live_links(user), QUOTA_LINKS)


def load_tests(loader, tests, pattern):
    """Classes in this order: the URL and in-flight tests on the stack as it is, then the error log
    (which stops the workers), then the quotas (which restart them on other settings)."""
    order = [PublicUrlTests, InFlightLimitTests, ShareTokenLogTests, QuotaTests]
    suite = unittest.TestSuite()
    for cls in order:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    unittest.main(verbosity=2)
