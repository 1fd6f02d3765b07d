"""Start and stop the stack's music-api the way scripts/lib/stack.sh does, and wait on processes.

One copy for every test tier that stops or restarts the API (faults, ops); stdlib only.
"""

import os
import signal
import stat
import subprocess
import time

from musicapi import load_env
from processes import alive


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; returns (value, seconds waited).

    Raises AssertionError after timeout seconds (bounded: never loops forever).
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def api_environment():
    """The environment the harness gives music-api: no secrets-bearing overrides."""
    e = dict(os.environ)
    e.pop("MUSIC_API_DB", None)
    e.pop("MUSIC_API_PEPPER_FILE", None)
    # The stack's signing keys, as scripts/lib/stack.sh passes them (its config does not name them).
    e["MUSIC_API_MEDIA_KEYS_FILE"] = load_env()["media_keys_file"]
    return e


# Masters this process started (pid -> Popen), so their exit status can be read.
_OWN = {}


def start_api(conf=None, log=None, pid_file=None, write_pid=True, env_extra=None):
    """Start `<api> --config CONF` in the background as the harness does (stdout and
    stderr appended to the log); writes the PID file. Returns the Popen."""
    e = load_env()
    conf = conf or e["api_conf"]
    log = log or e["api_log"]
    with open(log, "ab") as logf:
        p = subprocess.Popen([e["api"], "--config", conf], stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=subprocess.STDOUT, env=dict(api_environment(), **(env_extra or {})),
                             start_new_session=True, close_fds=True)
    _OWN[p.pid] = p
    if write_pid:
        with open(pid_file or e["api_pid_file"], "w", encoding="ascii") as f:
            f.write("%d\n" % p.pid)
    return p


def wait_socket(path, proc=None, timeout=10.0):
    """Wait for a unix socket to appear; fails early if proc exits."""
    def ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("music-api exited %s before opening %s" % (proc.returncode, path))
        try:
            return stat.S_ISSOCK(os.lstat(path).st_mode)
        except FileNotFoundError:
            return False
    return wait_for(ready, timeout, 0.05, "socket " + path)[1]


def wait_exit(pid, timeout):
    """Wait for pid to end. Returns (exit status or None if not our child, seconds).

    Raises AssertionError on timeout."""
    start = time.monotonic()
    p = _OWN.get(pid)
    if p is not None:
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("pid %d did not exit within %.1fs" % (pid, timeout))
        _OWN.pop(pid, None)
        return rc, time.monotonic() - start
    wait_for(lambda: not alive(pid), timeout, 0.02, "pid %d to exit" % pid)
    return None, time.monotonic() - start


def own_child(pid):
    return pid in _OWN


def stop_api(pid, timeout=15.0):
    """SIGTERM pid and wait; SIGKILL as a last resort. Returns (status, seconds)."""
    if not alive(pid):
        return wait_exit(pid, 1.0)
    os.kill(pid, signal.SIGTERM)
    try:
        return wait_exit(pid, timeout)
    except AssertionError:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 5.0)
        raise
