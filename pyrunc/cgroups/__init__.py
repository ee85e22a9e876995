"""Container cgroups on v1, v2 and hybrid hosts, as runc's cgroupfs driver.

    >>> from pyrunc.cgroups import new_manager, manager_from_dict
    >>> m = new_manager(spec.linux.cgroups_path, "mycontainer")
    >>> m.create(); m.set(spec.linux.resources); m.apply(pid)
    >>> state["cgroup"] = m.to_dict()
    >>> manager_from_dict(state["cgroup"]).destroy()

Paths follow runc 1.1.5: no cgroupsPath means the container id; a relative
path is joined to the runtime's own cgroup of each controller (on v2: to
the parent of its own cgroup); an absolute path to the hierarchy root.
"""

from pyrunc.cgroups import detect
from pyrunc.cgroups.base import Manager
from pyrunc.cgroups.detect import DEFAULT_ROOT, HYBRID, V1, V2, detect_mode
from pyrunc.errors import CgroupError

# The v1 and v2 drivers are imported where a manager is made: a host
# needs one of them, and each import costs a CLI call a fraction of a
# millisecond.

__all__ = [
    "Manager",
    "detect_mode",
    "new_manager",
    "manager_from_dict",
    "V1",
    "V2",
    "HYBRID",
]


def new_manager(
    cgroups_path,
    cid,
    root=DEFAULT_ROOT,
    proc_self_cgroup="/proc/self/cgroup",
    mode=None,
    mountinfo="/proc/self/mountinfo",
):
    """Return the Manager for a container; nothing is created yet.

    cgroups_path is linux.cgroupsPath (None or "" for the default, the
    container id). mode overrides detect_mode(root); proc_self_cgroup
    and mountinfo are read only for a relative path, so that tests can
    point everything at a fake tree.
    """
    if mode is None:
        mode = detect_mode(root)
    inner = detect.inner_path(cgroups_path, cid)
    own = {}
    if not inner.startswith("/"):
        own = detect.read_proc_cgroup(proc_self_cgroup)
    if mode == V2:
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager(root, detect.v2_path(root, inner, own))
    if mode not in (V1, HYBRID):
        raise CgroupError(f"unknown cgroup mode {mode!r}")
    from pyrunc.cgroups.v1 import V1Manager

    mount_roots = {}
    if not inner.startswith("/"):
        mount_roots = detect.read_mount_roots(mountinfo)
    found = detect.v1_paths(root, inner, own, mount_roots, mode == HYBRID)
    paths = {ctrl: path for ctrl, (_mnt, path) in found.items()}
    mounts = {ctrl: mnt for ctrl, (mnt, _path) in found.items()}
    return V1Manager(mode, root, paths, mounts)


def manager_from_dict(d):
    """Rebuild a Manager from to_dict() output without probing the host."""
    try:
        mode = d["mode"]
        root = d.get("root", DEFAULT_ROOT)
        paths = d["paths"]
        created = d.get("created", [])
        if mode == V2:
            from pyrunc.cgroups.v2 import V2Manager

            return V2Manager(root, paths[""], created)
        if mode in (V1, HYBRID):
            from pyrunc.cgroups.v1 import V1Manager

            return V1Manager(mode, root, paths, d["mounts"], created)
    except (KeyError, TypeError, AttributeError) as err:
        raise CgroupError(f"invalid cgroup state: {err!r}") from err
    raise CgroupError(f"invalid cgroup state: unknown mode {mode!r}")
