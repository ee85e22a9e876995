"""`ps`: the pids of every process in a container's cgroup."""


def pids(store, cid):
    """Return the pids in container cid's cgroup and its sub-cgroups.

    >>> pids(Store("/run/pyrunc"), "web")  # doctest: +SKIP
    [4242, 4250]

    A stopped container whose cgroup is gone has none; one whose cgroup
    remains (processes outside its pid namespace) still lists them, as
    runc does. Pids are host pids, in cgroup.procs order.
    """
    from pyrunc.cgroups import manager_from_dict

    record = store.load(cid)
    if not record.cgroup:
        return []
    manager = manager_from_dict(record.cgroup)
    if record.status(store) == "stopped" and not manager.exists():
        return []
    return manager.pids()
