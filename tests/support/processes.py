"""Process facts from /proc, shared by the fault and operations tests (stdlib only)."""

import os


def read_pid(path):
    """The PID written in `path`, or None."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def proc_stat(pid):
    """(state, ppid) of pid from /proc, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may hold spaces or ')': split at the last ')'.
    rest = data.rsplit(")", 1)[1].split()
    return rest[0], int(rest[1])


def alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid) if pid else None
    return st is not None and st[0] != "Z"


def children(ppid):
    """Live (non-zombie) child PIDs of ppid, sorted."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == ppid and st[0] != "Z":
            out.append(int(name))
    return sorted(out)


# The master's one child that is not a worker: the auth listener (prctl name in server/master.cpp).
LISTENER_COMM = "music-api-auth"


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def workers(master):
    """The master's worker PIDs, sorted: its children but the auth listener."""
    return [p for p in children(master) if comm(p) != LISTENER_COMM]


def listener(master):
    """The master's auth listener PID, or None."""
    found = [p for p in children(master) if comm(p) == LISTENER_COMM]
    return found[0] if found else None
