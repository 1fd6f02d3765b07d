"""The database goes away and comes back (issue 4).

Run as `MUSIC_API_STACK=DIR python3 tests/faults/test_database_faults.py` against a running stack
(see tests/support/musicapi.py). Must run as root or as the owner of the stack's PostgreSQL
cluster (the harness's user), and not beside other tests of the same stack: it stops PostgreSQL.

- PostgreSQL stopped under a steady request stream (4 client threads, ~15 s): every answer is a
  200 page or a 503 SERVICE_UNAVAILABLE envelope with Retry-After, within a bounded time, never a
  502 from nginx; after PostgreSQL starts again every worker serves 200 without a restart of
  music-api (master and workers keep their PIDs).
- A statement that exceeds its budget (a lock held longer than request_timeout) is cancelled on
  the server and answered with the 503 envelope; the worker serves the next request normally.

The figures (requests sent during the fault, failures and how, seconds to recover) are printed.
Whatever happens, PostgreSQL is running again when the file ends.
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from processes import alive, children, proc_stat, read_pid, workers  # noqa: E402,F401
from musicapi import (  # noqa: E402
    ApiTestCase, World, conf_value, load_env, psql, request, tracks_path, unique)
from writers import Writers, assert_judged, summary  # noqa: E402

MAX_ANSWER_SECONDS = 6.0     # no request may hang longer than this while the database is away
MAX_RECOVERY_SECONDS = 5.0   # from "PostgreSQL accepts connections" to "every answer is 200"


# --------------------------------------------------------------------------- stack control

def pg_socket_dir():
    e = load_env()
    m = re.search(r"(?:^|\s)host=(\S+)", e["db_owner"])
    if m and m.group(1).startswith("/"):
        return m.group(1)
    return os.path.join(os.path.dirname(e["pg_data"]), "run")


def pg_ctl(*args, timeout=90):
    e = load_env()
    argv = [os.path.join(e["pg_bin"], "pg_ctl"), "-D", e["pg_data"]] + list(args)
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    # pg_ctl's postmaster must not inherit pipes we wait on: output goes to a file
    with tempfile.TemporaryFile() as out:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                           timeout=timeout, cwd="/")
        out.seek(0)
        return p.returncode, out.read().decode("utf-8", "replace")


def pg_running():
    return pg_ctl("status")[0] == 0


def pg_stop():
    rc, out = pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
    if rc != 0:
        raise AssertionError("pg_ctl stop failed: %s" % out)


def pg_start():
    e = load_env()
    log = os.path.join(os.path.dirname(e["pg_data"]), "postgresql.log")
    opts = ("-c listen_addresses='' -k %s -c max_connections=200 -c fsync=off "
            "-c shared_buffers=256MB" % pg_socket_dir())
    rc, out = pg_ctl("-l", log, "-w", "-t", "60", "-o", opts, "start")
    if rc != 0 and not pg_running():
        raise AssertionError("pg_ctl start failed: %s" % out)


def ensure_pg_running():
    if not pg_running():
        pg_start()


def read_from(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def request_pids(log_text):
    """trace_id -> (pid, status) from the API log's request lines."""
    out = {}
    for line in log_text.splitlines():
        if "event=request" not in line:
            continue
        t = re.search(r"\btrace_id=(\S+)", line)
        p = re.search(r"\bpid=(\d+)", line)
        s = re.search(r"\bstatus=(\d+)", line)
        if t and p and s:
            out[t.group(1)] = (int(p.group(1)), int(s.group(1)))
    return out


class Sample:
    __slots__ = ("t0", "t1", "status", "response", "error")

    def __init__(self, t0, t1, response=None, error=None):
        self.t0, self.t1 = t0, t1
        self.response, self.error = response, error
        self.status = response.status if response is not None else None


