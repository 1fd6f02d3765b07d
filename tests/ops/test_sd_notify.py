"""music-api speaks systemd's notify protocol: the test plays systemd's part on $NOTIFY_SOCKET.

READY=1 once workers are forked, RELOADING=1 then READY=1 around a SIGHUP, STATUS= with the
worker count, WATCHDOG=1 keep-alives when WATCHDOG_USEC is set, STOPPING=1 on SIGTERM.
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
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, WATCHDOG_USEC="400000")
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
