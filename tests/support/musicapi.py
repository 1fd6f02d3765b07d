"""Stdlib-only helpers for music-api's black-box tests (e2e and integration).

The harness starts PostgreSQL, music-api and nginx, then runs each test file with
MUSIC_API_STACK=DIR, where DIR/env.json describes the running stack (see load_env).
Every test class builds its own uniquely named data through `music-admin` (World), so
tests never depend on each other or on data that was there before.
"""

import datetime
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse
import uuid
from collections import OrderedDict, namedtuple

_ENV = None

# Every plaintext key this process was given by `music-admin key create`; the log test
# checks that none of them ever reaches the API log.
ISSUED_KEYS = []

REQUEST_ID_RE = re.compile(r"^req_\S{16,}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
KEY_RE = re.compile(r"^mk_[A-Za-z0-9]+_\S+$")
ERROR_FIELDS = {"code", "message", "system_message", "type", "status", "details",
                "trace_id", "timestamp"}
ITEM_KEYS = ["id", "title", "engine", "mode", "measured_duration_seconds", "instrumental",
             "licence_class", "created_at", "playback_url", "stem_urls"]
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CACHE_CONTROL = "private, no-store"
# List pages may be kept and revalidated (ETag); everything else is never stored.
LIST_CACHE_CONTROL = "private, no-cache"
CAP = "USE_MUSIC_GENERATION"

# Text that must never reach a client: SQL, driver and C++ internals.
_LEAK_PATTERNS = [re.compile(p, re.I) for p in (
    r"\bselect\b.*\bfrom\b", r"\bsoci\b", r"postgres", r"libpq", r"std::", r"what\(\)",
    r"traceback", r"\.cpp\b", r"\.hpp\b", r"sqlstate", r"\brelation\b", r"segmentation",
    r"exception")]


# --------------------------------------------------------------------------- environment

def load_env():
    """The stack description from $MUSIC_API_STACK/env.json (read once)."""
    global _ENV
    if _ENV is None:
        stack = os.environ.get("MUSIC_API_STACK")
        if not stack:
            sys.stderr.write("MUSIC_API_STACK is not set: it must name the directory holding "
                             "env.json of a running stack (the harness sets it)\n")
            raise SystemExit(2)
        with open(os.path.join(stack, "env.json"), encoding="utf-8") as f:
            _ENV = json.load(f)
    return _ENV


def conf_value(key, default=None, path=None):
    """The value of `key` in the stack's music-api.conf (or `path`), else `default`."""
    try:
        with open(path or load_env()["api_conf"], encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\s*%s\s*=\s*(.*?)\s*$" % re.escape(key), line)
                if m and m.group(1):
                    return m.group(1)
    except OSError:
        pass
    return default


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------- processes

def admin(*args, check=True, env_extra=None, with_db=True, with_pepper=True, timeout=120):
    """Run music-admin ARGS; returns (returncode, stdout, stderr) as text.

    MUSIC_API_DB is the owner conninfo and MUSIC_API_PEPPER_FILE the stack's pepper
    unless with_db / with_pepper say otherwise. check=True fails on a non-zero exit.
    """
    e = load_env()
    env = dict(os.environ)
    env.pop("MUSIC_API_DB", None)
    env.pop("MUSIC_API_PEPPER_FILE", None)
    if with_db:
        env["MUSIC_API_DB"] = e["db_owner"]
    if with_pepper:
        env["MUSIC_API_PEPPER_FILE"] = e["pepper_file"]
    if e.get("media_root"):
        env["MUSIC_API_MEDIA_ROOT"] = e["media_root"]
        env["MUSIC_API_MEDIA_KEYS_FILE"] = e["media_keys_file"]
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    if env_extra:
        env.update(env_extra)
    argv = [e["admin"]] + [str(a) for a in args]
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("music-admin %r exited %d\nstdout: %s\nstderr: %s"
                             % (argv[1:], p.returncode, out, err))
    return p.returncode, out, err


def admin_id(*args):
    """Run a create command and return its single-line stdout (the new id or key)."""
    _, out, _ = admin(*args)
    lines = out.splitlines()
    if len(lines) != 1 or not lines[0].strip():
        raise AssertionError("music-admin %r printed %r, expected only one id" % (args, out))
    return lines[0].strip()


def psql(conninfo, sql, check=True, timeout=60):
    """Run one SQL string through psql; returns (returncode, stdout, stderr)."""
    e = load_env()
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    argv = [e.get("psql") or "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-d", conninfo, "-c", sql]
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("psql %r exited %d\nstderr: %s" % (sql, p.returncode, err))
    return p.returncode, out, err


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def sql_ident(s):
    return '"' + s.replace('"', '""') + '"'


# --------------------------------------------------------------------------- HTTP

class Headers:
    """Response headers: case-insensitive lookup, repeated headers kept."""

    def __init__(self, pairs):
        self.raw = list(pairs)

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.raw if k.lower() == n]

    def get(self, name, default=None):
        values = self.get_all(name)
        return values[0] if values else default

    def __getitem__(self, name):
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return values[0]

    def __contains__(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return "Headers(%r)" % (self.raw,)


class Response(namedtuple("Response", "status headers body")):
    """(status, Headers, body bytes) with JSON helpers."""

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def ordered(self):
        """The body parsed with every object as a list of (key, value) pairs, in wire order."""
        return json.loads(self.body.decode("utf-8"), object_pairs_hook=list)


def ssl_context(**kw):
    ctx = ssl.create_default_context(cafile=load_env()["ca_file"])
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def request(method, path, headers=None, body=None, timeout=30, retry_rate_limited=True):
    """One HTTPS request on a new connection to nginx; returns Response.

    path is sent exactly as given (percent-encode yourself). headers is a dict or a
    list of (name, value) pairs. nginx rate-limits per key id (and per address without a
    key); a 429 is waited out as Retry-After says and the request sent again, since no
    test here is about the rate limit itself.
    """
    for _ in range(60):
        r = _request_once(method, path, headers, body, timeout)
        if r.status != 429 or not retry_rate_limited:
            return r
        try:
            wait = float(r.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        time.sleep(min(max(wait, 0.1), 5.0))
    return r


def _request_once(method, path, headers, body, timeout):
    e = load_env()
    conn = http.client.HTTPSConnection(e["host"], int(e["port"]), context=ssl_context(),
                                       timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        pairs = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in pairs:
            conn.putheader(k, v)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, Headers(resp.getheaders()), data)
    finally:
        conn.close()


def raw_exchange(data, timeout=15):
    """Send raw bytes over TLS (ALPN http/1.1) and parse the one response nginx sends back (read up
    to its Content-Length, or to the close of an HTTP/1.0 answer)."""
    e = load_env()
    ctx = ssl_context()
    ctx.set_alpn_protocols(["http/1.1"])
    buf = b""
    with socket.create_connection((e["host"], int(e["port"])), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            try:
                t.sendall(data)
            except (ssl.SSLError, OSError):
                pass    # nginx may answer and close before it has read everything
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                buf += chunk
                if b"\r\n\r\n" in buf:
                    head, body = buf.split(b"\r\n\r\n", 1)
                    length = None
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v.strip())
                    if length is not None and len(body) >= length:
                        break
    if b"\r\n\r\n" not in buf:
        raise AssertionError("no complete response to %r: %r" % (data[:200], buf[:500]))
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    pairs = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        pairs.append((k.strip(), v.strip()))
    return Response(status, Headers(pairs), body)


def key_headers(key):
    return {} if key is None else {"X-API-Key": key}


def tracks_path(org, query=None, slash=False):
    p = "/v1/music/%s/tracks%s" % (org, "/" if slash else "")
    if query is not None:
        p += "?" + query
    return p


def q(value):
    """Percent-encode a query value as UTF-8 (space as %20)."""
    return urllib.parse.quote(value, safe="")


def key_id(key):
    """mk_<id> of a key mk_<id>_<secret>."""
    rest = key[3:]
    return "mk_" + rest.split("_", 1)[0]


def key_secret(key):
    return key[len(key_id(key)) + 1:]


# --------------------------------------------------------------------------- time

def utc(s):
    """Parse RFC 3339 (any offset, fractional seconds) to an aware UTC datetime."""
    s2 = s.replace("Z", "+00:00").replace("z", "+00:00")
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:\d{2})$", s2)
    if not m:
        raise ValueError(s)
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    dt = datetime.datetime.fromisoformat(m.group(1) + "." + frac + m.group(3))
    return dt.astimezone(datetime.timezone.utc)


def shown(s):
    """How the API renders a timestamp: UTC, seconds truncated, 'Z'."""
    return utc(s).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


# --------------------------------------------------------------------------- fixtures

class World:
    """Builds fresh, uniquely named data through music-admin and remembers it."""

    def __init__(self, tag="w"):
        self.tag = unique(tag)
        self.n = 0
        self.track_info = {}    # track id -> dict(engine, mode, title, ...)
        self.saved_at = {}      # (org, user, track) -> aware UTC datetime

    def _next(self):
        self.n += 1
        return self.n

    def org(self, name=None):
        return admin_id("org", "create", name or "%s-org%d" % (self.tag, self._next()))

    def user(self, email=None):
        return admin_id("user", "create",
                        email or "%s-u%d@example.test" % (self.tag, self._next()))

    def member(self, org, user, caps=(CAP,)):
        args = ["member", "add", org, user]
        for c in caps:
            args += ["--capability", c]
        admin(*args)

    def key(self, user, expires_at=None):
        args = ["key", "create", user]
        if expires_at:
            args += ["--expires-at", expires_at]
        k = admin_id(*args)
        ISSUED_KEYS.append(k)
        return k

    def principal(self, *orgs, caps=(CAP,)):
        """A new user, member of each org with caps, and a key: (user, key)."""
        u = self.user()
        for o in orgs:
            self.member(o, u, caps)
        return u, self.key(u)

    def track(self, org, engine="studio", mode="creation", title=None, duration=None,
              instrumental=False, licence=None, created_at=None, creator=None, audio=None,
              stems=None):
        args = ["track", "create", org, "--engine", engine, "--mode", mode]
        if creator is not None:
            args += ["--creator", creator]
        if audio is not None:
            args += ["--audio", audio]
        for name, path in (stems or {}).items():
            args += ["--stem", "%s=%s" % (name, path)]
        if title is not None:
            args += ["--title", title]
        if duration is not None:
            args += ["--duration", duration]
        if instrumental:
            args.append("--instrumental")
        if licence is not None:
            args += ["--licence-class", licence]
        if created_at is not None:
            args += ["--created-at", created_at]
        t = admin_id(*args)
        self.track_info[t] = dict(org=org, engine=engine, mode=mode, title=title,
                                  duration=duration, instrumental=instrumental,
                                  licence=licence or "unclear", created_at=created_at,
                                  creator=creator)
        return t

    def save(self, org, user, track, saved_at=None):
        args = ["library", "save", org, user, track]
        if saved_at is not None:
            args += ["--saved-at", saved_at]
        admin(*args)
        self.saved_at.setdefault((org, user, track),
                                 utc(saved_at) if saved_at else now_utc())

    def collection(self, org, user, name=None):
        return admin_id("collection", "create", org, user,
                        name or "%s-c%d" % (self.tag, self._next()))

    def collect(self, coll, track):
        admin("collection", "add", coll, track)

    def expected_order(self, org, user, tracks=None):
        """Track ids of user's saves in org, newest saved_at first, ties by id descending."""
        rows = [(at, t) for (o, u, t), at in self.saved_at.items() if o == org and u == user
                and (tracks is None or t in tracks)]
        rows.sort(key=lambda r: (r[0], r[1].encode("utf-8")), reverse=True)
        return [t for _, t in rows]


# --------------------------------------------------------------------------- assertions

class ApiTestCase(unittest.TestCase):
    maxDiff = None

    def get(self, path, key=None, headers=None, method="GET"):
        h = dict(key_headers(key))
        if headers:
            h.update(headers)
        return request(method, path, h)

    def listing(self, org, key, query=None, slash=False):
        """GET the listing, assert 200 and the common headers; returns the parsed body."""
        r = self.get(tracks_path(org, query, slash), key)
        self.assertEqual(r.status, 200, "GET %s -> %d %r"
                         % (tracks_path(org, query, slash), r.status, r.body[:500]))
        self.assert_common_headers(r, LIST_CACHE_CONTROL)
        return r.json()

    def ids(self, org, key, query=None):
        return [i["id"] for i in self.listing(org, key, query)["items"]]

    def assert_common_headers(self, r, cache_control=None):
        """Content-Type, Cache-Control and X-Request-ID. Cache-Control by default: a list page
        (the only answer with an ETag) may be kept and revalidated; nothing else is stored."""
        if cache_control is None:
            list_page = r.status in (200, 304) and "ETag" in r.headers
            cache_control = LIST_CACHE_CONTROL if list_page else CACHE_CONTROL
        self.assertEqual(r.headers.get_all("Content-Type"), [JSON_CONTENT_TYPE], r.headers)
        self.assertEqual(r.headers.get_all("Cache-Control"), [cache_control], r.headers)
        rid = r.headers.get_all("X-Request-ID")
        self.assertEqual(len(rid), 1, r.headers)
        self.assertRegex(rid[0], REQUEST_ID_RE)
        return rid[0]

    def assert_no_leak(self, text):
        for p in _LEAK_PATTERNS:
            self.assertIsNone(p.search(text), "internal text %r in %r" % (p.pattern, text))

    def assert_error(self, r, status, code, etype, field=None):
        """Assert an error response: status, headers, the full envelope. Returns error."""
        self.assertEqual(r.status, status, "expected %d %s, got %d %r"
                         % (status, code, r.status, r.body[:500]))
        rid = self.assert_common_headers(r)
        body = r.json()
        self.assertIsInstance(body, dict)
        self.assertEqual(set(body), {"success", "error"}, body)
        self.assertIs(body["success"], False)
        err = body["error"]
        self.assertEqual(set(err), ERROR_FIELDS, err)
        self.assertEqual(err["code"], code, err)
        self.assertEqual(err["type"], etype, err)
        self.assertEqual(err["status"], status, err)
        self.assertNotIsInstance(err["status"], bool)
        self.assertEqual(err["trace_id"], rid, "trace_id must equal X-Request-ID")
        self.assertRegex(err["timestamp"], TIMESTAMP_RE)
        ts = datetime.datetime.strptime(err["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertLess(abs((ts - now_utc()).total_seconds()), 300, err["timestamp"])
        for f in ("message", "system_message"):
            self.assertIsInstance(err[f], str, err)
        self.assertTrue(err["message"].strip(), err)
        self.assertIn(" ", err["message"].strip(), "message should be a sentence: %r" % err)
        self.assertIsInstance(err["details"], dict, err)
        if status == 422:
            self.assertEqual(set(err["details"]), {"field"}, err)
            if field is not None:
                if isinstance(field, (tuple, list)):
                    self.assertIn(err["details"]["field"], field, err)
                else:
                    self.assertEqual(err["details"]["field"], field, err)
        else:
            self.assertEqual(err["details"], {}, err)
        for f in ("code", "message", "system_message", "type"):
            self.assert_no_leak(err[f])
        self.assert_no_leak(json.dumps(err["details"]))
        return err

    def assert_same_error(self, a, b):
        """Two error objects that must not be told apart (no existence leak)."""
        strip = lambda e: {k: v for k, v in e.items() if k not in ("trace_id", "timestamp")}
        self.assertEqual(strip(a), strip(b))
