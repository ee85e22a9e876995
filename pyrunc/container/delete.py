"""`delete`: kill what is left of a container and remove all trace of it.

A directory without state.json is a create that crashed or was killed
half-way. Like runc, delete removes it with or without --force (and then
reports "container does not exist" unless forced); unlike runc it also
kills the init and removes the cgroup that create recorded in
create.json, so that any crash during create is undone by a delete.
"""

from pyrunc import log as _log
from pyrunc.errors import ContainerNotFound, HookError, InvalidState
from pyrunc.errors import PyruncError
from pyrunc.state import proc

log = _log.get_logger(__name__)

SIGKILL = 9

# runc gives a killed init 10 s to go away before it gives up.
_KILL_TIMEOUT = 10.0


def delete(store, cid, force=False):
    """Delete container cid.

    >>> delete(Store("/run/pyrunc"), "web", force=True)  # doctest: +SKIP

    created and stopped containers are deleted (a created init is killed
    first); a running or paused one needs force, else InvalidState with
    runc's wording. With force an unknown id is not an error. The cgroup
    goes, then the state directory, then the poststop hooks run; a hook
    failure is a warning, a cgroup that cannot be removed an error.
    """
    try:
        with store.lock(cid):
            _delete_locked(store, cid, force)
    except ContainerNotFound:
        if not force:
            raise


def _delete_locked(store, cid, force):
    try:
        record = store.load(cid)
    except ContainerNotFound:
        remove_partial(store, cid)
        raise
    except PyruncError as err:
        # An unreadable state.json: only force may throw it away.
        if not force:
            raise
        log.warning("removing %s: %s", cid, err)
        remove_partial(store, cid)
        return
    status = record.status(store)
    if status == "created" or (force and status != "stopped"):
        _kill_init(record, status)
    elif status != "stopped":
        raise InvalidState(
            f"cannot delete container {cid} that is not stopped: {status}")
    destroy(store, record)


def _kill_init(record, status):
    log.debug("killing init %d of %s", record.pid, record.id)
    proc.send_signal(record.pid, record.pid_start, SIGKILL)
    if status == "paused":
        # A frozen cgroup v1 task does not die until it is thawed.
        _manager(record.cgroup).thaw()
    if not proc.wait_exit(record.pid, record.pid_start, _KILL_TIMEOUT):
        raise PyruncError("container init still running")


def destroy(store, record):
    """Remove a stopped container's cgroup and directory, run poststop."""
    failure = None
    if record.cgroup:
        try:
            manager = _manager(record.cgroup)
            if not _has_private_pidns(record.config):
                # Without its own pid namespace the init's death does not
                # take the other processes with it.
                manager.kill_all(SIGKILL)
            manager.destroy()
        except PyruncError as err:
            # Still remove the record and run poststop; report at the end.
            failure = err
    store.destroy(record.id)
    hooks = record.config.get("hooks") or {}
    poststop = hooks.get("poststop")
    if poststop:
        _run_poststop(poststop, record, store)
    if failure is not None:
        raise failure


def remove_partial(store, cid):
    """Undo a create that never wrote state.json, using create.json."""
    try:
        partial = store.load_partial(cid) or {}
    except PyruncError as err:
        log.warning("ignoring %s: %s", store.partial_path(cid), err)
        partial = {}
    pid = partial.get("pid") or 0
    start = partial.get("pid_start")
    # Without its start time a pid cannot be told from a recycled one;
    # leave it alone rather than risk killing a stranger.
    if pid > 0 and start:
        log.debug("killing half-created init %d of %s", pid, cid)
        if proc.send_signal(pid, start, SIGKILL):
            proc.wait_exit(pid, start, _KILL_TIMEOUT)
    failure = None
    cgroup = partial.get("cgroup")
    if cgroup:
        try:
            _manager(cgroup).destroy()
        except PyruncError as err:
            failure = err
    store.destroy(cid)
    if failure is not None:
        raise failure


def _has_private_pidns(config):
    linux = config.get("linux") or {}
    for ns in linux.get("namespaces") or ():
        if ns.get("type") == "pid":
            return not ns.get("path")
    return False


def _run_poststop(hooks, record, store):
    from pyrunc.process.hooks import run_hooks

    state = record.oci_state(store, status="stopped")
    try:
        run_hooks(hooks, state, "poststop")
    except HookError as err:
        log.warning("poststop hook failed: %s", err)


def _manager(cgroup):
    from pyrunc.cgroups import manager_from_dict

    return manager_from_dict(cgroup)
