"""`state`: the container's state as runc prints it."""


def state(store, cid):
    """Return the state of container cid in runc's shape and key order.

    >>> state(Store("/run/pyrunc"), "web")  # doctest: +SKIP
    {'ociVersion': '1.0.2', 'id': 'web', 'pid': 4242, 'status': 'running',
     'bundle': '/srv/web', 'rootfs': '/srv/web/rootfs', 'created': '...',
     'owner': ''}

    ociVersion is the bundle's (config.json's), not the runtime's; pid is
    0 once stopped; annotations appear, sorted, only when there are any,
    and before owner (the field order of runc's containerState).
    """
    record = store.load(cid)
    return describe(record, record.status(store))


def describe(record, status, owner=None):
    """Return runc's containerState object for a loaded record."""
    pid = record.pid
    if status == "stopped":
        pid = 0
    result = {
        "ociVersion": record.config.get("ociVersion", ""),
        "id": record.id,
        "pid": pid,
        "status": status,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
    }
    if record.annotations:
        result["annotations"] = dict(sorted(record.annotations.items()))
    result["owner"] = record.owner if owner is None else owner
    return result
