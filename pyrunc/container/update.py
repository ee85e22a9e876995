"""`update`: change the resource limits of a running container.

The update is a LinuxResources JSON object (what `runc update
--resources` and containerd send). It is merged into the container's
stored linux.resources, the merged whole is applied through the
container's cgroup manager (as runc re-applies its whole config), and
saved back into state.json. Merging is what makes "change the quota,
keep the period" (and the reverse) work. As in runc, device rules are
never changed by an update.
"""

import copy

from pyrunc import log as _log
from pyrunc.errors import ContainerNotRunning, PyruncError

log = _log.get_logger(__name__)

# Objects whose keys are merged one by one; anything else is replaced.
_MERGED_OBJECTS = ("memory", "cpu", "pids", "blockIO", "network")
_MERGED_MAPS = ("rdma", "unified")


def update(store, cid, resources_json):
    """Apply resources_json (an OCI LinuxResources dict) to container cid.

    >>> update(Store("/run/pyrunc"), "web",
    ...        {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    ... # doctest: +SKIP

    Raises SpecError naming the field for malformed JSON (before anything
    is touched), ContainerNotRunning for a stopped container, and the
    cgroup error of a limit the kernel refuses; on such a failure the
    previous limits are applied again, as runc does.
    """
    from pyrunc.spec.model import Resources

    with store.lock(cid):
        # runc's order: an unknown container, then a malformed field,
        # then a stopped container.
        record = store.load(cid)
        Resources.from_json(resources_json, path="linux.resources")
        if record.status(store) == "stopped":
            raise ContainerNotRunning()
        linux = record.config.setdefault("linux", {})
        old_json = linux.get("resources") or {}
        merged_json = merge(old_json, resources_json)
        merged = Resources.from_json(merged_json, path="linux.resources")
        manager = _manager(record)
        log.debug("updating %r with %s", manager, resources_json)
        try:
            manager.set(merged, skip_devices=True)
        except PyruncError:
            _restore(manager, old_json)
            raise
        linux["resources"] = merged_json
        store.save(record)


def merge(old, new):
    """Return old (a LinuxResources dict) updated with new.

    Top-level objects (memory, cpu, pids, blockIO, network) are merged
    key by key, rdma and unified entry by entry, hugepageLimits by page
    size; devices are kept from old, since update never changes them.
    """
    out = copy.deepcopy(old) if old else {}
    for key, value in new.items():
        if key == "devices":
            if value:
                log.debug("update ignores linux.resources.devices, as runc")
            continue
        if value is None:
            continue
        if key in _MERGED_OBJECTS or key in _MERGED_MAPS:
            base = out.get(key)
            if not isinstance(base, dict):
                base = {}
            merged = dict(base)
            merged.update(copy.deepcopy(value))
            out[key] = merged
            continue
        if key == "hugepageLimits":
            out[key] = _merge_hugepages(out.get(key) or [], value)
            continue
        out[key] = copy.deepcopy(value)
    return out


def _merge_hugepages(old, new):
    by_size = {}
    for item in list(old) + list(new):
        if isinstance(item, dict):
            by_size[item.get("pageSize")] = dict(item)
    return list(by_size.values())


def _restore(manager, old_json):
    from pyrunc.spec.model import Resources

    try:
        old = Resources.from_json(old_json, path="linux.resources")
        manager.set(old, skip_devices=True)
    except PyruncError as err:
        log.warning(
            "setting back cgroup configs failed due to error: %s, your "
            "state.json and actual configs might be inconsistent", err
        )


def _manager(record):
    from pyrunc.cgroups import manager_from_dict
    from pyrunc.errors import CgroupError

    if not record.cgroup:
        raise CgroupError("container has no cgroup to update")
    return manager_from_dict(record.cgroup)
