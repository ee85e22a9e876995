"""Wait for OOM kills in a container's memory cgroup.

v1 registers an eventfd on memory.oom_control through
cgroup.event_control, as runc does; v2 polls memory.events, whose
oom_kill counter the kernel bumps (and announces with POLLPRI, like
every cgroup2 event file) each time it kills a task of the cgroup.
Both watchers expose fileno() for select/poll and read() to consume
what happened.
"""

import os

from pyrunc import log as _log
from pyrunc.cgroups import fsutil
from pyrunc.errors import CgroupError

log = _log.get_logger(__name__)


def limit_too_low(manager, limit, when):
    """The error for a process the OOM killer took `when`, or None.

    A memory limit below what the process needs before its program runs
    ends in a SIGKILL that says nothing; when the memory cgroup counts an
    OOM kill and the config set a limit, the error names that limit.
    """
    if type(limit) is not int or limit <= 0:
        return None
    try:
        kills = manager.oom_kills()
    except (CgroupError, OSError, ValueError):
        return None
    if not kills:
        return None
    return (f"linux.resources.memory.limit: {limit} bytes is too low: "
            f"the container process was killed by the OOM killer {when}")


def kill_count(path, name):
    """The oom_kill counter of memory cgroup path, or None.

    name is memory.oom_control (v1, kernels since 4.13) or memory.events
    (v2); both hold a line "oom_kill N". None when the file or the line
    is missing (the cgroup is gone, or the kernel is older).
    """
    try:
        with open(os.path.join(path, name), "rb") as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(b" ")
        if key == b"oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class V1OomWatcher:
    """eventfd signalled by the v1 memory controller on OOM."""

    def __init__(self, path):
        self.path = path
        control = os.path.join(path, "memory.oom_control")
        try:
            self._event = os.open(control, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise CgroupError(
                f"open {control}: {os.strerror(err.errno)}"
            ) from err
        self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            fsutil.write_file(
                path, "cgroup.event_control", f"{self._fd} {self._event}"
            )
        except OSError as err:
            self.close()
            raise CgroupError(
                f"register oom notification in {path}: "
                f"{os.strerror(err.errno)}"
            ) from err

    def fileno(self):
        return self._fd

    def poll_events(self):
        import select

        return select.POLLIN

    def read(self):
        """Return how many OOM events arrived (0 if none pending)."""
        try:
            count = os.eventfd_read(self._fd)
        except BlockingIOError:
            return 0
        # The kernel also signals the eventfd when the cgroup goes away.
        if not os.path.exists(os.path.join(self.path, "cgroup.event_control")):
            return 0
        return count

    def close(self):
        for fd in (self._fd, self._event):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._fd = self._event = -1


class V2OomWatcher:
    """memory.events of a cgroup v2 directory, watched for oom_kill."""

    def __init__(self, path):
        self.path = path
        name = os.path.join(path, "memory.events")
        try:
            self._fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise CgroupError(f"open {name}: {os.strerror(err.errno)}") \
                from err
        self._kills = self._count()

    def _count(self):
        # Reading from the start re-arms the POLLPRI notification.
        try:
            data = os.pread(self._fd, 4096, 0)
        except OSError:
            return 0
        for line in data.decode().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def fileno(self):
        return self._fd

    def poll_events(self):
        import select

        return select.POLLPRI | select.POLLERR

    def read(self):
        """Return how many tasks were OOM-killed since the last read."""
        kills = self._count()
        new = max(0, kills - self._kills)
        self._kills = kills
        return new

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
