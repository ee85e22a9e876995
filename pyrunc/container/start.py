"""`start`: let a created container's init exec the user's process.

The init blocks in open(exec.fifo, O_WRONLY) until a reader appears; it
then writes one byte and execs. Opening the fifo for reading and taking
that byte is all `start` does, followed by the poststart hooks.
"""

import os
import select

from pyrunc import log as _log
from pyrunc.errors import HookError, InvalidState, PyruncError

log = _log.get_logger(__name__)

# How often to check, while waiting for the fifo, that the init is still
# alive: a dead init would never open its end.
_POLL_MS = 100


def start(store, cid):
    """Start container cid, which must be in the created state.

    >>> start(Store("/run/pyrunc"), "web")  # doctest: +SKIP

    Raises InvalidState with runc's wording for any other state, and
    PyruncError if the init died before taking the byte. A failing
    poststart hook is logged as a warning; the container keeps running.
    """
    with store.lock(cid):
        record = store.load(cid)
        status = record.status(store)
        if status == "stopped":
            raise InvalidState("cannot start a container that has stopped")
        if status == "running":
            raise InvalidState("cannot start an already running container")
        if status != "created":
            raise InvalidState(
                f"cannot start a container in the {status} state")
        release_init(store.fifo_path(cid), record)
        hooks = record.config.get("hooks") or {}
        poststart = hooks.get("poststart")
        if poststart:
            _run_poststart(poststart, record, store)


def release_init(fifo, record):
    """Read the init's byte from the exec fifo, then remove the fifo."""
    log.debug("opening exec fifo `%s`", fifo)
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        # Started by someone else between our status check and now.
        raise InvalidState(
            "cannot start an already running container") from None
    try:
        data = _await_byte(fd, record)
    finally:
        os.close(fd)
    if not data:
        raise InvalidState("cannot start an already running container")
    os.unlink(fifo)


def _await_byte(fd, record):
    # The fifo is opened without blocking so that a dead init cannot hang
    # us; poll() then reports its byte, or POLLHUP if it closed its end.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if poller.poll(_POLL_MS):
            return _read_byte(fd)
        if not record.is_alive():
            # It may have written and exited between two polls.
            data = _read_byte(fd)
            if not data:
                raise PyruncError(_oom_reason(record) or
                                  "container process is already dead")
            return data


def _oom_reason(record):
    """Why the init died before start, if the OOM killer took it."""
    linux = record.config.get("linux") or {}
    memory = (linux.get("resources") or {}).get("memory") or {}
    if not record.cgroup:
        return None
    from pyrunc.cgroups import manager_from_dict
    from pyrunc.cgroups.oom import limit_too_low

    try:
        manager = manager_from_dict(record.cgroup)
    except PyruncError:
        return None
    return limit_too_low(manager, memory.get("limit"), "before it started")


def _read_byte(fd):
    try:
        return os.read(fd, 1)
    except BlockingIOError:
        return b""


def _run_poststart(hooks, record, store):
    from pyrunc.process.hooks import run_hooks

    state = record.oci_state(store, status="running")
    try:
        run_hooks(hooks, state, "poststart")
    except HookError as err:
        log.warning("poststart hook failed: %s", err)
