"""`events`: a container's resource usage and OOM kills as JSON lines.

Each event is one JSON object in runc's types.Event shape:
{"type": "stats", "id": ..., "data": <types.Stats>} every interval, and
{"type": "oom", "id": ...} when the kernel OOM-kills a task of the
container. The stream ends when the container's init exits.
"""

import json
import os
import select
import time

from pyrunc import log as _log
from pyrunc.errors import ContainerNotRunning, PyruncError
from pyrunc.state import proc

log = _log.get_logger(__name__)


def events(store, cid, *, stats, interval, write):
    """Report events of container cid through write(line).

    >>> events(Store("/run/pyrunc"), "web", stats=True, interval=5.0,
    ...        write=print)  # doctest: +SKIP
    {"type":"stats","id":"web","data":{"cpu":{...},...}}

    write receives one compact JSON object per event, without the
    trailing newline (print() adds it). With stats, one stats event is
    reported and the call returns; otherwise a stats event follows every
    interval seconds, plus oom events, until the container stops.
    interval must be positive; a stopped container is an error, as in
    runc.
    """
    record = store.load(cid)
    if interval <= 0:
        raise PyruncError("duration interval must be greater than 0")
    if record.status(store) == "stopped":
        raise ContainerNotRunning(f"container with id {cid} is not running")
    manager = _manager(record)
    if stats:
        data = _stats(manager)
        write(encode({"type": "stats", "id": cid, "data": data}))
        return
    _stream(record, manager, interval, write)


def encode(event):
    """Compact JSON as Go's encoder writes it (HTML characters escaped)."""
    text = json.dumps(event, separators=(",", ":"))
    # encoding/json escapes <, > and & for safe embedding in HTML.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _stats(manager):
    try:
        return manager.stats()
    except (OSError, PyruncError) as err:
        raise PyruncError(
            f"unable to get container cgroup stats: {err}"
        ) from err


def _stream(record, manager, interval, write):
    pidfd = proc.open_pidfd(record.pid, record.pid_start)
    if pidfd is None:
        return
    watcher = _oom_watcher(manager)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if watcher is not None:
            poller.register(watcher.fileno(), watcher.poll_events())
        _loop(record.id, manager, interval, write, poller, pidfd, watcher)
    finally:
        if watcher is not None:
            watcher.close()
        os.close(pidfd)


def _loop(cid, manager, interval, write, poller, pidfd, watcher):
    next_tick = time.monotonic() + interval
    while True:
        wait = max(0.0, next_tick - time.monotonic())
        ready = {fd for fd, _ev in poller.poll(int(wait * 1000) + 1)}
        # OOM first: a task killed for memory is often the init itself,
        # whose exit arrives in the same wakeup.
        if watcher is not None and watcher.fileno() in ready:
            _report_oom(cid, watcher, write)
        if pidfd in ready:
            if watcher is not None:
                _report_oom(cid, watcher, write)
            return
        if time.monotonic() < next_tick:
            continue
        next_tick += interval
        try:
            data = manager.stats()
        except (OSError, PyruncError) as err:
            # A stream goes on after one failed reading, as runc's does.
            log.error("unable to get container cgroup stats: %s", err)
            continue
        write(encode({"type": "stats", "id": cid, "data": data}))


def _report_oom(cid, watcher, write):
    if watcher.read():
        write(encode({"type": "oom", "id": cid}))


def _oom_watcher(manager):
    try:
        return manager.oom_watcher()
    except PyruncError as err:
        log.warning("OOM events will not be reported: %s", err)
        return None


def _manager(record):
    from pyrunc.cgroups import manager_from_dict
    from pyrunc.errors import CgroupError

    if not record.cgroup:
        raise CgroupError("container has no cgroup")
    return manager_from_dict(record.cgroup)
