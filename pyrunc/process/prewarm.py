"""Pay the kernel's cgroup-attach wait early, while Python starts up.

Every write to a cgroup.procs file (any hierarchy, v1 or v2) takes the
kernel's global cgroup_threadgroup_rwsem for writing. After some time
without such a write, taking it first waits for an RCU grace period:
several milliseconds on a 2-CPU host, spent in the write(2) that
attaches the container's child to its first cgroup. Runtimes written in
Go or C pay it too, but they reach that write sooner after exec.

So the CLI's create, run and exec spawn pyrunc-prewarm (prewarm.c) at
once. It writes "0" (itself) to the cgroup.procs of the cgroup it is
already in: a move to where it is, which changes nothing but starts the
grace period on the other CPU while the CLI imports, parses config.json
and builds the plan. The CLI's own attach then finds the lock ready.

The helper is spawned with posix_spawn, which shares the CLI's memory
until the exec (vfork): forking the CLI would instead cost it a copy-on-
write fault on each page it writes afterwards, more than the overlap
saves when the kernel is warm. create reaps it before the container's
process exists. A helper that cannot write (not root, unusual mounts)
changes nothing: the attach pays the wait itself.
"""

import os

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_native",
                    "pyrunc-prewarm")

_helper = 0


def start():
    """Spawn the helper, unless one is running or it is not built."""
    global _helper
    if _helper:
        return
    try:
        _helper = os.posix_spawn(PATH, [PATH], {})
    except OSError:
        _helper = 0


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
