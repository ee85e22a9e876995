"""Pay the kernel's cgroup-attach wait early, while Python starts up.

Every write to a cgroup.procs file (any hierarchy, v1 or v2) takes the
kernel's global cgroup_threadgroup_rwsem for writing. After some 50 ms
without such a write, taking it first waits for an RCU grace period:
6-27 ms on a loaded 2-CPU host, spent in the write(2) that attaches the
container's child to its first cgroup. Runtimes written in Go or C pay
it too, but they reach that write a few milliseconds after exec; pyrunc
spends those milliseconds importing and parsing first.

So the CLI's create and run fork a helper at once. The helper writes
"0" (itself) to the cgroup.procs of the cgroup it is already in: a move
to where it is, which changes nothing but starts the grace period. The
parent meanwhile imports, parses config.json and builds the plan; once
the grace period has passed, later writers go through without waiting
for a while, and the real attach is fast. Before it clones the
container's child, create reaps the helper, so that no helper is ever
alive next to the container's process.

A helper dies with the CLI (PR_SET_PDEATHSIG): a runtime killed
during create leaves no process behind, not even for the few
milliseconds the helper lives.

Only the single-threaded CLI forks a helper; the library never does
(finish() is then a no-op). A helper that cannot open or write the file
(not root, unusual mount points) changes nothing: the attach simply pays
the wait itself, as before.
"""

import os

# Where each hierarchy of /proc/self/cgroup is mounted by default: the
# cgroup2 one at the root (pure v2) or under unified (hybrid).
_CGROUP_ROOT = b"/sys/fs/cgroup"

_helper = 0

# signal.SIGKILL without the signal module (see pyrunc/cgroups/base.py).
_SIGKILL = 9


def start():
    """Fork the helper, unless one is already running."""
    global _helper
    if _helper:
        return
    # Imported before the fork: create and run load it anyway, and the
    # helper must not spend its few milliseconds on it.
    from pyrunc._native.launcher import set_parent_death_signal

    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        try:
            set_parent_death_signal(_SIGKILL)
            # Killed before the line above: no signal will come.
            if os.getppid() == parent:
                _move_to_own_cgroup()
        finally:
            # Never return into the parent's code, run its atexit
            # handlers or flush its stdio buffers.
            os._exit(0)
    _helper = pid


def finish():
    """Reap the helper; return at once if there is none."""
    global _helper
    pid, _helper = _helper, 0
    if not pid:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _move_to_own_cgroup():
    """In the helper: write "0" to our own cgroup.procs in one hierarchy.

    The first file that opens is enough: the lock is global. Errors are
    ignored; even a refused write has taken the lock.
    """
    fd = os.open("/proc/self/cgroup", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(fd, 65536)
    finally:
        os.close(fd)
    for path in _candidates(text):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, b"0")
        except OSError:
            pass
        finally:
            os.close(fd)
        return


def _candidates(text):
    """cgroup.procs paths of our own cgroups, cgroup2 first."""
    v1 = []
    for line in text.splitlines():
        parts = line.split(b":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        path = path.rstrip(b"/")
        if hid == b"0":
            yield b"%s/unified%s/cgroup.procs" % (_CGROUP_ROOT, path)
            yield b"%s%s/cgroup.procs" % (_CGROUP_ROOT, path)
            continue
        for name in controllers.split(b","):
            name = name.removeprefix(b"name=")
            if name:
                v1.append(b"%s/%s%s/cgroup.procs" % (_CGROUP_ROOT, name,
                                                     path))
    yield from v1
