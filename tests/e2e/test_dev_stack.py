#!/usr/bin/env python3
"""The dev stack (scripts/lib/stack.sh, used by scripts/run and these tests) is private on a
shared machine, and its stop never signals a process that is not its own."""

import os
import re
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from musicapi import load_env  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class DevStackTests(unittest.TestCase):
    def test_postgres_socket_directory_is_private_and_auth_is_peer(self):
        e = load_env()
        pg_run = re.search(r"host=(\S+)", e["db_owner"]).group(1)
        self.assertEqual(mode(pg_run), 0o700)
        with open(os.path.join(e["pg_data"], "pg_hba.conf"), encoding="utf-8") as f:
            rules = [l.split() for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual(rules, [["local", "all", "all", "peer", "map=stack"]])

    def test_fastcgi_socket_and_secrets_are_not_world_accessible(self):
        e = load_env()
        self.assertEqual(mode(e["api_socket"]), 0o660)
        self.assertEqual(mode(e["pepper_file"]) & 0o077, 0)

    def test_stop_never_signals_a_process_that_is_not_ours(self):
        e = load_env()
        stray = subprocess.Popen(["sleep", "60"])
        try:
            with tempfile.NamedTemporaryFile("w", suffix=".pid", delete=False) as f:
                f.write("%d\n" % stray.pid)
            script = 'source "$0"; stop_pid_file "$1" music-api'
            subprocess.run(["bash", "-c", script, os.path.join(e["root"], "scripts", "lib", "stack.sh"),
                            f.name], check=True, timeout=30)
            self.assertIsNone(stray.poll(), "an unrelated process named in a stale PID file was killed")
            self.assertFalse(os.path.exists(f.name), "the stale PID file was kept")
        finally:
            stray.kill()
            stray.wait()


if __name__ == "__main__":
    load_env()
    unittest.main(verbosity=2)
