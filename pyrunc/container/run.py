"""run: create and start a container; in the foreground, wait for it."""

from pyrunc import log as _log
import os
# _signal, not signal: the latter wraps its constants in an enum, and
# importing enum costs the hot path about 3 ms.
import _signal as signal

log = _log.get_logger(__name__)

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

    console = None
    pipes = None
    if not detach:
        from pyrunc._native.launcher import set_child_subreaper, socketpair
        from pyrunc.process.stdio import Pipes

        set_child_subreaper()
        if not create_args.get("console_socket"):
            # Used only if the process asks for a terminal.
            console = socketpair()
            create_args["console_fd"] = console[1]
        # Used only if it does not.
        pipes = Pipes()
        create_args["stdio"] = pipes
    try:
        record = create(store, cid, bundle, detach=detach, **create_args)
    except BaseException:
        if pipes is not None:
            pipes.close()
        raise
    finally:
        if console is not None:
            os.close(console[1])
    if pipes is not None:
        if record.terminal:
            pipes.close()
            pipes = None
        else:
            pipes.close_child()
    master = None
    host = None
    try:
        if console is not None and record.terminal:
            from pyrunc.container.tty import host_console, receive_master

            host = host_console()
            master = receive_master(console[0])
            console = None
        start(store, cid)
    except BaseException:
        if master is not None:
            os.close(master)
        if host is not None and host[1]:
            os.close(host[0])
        if not keep:
            cleanup(store, cid)
        if pipes is not None:
            pipes.close()
        raise
    finally:
        if console is not None:
            os.close(console[0])
    if detach:
        return 0
    try:
        if master is not None:
            from pyrunc.container.tty import relay

            status = relay(master, record.pid,
                           lambda: poll_exit(record.pid), console=host)
        else:
            status = wait_for(record.pid, pipes)
    finally:
        if not keep:
            cleanup(store, cid)
        if pipes is not None:
            # What the process wrote before it exited; the cleanup has
            # killed anything else of the container that held the pipes.
            pipes.drain()
            pipes.close()
    return status


def poll_exit(pid):
    """The exit status of pid if it has exited, else None."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    if got != pid:
        return None
    return exit_status(status)


def exit_status(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


def wait_for(pid, pipes=None):
    """Forward signals to pid until it exits; return its exit status.

    With pipes (pyrunc.process.stdio.Pipes), relay its stdio meanwhile.
    """
    previous = {}
    for sig in FORWARDED:
        previous[sig] = signal.signal(sig, lambda n, _f: forward(pid, n))
    try:
        if pipes is None:
            return reap(pid)
        exited = os.pidfd_open(pid)
        try:
            return pipes.relay(exited, lambda: reap(pid))
        finally:
            os.close(exited)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def reap(pid):
    """Reap children (orphans come to a subreaper) until pid; return its
    exit status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if got == pid:
            return exit_status(status)


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
