"""`pause` and `resume`: freeze and thaw every process of a container.

The v1 freezer controller or cgroup v2's cgroup.freeze does the work;
the status "paused" is derived from it (Record.status), so nothing is
stored. Wrong states fail with runc 1.1.5's words.
"""

from pyrunc import log as _log
from pyrunc.errors import CgroupError, ContainerNotRunning, InvalidState

log = _log.get_logger(__name__)


def pause(store, cid):
    """Freeze container cid (running or created -> paused).

    >>> pause(Store("/run/pyrunc"), "web")  # doctest: +SKIP

    Raises ContainerNotRunning ("container not running") when the
    container is stopped or already paused, as runc does.
    """
    with store.lock(cid):
        record = store.load(cid)
        status = record.status(store)
        if status not in ("running", "created"):
            raise ContainerNotRunning()
        manager = _manager(record)
        log.debug("freezing %r", manager)
        manager.freeze()


def resume(store, cid):
    """Thaw container cid (paused -> running).

    >>> resume(Store("/run/pyrunc"), "web")  # doctest: +SKIP

    Raises InvalidState ("container not paused") in any other status.
    """
    with store.lock(cid):
        record = store.load(cid)
        if record.status(store) != "paused":
            raise InvalidState("container not paused")
        manager = _manager(record)
        log.debug("thawing %r", manager)
        manager.thaw()


def _manager(record):
    from pyrunc.cgroups import manager_from_dict

    if not record.cgroup:
        raise CgroupError(
            "cannot toggle freezer: cgroups not configured for container"
        )
    return manager_from_dict(record.cgroup)