class DbFaultCase(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        ensure_pg_running()
        e = load_env()
        cls.retry_after = conf_value("retry_after", "2")
        cls.request_timeout = float(conf_value("request_timeout", "10"))
        cls.master = read_pid(e["api_pid_file"])
        if not alive(cls.master):
            raise AssertionError("music-api is not running (pid file %s)" % e["api_pid_file"])
        w = cls.w = World("dbfault")
        cls.org = w.org()
        cls.user = w.user()
        w.member(cls.org, cls.user)
        cls.keys = [w.key(cls.user) for _ in range(12)]
        tracks = [w.track(cls.org, mode="creation" if i % 2 else "focus") for i in range(4)]
        for i, t in enumerate(tracks):
            w.save(cls.org, cls.user, t, "2025-07-0%dT10:00:00Z" % (i + 1))
        cls.coll = w.collection(cls.org, cls.user)
        w.collect(cls.coll, tracks[1])
        cls.path = tracks_path(cls.org, "limit=10")
        r = request("GET", cls.path, {"X-API-Key": cls.keys[0]})
        if r.status != 200:
            raise AssertionError("baseline listing: %d %r" % (r.status, r.body[:300]))
        cls.baseline = r.json()
        if len(cls.baseline["items"]) != 4:
            raise AssertionError("baseline listing has %r" % cls.baseline)

    @classmethod
    def tearDownClass(cls):
        ensure_pg_running()

    def tearDown(self):
        ensure_pg_running()

    def assert_503(self, r):
        err = self.assert_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
        # the API's own 503 (Retry-After = retry_after), not nginx's for an unreachable upstream
        self.assertEqual(r.headers.get_all("Retry-After"), [self.retry_after], r.headers)
        return err

    def assert_page(self, r):
        self.assertEqual(r.status, 200, r.body[:300])
        self.assert_common_headers(r)
        self.assertEqual(r.json(), self.baseline, "a 200 that is not the right page")

    def every_worker_serves_200(self, workers, max_rounds=40):
        """Send rounds of concurrent requests until each worker PID has logged a 200."""
        e = load_env()
        start = file_size(e["api_log"])
        served = set()
        rids = []
        lock = threading.Lock()
        failures = []

        def one(key):
            r = request("GET", self.path, {"X-API-Key": key})
            with lock:
                if r.status != 200 or r.json() != self.baseline:
                    failures.append((r.status, r.body[:200]))
                rids.append(r.headers.get("X-Request-ID"))

        n = 0
        for _ in range(max_rounds):
            ts = []
            for _ in range(len(workers) + 1):
                ts.append(threading.Thread(target=one, args=(self.keys[n % len(self.keys)],)))
                n += 1
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            time.sleep(0.05)
            seen = request_pids(read_from(e["api_log"], start))
            served = {seen[r][0] for r in rids if r in seen and seen[r][1] == 200}
            if workers <= served:
                break
        self.assertEqual(failures, [], "after recovery")
        return served, n


# =========================================================================== PostgreSQL stopped

class PostgresStoppedTests(DbFaultCase):
    THREADS = 4
    INTERVAL = 0.05          # per thread: 20 requests/s over 3 keys (nginx allows 20/s per key)
    PRE, DOWN, POST = 2.0, 5.0, 6.0

    def stream(self, tid, stop, samples, lock):
        keys = self.keys[tid * 3:(tid + 1) * 3]
        i = 0
        while not stop.is_set() and i < 2000:
            key = keys[i % len(keys)]
            i += 1
            t0 = time.monotonic()
            try:
                r = request("GET", self.path, {"X-API-Key": key}, timeout=20,
                            retry_rate_limited=False)
                s = Sample(t0, time.monotonic(), response=r)
            except Exception as ex:  # noqa: BLE001 - every failure is a finding
                s = Sample(t0, time.monotonic(), error=repr(ex))
            with lock:
                samples.append(s)
            rest = self.INTERVAL - (time.monotonic() - t0)
            if rest > 0:
                stop.wait(rest)

    def test_postgres_stopped_and_started_under_load(self):
        e = load_env()
        workers_before = set(workers(self.master))
        self.assertTrue(workers_before, "no workers under master %d" % self.master)
        api_log_start = file_size(e["api_log"])
        nginx_log = os.path.join(e["nginx_dir"], "error.log")
        nginx_log_start = file_size(nginx_log)

        samples, lock, stop = [], threading.Lock(), threading.Event()
        threads = [threading.Thread(target=self.stream, args=(i, stop, samples, lock))
                   for i in range(self.THREADS)]
        marks = {}
        try:
            for t in threads:
                t.start()
            time.sleep(self.PRE)
            marks["stop_begin"] = time.monotonic()
            pg_stop()
            marks["stop_done"] = time.monotonic()
            # With the database gone the host is alive but not ready (a balancer's two questions).
            health = {path: request("GET", path) for path in ("/music-api/live", "/music-api/ready")}
            time.sleep(max(0.0, self.DOWN - (time.monotonic() - marks["stop_done"])))
            marks["start_begin"] = time.monotonic()
            pg_start()
            marks["start_done"] = time.monotonic()
            time.sleep(self.POST)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
            ensure_pg_running()
        end = time.monotonic()

        samples.sort(key=lambda s: s.t0)
        during = [s for s in samples if marks["stop_begin"] <= s.t0 <= marks["start_done"]]
        failed = [s for s in during if s.status != 200]
        how = {}
        for s in failed:
            k = "exception" if s.error else str(s.status)
            how[k] = how.get(k, 0) + 1
        late_failures = [s for s in samples if s.t0 > marks["start_done"] and s.status != 200]
        after = [s for s in samples if s.t0 >= marks["start_done"]]
        # recovery: from "pg_ctl start returned" to the first request after which all are 200
        last_bad = max((s.t0 for s in samples if s.status != 200), default=None)
        first_good_after = min((s.t0 for s in samples
                                if s.status == 200 and (last_bad is None or s.t0 > last_bad)),
                               default=None)
        recovery = (None if first_good_after is None
                    else max(0.0, first_good_after - marks["start_done"]))
        first_503 = min((s.t1 for s in samples if s.status == 503), default=None)
        slowest = max((s.t1 - s.t0 for s in samples), default=0.0)
        print("\nPostgreSQL stop under load: %d requests in %.1f s over %d threads; "
              "PostgreSQL down from +%.2f s (stopped at +%.2f) to +%.2f s (accepting at +%.2f)"
              % (len(samples), end - samples[0].t0 if samples else 0, self.THREADS,
                 marks["stop_begin"] - samples[0].t0, marks["stop_done"] - samples[0].t0,
                 marks["start_begin"] - samples[0].t0, marks["start_done"] - samples[0].t0))
        print("  during the fault: %d sent, %d failed %s; first 503 %.2f s after the stop "
              "began; slowest answer %.2f s" % (
                  len(during), len(failed), how,
                  (first_503 - marks["stop_begin"]) if first_503 else float("nan"), slowest))
        print("  after PostgreSQL was back: %d sent, %d not 200; recovered in %s s" % (
            len(after), len(late_failures),
            "%.2f" % recovery if recovery is not None else "(never)"))

        self.assertEqual(health["/music-api/live"].status, 200, health["/music-api/live"].body)
        self.assertEqual(health["/music-api/ready"].status, 503, health["/music-api/ready"].body)
        self.assertEqual(health["/music-api/ready"].json()["error"]["code"], "SERVICE_UNAVAILABLE")
        self.assertGreater(len(samples), 100, "the stream hardly ran")
        errors = [s.error for s in samples if s.error]
        self.assertEqual(errors[:5], [], "requests failed without an HTTP answer")
        statuses = {s.status for s in samples}
        self.assertLessEqual(statuses, {200, 503}, "statuses seen: %s" % statuses)
        slow = [(round(s.t1 - s.t0, 2), s.status) for s in samples
                if s.t1 - s.t0 > MAX_ANSWER_SECONDS]
        self.assertEqual(slow, [], "answers slower than %.0f s" % MAX_ANSWER_SECONDS)
        for s in samples:
            if s.status == 503:
                with self.subTest(kind="503", at=round(s.t0 - samples[0].t0, 2)):
                    self.assert_503(s.response)
            elif s.status == 200:
                with self.subTest(kind="200", at=round(s.t0 - samples[0].t0, 2)):
                    self.assert_page(s.response)
        # while PostgreSQL was down, nothing could be served from it
        blind = [s for s in samples
                 if s.t0 >= marks["stop_done"] and s.t1 <= marks["start_begin"]]
        self.assertGreater(len(blind), 20)
        self.assertEqual({s.status for s in blind}, {503},
                         "answers while PostgreSQL was stopped")
        self.assertIsNotNone(recovery, "never served 200 again")
        self.assertLessEqual(recovery, MAX_RECOVERY_SECONDS)
        tail = [s for s in samples if s.t0 >= marks["start_done"] + MAX_RECOVERY_SECONDS]
        self.assertTrue(tail)
        self.assertEqual({s.status for s in tail}, {200})

        # music-api was never restarted, and no worker died
        self.assertTrue(alive(self.master), "music-api master %d is gone" % self.master)
        self.assertEqual(read_pid(e["api_pid_file"]), self.master)
        self.assertEqual(set(workers(self.master)), workers_before, "workers were replaced")
        log = read_from(e["api_log"], api_log_start)
        for event in ("worker_exited", "master_started", "workers_crash_looping"):
            self.assertNotIn("event=" + event, log)
        # nginx never failed to reach a worker (that would have been a 502 turned into 503)
        nginx_errors = [ln for ln in read_from(nginx_log, nginx_log_start).splitlines()
                        if "upstream" in ln]
        self.assertEqual(nginx_errors[:5], [])
        # and every worker serves 200 again
        served, sent = self.every_worker_serves_200(workers_before)
        print("  every worker served 200 again: %d of %d workers within %d requests"
              % (len(served & workers_before), len(workers_before), sent))
        self.assertLessEqual(workers_before, served)


# =========================================================================== statement budget

class StatementTimeoutTests(DbFaultCase):
    def lock_state(self):
        _, out, _ = psql(load_env()["db_owner"],
                         "SELECT coalesce(sum(CASE WHEN granted THEN 1 ELSE 0 END), 0) || ' ' || "
                         "coalesce(sum(CASE WHEN granted THEN 0 ELSE 1 END), 0) FROM pg_locks "
                         "WHERE relation = 'library_saves'::regclass")
        granted, waiting = out.split()
        return int(granted), int(waiting)

    def holder_has_lock(self, tag):
        """The lock is held once pg_locks shows it granted, or once the holder sleeps (which it
        only does after LOCK TABLE returned): two views, so one lagging cannot stall the test."""
        _, out, _ = psql(load_env()["db_owner"],
                         "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                         "AND wait_event = 'PgSleep'" % ("'" + tag + "'"))
        return int(out.strip() or 0) > 0 or self.lock_state()[0] > 0

    def test_statement_over_budget_is_cancelled_and_answered_503(self):
        e = load_env()
        tag = unique("h4lock").replace("-", "_")
        hold = int(self.request_timeout * 4 + 6)
        holder = subprocess.Popen(
            [e.get("psql") or "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-d", e["db_owner"] + " application_name=" + tag,
             "-c", "BEGIN; LOCK TABLE library_saves IN ACCESS EXCLUSIVE MODE; "
                   "SELECT pg_sleep(%d); COMMIT;" % hold],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        release_sql = ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = %s" % ("'" + tag + "'"))
        log_offset = os.path.getsize(e["api_log"])
        try:
            deadline = time.monotonic() + 30
            polls, slowest, started = 0, 0.0, time.monotonic()
            while True:
                poll_started = time.monotonic()
                locked = self.holder_has_lock(tag)
                polls += 1
                slowest = max(slowest, time.monotonic() - poll_started)
                if locked:
                    break
                if holder.poll() is not None:
                    self.fail("the lock holder exited (%s) after %.1f s before any of %d polls (slowest %.2f s) "
                              "saw its lock; stderr: %r" % (holder.returncode, time.monotonic() - started, polls,
                                                           slowest, holder.stderr.read() if holder.stderr else b""))
                if time.monotonic() > deadline:
                    _, activity, _ = psql(e["db_owner"], "SELECT pid, application_name, state, wait_event_type, "
                                          "wait_event, left(query, 80) FROM pg_stat_activity", check=False)
                    self.fail("the lock was never taken; pg_stat_activity:\n" + activity)
                time.sleep(0.05)
            locked_at = time.monotonic()
            # Two rounds of one blocked listing per worker (a busy worker accepts nothing else, so
            # each round reaches every worker): the first times out in the statement, the second in
            # preparing that statement again, since a prepare takes the table's locks too. Neither
            # may cost a worker its session.
            pool = set(workers(self.master))
            for round_no in (1, 2):
                answers, elapsed = [], []

                def blocked(key):
                    t0 = time.monotonic()
                    r = request("GET", self.path, {"X-API-Key": key}, timeout=30)
                    answers.append(r)
                    elapsed.append(time.monotonic() - t0)

                ts = [threading.Thread(target=blocked, args=(self.keys[i],)) for i in range(len(pool))]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(40)
                self.assertLess(time.monotonic() - locked_at, hold, "the lock ended too soon")
                granted, waiting = self.lock_state()
                print("%sstatement timeout, round %d: %d blocked listings answered %s after %.2f-%.2f s "
                      "(request_timeout %.0f s); lock still held: %s, statements still waiting: %d"
                      % ("\n" if round_no == 1 else "", round_no, len(answers),
                         sorted({r.status for r in answers}), min(elapsed), max(elapsed),
                         self.request_timeout, bool(granted), waiting))
                self.assertEqual(len(answers), len(pool))
                for r in answers:
                    self.assert_503(r)
                self.assertLessEqual(max(elapsed), self.request_timeout + 1.5)
                # the statement was cancelled on the server, not just abandoned by the worker
                self.assertEqual(granted, 1, "the lock was released before the check")
                self.assertEqual(waiting, 0, "the timed-out statement is still waiting on the server")
            r = request("GET", tracks_path(self.org), {"X-API-Key": "mk_" + "0" * 16 + "_x"})
            self.assert_error(r, 401, "INVALID_API_KEY", "authentication_error")
            # A filtered listing reads the locked table too. (A collection page does not: it is a
            # range scan of collection_tracks, so it keeps answering 200 during this lock.)
            r = request("GET", tracks_path(self.org, "mode=creation"), {"X-API-Key": self.keys[1]}, timeout=30)
            self.assert_503(r)
            r = request("GET", tracks_path(self.org, "collection_id=" + self.coll),
                        {"X-API-Key": self.keys[1]}, timeout=30)
            self.assertEqual(r.status, 200, r.body[:300])
        finally:
            psql(e["db_owner"], release_sql, check=False)
            try:
                holder.wait(15)
            except subprocess.TimeoutExpired:
                psql(e["db_owner"], release_sql.replace("pg_cancel_backend",
                                                        "pg_terminate_backend"), check=False)
                holder.kill()
                holder.wait(15)
            if holder.stderr:
                holder.stderr.close()
        self.assertEqual(self.lock_state(), (0, 0))
        # the workers that timed out serve the next requests normally
        served, _ = self.every_worker_serves_200(set(workers(self.master)))
        self.assertLessEqual(set(workers(self.master)), served)
        self.assertTrue(alive(self.master))
        # …on the sessions they had: a cancelled statement leaves the session usable, so no
        # worker that timed out reconnected (and re-prepared, and re-LISTENed) because of it.
        with open(e["api_log"], encoding="utf-8", errors="replace") as f:
            f.seek(log_offset)
            lines = f.read().splitlines()
        timed_out = {re.search(r"trace_id=(\S+)", l).group(1) for l in lines
                     if "event=db_error" in l and "sqlstate=57014" in l}
        pids = {re.search(r" pid=(\d+)", l).group(1) for l in lines
                if " event=request " in l and re.search(r"trace_id=(\S+)", l).group(1) in timed_out}
        self.assertTrue(pids, "no worker logged the statement timeout")
        reconnected = [l for l in lines if "event=db_connected" in l
                       and re.search(r" pid=(\d+)", l).group(1) in pids]
        self.assertEqual(reconnected, [], "workers reconnected after a statement timeout")


# =========================================================================== writes while it stops

class WritesWhilePostgresStopsTests(DbFaultCase):
    """Writers through nginx while PostgreSQL is stopped and started (issue 15; writers.py, the same
    clients as the cluster tier's): collection creates with an Idempotency-Key and without one,
    saves of distinct tracks, entries added and reordered, collection deletes. Read back through
    the API afterwards: every acknowledged write present exactly once, every failed one a JSON
    409/503, no 500."""

    PRE, DOWN, POST = 1.5, 4.0, 4.0

    def test_no_acknowledged_write_lost_or_doubled(self):
        w = Writers(self.w, self.org, tracks=30, doomed=30, interval=0.1)
        marks = {}
        try:
            with w:
                time.sleep(self.PRE)
                marks["stop"] = time.monotonic()
                pg_stop()
                time.sleep(self.DOWN)
                pg_start()
                marks["started"] = time.monotonic()
                time.sleep(self.POST)
        finally:
            ensure_pg_running()
        judged = w.judge()
        print("\n" + summary("PostgreSQL stopped for %.1f s:" % (marks["started"] - marks["stop"]), judged))
        assert_judged(self, judged, self.DOWN + 10, min_sent=6)
        self.assertTrue(judged["failed_at"], "no write failed: the fault did not happen")

if __name__ == "__main__":
    load_env()
    unittest.main(verbosity=2)
