"""Faults on the loopback cluster (issues 9 and 15), one case at a time, each under a steady GET
stream, and the write faults (F1b, F2, F3, F6) under writers too (writers.py): every acknowledged
write read back exactly once, every failed one a JSON 409/503.

Run by tests/cluster/run, which starts a fresh cluster with scripts/lib/cluster.sh and sets
MUSIC_API_STACK to its directory (env.json). Every case breaks one node or app host (by PID,
only processes of this cluster), measures the stream through nginx over TLS — requests sent,
failed (non-2xx or no answer), the slowest answer, seconds until the last failed or slow one —
then restores it and waits until Patroni reports one leader and two streaming replicas.
Figures are printed as `[cluster] F…` lines for the closing note.
"""

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))

import musicapi  # noqa: E402
from musicapi import admin, key_headers, load_env, psql  # noqa: E402
from processes import alive, children, read_pid  # noqa: E402
from apiproc import wait_for  # noqa: E402
from opsutil import Fixture, error_code  # noqa: E402
from writers import Writers, assert_judged, summary  # noqa: E402

CLUSTER_SH = os.path.join(HERE, "..", "..", "scripts", "lib", "cluster.sh")
# An answer slower than this counts as "not yet recovered" (the stream's usual answer is ms).
SLOW = 1.0
THREADS = 4
INTERVAL = 0.1   # per thread: 10 requests/s on its own key, under nginx's 20 r/s per key


