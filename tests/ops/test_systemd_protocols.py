"""music-api speaks systemd's protocols, with the test (or systemd's own tool) in systemd's part.

Notify: READY=1 once workers are forked, RELOADING=1 then READY=1 around a SIGHUP, STATUS= with
the worker count, WATCHDOG=1 keep-alives when WATCHDOG_USEC is set, STOPPING=1 on SIGTERM.
Socket activation: started by systemd-socket-activate, it serves on the socket it was handed
(LISTEN_FDS/LISTEN_PID) and never opens the one its configuration names.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import musicapi as m  # noqa: E402


class NotifyProtocolTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="music-api-notify-")
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.5)
        with open(os.path.join(self.dir, "pepper"), "w") as f:
            f.write("a-test-pepper-of-enough-length\n")
        self.conf = os.path.join(self.dir, "music-api.conf")
        with open(self.conf, "w") as f:
            f.write("listen = %s/fcgi.sock\nworkers = 2\nkey_pepper_file = %s/pepper\n"
                    "database = host=%s/nowhere dbname=none connect_timeout=1\n" % (self.dir, self.dir, self.dir))
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, WATCHDOG_USEC="400000",
                   MUSIC_API_MEDIA_KEYS_FILE=m.load_env()["media_keys_file"])
        env.pop("MUSIC_API_DB", None)
        env.pop("MUSIC_API_PEPPER_FILE", None)
        self.log = open(os.path.join(self.dir, "music-api.log"), "w")
        self.proc = subprocess.Popen([m.load_env()["api"], "--config", self.conf], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        self.log.close()

    def messages_until(self, wanted, seconds=10):
        """Datagrams received until one contains `wanted`; fails after `seconds`."""
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                seen.append(self.notify.recv(4096).decode())
            except socket.timeout:
                continue
            if wanted in seen[-1].split("\n"):
                return seen
        self.fail("no %r within %d s; got %r" % (wanted, seconds, seen))

    def test_ready_reload_watchdog_stop(self):
        seen = self.messages_until("READY=1")
        self.assertTrue(any("STATUS=2 workers serving" in s for s in seen), seen)
        self.messages_until("WATCHDOG=1", seconds=3)

        self.proc.send_signal(signal.SIGHUP)
        seen = self.messages_until("RELOADING=1")
        self.messages_until("READY=1")

        self.proc.send_signal(signal.SIGTERM)
        self.messages_until("STOPPING=1")
        self.assertEqual(self.proc.wait(timeout=30), 0)


class SocketActivationTests(unittest.TestCase):
    def test_serves_on_the_inherited_socket(self):
        d = tempfile.mkdtemp(prefix="music-api-activation-")
        with open(os.path.join(d, "pepper"), "w") as f:
            f.write("a-test-pepper-of-enough-length\n")
        conf = os.path.join(d, "music-api.conf")
        with open(conf, "w") as f:
            f.write("listen = %s/configured.sock\nworkers = 1\nkey_pepper_file = %s/pepper\n"
                    "database = host=%s/nowhere dbname=none connect_timeout=1\nmedia_keys_file = %s\n"
                    % (d, d, d, m.load_env()["media_keys_file"]))
        activated = os.path.join(d, "activated.sock")
        log = open(os.path.join(d, "music-api.log"), "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_API_")}
        proc = subprocess.Popen(["systemd-socket-activate", "-l", activated, m.load_env()["api"], "--config", conf],
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(activated):
                self.assertLess(time.monotonic(), deadline, "systemd-socket-activate did not listen")
                time.sleep(0.05)
            # A FastCGI request on the activated socket reaches the pipeline (no key: 401 JSON).
            out = subprocess.run(["cgi-fcgi", "-bind", "-connect", activated], capture_output=True, timeout=20,
                                 env={"REQUEST_METHOD": "GET", "REQUEST_URI": "/v1/music/org_x/tracks"}).stdout
            self.assertIn(b"Status: 401", out)
            self.assertIn(b"AUTHENTICATION_REQUIRED", out)
            self.assertFalse(os.path.exists(os.path.join(d, "configured.sock")),
                             "the configured socket was opened although one was inherited")
            with open(os.path.join(d, "music-api.log")) as f:
                self.assertIn("listen=systemd", f.read())
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
