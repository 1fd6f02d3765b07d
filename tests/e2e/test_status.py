"""The host-only status page and health check, through nginx over TLS."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402


class StatusPageTests(m.ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = m.World("status")
        cls.org = cls.world.org()
        cls.user, cls.key = cls.world.principal(cls.org)

    def status(self, query=""):
        r = m.request("GET", "/music-api/status" + query)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["Cache-Control"], m.CACHE_CONTROL)
        return r

    def test_json_counts_requests_by_class_and_workers(self):
        before = self.status().json()
        for _ in range(3):
            self.assertIn("items", self.listing(self.org, self.key))
        self.assertEqual(self.get(m.tracks_path(self.org)).status, 401)
        after = self.status().json()
        # Exact: a worker counts a request before its answer leaves, so every answer this test has
        # seen is in `after` (the first status request too: 3 + 1), and nothing else runs meanwhile.
        # A status request is rendered before it is counted, so `after` does not count itself.
        self.assertEqual(after["requests"]["2xx"] - before["requests"]["2xx"], 4)
        self.assertEqual(after["requests"]["4xx"] - before["requests"]["4xx"], 1)
        workers = after["workers"]
        self.assertGreaterEqual(workers["total"], 1)
        self.assertEqual(workers["total"], workers["idle"] + workers["busy"])
        self.assertGreaterEqual(workers["busy"], 1)  # the worker answering this very request
        buckets = after["latency_ms"]["buckets"]
        self.assertEqual(buckets[-1]["le"], "+Inf")
        # Every answered request lands in exactly one bucket: +Inf (cumulative) equals the total.
        self.assertEqual(buckets[-1]["count"], after["requests"]["total"])
        counts = [b["count"] for b in buckets]
        self.assertEqual(counts, sorted(counts), "histogram buckets are cumulative")
        self.assertGreaterEqual(after["uptime_seconds"], 0)
        for key in ("database_errors", "restarts"):
            self.assertIsInstance(after[key], int)

    def test_prometheus_text(self):
        self.assertIn("items", self.listing(self.org, self.key))
        r = self.status("?format=prometheus")
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = r.body.decode()
        for metric in ('music_api_workers{state="idle"}', 'music_api_requests_total{route="list_tracks",class="2xx"}',
                       'music_api_request_duration_seconds_bucket{route="list_tracks",class="2xx",le="0.05"}',
                       'music_api_request_duration_seconds_bucket{route="list_tracks",class="2xx",le="+Inf"}',
                       'music_api_request_duration_seconds_count{route="list_tracks",class="2xx"}',
                       'music_api_database_statement_duration_seconds_bucket{le="+Inf"}',
                       "music_api_database_statement_duration_seconds_sum",
                       "music_api_database_errors_total", "music_api_worker_restarts_total",
                       "music_api_uptime_seconds"):
            self.assertRegex(text, re.escape(metric) + r" \d", metric)
        self.assertRegex(text, r'music_api_build_info\{version="[0-9.]+",commit="[0-9a-f]+|unknown"\} 1\n')
        # The list above was answered with a statement or more: they are in the histogram.
        statements = re.search(r'music_api_database_statement_duration_seconds_count (\d+)', text)
        self.assertGreater(int(statements.group(1)), 0)
        # No label carries who asked: the key id, user and organization never appear.
        for private in (self.org, self.user, self.key.split("_")[1]):
            self.assertNotIn(private, text)
        # promtool (Debian's prometheus package) finds nothing to say about names, units, types.
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool is missing: scripts/test installs the prometheus package")
        lint = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True, timeout=60)
        self.assertEqual(lint.returncode, 0, lint.stdout.decode() + lint.stderr.decode())
        self.assertEqual(lint.stdout.decode().strip() + lint.stderr.decode().strip(), "")

    def test_liveness_needs_no_database_and_readiness_does(self):
        r = m.request("GET", "/music-api/live")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"status": "ok"})
        r = m.request("GET", "/music-api/ready")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"status": "ok", "database": "ok"})

    def test_ping_checks_the_database(self):
        r = m.request("GET", "/music-api/ping")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"status": "ok", "database": "ok"})

    def test_internal_endpoints_cannot_be_reached_through_the_api_location(self):
        # A client header cannot become the FastCGI param that selects the status page.
        r = self.get("/v1/music/status", headers={"MUSIC-API-INTERNAL": "status", "Music_Api_Internal": "status"})
        self.assert_error(r, 404, "RESOURCE_NOT_FOUND", "not_found_error")
        r = self.get(m.tracks_path(self.org), key=self.key, headers={"Music-Api-Internal": "status"})
        self.assertEqual(r.status, 200)
        self.assertIn("items", r.json())

    def test_status_refuses_other_methods_as_json(self):
        r = m.request("POST", "/music-api/status")
        self.assert_error(r, 405, "METHOD_NOT_ALLOWED", "invalid_request_error")


if __name__ == "__main__":
    unittest.main(verbosity=2)
