"""Resource limits of the v1 controllers, after runc's fs subsystems.

Each set_* function takes `dir_of(controller, field)`, which returns the
container's directory of that controller or raises a CgroupError naming
the field (a controller that is not mounted cannot take a limit), and
the Limits to write. Nothing is written for a field left at zero.
"""

import errno
import os

from pyrunc import log as _log
from pyrunc.cgroups import base, fsutil
from pyrunc.cgroups import resources as res
from pyrunc.errors import CgroupError, ConfigError

log = _log.get_logger(__name__)

MEM_LIMIT = "memory.limit_in_bytes"
MEMSW_LIMIT = "memory.memsw.limit_in_bytes"


# -- memory ----------------------------------------------------------------


def set_memory(dir_of, lim):
    """memory.limit_in_bytes and memsw in a safe order, then the rest."""
    limit = lim.memory
    swap = lim.memory_swap
    swappiness = lim.swappiness
    if swappiness == -1:
        swappiness = None
    wanted = [
        (limit, res.F_MEM_LIMIT),
        (swap, res.F_MEM_SWAP),
        (lim.memory_reservation, res.F_MEM_RESERVATION),
        (lim.oom_kill_disable, res.F_MEM_OOM),
        (swappiness is not None, res.F_MEM_SWAPPINESS),
        (lim.use_hierarchy is not None, res.F_MEM_HIERARCHY),
    ]
    fields = [field for value, field in wanted if value]
    if not fields:
        return
    path = dir_of("memory", fields[0])
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise ConfigError(
            f"{res.F_MEM_SWAPPINESS}: invalid memory swappiness value: "
            f"{swappiness} (valid range is 0-100)"
        )
    memsw = os.path.join(path, MEMSW_LIMIT)
    if limit == -1 and swap == 0 and os.path.exists(memsw):
        # Unlimited memory with swap unset means unlimited swap too.
        swap = -1
    _set_memory_and_swap(path, limit, swap)
    if lim.memory_reservation:
        fsutil.set_value(
            path,
            "memory.soft_limit_in_bytes",
            lim.memory_reservation,
            res.F_MEM_RESERVATION,
        )
    if lim.oom_kill_disable:
        fsutil.set_value(path, "memory.oom_control", 1, res.F_MEM_OOM)
    if swappiness is not None:
        fsutil.set_value(
            path, "memory.swappiness", swappiness, res.F_MEM_SWAPPINESS
        )
    if lim.use_hierarchy is not None:
        # Since Linux 5.16 the kernel is always hierarchical and refuses
        # 0 (EINVAL), which then names the field.
        value = 1 if lim.use_hierarchy else 0
        fsutil.set_value(
            path, "memory.use_hierarchy", value, res.F_MEM_HIERARCHY
        )


def _set_limit(path, value):
    """Write memory.limit_in_bytes; EBUSY reports the usage, as runc."""
    try:
        fsutil.write_file(path, MEM_LIMIT, value)
    except OSError as err:
        error = fsutil.write_error(
            res.F_MEM_LIMIT, value, os.path.join(path, MEM_LIMIT), err
        )
        if err.errno == errno.EBUSY:
            usage = base.read_stat(path, "memory.usage_in_bytes")
            peak = base.read_stat(path, "memory.max_usage_in_bytes")
            error = CgroupError(
                f"{error} (current usage: {usage}, peak usage: {peak})"
            )
        raise error from err


def _set_memory_and_swap(path, limit, swap):
    # memsw must stay >= limit at every step, so the order depends on
    # whether the new memory+swap value is above the current limit.
    if limit and swap:
        try:
            current = fsutil.read_int(path, MEM_LIMIT)
        except (OSError, ValueError) as err:
            raise CgroupError(
                f"{res.F_MEM_LIMIT}: read {path}/{MEM_LIMIT}: {err}"
            ) from err
        if swap == -1 or (current != -1 and current < swap):
            fsutil.set_value(path, MEMSW_LIMIT, swap, res.F_MEM_SWAP)
            _set_limit(path, limit)
            return
    if limit:
        _set_limit(path, limit)
    if swap:
        fsutil.set_value(path, MEMSW_LIMIT, swap, res.F_MEM_SWAP)


# -- cpu -------------------------------------------------------------------


