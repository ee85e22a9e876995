"""Cheap process checks: /proc/<pid>/stat reads and pidfd signalling.

A container's init is known by its pid and its start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot). Comparing both tells a live
init from a recycled pid. A zombie counts as dead: PID 1 of this machine
does not always reap orphans, and runc reports a zombie init as stopped.
"""

import os
import select

try:
    # The C half of the signal module: the same functions and constants
    # without the enum wrappers, whose import costs ~3 ms on every kill.
    import _signal as signals
except ImportError:  # pragma: no cover (not CPython)
    import signal as signals

# /proc/<pid>/stat state letters of a process that has exited.
_DEAD_STATES = frozenset(b"ZXx")


def read_stat(pid):
    """Return (state letter, start time) of pid, or None if it is gone.

    >>> read_stat(os.getpid())[0] in "RS"
    True
    """
    if pid <= 0:
        return None
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, 4096)
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    # comm (field 2) may hold spaces and parentheses: split after the
    # last ")". The state is then field 3 and the start time field 22.
    fields = data[data.rindex(b")") + 2:].split()
    return chr(fields[0][0]), int(fields[19])


def start_time(pid):
    """Return field 22 of /proc/<pid>/stat, or None if pid is gone."""
    stat = read_stat(pid)
    if stat is None:
        return None
    return stat[1]


def is_alive(pid, start):
    """Tell whether pid is still the process that started at start."""
    stat = read_stat(pid)
    if stat is None:
        return False
    state, started = stat
    return ord(state) not in _DEAD_STATES and started == start


def open_pidfd(pid, start):
    """Return a pidfd for pid if it is still the same live process.

    The pidfd pins the process: checking the start time after opening
    it rules out pid reuse for every later use of the fd.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if is_alive(pid, start):
        return pidfd
    os.close(pidfd)
    return None


def send_signal(pid, start, sig):
    """Send sig to the process pid/start; False if it is already gone.

    Raises OSError for other failures, such as EINVAL for a bad signal.
    """
    pidfd = open_pidfd(pid, start)
    if pidfd is None:
        return False
    try:
        signals.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)
    return True


def wait_exit(pid, start, timeout):
    """Wait until the process pid/start exits; False on timeout.

    A pidfd turns readable when the process exits, whether or not it is
    our child and whether or not it is reaped.
    """
    pidfd = open_pidfd(pid, start)
    if pidfd is None:
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        events = poller.poll(int(timeout * 1000))
    finally:
        os.close(pidfd)
    return bool(events)