def say(*parts):
    sys.stdout.write("[cluster] " + " ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def env():
    return load_env()


# --------------------------------------------------------------------------- the cluster

def ctl(*args, timeout=200):
    """Run a scripts/lib/cluster.sh function against this cluster (restores reuse the start code)."""
    e = env()
    argv = ["bash", "-c", 'set -euo pipefail; source "$0"; cluster_paths "$1"; shift; "$@"',
            CLUSTER_SH, e["cluster"]] + [str(a) for a in args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("cluster.sh %r exited %d: %s" % (args, p.returncode,
                                                              p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout.decode()


def members():
    """Patroni's GET /cluster members, from the first node that answers."""
    e = env()
    for node in e["nodes"]:
        try:
            with urllib.request.urlopen("http://%s:%d/cluster" % (node["addr"], e["rest_port"]),
                                        timeout=2) as r:
                return json.load(r).get("members", [])
        except OSError:
            continue
    return []


def leader():
    for m in members():
        if m.get("role") in ("leader", "master") and m.get("state") == "running":
            return m["name"]
    return None


def node(name):
    return next(n for n in env()["nodes"] if n["name"] == name)


def node_index(name):
    return env()["nodes"].index(node(name)) + 1


def replicas():
    return [m["name"] for m in members() if m.get("role") in ("replica", "sync_standby")]


def wait_healthy(timeout=90):
    start = time.monotonic()
    ctl("cluster_wait_healthy", timeout)
    return time.monotonic() - start


def reads_on(name):
    """How many of the API role's sessions a node holds (where the workers read)."""
    _, out, _ = psql(node(name)["super"],
                     "SELECT count(*) FROM pg_stat_activity WHERE usename = 'music_api'")
    return int(out.strip() or 0)


def serving_replica():
    """The replica the most API sessions read from (the first replica if none does)."""
    reps = replicas()
    counts = {r: reads_on(r) for r in reps}
    return max(reps, key=lambda r: (counts[r], -reps.index(r))), counts


def patroni_pid(name):
    d = node(name)["dir"]
    pid = read_pid(os.path.join(d, "patroni.pid"))
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert os.path.join(d, "patroni.yml").encode() in f.read(), "pid %d is not %s's Patroni" % (pid, name)
    return pid


def postmaster_tree(name):
    """The node's postmaster (checked: a postgres whose working directory is its data dir) and
    its children."""
    data = os.path.join(node(name)["dir"], "data")
    with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as f:
        pid = int(f.readline())
    assert os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "postgres", pid
    assert os.path.realpath(os.readlink("/proc/%d/cwd" % pid)) == os.path.realpath(data), pid
    return [pid] + children(pid)


def app_tree(n):
    h = env()["hosts"][n - 1]
    pid = read_pid(os.path.join(h["dir"], "music-api.pid"))
    assert os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "music-api", pid
    return [pid] + children(pid)


def app_log_events(event, since_sizes=None):
    """(host number, parsed line) for each `event=EVENT` line in the app hosts' logs, only what was
    written after `since_sizes` (from app_log_sizes()) when given."""
    found = []
    for n, h in enumerate(env()["hosts"], 1):
        path = os.path.join(h["dir"], "music-api.log")
        with open(path, "rb") as f:
            if since_sizes:
                f.seek(since_sizes[n - 1])
            for line in f.read().decode("utf-8", "replace").splitlines():
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if fields.get("event") == event:
                    found.append((n, fields))
    return found


def app_log_sizes():
    return [os.path.getsize(os.path.join(h["dir"], "music-api.log")) for h in env()["hosts"]]


def patronictl(name, *args):
    subprocess.run(["patronictl", "-c", os.path.join(node(name)["dir"], "patroni.yml")] + list(args),
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True)


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def conf_int(key, default):
    return int(musicapi.conf_value(key, default, path=env()["api_conf"]))


def nginx_seconds(directive, default):
    """The value of an nginx timeout in effect for /v1/music/: music-api-location.conf's own
    line (location level wins), else the cluster upstream file's (http level), else nginx's."""
    root = env()["root"]
    for name in ("music-api-location.conf", "music-api-upstream-cluster.conf"):
        with open(os.path.join(root, "nginx", name), encoding="utf-8") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if len(words) == 2 and words[0] == directive:
                    return float(words[1].rstrip(";").rstrip("s"))
    return default


# --------------------------------------------------------------------------- measuring

class Case:
    """A steady GET stream through nginx, started on entry: THREADS threads, one key each, each
    sending one request every INTERVAL seconds (a request that takes longer is followed at once
    by the next, never by a burst to catch up: nginx's per-key rate limit would answer 429),
    for at most `duration` seconds. fault() marks when the fault was injected."""

    def __init__(self, fixture, duration, timeout=20.0):
        self.fixture = fixture
        self.duration = duration
        self.timeout = timeout
        self.records = []      # (started, ended, status or None, error code)
        self.fault_at = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.t0 = None

    def _run(self, index):
        key = self.fixture.keys[index % len(self.fixture.keys)]
        deadline = self.t0 + self.duration
        self._stop.wait(index * INTERVAL / THREADS)
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            code = None
            try:
                r = musicapi.request("GET", self.fixture.path, key_headers(key), timeout=self.timeout,
                                     retry_rate_limited=False)
                status = r.status
                if not 200 <= status < 300:
                    code = error_code(r)
                    try:
                        code = "%s (%s)" % (code, r.json()["error"]["system_message"])
                    except Exception:  # noqa: BLE001 - not the envelope
                        pass
            except Exception as e:  # noqa: BLE001 - no answer is a failure like any other
                status, code = None, type(e).__name__
            ended = time.monotonic()
            with self._lock:
                self.records.append((started, ended, status, code))
            self._stop.wait(max(0.0, started + INTERVAL - time.monotonic()))

    def __enter__(self):
        self.t0 = time.monotonic()
        for i in range(THREADS):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 60)

    def fault(self):
        self.fault_at = time.monotonic()

    def run_until(self, seconds_after_fault):
        """Let the stream run until this long after the fault (or its start)."""
        base = self.fault_at or self.t0
        self._stop.wait(max(0.0, base + seconds_after_fault - time.monotonic()))

    def figures(self):
        self.stop()
        with self._lock:
            recs = list(self.records)
        failed = [r for r in recs if r[2] is None or not 200 <= r[2] < 300]
        base = self.fault_at or self.t0
        bad = [r[1] for r in recs if r in failed or r[1] - r[0] > SLOW]
        statuses = collections.Counter(r[2] for r in recs)
        return dict(sent=len(recs), failed=len(failed),
                    slowest=max((r[1] - r[0] for r in recs), default=0.0),
                    recover=max(0.0, max(bad) - base) if bad else 0.0,
                    statuses=dict(statuses),
                    failures=[(round(r[0] - base, 2), r[2], r[3]) for r in failed[:5]])

    def report(self, label):
        f = self.figures()
        say("%s: sent %d, failed %d, slowest %.3f s, recovered in %.1f s%s"
            % (label, f["sent"], f["failed"], f["slowest"], f["recover"],
               "" if not f["failed"] else "; statuses %s; first failures (s after fault, status, code) %s"
               % (f["statuses"], f["failures"])))
        return f


def settled(fixture, timeout=30):
    """nginx serves again from every host: 12 consecutive 200s (a host nginx marked failed during
    the previous case is back after fail_timeout)."""
    def ok():
        for _ in range(12):
            try:
                if fixture.get(timeout=5).status != 200:
                    return False
            except OSError:
                return False
        return True
    return wait_for(ok, timeout, 0.5, "12 consecutive 200s through nginx")[1]


def poll_key(fixture, key, seconds, threads=2, interval=0.15):
    """GET with `key` from a few threads for `seconds`; returns [(start time, status)]."""
    out, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def run():
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status = musicapi.request("GET", fixture.path, key_headers(key), timeout=10,
                                          retry_rate_limited=False).status
            except Exception:  # noqa: BLE001 - no answer
                status = None
            with lock:
                out.append((started, status))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 15)
    return sorted(out)


def wait_replayed(timeout=20):
    """Every replica has replayed what the primary has written so far."""
    _, lsn, _ = psql(env()["db_super_primary"], "SELECT pg_current_wal_lsn()")
    lsn = lsn.strip()

    def caught_up():
        # Every other node must be listed as a replica: right after a case (Patroni leaving
        # maintenance mode, a node rejoining) the list may be short, and an empty one would pass.
        reps = replicas()
        if len(reps) < len(env()["nodes"]) - 1:
            return False
        for r in reps:
            _, out, _ = psql(node(r)["super"],
                             "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, check=False)
            if out.strip() != "t":
                return False
        return True
    return wait_for(caught_up, timeout, 0.1, "replicas to replay %s" % lsn)[1]


# --------------------------------------------------------------------------- the cases

class ClusterFaults(unittest.TestCase):
    """F0-F4 in order (unittest runs them by name); each restores the cluster before the next."""

    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture("cluster", keys=THREADS)
        cls.lag_bound = conf_int("max_replica_lag", 5) + 1
        cls.read_timeout = nginx_seconds("fastcgi_read_timeout", 60.0)
        say("cluster: members %s; bound for a revoked key %d s; nginx fastcgi_read_timeout %.0f s"
            % ([(m["name"], m["role"], m["state"]) for m in members()], cls.lag_bound, cls.read_timeout))
        # Every key is known on every replica before the first case.
        wait_replayed()

    def setUp(self):
        wait_healthy(60)
        settled(self.fx)

    def tearDown(self):
        # Whatever the case did, nothing of the cluster stays frozen.
        ctl("cluster_continue")

    # F0 ------------------------------------------------------------------------------------
    def cached_key(self):
        """A new key, replicated everywhere and used until the workers have it cached."""
        _, key = self.fx.world.principal(self.fx.org)
        wait_replayed()
        # 12 answers in a row, each 200. Right after a case a worker may still refuse a key this
        # new for a few seconds (seen after F4: its replica had replayed the key per
        # pg_last_wal_replay_lsn, yet the key was unknown; not understood yet, see the closing
        # note), and a worker remembers an unknown id for 10 s: wait that out.
        def twelve():
            return all(musicapi.request("GET", self.fx.path, key_headers(key)).status == 200 for _ in range(12))
        wait_for(twelve, 30, 1.0, "12 answers in a row with a new key")
        return key

    def writers(self):
        return Writers(self.fx.world, self.fx.org)

    # The longest stretch of failed writes a fault may cause (issue 15's goal with these timings).
    MAX_WRITE_OUTAGE = 35.0

    def assert_writes(self, label, w):
        judged = w.judge()
        say(summary(label, judged))
        assert_judged(self, judged, self.MAX_WRITE_OUTAGE)
        return judged

    def test_f0_baseline(self):
        with Case(self.fx, duration=6) as c:
            c.run_until(6)
        f = c.report("F0 baseline")
        self.assertEqual(f["failed"], 0, f)

    # F1 ------------------------------------------------------------------------------------
    def test_f1_kill_replica(self):
        victim, counts = serving_replica()
        try:
            with Case(self.fx, duration=9) as c:
                time.sleep(2)
                c.fault()
                signal_all([patroni_pid(victim)] + postmaster_tree(victim), signal.SIGKILL)
                c.run_until(7)
            f = c.report("F1 kill -9 replica %s (its Patroni and postgres; API sessions %s)"
                         % (victim, counts))
        finally:
            ctl("patroni_up", node_index(victim))
            say("F1 restore: %s rejoined, cluster healthy after %.1f s" % (victim, wait_healthy()))
        self.assertEqual(f["failed"], 0, f)
        self.assertLessEqual(f["recover"], 3.0, "reads must continue on the other nodes within 3 s")

    # F1b -----------------------------------------------------------------------------------
    def test_f1b_stop_replica(self):
        victim, counts = serving_replica()
        frozen = postmaster_tree(victim)
        w = self.writers()
        try:
            # Frozen for longer than request_timeout: the synchronous commits wait until Patroni
            # drops the replica from the synchronous set (wal_sender_timeout, then its loop).
            with Case(self.fx, duration=16) as c, w:
                time.sleep(2)
                c.fault()
                signal_all(frozen, signal.SIGSTOP)
                c.run_until(14)
            f = c.report("F1b SIGSTOP replica %s's postgres (%d processes; API sessions %s)"
                         % (victim, len(frozen), counts))
        finally:
            signal_all(frozen, signal.SIGCONT)
            say("F1b restore: SIGCONT, cluster healthy after %.1f s" % wait_healthy())
        self.assert_writes("F1b", w)
        self.assertEqual(f["failed"], 0, f)
        # Writes waiting for the frozen synchronous replica hold their workers for up to the
        # request's whole budget, so a read may first wait for a free worker: bounded by that
        # budget (its alarm), never by the freeze.
        budget = 2 * (conf_int("request_timeout", 2) + 1) + 2 * conf_int("database_connect_timeout", 2) + 1
        self.assertLessEqual(f["slowest"], budget, "no read slower than a request's whole budget")

    # F2 ------------------------------------------------------------------------------------
    def test_f2_kill_primary(self):
        old = leader()
        # A key every worker has already authorized (cached), to be revoked after the failover.
        doomed = self.cached_key()
        logs_before = app_log_sizes()
        w = self.writers()
        try:
            with Case(self.fx, duration=40) as c, w:
                time.sleep(2)
                c.fault()
                signal_all([patroni_pid(old)] + postmaster_tree(old), signal.SIGKILL)
                new, elected = wait_for(lambda: (lambda now: now if now not in (None, old) else None)(leader()),
                                        35, 0.2, "a new leader")
                say("F2: %s elected %.1f s after kill -9 of %s" % (new, elected, old))
                c.run_until(elected + 5)
                c.stop()
                w.stop()
            f = c.report("F2 kill -9 primary %s (Patroni and postgres), new leader %s" % (old, new))
            # Writes go to the new primary through the same multi-host string.
            start = time.monotonic()
            wait_for(lambda: admin("key", "revoke", doomed, check=False)[0] == 0, 20, 0.5,
                     "music-admin key revoke on the new primary")
            revoked_at = time.monotonic()
            say("F2: key revoked through the write string %.1f s after the election"
                % (revoked_at - start))
            # Every host's listener is back, on the new primary (each reconnect flushes that
            # host's caches: the generation moves).
            on_new = {n for n, ev in app_log_events("auth_listener_connected", logs_before)
                      if ev.get("host") == node(new)["addr"]}
            say("F2: listeners reconnected to the new primary %s on hosts %s" % (new, sorted(on_new)))
            seen = poll_key(self.fx, doomed, self.lag_bound + 2)
            late = [(round(t - revoked_at, 2), s) for t, s in seen
                    if s != 401 and t > revoked_at + self.lag_bound]
            last_200 = max([t - revoked_at for t, s in seen if s == 200], default=None)
            say("F2: revoked key: %d requests after the revocation, last 200 at %s s, %d not 401 after %d s"
                % (len(seen), "none" if last_200 is None else "%.2f" % last_200, len(late), self.lag_bound))
        finally:
            ctl("patroni_up", node_index(old))
            say("F2 restore: %s rejoined as a replica (pg_rewind), cluster healthy after %.1f s"
                % (old, wait_healthy(120)))
        self.assert_writes("F2", w)
        self.assertEqual(f["failed"], 0, f)
        self.assertEqual(on_new, set(range(1, len(env()["hosts"]) + 1)),
                         "every host's auth listener must reconnect to the new primary")
        self.assertEqual(late, [], "a key revoked after the failover must be refused (401)")
        self.assertTrue(any(s == 401 for _, s in seen), seen[-5:])

    # F2b -----------------------------------------------------------------------------------
    def test_f2b_switchover(self):
        old = leader()
        candidate = replicas()[0]
        with Case(self.fx, duration=30) as c:
            time.sleep(2)
            c.fault()
            subprocess.run(["patronictl", "-c", os.path.join(node(old)["dir"], "patroni.yml"),
                            "switchover", "--leader", old, "--candidate", candidate, "--force"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True)
            _, took = wait_for(lambda: leader() == candidate, 30, 0.2, "the switchover")
            say("F2b: switchover %s -> %s done %.1f s after patronictl" % (old, candidate, took))
            c.run_until(took + 4)
            c.stop()
        f = c.report("F2b patronictl switchover %s -> %s" % (old, candidate))
        say("F2b restore: cluster healthy after %.1f s" % wait_healthy())
        self.assertEqual(f["failed"], 0, f)

    # F3 ------------------------------------------------------------------------------------
    def test_f3_kill_app_host(self):
        n = 3
        tree = app_tree(n)
        w = self.writers()
        try:
            with Case(self.fx, duration=8) as c, w:
                time.sleep(2)
                c.fault()
                signal_all(tree, signal.SIGKILL)
                c.run_until(6)
            f = c.report("F3 kill -9 app host %d (master and %d workers)" % (n, len(tree) - 1))
        finally:
            wait_for(lambda: not any(alive(p) for p in tree), 5, 0.05, "app host %d to be gone" % n)
            ctl("app_up", n, env()["bin"])
        self.assert_writes("F3", w)
        self.assertEqual(f["failed"], 0, f)

    # F3b -----------------------------------------------------------------------------------
    def test_f3b_stop_app_host(self):
        n = 2
        tree = app_tree(n)
        # A frozen host still accepts (the kernel does): only the read timeout finds it out.
        bound = self.read_timeout + 1
        try:
            with Case(self.fx, duration=self.read_timeout + 8, timeout=self.read_timeout + 20) as c:
                time.sleep(2)
                c.fault()
                signal_all(tree, signal.SIGSTOP)
                c.run_until(self.read_timeout + 5)
                # Thawed before the stream stops: requests still queued on it then finish at once.
                signal_all(tree, signal.SIGCONT)
            f = c.report("F3b SIGSTOP app host %d (%d processes; nginx read timeout %.0f s)"
                         % (n, len(tree), self.read_timeout))
        finally:
            signal_all(tree, signal.SIGCONT)
        self.assertEqual(f["failed"], 0, f)
        self.assertLessEqual(f["slowest"], bound, "no request slower than the upstream timeout + 1 s")

    # F4 ------------------------------------------------------------------------------------
    def test_f4_replay_paused(self):
        victim, counts = serving_replica()
        key = self.cached_key()
        logs_before = app_log_sizes()
        # Patroni resumes a paused replay on its next loop (it takes it for PostgreSQL 14's pause
        # on a parameter change) unless the cluster is in maintenance mode: pause Patroni first.
        patronictl(victim, "pause", "--wait")
        try:
            with Case(self.fx, duration=self.lag_bound + 8) as c:
                time.sleep(1)
                psql(node(victim)["super"], "SELECT pg_wal_replay_pause()")
                c.fault()
                admin("key", "revoke", key)
                revoked_at = time.monotonic()
                # A write with the revoked key on every host directly, while a replica that still
                # holds the key may judge it: the write's own check on the primary refuses it,
                # and the primary decides the answer, 401 (never 503, "try again").
                write_statuses = collections.Counter(
                    fcgi(h["addr"], "POST", "/v1/music/%s/tracks/%s/save" % (self.fx.org, self.fx.track), "", key)[0]
                    for h in env()["hosts"] for _ in range(4))
                seen = poll_key(self.fx, key, self.lag_bound + 4)
                _, still, _ = psql(node(victim)["super"], "SELECT pg_get_wal_replay_pause_state()")
            f = c.report("F4 WAL replay paused on %s (API sessions %s), key revoked on the primary"
                         % (victim, counts))
        finally:
            psql(node(victim)["super"], "SELECT pg_wal_replay_resume()", check=False)
            patronictl(victim, "resume", "--wait")
            say("F4 restore: replay resumed, cluster healthy after %.1f s" % wait_healthy())
        self.assertEqual(still.strip(), "paused", "the replay must stay paused for the whole case")
        last_200 = max([t - revoked_at for t, s in seen if s == 200], default=None)
        late = [(round(t - revoked_at, 2), s) for t, s in seen if s == 200 and t > revoked_at + self.lag_bound]
        say("F4: revoked key: %d requests, last 200 at %s s after the revocation (bound %d s), %d late"
            % (len(seen), "none" if last_200 is None else "%.2f" % last_200, self.lag_bound, len(late)))
        stale = [ev for _, ev in app_log_events("db_replica_stale", logs_before)
                 if ev.get("host") == node(victim)["addr"]]
        say("F4: %d reads found %s behind by more than max_replica_lag and went to the primary"
            % (len(stale), victim))
        if counts.get(victim):
            # Workers read there: the lag check must have sent their reads elsewhere.
            self.assertTrue(stale, "no read noticed that %s lags" % victim)
        say("F4: writes with the revoked key on every host: %s" % dict(write_statuses))
        self.assertEqual(set(write_statuses), {401}, "a write with a revoked key must be 401")
        self.assertEqual(late, [], "a 200 for a revoked key later than max_replica_lag + 1 s")
        self.assertTrue(any(s == 401 for _, s in seen), seen[-5:])
        self.assertEqual(f["failed"], 0, f)

    # F5 ------------------------------------------------------------------------------------
    def test_f5_read_your_writes_on_every_host(self):
        """A save through nginx, then at once a get and a list on every app host directly (each
        reads from its own replica when it can): the save is there, and the unsave is gone."""
        user, key = self.fx.world.principal(self.fx.org)
        tracks = [self.fx.world.track(self.fx.org, creator=user) for _ in range(6)]
        wait_replayed()
        hosts = env()["hosts"]
        missed = []
        for track in tracks:
            r = musicapi.request("POST", "/v1/music/%s/tracks/%s/save" % (self.fx.org, track), key_headers(key))
            self.assertEqual(r.status, 200, r.body[:300])
            for h in hosts:
                got = fcgi(h["addr"], "GET", "/v1/music/%s/tracks" % self.fx.org, "limit=1", key)
                if got[0] != 200 or json.loads(got[1])["items"][0]["id"] != track:
                    missed.append(("list after save", h["n"], track, got[0]))
                status, _ = fcgi(h["addr"], "GET", "/v1/music/%s/tracks/%s" % (self.fx.org, track), "", key)
                if status != 200:
                    missed.append(("get after save", h["n"], track, status))
            r = musicapi.request("DELETE", "/v1/music/%s/tracks/%s/save" % (self.fx.org, track), key_headers(key))
            self.assertEqual(r.status, 200, r.body[:300])
            for h in hosts:
                got = fcgi(h["addr"], "GET", "/v1/music/%s/tracks" % self.fx.org, "limit=100", key)
                if got[0] != 200 or track in [i["id"] for i in json.loads(got[1])["items"]]:
                    missed.append(("list after unsave", h["n"], track, got[0]))
        say("F5: %d saves and unsaves, each read back at once on %d app hosts: %d missed"
            % (len(tracks), len(hosts), len(missed)))
        self.assertEqual(missed, [])

    # F6 ------------------------------------------------------------------------------------
    def test_f6_network_cut(self):
        """One app host and one replica cannot reach the primary (nftables drops what they send
        it); the primary keeps serving everyone else. Writers run throughout; a key and a share
        link are revoked during the cut, and polled through nginx and on the cut host itself:
        no 200 for either later than max_replica_lag + 1 s after the revocation committed."""
        try:  # nftables matches the cut hosts by cgroup v2: a chroot, for one, has none to write
            ctl("cl_cgroup_base")
        except AssertionError as e:
            self.skipTest("no writable cgroup v2 hierarchy, so no per-host network cut here: %s" % e)
        primary, replica, h = leader(), replicas()[0], 3
        host = env()["hosts"][h - 1]
        doomed = self.cached_key()
        owner, owner_key = self.fx.world.principal(self.fx.org)
        track = self.fx.world.track(self.fx.org, creator=owner)
        wait_replayed()  # music-admin's commits are on every replica before the key is used

        def share():  # a new key may be refused for a moment right after F4 (see cached_key)
            r = musicapi.request("POST", "/v1/music/%s/tracks/%s/share" % (self.fx.org, track),
                                 dict(key_headers(owner_key), **{"Content-Type": "application/json"}), body=b"{}")
            return r if r.status == 201 else None
        r, _ = wait_for(share, 30, 1.0, "the owner's share link")
        link = r.json()
        shared_path = "/v1/music/shared/%s" % link["token"]
        wait_replayed()
        self.assertEqual(fcgi(host["addr"], "GET", shared_path, "", "")[0], 200)
        w = self.writers()
        seen = []   # (seconds after the revocations, what, via, status)
        try:
            with Case(self.fx, duration=34) as c, w:
                time.sleep(2)
                c.fault()
                ctl("cluster_cut", node(primary)["addr"], "pg%d" % node_index(replica), "app%d" % h)
                say("F6: app host %d and replica %s cut off from the primary %s" % (h, replica, primary))
                time.sleep(4)
                admin("key", "revoke", doomed)
                # The link's revocation through nginx (a DELETE that met the cut host is passed on).
                deadline = time.monotonic() + 20
                while True:
                    r = musicapi.request("DELETE", "/v1/music/%s/shares/%s" % (self.fx.org, link["id"]),
                                         key_headers(owner_key))
                    if r.status == 200 or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                self.assertEqual(r.status, 200, r.body[:300])
                revoked_at = time.monotonic()
                end = revoked_at + self.lag_bound + 6
                while time.monotonic() < end:
                    t = time.monotonic() - revoked_at
                    for what, via, status in (
                            ("key", "nginx", musicapi.request("GET", self.fx.path, key_headers(doomed),
                                                              retry_rate_limited=False).status),
                            ("key", "host %d" % h, fcgi(host["addr"], "GET", self.fx.path, "", doomed)[0]),
                            ("link", "nginx", musicapi.request("GET", shared_path, {},
                                                               retry_rate_limited=False).status),
                            ("link", "host %d" % h, fcgi(host["addr"], "GET", shared_path, "", "")[0])):
                        seen.append((t, what, via, status))
                    time.sleep(0.2)
                c.run_until(30)
            f = c.report("F6 app host %d and replica %s cut off from primary %s" % (h, replica, primary))
        finally:
            ctl("cluster_heal")
            say("F6 restore: cut healed, cluster healthy after %.1f s" % wait_healthy(120))
        late = [(round(t, 2), what, via, status) for t, what, via, status in seen
                if status == 200 and t > self.lag_bound]
        for what in ("key", "link"):
            for via in ("nginx", "host %d" % h):
                statuses = collections.Counter(s for t, x, v, s in seen if x == what and v == via)
                last_200 = max([t for t, x, v, s in seen if x == what and v == via and s == 200], default=None)
                say("F6: revoked %s via %s: %s; last 200 at %s s after the revocation (bound %d s)"
                    % (what, via, dict(statuses), "none" if last_200 is None else "%.2f" % last_200,
                       self.lag_bound))
        self.assert_writes("F6", w)
        self.assertEqual(late, [], "a revoked key or link answered 200 after the bound")
        self.assertTrue(any(s == 401 for t, x, v, s in seen if x == "key"), seen[-8:])
        self.assertTrue(any(s == 404 for t, x, v, s in seen if x == "link"), seen[-8:])
        self.assertEqual(f["failed"], 0, f)

    # F7 ------------------------------------------------------------------------------------
    def test_f7_strict_synchronous_mode(self):
        """Every replica frozen (two faults): strict synchronous mode acknowledges no write while
        no replica could have it; once they thaw, every write that was acknowledged is there."""
        frozen = [p for r in replicas() for p in postmaster_tree(r)]
        w = self.writers()
        acked_while_frozen = []
        try:
            with w:
                time.sleep(2)
                signal_all(frozen, signal.SIGSTOP)
                frozen_at = time.monotonic()
                time.sleep(12)
                thawed_at = time.monotonic()
                signal_all(frozen, signal.SIGCONT)
                time.sleep(3)
        finally:
            signal_all(frozen, signal.SIGCONT)
            say("F7 restore: SIGCONT, cluster healthy after %.1f s" % wait_healthy(120))
        for kind, rows in w.records.items():
            for what, attempts in rows:
                for a in attempts:
                    # sent after the freeze and answered before the thaw: nothing may commit then
                    if a.ok and a.method != "GET" and a.t0 > frozen_at + 0.5 and a.t1 < thawed_at:
                        acked_while_frozen.append((kind, round(a.t0 - frozen_at, 2), a.status))
        say("F7: every replica frozen for 12 s: %d writes acknowledged meanwhile" % len(acked_while_frozen))
        self.assert_writes("F7", w)
        self.assertEqual(acked_while_frozen, [], "a write acknowledged while no replica could hold it")

    # F8 ------------------------------------------------------------------------------------
    def test_f8_backup_restore(self):
        """A full backup (pgBackRest, from the primary), then a marker collection created through
        nginx every second; every node's Patroni and PostgreSQL killed and its data directory
        wiped; the whole cluster restored from the repository (cluster_restore_all: the latest
        archived state, through Patroni's custom bootstrap). Every marker whose commit is in an
        archived WAL segment is back, the newest surviving one is at most archive_timeout (+5 s)
        older than the destruction (the RPO), a key made before the backup works, and a wiped
        replica is rebuilt from the repository (create_replica_methods: pgbackrest). Runs last:
        the cluster it leaves is a restored one (new timeline, same members)."""
        e = env()
        _, key = self.fx.world.principal(self.fx.org)
        wait_replayed()
        coll_path = "/v1/music/%s/collections" % self.fx.org
        _, timeout_s, _ = psql(e["db_super_primary"], "SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'")
        archive_timeout = int(timeout_s.strip())
        t = time.monotonic()
        label = ctl("cluster_backup", timeout=300).strip().splitlines()[-1]
        say("F8: full backup %s from the primary %s in %.1f s" % (label, leader(), time.monotonic() - t))
        self.assertEqual(musicapi.request("GET", self.fx.path, key_headers(key)).status, 200)

        # Markers: one collection a second, each acknowledged one recorded with its time and the
        # primary's WAL position just after (its commit record ends at or before it).
        markers, stop, run = [], threading.Event(), musicapi.unique("f8-marker")

        def mark():
            i = 0
            while not stop.is_set():
                i += 1
                name = "%s-%04d" % (run, i)
                started = time.monotonic()
                try:
                    r = musicapi.request("POST", coll_path, dict(key_headers(key), **{"Content-Type": "application/json"}),
                                         body=json.dumps({"name": name}).encode(), timeout=10, retry_rate_limited=False)
                    acked = r.status in (200, 201) and not stop.is_set()
                except Exception:  # noqa: BLE001 - not acknowledged
                    acked = False
                if acked:
                    at = time.monotonic()
                    rc, lsn, _ = psql(e["db_super_primary"], "SELECT pg_current_wal_lsn()", check=False, timeout=5)
                    markers.append((name, at, lsn_int(lsn.strip()) if rc == 0 and lsn.strip() else None))
                stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))
        writer = threading.Thread(target=mark, daemon=True)
        writer.start()
        try:
            time.sleep(archive_timeout + 15)   # at least one switch by archive_timeout
            _, archived, _ = psql(e["db_super_primary"], "SELECT last_archived_wal FROM pg_stat_archiver")
            archived = archived.strip()
            # The disaster: every node's Patroni and PostgreSQL killed, then its data wiped.
            victims = []
            for n in e["nodes"]:
                victims += [patroni_pid(n["name"])] + postmaster_tree(n["name"])
            signal_all(victims, signal.SIGKILL)
            destroyed = time.monotonic()
            stop.set()
        finally:
            stop.set()
            writer.join(15)
        wait_for(lambda: not any(alive(p) for p in victims), 10, 0.1, "the killed processes to be gone")
        for n in e["nodes"]:
            subprocess.run(["rm", "-rf", os.path.join(n["dir"], "data")], check=True)
        self.assertRegex(archived, r"^[0-9A-F]{24}$", "the last archived WAL before the disaster")
        archived_end = (int(archived[8:16], 16) << 32) + (int(archived[16:24], 16) + 1) * 16 * 1024 * 1024
        say("F8: %d markers acknowledged; last archived segment %s; all three nodes killed and wiped"
            % (len(markers), archived))

        # The restore, timed to a cluster Patroni calls healthy and to the first 200 through nginx.
        logs = [os.path.join(n["dir"], "patroni.log") for n in e["nodes"]]
        sizes = [os.path.getsize(f) for f in logs]
        t = time.monotonic()
        ctl("cluster_restore_all", timeout=600)
        healthy_after = time.monotonic() - t
        for n, f, size in zip(e["nodes"], logs, sizes):
            with open(f, "rb") as fh:
                fh.seek(size)
                text = fh.read().decode("utf-8", "replace")
            how = [line.split("INFO: ", 1)[-1] for line in text.splitlines()
                   if "replica has been created using" in line or "Running custom bootstrap script" in line]
            say("F8 restore: %s: %s" % (n["name"], "; ".join(how) or "?"))

        def listing():
            names, offset = [], 0
            while True:
                try:
                    r = musicapi.request("GET", "%s?limit=100&offset=%d" % (coll_path, offset), key_headers(key),
                                         timeout=10, retry_rate_limited=True)
                except Exception:  # noqa: BLE001 - not served yet
                    return None
                if r.status != 200:
                    return None
                page = r.json()["items"]
                names += [c["name"] for c in page]
                if len(page) < 100:
                    return names
                offset += 100
        names, _ = wait_for(listing, 60, 1.0, "the collections listed through nginx after the restore")
        served_after = time.monotonic() - t
        present = set(names)
        must = [m for m in markers if m[2] is not None and m[2] <= archived_end]
        missing = [m[0] for m in must if m[0] not in present]
        surviving = [m for m in markers if m[0] in present]
        rpo = destroyed - max(m[1] for m in surviving) if surviving else float("inf")
        say("F8 restore: cluster healthy after %.1f s, served through nginx after %.1f s" % (healthy_after, served_after))
        say("F8: %d of %d markers back (%d in archived WAL, %d of those missing); RPO %.1f s "
            "(newest surviving marker before the destruction; goal <= archive_timeout %d s)"
            % (len(surviving), len(markers), len(must), len(missing), rpo, archive_timeout))
        self.assertEqual(missing, [], "markers in archived WAL lost by the restore")
        self.assertLessEqual(rpo, archive_timeout + 5)
        # The key made before the backup (and the fixture's keys) still work.
        wait_for(lambda: musicapi.request("GET", self.fx.path, key_headers(key)).status == 200, 30, 1.0,
                 "a key made before the backup to work after the restore")

        # A replica rebuilt from the repository: wiped, and made again by Patroni.
        victim = replicas()[0]
        d = node(victim)["dir"]
        ctl("patroni_down", node_index(victim))
        subprocess.run(["rm", "-rf", os.path.join(d, "data")], check=True)
        log = os.path.join(d, "patroni.log")
        since = os.path.getsize(log)
        t = time.monotonic()
        ctl("patroni_up", node_index(victim))
        ctl("cluster_wait_healthy", 300, timeout=330)
        rebuilt = time.monotonic() - t
        with open(log, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        say("F8: replica %s wiped and rebuilt, cluster healthy after %.1f s (%s)"
            % (victim, time.monotonic() - t, "restored by pgbackrest" if "replica has been created using pgbackrest" in text
               else "NOT by pgbackrest"))
        self.assertIn("replica has been created using pgbackrest", text)
        self.assertLess(rebuilt, 300)
        self.assertEqual(musicapi.request("GET", self.fx.path, key_headers(key)).status, 200)


def lsn_int(text):
    """A pg_lsn as text (X/Y) as an integer."""
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def fcgi(addr, method, path, query, key):
    """One FastCGI request straight to an app host (no nginx, so no balancing): (status, body)."""
    e = dict(os.environ, REQUEST_METHOD=method, REQUEST_URI=path + ("?" + query if query else ""),
             QUERY_STRING=query, HTTP_X_API_KEY=key, SERVER_PROTOCOL="HTTP/1.1")
    port = env().get("app_port", 9000)
    p = subprocess.run(["cgi-fcgi", "-bind", "-connect", "%s:%s" % (addr, port)], env=e, capture_output=True,
                       timeout=20)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n")[0].split()[1]) if head.startswith(b"Status:") else 0
    return status, body.decode("utf-8", "replace")


class ReasonAtOnce(unittest.TextTestResult):
    """Prints a case's traceback the moment it fails or errs: the tier's deadline may end the run
    before unittest's summary would have said why."""

    def _now(self, kind, test, entries):
        self.stream.writeln("\n%s at once: %s\n%s" % (kind, test.id(), entries[-1][1]))
        self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._now("FAIL", test, self.failures)

    def addError(self, test, err):
        super().addError(test, err)
        self._now("ERROR", test, self.errors)


if __name__ == "__main__":
    unittest.main(testRunner=unittest.TextTestRunner(resultclass=ReasonAtOnce, verbosity=2))
