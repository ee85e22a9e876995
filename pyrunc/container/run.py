"""run: create and start a container; in the foreground, wait for it."""

import logging
import os
import signal

log = logging.getLogger(__name__)

# Signals a foreground `run` passes on to the container, as runc does.
FORWARDED = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT,
    signal.SIGALRM,
)


def run(store, cid, bundle, *, detach=False, keep=False, **create_args):
    """Create and start cid; return the exit status to exit with.

    Detached, return 0 once the container runs. In the foreground, wait
    for the container's process, mirror its exit status (128+N for a
    signal) and delete the container unless keep is set.
    """
    from pyrunc.container.create import create
    from pyrunc.container.start import start

    if not detach:
        from pyrunc._native.launcher import set_child_subreaper

        set_child_subreaper()
    record = create(store, cid, bundle, detach=detach, **create_args)
    try:
        start(store, cid)
    except BaseException:
        if not keep:
            cleanup(store, cid)
        raise
    if detach:
        return 0
    try:
        status = wait_for(record.pid)
    finally:
        if not keep:
            cleanup(store, cid)
    return status


def wait_for(pid):
    """Forward signals to pid until it exits; return its exit status."""
    previous = {}
    for sig in FORWARDED:
        previous[sig] = signal.signal(sig, lambda n, _f: forward(pid, n))
    try:
        while True:
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 0
            if got == pid:
                return os.waitstatus_to_exitcode(status) if \
                    os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def forward(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def cleanup(store, cid):
    from pyrunc.container.delete import delete

    try:
        delete(store, cid, force=True)
    except Exception as err:  # noqa: BLE001 - the exit status matters more
        log.warning("deleting container %s: %s", cid, err)
