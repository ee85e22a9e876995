"""JSON records on disk, written atomically, and small helpers around them.

A record is written to a temporary file, fsynced and renamed over the
old one, so a server killed at any point leaves either the old or the
new record, never a torn one; recovery after a restart reads them back.
"""

import json
import os
import secrets
import time


def new_id():
    """Return a fresh 64-hex-digit id, as containerd and CRI-O use."""
    return secrets.token_hex(32)


def now_ns():
    """Return the current time in nanoseconds since the epoch."""
    return time.time_ns()


def write_json(path, data):
    """Write data as JSON to path atomically (tmp, fsync, rename)."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def read_json(path):
    """Return the parsed JSON at path, or None when the file is missing."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_text(path, text, mode=0o644):
    """Write a small text file atomically with the given mode."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                 mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def read_text(path):
    """Return the stripped text at path, or None when it is missing."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def pid_alive(pid, start=None):
    """Return whether pid runs (not a zombie), with the same start time.

    start is field 22 of /proc/<pid>/stat when the process was seen
    first; it guards against the pid having been reused since.
    """
    if not pid:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    if state in ("Z", "X"):
        return False
    return start is None or started == start


def pid_start(pid):
    """Return field 22 of /proc/<pid>/stat (start time), or None."""
    stat = _proc_stat(pid)
    if stat is None:
        return None
    return stat[1]


def _proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[19])
