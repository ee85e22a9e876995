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
import struct

from pyrunc.errors import ChildError, PyruncError

log = _log.get_logger(__name__)


class ChildGone(PyruncError):
    """The child exited without reporting why."""


def launch(plan, on_sync):
    """Run plan in a new child; return its pid once it is READY.

    on_sync(tag, pid) is called at each sync point and returns the bytes
    to hand back to the child (possibly empty). An exception from it
    aborts the launch.
    """
    from pyrunc._native import launcher as L

    parent_fd, child_fd = L.socketpair()
    try:
        pid = L.spawn(plan.steps, plan.clone_flags, child_fd, parent_fd)
    finally:
        os.close(child_fd)
    pids = [pid]
    try:
        pid = serve(L, parent_fd, pids, on_sync)
    except BaseException:
        for p in pids:
            kill_and_reap(p)
        raise
    finally:
        os.close(parent_fd)
    return pid


def serve(L, fd, pids, on_sync):
    """Answer the child's messages until READY; return the live pid."""
    while True:
        data = read_msg(fd)
        if not data:
            raise child_gone(pids[-1])
        kind, arg, err, step, op, text = struct.unpack(L.MSG_FORMAT, data)
        if kind == L.MSG_SYNC:
            log.debug("child at sync point %d", arg)
            payload = on_sync(arg, pids[-1])
            os.write(fd, b"\0" + (payload or b""))
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


def read_msg(fd):
    while True:
        try:
            return os.read(fd, 4096)
        except InterruptedError:
            continue
        except ConnectionResetError:
            return b""


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
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return
        time.sleep(0.001)