def set_cpu(dir_of, lim):
    """cpu.shares, the CFS quota, period and burst, idle, realtime."""
    wanted = [
        (lim.cpu_shares, res.F_CPU_SHARES),
        (lim.cpu_period, res.F_CPU_PERIOD),
        (lim.cpu_quota, res.F_CPU_QUOTA),
        (lim.cpu_burst is not None, res.F_CPU_BURST),
        (lim.cpu_idle is not None, res.F_CPU_IDLE),
        (lim.cpu_rt_period, res.F_CPU_RT_PERIOD),
        (lim.cpu_rt_runtime, res.F_CPU_RT_RUNTIME),
    ]
    fields = [field for value, field in wanted if value]
    if not fields:
        return
    path = dir_of("cpu", fields[0])
    if lim.cpu_shares:
        _set_shares(path, lim.cpu_shares)
    _set_cfs(path, lim.cpu_quota, lim.cpu_period, lim.cpu_burst)
    if lim.cpu_idle is not None:
        fsutil.set_value(path, "cpu.idle", lim.cpu_idle, res.F_CPU_IDLE)
    _set_rt(path, lim.cpu_rt_runtime, lim.cpu_rt_period)


def _set_shares(path, shares):
    fsutil.set_value(path, "cpu.shares", shares, res.F_CPU_SHARES)
    # The kernel clamps out-of-range shares silently; runc reads the
    # value back and reports the bound instead.
    try:
        actual = fsutil.read_int(path, "cpu.shares")
    except (OSError, ValueError) as err:
        raise CgroupError(
            f"{res.F_CPU_SHARES}: read {path}/cpu.shares: {err}"
        ) from err
    if shares > actual:
        raise CgroupError(
            f"{res.F_CPU_SHARES}: the maximum allowed cpu-shares is {actual}"
        )
    if shares < actual:
        raise CgroupError(
            f"{res.F_CPU_SHARES}: the minimum allowed cpu-shares is {actual}"
        )


def _try_write(path, name, value, field, may_defer):
    """Write; on EINVAL return True (retry later) when may_defer."""
    try:
        fsutil.write_file(path, name, value)
    except OSError as err:
        if err.errno == errno.EINVAL and may_defer:
            return True
        target = os.path.join(path, name)
        raise fsutil.write_error(field, value, target, err) from err
    return False


def _set_cfs(path, quota, period, burst):
    # A new period or burst can be refused (EINVAL) against the quota
    # still in place; when the quota changes too, retry them after it,
    # as runc does.
    late_period = late_burst = None
    if period:
        if _try_write(
            path, "cpu.cfs_period_us", period, res.F_CPU_PERIOD, bool(quota)
        ):
            late_period = period
    if burst is not None:
        try:
            deferred = _try_write(
                path, "cpu.cfs_burst_us", burst, res.F_CPU_BURST, bool(quota)
            )
        except CgroupError as err:
            if not isinstance(err.__cause__, FileNotFoundError):
                raise
            # runc ignores the knob on kernels before 5.14.
            log.warning("%s: cpu.cfs_burst_us is missing, ignoring the "
                        "burst", res.F_CPU_BURST)
            burst = None
            deferred = False
        if deferred:
            late_burst = burst
    if not quota:
        return
    fsutil.set_value(path, "cpu.cfs_quota_us", quota, res.F_CPU_QUOTA)
    if late_period is not None:
        fsutil.set_value(
            path, "cpu.cfs_period_us", late_period, res.F_CPU_PERIOD
        )
    if late_burst is not None:
        fsutil.set_value(path, "cpu.cfs_burst_us", late_burst, res.F_CPU_BURST)


def _set_rt(path, runtime, period):
    late_period = None
    if period:
        if _try_write(
            path, "cpu.rt_period_us", period, res.F_CPU_RT_PERIOD,
            bool(runtime),
        ):
            late_period = period
    if not runtime:
        return
    fsutil.set_value(path, "cpu.rt_runtime_us", runtime, res.F_CPU_RT_RUNTIME)
    if late_period is not None:
        fsutil.set_value(
            path, "cpu.rt_period_us", late_period, res.F_CPU_RT_PERIOD
        )


# -- pids ------------------------------------------------------------------


def set_pids(dir_of, lim):
    """pids.max; any negative limit means unlimited (runc fs/pids.go)."""
    if lim.pids_limit == 0:
        return
    path = dir_of("pids", res.F_PIDS_LIMIT)
    value = "max" if lim.pids_limit < 0 else lim.pids_limit
    fsutil.set_value(path, "pids.max", value, res.F_PIDS_LIMIT)


