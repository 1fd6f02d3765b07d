"""Stdlib-only helpers for the operations tests (process manager on real processes).

Everything here acts on the stack described by $MUSIC_API_STACK/env.json and only on
processes of that stack, found by PID (the api_pid_file and the master's children).
Builds on tests/support/musicapi.py and apiproc.py (starting and stopping the API).
"""

import collections
import os
import re
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import musicapi  # noqa: E402
from processes import alive, children, proc_stat, read_pid, workers  # noqa: E402,F401
from musicapi import World, key_headers, load_env, tracks_path  # noqa: E402,F401
from apiproc import (  # noqa: E402,F401
    api_environment, own_child, start_api, stop_api, wait_exit, wait_for, wait_socket)

LOCKED_TABLE = "library_saves"


def env():
    return load_env()


def say(*parts):
    """A measured figure for the closing note: stdout, flushed at once."""
    sys.stdout.write("[ops] " + " ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- waiting

# --------------------------------------------------------------------------- processes

def socket_fds(pid):
    """Number of sockets pid holds open."""
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return 0
    return n


def worker_sockets(master):
    """{worker pid: sockets it holds} now: the baseline busy_workers compares against."""
    return {p: socket_fds(p) for p in workers(master)}


def busy_workers(master, idle):
    """Workers holding an accepted FastCGI connection: one socket more than when idle (`idle`
    from worker_sockets()). An idle worker holds the listening socket and its database sessions,
    one or two (a worker that has served a write also holds the write session)."""
    return [p for p in workers(master) if socket_fds(p) > idle.get(p, 2)]


def master_pid():
    with open(env()["api_pid_file"], encoding="ascii") as f:
        return int(f.read().strip())


def worker_pids(master=None):
    return workers(master if master is not None else master_pid())


def wait_pool(size, master=None, timeout=5.0, must_exclude=()):
    """Wait until the master has exactly `size` live workers, none of them in must_exclude.

    Returns (pids, seconds)."""
    master = master if master is not None else master_pid()
    excl = set(must_exclude)

    def ready():
        pids = workers(master)
        return pids if len(pids) == size and not (set(pids) & excl) else None

    return wait_for(ready, timeout, 0.02, "a pool of %d workers under master %d (excluding %s)"
                    % (size, master, sorted(excl)))


# --------------------------------------------------------------------------- log

_LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    out = {}
    for k, v in _LOGFMT.findall(line):
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[k] = v
    return out


class LogWatch:
    """The part of the API log written after this object was made."""

    def __init__(self, path=None):
        self.path = path or env()["api_log"]
        try:
            self.offset = os.path.getsize(self.path)
        except FileNotFoundError:
            self.offset = 0

    def text(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def events(self, name=None):
        """Parsed lines (dicts), optionally only those with event=name."""
        out = []
        for line in self.text().splitlines():
            d = parse_logfmt(line)
            if name is None or d.get("event") == name:
                out.append(d)
        return out

    def trace_pid(self, trace_id, timeout=2.0):
        """The worker pid that logged the request with this trace id."""
        def find():
            for ev in self.events("request"):
                if ev.get("trace_id") == trace_id:
                    return ev.get("pid")
            return None
        return int(wait_for(find, timeout, 0.02, "the request line of " + trace_id)[0])

    def wait_event(self, name, timeout=5.0, count=1):
        return wait_for(lambda: len(self.events(name)) >= count and self.events(name), timeout,
                        0.05, "%d x event=%s in %s" % (count, name, self.path))[0]


_SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                        r"SUMMARY: (Address|Undefined|Leak)")


def sanitizer_report(text, context=1200):
    """The first sanitizer report in text (as tests/support/check-sanitizer-log looks for
    them), or None."""
    m = _SANITIZER.search(text)
    return None if m is None else text[max(0, m.start() - 80):m.start() + context]


# --------------------------------------------------------------------------- config

def rewrite_conf(updates, path=None):
    """Set `key = value` lines in the stack's music-api.conf (a value of None removes the key).

    Replaces the file atomically; returns the original text, for restore_conf."""
    path = path or env()["api_conf"]
    with open(path, encoding="utf-8") as f:
        original = f.read()
    lines = original.splitlines()
    for key, value in updates.items():
        pat = re.compile(r"^\s*%s\s*=" % re.escape(key))
        new = [] if value is None else ["%s = %s" % (key, value)]
        found = False
        out = []
        for line in lines:
            if pat.match(line):
                if not found:
                    out.extend(new)
                found = True
            else:
                out.append(line)
        if not found:
            out.extend(new)
        lines = out
    _write_atomic(path, "\n".join(lines) + "\n")
    return original


def restore_conf(text, path=None):
    _write_atomic(path or env()["api_conf"], text)


def _write_atomic(path, text):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    except FileNotFoundError:
        pass
    os.replace(tmp, path)


conf_value = musicapi.conf_value


# --------------------------------------------------------------------------- data

class Fixture:
    """A fresh org with one saved track and `keys` principals that can list it."""

    def __init__(self, tag, keys=4):
        self.world = World(tag)
        self.org = self.world.org()
        self.track = self.world.track(self.org)
        self.keys = []
        for _ in range(keys):
            user, key = self.world.principal(self.org)
            self.world.save(self.org, user, self.track)
            self.keys.append(key)
        self.path = tracks_path(self.org)

    def get(self, key=None, timeout=30):
        """One listing request (no 429 retry: a 429 is reported, not hidden)."""
        return musicapi.request("GET", self.path, key_headers(key or self.keys[0]),
                                timeout=timeout, retry_rate_limited=False)


def error_code(response):
    try:
        return response.json()["error"]["code"]
    except Exception:  # noqa: BLE001 - any non-envelope body
        return None


def wait_serving(fixture, timeout=10.0):
    """Wait until a listing answers 200; returns seconds waited."""
    def ok():
        try:
            return fixture.get(timeout=5).status == 200
        except OSError:
            return False
    return wait_for(ok, timeout, 0.1, "a 200 from the stack")[1]


# --------------------------------------------------------------------------- load

class Stream:
    """A bounded steady stream of listing requests over loopback.

    `threads` threads (one key each, so nginx's per-key rate limit of 20 r/s is not hit),
    each paced to one request every `interval` seconds, for at most `duration` seconds and
    at most `max_total` requests in all. Every response that is not a 200 and every
    exception is recorded with its time."""

    def __init__(self, fixture, threads=4, duration=6.0, interval=0.08, max_total=None,
                 timeout=20.0):
        assert 1 <= threads <= 6
        self.fixture = fixture
        self.threads = threads
        self.duration = duration
        self.interval = interval
        self.max_total = max_total
        self.timeout = timeout
        self.statuses = collections.Counter()
        self.failures = []   # dicts: t (s since start), thread, status|error, code, elapsed
        self.sent = 0
        self.latencies = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []
        self.t0 = None

    def _claim(self):
        with self._lock:
            if self.max_total is not None and self.sent >= self.max_total:
                return False
            self.sent += 1
            return True

    def _run(self, index):
        key = self.fixture.keys[index % len(self.fixture.keys)]
        deadline = self.t0 + self.duration
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline and self._claim():
            started = time.monotonic()
            rec = None
            try:
                r = musicapi.request("GET", self.fixture.path, key_headers(key),
                                     timeout=self.timeout, retry_rate_limited=False)
                status = r.status
                if status != 200:
                    rec = dict(status=status, code=error_code(r), body=r.body[:300])
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                status = "exception"
                rec = dict(error="%s: %s" % (type(e).__name__, e))
            ended = time.monotonic()
            with self._lock:
                self.statuses[status] += 1
                self.latencies.append(ended - started)
                if rec is not None:
                    rec.update(t=round(started - self.t0, 3), thread=index,
                               elapsed=round(ended - started, 3))
                    self.failures.append(rec)
            n += 1
            pause = self.t0 + index * self.interval / self.threads + n * self.interval - time.monotonic()
            if pause > 0:
                self._stop.wait(min(pause, self.interval))

    def start(self):
        self.t0 = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def elapsed(self):
        return time.monotonic() - self.t0

    def stop(self):
        self._stop.set()
        return self.join()

    def join(self):
        for t in self._workers:
            t.join(self.duration + self.timeout + 5)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def completed(self):
        return sum(self.statuses.values())

    def summary(self):
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000 if lat else 0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0
        return ("%d requests in %.1fs (%d threads), statuses %s, %d failed, p50 %.0f ms, p99 %.0f ms"
                % (self.completed, self.elapsed(), self.threads, dict(self.statuses),
                   len(self.failures), p50, p99))


# --------------------------------------------------------------------------- slow requests

class TableLock:
    """Holds ACCESS EXCLUSIVE on a table for `seconds`, as the owner role, in a background psql:
    every listing blocks until it is released (or until statement_timeout)."""

    def __init__(self, seconds, table=LOCKED_TABLE):
        self.seconds = seconds
        self.table = table
        self.app = "ops_lock_" + uuid.uuid4().hex[:10]
        self.proc = None

    def _psql(self, sql):
        return musicapi.psql(env()["db_owner"], sql, timeout=15)[1].strip()

    def start(self, timeout=5.0):
        e = env()
        penv = dict(os.environ)
        penv.setdefault("PGCONNECT_TIMEOUT", "10")
        sql = ("BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%s); COMMIT;"
               % (self.table, self.seconds))
        self.proc = subprocess.Popen(
            [e.get("psql") or "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-d", "%s application_name=%s" % (e["db_owner"], self.app), "-c", sql],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=penv)
        self.acquired_at = None
        wait_for(self.granted, timeout, 0.05, "the lock on " + self.table)
        self.acquired_at = time.monotonic()
        return self

    def granted(self):
        if self.proc.poll() is not None:
            raise AssertionError("lock holder exited %s: %s"
                                 % (self.proc.returncode, self.proc.stderr.read()))
        return self._psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = '%s' AND l.relation = '%s'::regclass "
            "AND l.mode = 'AccessExclusiveLock' AND l.granted" % (self.app, self.table)) == "1"

    def waiters(self):
        """Sessions waiting for a lock on the table (a request in flight, blocked)."""
        return int(self._psql("SELECT count(*) FROM pg_locks WHERE relation = '%s'::regclass "
                              "AND NOT granted" % self.table))

    def release(self):
        """Ends the holder now (idempotent): terminates its backend, then reaps psql."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self._psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = '%s'" % self.app)
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - last resort below
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()

    def wait_done(self, timeout):
        """Wait for the holder to commit by itself."""
        self.proc.wait(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.release()


class BackgroundRequest:
    """One listing request run in a thread; `result` gets "r" (the response) or "error", and "secs"."""

    def __init__(self, fixture, key, timeout=30):
        self.result = {}
        self._thread = threading.Thread(target=self._run, args=(fixture, key, timeout), daemon=True)

    def _run(self, fixture, key, timeout):
        started = time.monotonic()
        try:
            self.result["r"] = fixture.get(key, timeout=timeout)
        except Exception as ex:  # noqa: BLE001 - any failure is the test's finding
            self.result["error"] = ex
        self.result["secs"] = time.monotonic() - started

    def start(self):
        self._thread.start()
        return self

    def join(self, timeout):
        self._thread.join(timeout)
