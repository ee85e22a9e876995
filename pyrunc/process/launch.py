"""The parent's side of starting a container's process.

Clones the child through the compiled launcher, then serves its sync
points until it reports READY (it is then blocked on the exec fifo) or
an error. A failure is raised once, as one clear error, after the child
is killed and reaped.
"""

from pyrunc import log as _log
import os
# _signal, not signal: the latter wraps its constants in an enum, and
# importing enum costs the hot path about 3 ms.
import _signal as signal
# The builtin behind struct (see pyrunc/_native/launcher.pyx).
from _struct import unpack

from pyrunc.errors import ChildError, PyruncError

log = _log.get_logger(__name__)


class ChildGone(PyruncError):
    """The child exited without reporting why."""


def launch(plan, on_sync):
    """Run plan in a new child; return its pid once it is READY.

    on_sync(tag, pid) is called at each sync point and returns the bytes
    to hand back to the child (possibly empty). An exception from it
    aborts the launch. A sync message that carries an fd (a seccomp
    listener, sent with SCM_RIGHTS) calls on_sync(tag, pid, fd); the fd
    is closed when it returns.
    """
    from pyrunc._native import launcher as L

    tree_fds = open_trees(plan, L)
    try:
        steps = plan.steps
        if tree_fds:
            steps = with_tree_fds(steps, tree_fds, L)
        parent_fd, child_fd = L.socketpair()
        try:
            pid = L.spawn(steps, plan.clone_flags, child_fd, parent_fd)
        finally:
            os.close(child_fd)
    finally:
        # The child has its copies; the runtime's hooks must not get them.
        for fd in tree_fds:
            os.close(fd)
    pids = [pid]
    try:
        pid = serve(L, parent_fd, pids, on_sync, passes_fds(plan, L))
    except BaseException:
        for p in pids:
            kill_and_reap(p)
        raise
    finally:
        os.close(parent_fd)
    return pid


def open_trees(plan, L):
    """The fds of the plan's idmapped trees, which the child inherits."""
    if not plan.trees:
        return []
    from pyrunc.process import idmap

    return idmap.open_trees(plan, L)


def with_tree_fds(steps, fds, L):
    from pyrunc.process import idmap

    return idmap.with_tree_fds(steps, fds, L)


def passes_fds(plan, L):
    """Whether the child sends an fd with a message: only a seccomp
    step with a notify sync tag does. Reading fds needs the socket
    module, which plain launches do without."""
    return any(step[0] == L.OP_SECCOMP and len(step) > 3 and step[3]
               for step in plan.steps)


def serve(L, fd, pids, on_sync, with_fds=False):
    """Answer the child's messages until READY; return the live pid."""
    while True:
        data, fds = read_msg(fd, with_fds)
        if not data:
            raise child_gone(pids[-1])
        kind, arg, err, step, op, text = unpack(L.MSG_FORMAT, data)
        if kind == L.MSG_SYNC:
            log.debug("child at sync point %d", arg)
            try:
                payload = on_sync(arg, pids[-1], *fds)
            finally:
                for passed in fds:
                    os.close(passed)
            try:
                os.write(fd, b"\0" + (payload or b""))
            except (BrokenPipeError, ConnectionResetError):
                # Killed while we served it (its pid namespace's init
                # died, say): report how it ended.
                raise child_gone(pids[-1]) from None
        elif kind == L.MSG_PID:
            # The first child forked the real one and exits now.
            reap(pids[-1])
            pids.append(arg)
        elif kind == L.MSG_READY:
            return pids[-1]
        elif kind == L.MSG_ERROR:
            raise ChildError(cstr(op), err, cstr(text), step)
        else:
            raise PyruncError(f"unexpected message {kind} from the child")


def read_msg(fd, with_fds=False):
    """One message, and the fds it carried when with_fds."""
    while True:
        try:
            if with_fds:
                return recv_with_fds(fd)
            return os.read(fd, 4096), []
        except InterruptedError:
            continue
        except ConnectionResetError:
            return b"", []


def recv_with_fds(fd):
    import socket

    sock = socket.socket(fileno=fd)
    try:
        data, fds, _, _ = socket.recv_fds(sock, 4096, 1,
                                          socket.MSG_CMSG_CLOEXEC)
    finally:
        sock.detach()
    return data, fds


def cstr(raw):
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def child_gone(pid):
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return ChildGone("container process exited during setup")
    if os.WIFSIGNALED(status):
        how = f"was killed by signal {os.WTERMSIG(status)}"
    else:
        how = f"exited with status {os.waitstatus_to_exitcode(status)}"
    return ChildGone(f"container process {how} during setup")


def reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        # Not our child (the grandchild after a fork): wait until gone.
        wait_gone(pid)


def wait_gone(pid, timeout=2.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Its parent (a shim, a subreaper) may reap it between the two
        # looks: gone is what we wait for.
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return
        if stat.rsplit(b")", 1)[1].split()[0] == b"Z":
            return
        time.sleep(0.001)
