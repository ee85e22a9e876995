"""Pay the kernel's cgroup-attach wait early, while Python starts up.

Every write to a cgroup.procs file (any hierarchy, v1 or v2) takes the
kernel's global cgroup_threadgroup_rwsem for writing. When nobody has
taken it for one or two RCU grace periods, taking it first waits for a
grace period: 5-25 ms on a 2-CPU host, spent in the write(2) that
attaches the container's child to its first cgroup. Runtimes written in
Go or C pay it too, but they reach that write sooner after exec.

So a helper (pyrunc/_native/prewarm.h) writes "0" (itself) to the
cgroup.procs of the cgroup it is already in: a move to where it is,
which changes nothing but pays the grace period on the other CPU while
the CLI starts, imports, parses config.json and builds the plan. It
writes again every 4 ms, so that the lock is still warm at the CLI's
own attach, until the write end of its stop pipe closes.

The CLI's entry program (entry.c) forks the helper before it execs the
interpreter and names it in PYRUNC_PREWARM, which the launcher script
passes to adopt(). Started any other way, the CLI spawns pyrunc-prewarm
(start()), with posix_spawn: it shares the CLI's memory until the exec
(vfork), where forking the CLI would cost it a copy-on-write fault on
each page it writes afterwards. create and exec stop the helper before
the container's process exists. A helper that cannot write (not root,
unusual mounts) changes nothing: the attach pays the wait itself.
"""

import os
import stat

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_native",
                    "pyrunc-prewarm")

_helper = 0
_stop = -1


def start():
    """Spawn the helper, unless one is running or it is not built."""
    global _helper, _stop
    if _helper:
        return
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        _helper = os.posix_spawn(
            PATH, [PATH], {},
            file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)])
    except OSError:
        _helper = 0
        os.close(write_end)
    else:
        _stop = write_end
    finally:
        os.close(read_end)


def adopt(value):
    """Take over the helper the entry program forked: value is its
    "PID,FD" (PYRUNC_PREWARM). A malformed value is ignored."""
    global _helper, _stop
    try:
        pid, fd = (int(part) for part in value.split(","))
        # Only a child of ours and a pipe: the launcher script can be
        # run without the entry program, with any environment.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        # Not for the container's process or any other child.
        os.set_inheritable(fd, False)
    except (ValueError, OSError):
        return
    _helper = pid
    _stop = fd


def finish():
    """Stop and reap the helper; return at once if there is none."""
    global _helper, _stop
    pid, _helper = _helper, 0
    fd, _stop = _stop, -1
    if fd >= 0:
        os.close(fd)
    if not pid:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