# -- blkio -----------------------------------------------------------------


def weight_files(path):
    """Return the (weight, weight_device) files of a blkio cgroup.

    CFQ's blkio.weight when the kernel has it, else BFQ's names, as runc
    picks them: a kernel without either fails the write, naming the
    field.
    """
    if os.path.exists(os.path.join(path, "blkio.weight")):
        return "blkio.weight", "blkio.weight_device"
    return "blkio.bfq.weight", "blkio.bfq.weight_device"


def set_blkio(dir_of, lim):
    """Weights, leaf weights, per-device weights and the throttles."""
    if not lim.has_blkio():
        return
    path = dir_of("blkio", res.F_BLKIO)
    weight_file, device_file = weight_files(path)
    if lim.blkio_weight:
        fsutil.set_value(
            path, weight_file, lim.blkio_weight, res.F_BLKIO_WEIGHT
        )
    if lim.blkio_leaf_weight:
        fsutil.set_value(
            path,
            "blkio.leaf_weight",
            lim.blkio_leaf_weight,
            res.F_BLKIO_LEAF_WEIGHT,
        )
    for wd in lim.blkio_weight_device:
        if wd.weight:
            fsutil.set_value(
                path, device_file, wd.weight_line(), wd.field + ".weight"
            )
        if wd.leaf_weight:
            fsutil.set_value(
                path,
                "blkio.leaf_weight_device",
                wd.leaf_weight_line(),
                wd.field + ".leafWeight",
            )
    for attr, _name, filename, _key in res.THROTTLES:
        for td in lim.blkio_throttle.get(attr, ()):
            fsutil.set_value(path, filename, td.line(), td.field)


# -- hugetlb, net_cls, net_prio, rdma ----------------------------------------


def set_hugetlb(dir_of, lim):
    """hugetlb.<size>.limit_in_bytes for each page size."""
    if not lim.hugetlb:
        return
    path = dir_of("hugetlb", res.F_HUGETLB)
    for size, limit, field in lim.hugetlb:
        name = f"hugetlb.{size}.limit_in_bytes"
        check_page_size(path, name, size, field)
        fsutil.set_value(path, name, limit, field + ".limit")


def check_page_size(path, name, size, field):
    """Name the page size when the host has no file for it."""
    if os.path.exists(os.path.join(path, name)):
        return
    sizes = host_page_sizes()
    if size in sizes:
        return
    have = ", ".join(sizes) or "none"
    raise ConfigError(
        f"{field}.pageSize: hugepage size {size} is not supported by this "
        f"host (supported: {have})"
    )


def host_page_sizes(sysfs="/sys/kernel/mm/hugepages"):
    """Return the huge page sizes of the host, as "2MB", "1GB"."""
    try:
        names = os.listdir(sysfs)
    except OSError:
        return []
    sizes = []
    for name in sorted(names):
        if not name.startswith("hugepages-") or not name.endswith("kB"):
            continue
        try:
            kib = int(name[len("hugepages-"):-2])
        except ValueError:
            continue
        sizes.append(page_size_name(kib))
    return sizes


def page_size_name(kib):
    """Format a page size in KiB as the kernel names its files."""
    if kib >= 1 << 20:
        return f"{kib >> 20}GB"
    if kib >= 1 << 10:
        return f"{kib >> 10}MB"
    return f"{kib}KB"


def set_network(dir_of, lim):
    """net_cls.classid and net_prio.ifpriomap."""
    if lim.net_cls_classid:
        path = dir_of("net_cls", res.F_NET_CLASSID)
        fsutil.set_value(
            path, "net_cls.classid", lim.net_cls_classid, res.F_NET_CLASSID
        )
    for i, (name, prio) in enumerate(lim.net_prio_ifpriomap):
        field = f"{res.F_NET_PRIORITIES}[{i}]"
        path = dir_of("net_prio", field)
        fsutil.set_value(path, "net_prio.ifpriomap", f"{name} {prio}", field)


def set_rdma(dir_of, lim):
    """rdma.max, one line per device."""
    for name, (handles, objects) in lim.rdma.items():
        field = f"{res.F_RDMA}[{name!r}]"
        path = dir_of("rdma", field)
        line = res.rdma_line(name, handles, objects)
        fsutil.set_value(path, "rdma.max", line, field)
