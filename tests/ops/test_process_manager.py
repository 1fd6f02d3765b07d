"""The process manager on real processes (issue 3): crashes, reloads, recycling, stop, timeouts.

Run as `MUSIC_API_STACK=DIR python3 tests/ops/test_process_manager.py` against a running
stack (tests/support/stack up DIR BIN_DIR). Signals go only to this stack's master and its
workers, by PID. Every test leaves the stack as it found it: same configuration file, a
master in the PID file and a full pool serving 200. Measured figures are printed ([ops] lines).
"""

import contextlib
import errno
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opsutil  # noqa: E402
from opsutil import (  # noqa: E402
    BackgroundRequest,
    Fixture, LogWatch, Stream, TableLock, alive, env, error_code, master_pid, workers,
    say, wait_exit, wait_for, wait_pool, wait_serving)
from musicapi import ApiTestCase  # noqa: E402


@contextlib.contextmanager
def scratch_dir(prefix):
    """A directory beside the stack's config (where the servers' users can reach), removed after."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(env()["api_conf"]))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lone_instance_conf(tmp, workers):
    """A config for a separate instance in `tmp` (own socket, no reachable database): for tests
    about the process manager alone. Returns (conf path, socket path, log path)."""
    sock = os.path.join(tmp, "fcgi.sock")
    conf = os.path.join(tmp, "music-api.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write("listen = %s\nlisten_mode = 0600\nworkers = %d\n"
                "database = host=%s/no-such-postgres dbname=music user=music_api\n"
                "key_pepper_file = %s\nrequest_timeout = 5\n" % (sock, workers, tmp, env()["pepper_file"]))
    return conf, sock, os.path.join(tmp, "music-api.log")


def whole_log(path):
    log = LogWatch(path)
    log.offset = 0
    return log


def pool_size():
    return int(opsutil.conf_value("workers"))


class ProcessManagerTests(ApiTestCase):
    """Numbered so they run in this order; each is independent of the others."""

    @classmethod
    def setUpClass(cls):
        e = env()
        with open(e["api_conf"], encoding="utf-8") as f:
            cls.conf_text = f.read()
        cls.workers = pool_size()

    def setUp(self):
        self.ensure_stack()
        self.master = master_pid()
        self.pool, _ = wait_pool(self.workers, self.master, timeout=10)

    def tearDown(self):
        # Whatever happened, leave the file and the pool as they were.
        e = env()
        with open(e["api_conf"], encoding="utf-8") as f:
            changed = f.read() != self.conf_text
        if changed:
            opsutil.restore_conf(self.conf_text)
            if alive(master_pid()):
                log = LogWatch()
                os.kill(master_pid(), signal.SIGHUP)
                log.wait_event("reloaded", 10)
        self.ensure_stack()
        wait_pool(self.workers, master_pid(), timeout=10)

    @staticmethod
    def ensure_stack():
        """Restart music-api the harness's way if its master is gone."""
        e = env()
        try:
            pid = master_pid()
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None and alive(pid):
            return
        say("master %s is gone: restarting music-api" % pid)
        p = opsutil.start_api()
        opsutil.wait_socket(e["api_socket"], p, timeout=15)

    def assert_no_failures(self, stream):
        self.assertEqual(stream.failures, [], "failed requests: %s" % stream.summary())
        self.assertEqual(set(stream.statuses), {200}, stream.summary())

    # ------------------------------------------------------------------- 1. kill -9

    def test_1_kill9_worker_under_load_is_replaced(self):
        fx = Fixture("ops-kill9", keys=4)
        master, before = self.master, self.pool
        log = LogWatch()
        stream = Stream(fx, threads=4, duration=6.0, interval=0.08).start()
        try:
            time.sleep(2.0)
            victim = before[len(before) // 2]
            os.kill(victim, signal.SIGKILL)
            kill_t = stream.elapsed()
            after, recovery = wait_pool(self.workers, master, timeout=5, must_exclude=[victim])
        finally:
            stream.join()
        say("kill -9: victim %d; replaced, pool of %d restored in %.3f s; stream: %s"
            % (victim, len(after), recovery, stream.summary()))
        for f in stream.failures:
            say("kill -9: failed request at t=%.3f s (kill at t=%.3f s): %s" % (f["t"], kill_t, f))
        self.assertLess(recovery, 2.0, "replacement took %.3f s" % recovery)
        self.assertTrue(alive(master))
        self.assertEqual(master_pid(), master)
        new = set(after) - set(before)
        self.assertEqual(len(new), 1, (before, after))
        self.assertEqual(set(after) - new, set(before) - {victim})
        self.assertGreaterEqual(stream.completed, 100, stream.summary())
        # Only the request in flight on the killed worker may fail (one worker, one request),
        # and nginx must have turned it into its 503 JSON envelope.
        self.assertLessEqual(len(stream.failures), 1, stream.failures)
        for f in stream.failures:
            self.assertEqual((f.get("status"), f.get("code")), (503, "SERVICE_UNAVAILABLE"), f)
            self.assertLess(abs(f["t"] - kill_t), 2.0, f)
        exited = [ev for ev in log.events("worker_exited") if ev.get("pid") == str(victim)]
        self.assertEqual(len(exited), 1, log.text())
        self.assertEqual(exited[0].get("how"), "signal 9")
        started = {ev.get("pid") for ev in log.events("worker_started")}
        self.assertIn(str(new.pop()), started)

    def test_1b_kill9_busy_worker_its_request_gets_json_503(self):
        """The one request that may fail: the one in flight on the killed worker. Made
        deterministic by blocking it on a table lock, then killing the worker serving it."""
        fx = Fixture("ops-kill9busy", keys=2)
        master, before = self.master, self.pool
        th = BackgroundRequest(fx, fx.keys[0])
        result = th.result
        lock = TableLock(3.0)
        idle = opsutil.worker_sockets(master)
        try:
            lock.start()
            th.start()
            wait_for(lambda: lock.waiters() >= 1, 3.0, 0.05, "the request to block on the lock")
            busy, _ = wait_for(lambda: opsutil.busy_workers(master, idle), 2.0, 0.02, "a busy worker")
            self.assertEqual(len(busy), 1, busy)
            os.kill(busy[0], signal.SIGKILL)
            after, recovery = wait_pool(self.workers, master, timeout=5, must_exclude=busy)
            th.join(10)
        finally:
            lock.release()
        r = result.get("r")
        say("kill -9 of the busy worker %d: its request got %s %s after %.3f s; pool restored "
            "in %.3f s" % (busy[0], r.status if r else result.get("error"),
                            error_code(r) if r else "", result.get("secs", -1), recovery))
        self.assertIsNotNone(r, result)
        err = self.assert_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
        self.assertEqual(err["system_message"], "Upstream unavailable", err)  # nginx's envelope
        self.assertLess(result["secs"], 2.0)
        self.assertEqual(len(set(after) - set(before)), 1)
        self.assertEqual(fx.get(fx.keys[1]).status, 200)

    # ------------------------------------------------------------------- 2. SIGHUP

    def test_2_sighup_under_load_replaces_every_worker_without_failures(self):
        fx = Fixture("ops-hup", keys=4)
        master, before = self.master, self.pool
        log = LogWatch()
        stream = Stream(fx, threads=4, duration=6.0, interval=0.08).start()
        try:
            time.sleep(2.0)
            hup_t = stream.elapsed()
            t0 = time.monotonic()
            os.kill(master, signal.SIGHUP)
            log.wait_event("reloaded", 5)
            after, replaced = wait_pool(self.workers, master, timeout=10, must_exclude=before)
            replaced = time.monotonic() - t0
        finally:
            stream.join()
        say("SIGHUP at t=%.2f s: all %d workers replaced in %.3f s; stream: %s"
            % (hup_t, len(after), replaced, stream.summary()))
        self.assert_no_failures(stream)
        self.assertGreaterEqual(stream.completed, 100, stream.summary())
        self.assertEqual(master_pid(), master)
        self.assertFalse(set(after) & set(before), (before, after))
        self.assertEqual(log.events("reload_rejected"), [])
        # The old workers left cleanly (SIGTERM handled: status 0, not killed by the signal).
        exits = {ev["pid"]: ev.get("how") for ev in log.events("worker_exited")}
        for pid in before:
            self.assertEqual(exits.get(str(pid)), "status 0",
                             "retired worker %d: %s" % (pid, opsutil.sanitizer_report(log.text())))
        served_by = {ev.get("pid") for ev in log.events("request")}
        self.assertTrue(served_by & {str(p) for p in after}, "new workers served nothing")

    def test_2b_sighup_lets_a_slow_request_on_an_old_worker_finish(self):
        fx = Fixture("ops-hupslow", keys=2)
        master, before = self.master, self.pool
        log = LogWatch()
        th = BackgroundRequest(fx, fx.keys[0])
        result = th.result
        lock = TableLock(2.5)
        idle = opsutil.worker_sockets(master)
        try:
            lock.start()
            th.start()
            wait_for(lambda: lock.waiters() >= 1, 3.0, 0.05, "the request to block on the lock")
            busy, _ = wait_for(lambda: opsutil.busy_workers(master, idle), 2.0, 0.02, "a busy worker")
            os.kill(master, signal.SIGHUP)
            log.wait_event("reloaded", 5)
            quick = fx.get(fx.keys[1], timeout=10)
            th.join(15)
            after, _ = wait_pool(self.workers, master, timeout=10, must_exclude=before)
        finally:
            lock.release()
        r = result.get("r")
        say("SIGHUP with a slow request on old worker %s: it got %s after %.3f s; a request "
            "during the reload got %d" % (busy, r.status if r else result.get("error"),
                                          result.get("secs", -1), quick.status))
        self.assertIsNotNone(r, result)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([i["id"] for i in r.json()["items"]], [fx.track])
        # A request sent during the reload (blocked by the same lock) is served by a new worker.
        self.assertEqual(quick.status, 200, quick.body[:300])
        qid = quick.headers.get("X-Request-ID")
        qpid = [ev.get("pid") for ev in log.events("request") if ev.get("trace_id") == qid]
        self.assertEqual(len(qpid), 1, qpid)
        self.assertNotIn(int(qpid[0]), before)
        exited, _ = wait_for(lambda: [ev for ev in log.events("worker_exited")
                                      if ev.get("pid") == str(busy[0])], 5, 0.05,
                             "worker %d to exit" % busy[0])
        self.assertEqual(exited[0].get("how"), "status 0", opsutil.sanitizer_report(log.text()))
        served = [ev for ev in log.events("request") if ev.get("pid") == str(busy[0])]
        self.assertEqual([ev.get("status") for ev in served], ["200"], served)

    # ------------------------------------------------------------------- 3. broken reload

    def test_3_sighup_with_broken_config_is_rejected_and_old_workers_serve(self):
        fx = Fixture("ops-badhup", keys=2)
        master, before = self.master, self.pool
        e = env()
        original = opsutil.rewrite_conf({"workers": "many"})
        try:
            log = LogWatch()
            os.kill(master, signal.SIGHUP)
            rejected = log.wait_event("reload_rejected", 5)[0]
            say("broken reload: %s" % rejected)
            self.assertEqual(rejected.get("level"), "error")
            self.assertIn(e["api_conf"], rejected.get("error", ""))
            self.assertIn("workers", rejected.get("error", ""))
            stream = Stream(fx, threads=2, duration=3.0, interval=0.1).start().join()
            say("broken reload: stream after rejection: %s" % stream.summary())
            self.assert_no_failures(stream)
            self.assertGreaterEqual(stream.completed, 30, stream.summary())
            self.assertEqual(workers(master), before)
            self.assertEqual(log.events("reloaded"), [])
            self.assertEqual(log.events("worker_started"), [])
            served_by = {ev.get("pid") for ev in log.events("request")}
            self.assertTrue(served_by, log.text()[-2000:])
            self.assertLessEqual(served_by, {str(p) for p in before})
        finally:
            opsutil.restore_conf(original)
        self.assertEqual(workers(master), before)
        # A connection string libpq cannot parse is refused the same way: the running workers
        # keep serving (new ones would only die on it).
        original = opsutil.rewrite_conf({"database_write": "host=a dbname='open"})
        try:
            log = LogWatch()
            os.kill(master, signal.SIGHUP)
            rejected = log.wait_event("reload_rejected", 5)[0]
            say("reload with a broken database_write: %s" % rejected)
            self.assertIn("database connection string", rejected.get("error", ""))
            self.assertEqual(log.events("worker_started"), [])
            self.assertEqual(fx.get(fx.keys[0]).status, 200)
        finally:
            opsutil.restore_conf(original)
        self.assertEqual(workers(master), before)

    # ------------------------------------------------------------------- 4. max_requests

    def test_4_max_requests_recycles_workers_without_failures(self):
        fx = Fixture("ops-recycle", keys=4)
        master, before = self.master, self.pool
        original = opsutil.rewrite_conf({"max_requests": "20"})
        try:
            log = LogWatch()
            os.kill(master, signal.SIGHUP)
            log.wait_event("reloaded", 5)
            gen1, _ = wait_pool(self.workers, master, timeout=10, must_exclude=before)
            log = LogWatch()
            stream = Stream(fx, threads=4, duration=20.0, interval=0.08, max_total=200).start()
            stream.join()
            # Let the last recycled worker be replaced before looking at the pool.
            time.sleep(0.5)
            final, _ = wait_pool(self.workers, master, timeout=5)
            recycled = log.events("worker_recycled")
            started = log.events("worker_started")
            say("max_requests=20: %s; %d workers recycled, %d started"
                % (stream.summary(), len(recycled), len(started)))
            self.assert_no_failures(stream)
            self.assertEqual(stream.completed, 200)
            # 200 requests over a pool of 3 recycling every 20: at least 200/20 - 3 recycles.
            self.assertGreaterEqual(len(recycled), 200 // 20 - self.workers, log.text()[-3000:])
            for ev in recycled:
                self.assertEqual(ev.get("requests"), "20", ev)
            self.assertGreaterEqual(len(started), len(recycled) - 1)
            exits = {ev["pid"]: ev.get("how") for ev in log.events("worker_exited")}
            for ev in recycled:
                if ev["pid"] in exits:
                    self.assertEqual(exits[ev["pid"]], "status 0", ev)
            self.assertTrue(set(final) - set(gen1), "no new worker pids after recycling")
            per_worker = {}
            for ev in log.events("request"):
                per_worker[ev["pid"]] = per_worker.get(ev["pid"], 0) + 1
            self.assertLessEqual(max(per_worker.values()), 20, per_worker)
        finally:
            opsutil.restore_conf(original)
            log = LogWatch()
            os.kill(master, signal.SIGHUP)
            log.wait_event("reloaded", 5)
            wait_pool(self.workers, master, timeout=10)

    # ------------------------------------------------------------------- 5. SIGTERM

    def test_5_sigterm_finishes_the_request_in_flight_and_exits_0(self):
        fx = Fixture("ops-term", keys=2)
        e = env()
        master = self.master
        if not opsutil.own_child(master):
            # Its exit status is only readable by its parent: replace the harness's master
            # (idle, so this is also a plain stop) by one started here, the same way.
            log = LogWatch()
            status, secs = opsutil.stop_api(master, timeout=15)
            say("SIGTERM (idle master %d, not our child): gone in %.3f s" % (master, secs))
            self.assertEqual(len(log.events("master_stopped")), 1, log.text())
            p = opsutil.start_api()
            opsutil.wait_socket(e["api_socket"], p, timeout=15)
            wait_serving(fx)
            master = p.pid
        wait_pool(self.workers, master, timeout=10)
        log = LogWatch()
        lock = TableLock(3.0)
        th = BackgroundRequest(fx, fx.keys[0])
        result = th.result
        late_th = BackgroundRequest(fx, fx.keys[1])
        late = late_th.result

        try:
            lock.start()
            th.start()
            wait_for(lambda: lock.waiters() >= 1, 3.0, 0.05, "the request to block on the lock")
            t_term = time.monotonic()
            os.kill(master, signal.SIGTERM)
            time.sleep(0.3)
            late_th.start()
            status, _ = wait_exit(master, 10.0)
            stop_secs = time.monotonic() - t_term
            th.join(15)
            late_th.join(15)
            held = time.monotonic() - lock.acquired_at
        finally:
            lock.release()
            if alive(master):
                opsutil.stop_api(master, timeout=15)
            t_restart = time.monotonic()
            p = opsutil.start_api()
            opsutil.wait_socket(e["api_socket"], p, timeout=15)
            wait_serving(fx)
            restart = time.monotonic() - t_restart
        r = result.get("r")
        say("SIGTERM with a request in flight: master exited %s after %.3f s; in-flight request: "
            "%s after %.3f s; request sent 0.3 s after SIGTERM: %s after %.3f s; restart to first "
            "200: %.3f s" % (status, stop_secs, r.status if r else result.get("error"),
                             result.get("secs", -1),
                             late["r"].status if "r" in late else late.get("error"),
                             late.get("secs", -1), restart))
        self.assertIsNotNone(r, result)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([i["id"] for i in r.json()["items"]], [fx.track])
        self.assertEqual(status, 0)
        self.assertLess(stop_secs, 10.0)
        self.assertLess(held, 4.0)
        text = log.text()
        self.assertEqual(len(log.events("stopping")), 1, text)
        self.assertEqual(len(log.events("master_stopped")), 1, text)
        self.assertEqual(log.events("stop_timeout"), [], text)
        for ev in log.events("worker_exited"):
            self.assertEqual(ev.get("how"), "status 0", ev)
        # Not accepted after SIGTERM: the client gets nginx's JSON 503, not a hang.
        self.assertIn("r", late, late)
        self.assertEqual((late["r"].status, error_code(late["r"])), (503, "SERVICE_UNAVAILABLE"),
                         late["r"].body[:300])
        self.assertLess(late["secs"], 10.0)

    # ------------------------------------------------------------------- 6. crash loop

    def test_6_crash_loop_backs_off(self):
        """A separate instance (own socket, unreachable database, 1 worker) whose workers are
        killed with SIGKILL as soon as they appear: the third crash within 10 s starts the
        back-off (1 s, then 2 s) with a workers_crash_looping line."""
        e = env()
        tmp = tempfile.mkdtemp(prefix="ops-crash-", dir=os.path.dirname(e["api_conf"]))
        conf, sock, logp = lone_instance_conf(tmp, 1)
        p = opsutil.start_api(conf=conf, log=logp, write_pid=False)
        gaps = []
        try:
            opsutil.wait_socket(sock, p, timeout=15)
            worker, _ = wait_for(lambda: workers(p.pid), 5, 0.02, "the first worker")
            for _ in range(4):
                victim = worker[0]
                os.kill(victim, signal.SIGKILL)
                worker, gap = wait_for(
                    lambda: [c for c in workers(p.pid) if c != victim], 6, 0.02, "a replacement")
                gaps.append(gap)
            looping = whole_log(logp).events("workers_crash_looping")
            status, stop_secs = opsutil.stop_api(p.pid, timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            shutil.rmtree(tmp, ignore_errors=True)
        say("crash loop (1 worker, SIGKILL on sight): respawn gaps %s s; crash_looping lines %s; "
            "stopped with %s in %.3f s" % ([round(g, 3) for g in gaps],
                                          [(ev.get("crashes"), ev.get("backoff_ms")) for ev in looping],
                                          status, stop_secs))
        self.assertLess(gaps[0], 0.6, gaps)
        self.assertLess(gaps[1], 0.6, gaps)
        self.assertGreaterEqual(gaps[2], 0.9, gaps)
        self.assertGreaterEqual(gaps[3], 1.9, gaps)
        self.assertEqual([ev.get("backoff_ms") for ev in looping], ["1000", "2000"], looping)
        self.assertTrue(all(ev.get("level") == "error" for ev in looping), looping)
        self.assertEqual(status, 0)

    # ------------------------------------------------------------------- 7. start-up errors

    def run_api(self, *args, env_extra=None):
        e = env()
        penv = opsutil.api_environment()
        if env_extra:
            penv.update(env_extra)
        t = time.monotonic()
        proc = subprocess.run([e["api"]] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, env=penv, timeout=20)
        return proc.returncode, proc.stderr.decode("utf-8", "replace"), time.monotonic() - t

    def test_7_broken_config_at_start_is_a_clear_error(self):
        e = env()
        with scratch_dir("ops-conf-") as tmp:
            sock = os.path.join(tmp, "fcgi.sock")
            bad = os.path.join(tmp, "bad.conf")
            with open(bad, "w", encoding="utf-8") as f:
                f.write("# a comment\nlisten = %s\n\nworkers = -3\nkey_pepper_file = %s\n"
                        % (sock, e["pepper_file"]))
            rc, err, secs = self.run_api("--config", bad)
            say("start with workers = -3: exit %d in %.3f s: %s" % (rc, secs, err.strip()))
            self.assertNotEqual(rc, 0)
            self.assertLess(secs, 5.0)
            self.assertIn("%s:4" % bad, err)
            self.assertIn("workers", err)
            self.assertFalse(os.path.exists(sock), "a socket was opened")

            rc, err, secs = self.run_api("--config", e["api_conf"], "--test")
            say("--test on the stack's config: exit %d in %.3f s: %s" % (rc, secs, err.strip()))
            self.assertEqual(rc, 0, err)

            rc, err, _ = self.run_api("--config", bad, "--test")
            self.assertNotEqual(rc, 0, err)
            self.assertIn("%s:4" % bad, err)

            missing = os.path.join(tmp, "no-such-pepper")
            nopep = os.path.join(tmp, "nopepper.conf")
            with open(nopep, "w", encoding="utf-8") as f:
                f.write("listen = %s\nworkers = 1\nkey_pepper_file = %s\n" % (sock, missing))
            rc, err, secs = self.run_api("--config", nopep)
            say("start with a missing pepper file: exit %d in %.3f s: %s" % (rc, secs, err.strip()))
            self.assertNotEqual(rc, 0)
            self.assertIn(missing, err)
            self.assertIn("pepper", err)
            self.assertFalse(os.path.exists(sock), "a socket was opened")

            # libpq's own parser judges both connection strings before anything starts
            for key in ("database", "database_write"):
                broken = os.path.join(tmp, "broken-%s.conf" % key)
                with open(broken, "w", encoding="utf-8") as f:
                    f.write("listen = %s\nworkers = 1\nkey_pepper_file = %s\n%s = host=a,b dbname='open\n"
                            % (sock, e["pepper_file"], key))
                for args in (("--config", broken), ("--config", broken, "--test")):
                    rc, err, _ = self.run_api(*args)
                    say("%s with a broken %s: exit %d: %s" % (args[-1], key, rc, err.strip()))
                    self.assertNotEqual(rc, 0)
                    self.assertIn("database connection string", err)
                    self.assertFalse(os.path.exists(sock), "a socket was opened")

            rc, err, _ = self.run_api("--config", os.path.join(tmp, "absent.conf"))
            say("start with a missing config file: exit %d: %s" % (rc, err.strip()))
            self.assertNotEqual(rc, 0)
            self.assertIn(os.path.join(tmp, "absent.conf"), err)

    # ------------------------------------------------------------------- 8. request_timeout

    def test_8_request_timeout_answers_json_503(self):
        fx = Fixture("ops-timeout", keys=1)
        master, before = self.master, self.pool
        log = LogWatch()
        lock = TableLock(7.0)
        try:
            lock.start()
            t = time.monotonic()
            r = fx.get(timeout=30)
            secs = time.monotonic() - t
        finally:
            lock.release()
        say("request_timeout=5 with a 7 s lock: %d %s after %.3f s"
            % (r.status, error_code(r), secs))
        err = self.assert_error(r, 503, "SERVICE_UNAVAILABLE", "server_error")
        # Made by the API (statement_timeout), not nginx's upstream envelope.
        self.assertEqual(err["system_message"], "Database unavailable", err)
        self.assertEqual(r.headers.get("Retry-After"), opsutil.conf_value("retry_after"))
        self.assertGreaterEqual(secs, 4.5)
        self.assertLess(secs, 7.0)
        rid = r.headers.get("X-Request-ID")
        db_errors = [ev for ev in log.events("db_error") if ev.get("trace_id") == rid]
        self.assertTrue(db_errors, log.text()[-2000:])
        self.assertEqual(db_errors[0].get("sqlstate"), "57014", db_errors)
        # The worker survived the timeout and serves again.
        self.assertEqual(workers(master), before)
        self.assertEqual(fx.get().status, 200)

    def test_8b_worker_that_hit_request_timeout_retires_cleanly(self):
        """After a statement_timeout the worker keeps serving; when it is later retired
        (SIGHUP here; max_requests or SIGTERM alike) it must exit 0 like any other worker,
        without a sanitizer report in the log."""
        fx = Fixture("ops-timeout-exit", keys=1)
        master, before = self.master, self.pool
        log = LogWatch()
        with TableLock(6.5):
            r = fx.get(timeout=30)
        self.assertEqual((r.status, error_code(r)), (503, "SERVICE_UNAVAILABLE"), r.body[:300])
        victim = log.trace_pid(r.headers.get("X-Request-ID"))
        # The same worker runs the listing statement again (bounded: 60 paced requests).
        again = 0
        for sent in range(1, 61):
            rr = fx.get()
            self.assertEqual(rr.status, 200, rr.body[:300])
            if log.trace_pid(rr.headers.get("X-Request-ID")) == victim:
                again += 1
                if again >= 2:
                    break
            time.sleep(0.06)
        self.assertGreaterEqual(again, 1, "no request reached worker %d again" % victim)
        os.kill(master, signal.SIGHUP)
        log.wait_event("reloaded", 5)
        wait_pool(self.workers, master, timeout=10, must_exclude=before)
        exited, _ = wait_for(lambda: [ev for ev in log.events("worker_exited")
                                      if ev.get("pid") == str(victim)], 5, 0.05,
                             "worker %d to exit" % victim)
        report = opsutil.sanitizer_report(log.text())
        say("worker %d hit statement_timeout, served %d more listing(s) (%d requests sent), "
            "retired by SIGHUP: %s; sanitizer report: %s"
            % (victim, again, sent, exited[0].get("how"),
               "none" if report is None else
               [ln.strip() for ln in report.splitlines() if "ERROR:" in ln or "SUMMARY:" in ln][:2]))
        self.assertEqual(exited[0].get("how"), "status 0", report)
        self.assertIsNone(report, report)

    # ------------------------------------------------------------------- 9. a frozen database

    def test_9_frozen_database_backends_are_left_and_the_read_retried(self):
        """Every worker's database server process is frozen (SIGSTOP: the kernel still ACKs, so
        no keepalive, tcp_user_timeout or statement_timeout can fire). Each worker gives its
        statement request_timeout + 1 s, then shuts that connection, reconnects (a new backend)
        and retries once: the client gets its 200, no worker dies, nothing backs off."""
        fx = Fixture("ops-frozen", keys=self.workers)
        master = self.master
        timeout = int(opsutil.conf_value("request_timeout"))
        overdue = timeout + 1   # database.cpp: OverdueGuard
        _, out, _ = opsutil.musicapi.psql(env()["db_owner"], "SELECT pid FROM pg_stat_activity "
                                          "WHERE application_name = 'music-api'")
        backends = [int(p) for p in out.split()]
        self.assertGreaterEqual(len(backends), self.workers, out)
        pool = set(workers(master))
        log = LogWatch()
        threads = [BackgroundRequest(fx, k) for k in fx.keys]
        try:
            for pid in backends:
                os.kill(pid, signal.SIGSTOP)
            for th in threads:
                th.start()
            for th in threads:
                th.join(overdue + 20)
        finally:
            for pid in backends:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        results = [th.result for th in threads]
        say("frozen database backends: %s (overdue after %d s)"
            % ([(r["r"].status, round(r["secs"], 1)) if "r" in r else r for r in results], overdue))
        for r in results:
            self.assertIn("r", r, r)
            self.assertEqual(r["r"].status, 200, r["r"].body[:300])
            self.assertGreaterEqual(r["secs"], overdue - 0.5)
            self.assertLess(r["secs"], overdue + 3)
        self.assertEqual(log.events("worker_exited"), [], log.text())
        self.assertEqual(set(workers(master)), pool, "workers were replaced")
        reconnects = [ev for ev in log.events("db_connected") if ev.get("session") == "read"]
        self.assertGreaterEqual(len(reconnects), len(fx.keys), log.text())
        wait_serving(fx)

    # ------------------------------------------------------------------- 10. reload and the socket

    def test_10_reload_reports_socket_settings_and_exit_removes_the_bound_socket(self):
        e = env()
        with scratch_dir("ops-sock-") as tmp:
            first = os.path.join(tmp, "first.sock")
            second = os.path.join(tmp, "second.sock")
            conf = os.path.join(tmp, "music-api.conf")
            text = self.conf_text.replace(e["api_socket"], first) + "\nworkers = 1\n"
            with open(conf, "w", encoding="utf-8") as f:
                f.write(text)
            logfile = os.path.join(tmp, "api.log")
            p = opsutil.start_api(conf=conf, log=logfile, write_pid=False)
            opsutil.wait_socket(first, p, timeout=15)
            # A file the master must never touch sits where the new `listen` points.
            with open(second, "w", encoding="utf-8") as f:
                f.write("not ours")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(text.replace(first, second).replace("listen_mode = 0660", "listen_mode = 0600")
                        + "listen_backlog = 64\n")
            watch = LogWatch(logfile)
            os.kill(p.pid, signal.SIGHUP)
            ev = watch.wait_event("reload_listen_ignored", 10)
            say("reload that changed the socket settings: %s" % ev)
            keys = set(watch.events("reload_listen_ignored")[0].get("keys", "").split(","))
            self.assertEqual(keys, {"listen", "listen_mode", "listen_backlog"})
            status, _ = opsutil.stop_api(p.pid, timeout=15)
            self.assertEqual(status, 0)
            self.assertFalse(os.path.exists(first), "the bound socket was left behind")
            with open(second, encoding="utf-8") as f:
                self.assertEqual(f.read(), "not ours")


    # ------------------------------------------------------------------- 11. accept errors

    def test_11_persistent_accept_error_exits_1_and_backs_off(self):
        """A worker that cannot accept (EMFILE: its file limit lowered below the descriptors it
        holds, with prlimit on the live process) exits 1, not 0, so the master's crash-loop back-off
        applies: the third such exit within 10 s logs workers_crash_looping with 1 s."""
        with scratch_dir("ops-emfile-") as tmp:
            conf, sock, logp = lone_instance_conf(tmp, 1)
            # LeakSanitizer's exit-time scan opens /proc files, which the starved worker cannot:
            # it would turn any exit into status 1. This instance is about the exit status only.
            p = opsutil.start_api(conf=conf, log=logp, write_pid=False,
                                  env_extra={"ASAN_OPTIONS": "detect_leaks=0"})
            starved, gaps = [], []
            try:
                opsutil.wait_socket(sock, p, timeout=15)
                for _ in range(3):
                    worker, _ = wait_for(lambda: [c for c in workers(p.pid) if c not in starved], 6, 0.02,
                                         "a worker")
                    victim = worker[0]
                    # Wait until it is idle in its accept loop (its start-up connect attempt done).
                    wait_for(lambda: any(ev.get("pid") == str(victim)
                                         for ev in whole_log(logp).events("worker_started")), 5, 0.02,
                             "worker %d started" % victim)
                    # A limit of 3 keeps what it holds usable (stdio, the listening socket) and
                    # makes any new descriptor, the next accepted connection first, fail.
                    held = {int(fd) for fd in os.listdir("/proc/%d/fd" % victim)}
                    _, hard = resource.prlimit(victim, resource.RLIMIT_NOFILE)
                    resource.prlimit(victim, resource.RLIMIT_NOFILE, (3, hard))
                    starved.append(victim)
                    t0 = time.monotonic()
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                        client.connect(sock)   # wakes the worker; its accept fails with EMFILE
                        try:
                            wait_for(lambda: not alive(victim), 5, 0.02, "worker %d to exit" % victim)
                        except AssertionError:
                            self.fail("worker %d (fds %s, limit 3) did not exit; log:\n%s"
                                      % (victim, sorted(held), whole_log(logp).text()))
                    gaps.append(time.monotonic() - t0)
                log = whole_log(logp)
                exits = {ev.get("pid"): ev.get("how") for ev in log.events("worker_exited")}
                accept_errors = [ev.get("errno") for ev in log.events("accept_failed")]
                looping = [ev.get("backoff_ms") for ev in log.events("workers_crash_looping")]
                status, _ = opsutil.stop_api(p.pid, timeout=10)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
        say("EMFILE at accept: workers %s exited %s; accept_failed errno %s; crash_looping backoff_ms %s"
            % (starved, [exits.get(str(w)) for w in starved], accept_errors, looping))
        self.assertEqual([exits.get(str(w)) for w in starved], ["status 1"] * 3)
        self.assertEqual(accept_errors, [str(errno.EMFILE)] * 3)
        self.assertEqual(looping, ["1000"])
        self.assertEqual(status, 0)


    # ------------------------------------------------------------------- 12. an idle pool stops at once

    def test_12_idle_pool_stops_at_once_on_sigterm(self):
        """Idle workers wait in ppoll() with SIGTERM unblocked only there: a stop signal can never
        fall between their check of the flag and a blocking accept(), so an idle pool ends at
        once, cycle after cycle (before: a worker that lost the race sat in accept() until the
        master's 30 s SIGKILL). Five start/stop cycles of a 4-worker pool, each under 2 s."""
        timings = []
        with scratch_dir("ops-idle-") as tmp:
            conf, sock, logp = lone_instance_conf(tmp, 4)
            for _ in range(5):
                p = opsutil.start_api(conf=conf, log=logp, write_pid=False)
                try:
                    opsutil.wait_socket(sock, p, timeout=15)
                    wait_for(lambda: len(workers(p.pid)) == 4, 5, 0.02, "4 workers")
                    status, secs = opsutil.stop_api(p.pid, timeout=10)
                finally:
                    if p.poll() is None:
                        p.kill()
                        p.wait(5)
                timings.append((status, round(secs, 3)))
            exits = [ev.get("how") for ev in whole_log(logp).events("worker_exited")]
        say("idle pool of 4, SIGTERM: (status, seconds) per cycle %s; worker exits %s"
            % (timings, sorted(set(exits))))
        for status, secs in timings:
            self.assertEqual(status, 0)
            self.assertLess(secs, 2.0)
        self.assertEqual(exits, ["status 0"] * 20)

    # ------------------------------------------------------------------- 13. TCP peers

    def test_13_tcp_listener_accepts_only_listen_allow(self):
        """With a TCP listen (the cluster layout) every peer but listen_allow's is closed at accept,
        so nothing that reaches the port can skip nginx (its TLS, limits and logs) or set
        REMOTE_ADDR. The request comes from 127.0.0.1: refused with 127.0.0.2 allowed, answered
        (401, no key sent) with 127.0.0.1 allowed."""
        answers = {}
        with scratch_dir("ops-allow-") as tmp:
            for allow in ("127.0.0.2", "127.0.0.1,127.0.0.3"):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                conf, _, logp = lone_instance_conf(tmp, 1)
                with open(conf, "a", encoding="utf-8") as f:
                    f.write("listen = 127.0.0.1:%d\nlisten_allow = %s\n" % (port, allow))
                p = opsutil.start_api(conf=conf, log=logp, write_pid=False)
                try:
                    def listening():
                        with socket.socket() as c:
                            return c.connect_ex(("127.0.0.1", port)) == 0
                    wait_for(listening, 15, 0.05, "the TCP listener")
                    wait_for(lambda: workers(p.pid), 5, 0.02, "a worker")
                    fcgi_env = dict(os.environ, REQUEST_METHOD="GET", REQUEST_URI="/v1/music/org_x/tracks",
                                    QUERY_STRING="", SERVER_PROTOCOL="HTTP/1.1")
                    r = subprocess.run(["cgi-fcgi", "-bind", "-connect", "127.0.0.1:%d" % port], env=fcgi_env,
                                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
                    answers[allow] = r.stdout.split(b"\r\n")[0].decode(errors="replace")
                finally:
                    opsutil.stop_api(p.pid, timeout=10)
        say("TCP listener, a request from 127.0.0.1: %s" % answers)
        self.assertEqual(answers["127.0.0.2"], "", "a peer outside listen_allow was answered")
        self.assertEqual(answers["127.0.0.1,127.0.0.3"], "Status: 401 Unauthorized")


if __name__ == "__main__":
    unittest.main(verbosity=2)
