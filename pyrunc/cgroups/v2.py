"""cgroup v2 (unified) driver, after runc's fs2 package."""

import errno
from pyrunc import log as _log
import os
import time

from pyrunc.cgroups import base, fsutil, v1res
from pyrunc.cgroups import resources as res
from pyrunc.cgroups.detect import UNIFIED, V2
from pyrunc.errors import CgroupError, ConfigError

log = _log.get_logger(__name__)

_DEFAULT_PERIOD = 100000

# runc waits up to 10 s (1000 x 10 ms) for cgroup.events to say frozen.
_FREEZE_POLLS = 1000
_FREEZE_PAUSE = 0.01


def _num(value):
    """Format a limit the way cgroup2 files take it: -1 is "max"."""
    if value == 0:
        return ""
    if value == -1:
        return "max"
    return str(value)


def _has_domain_limits(lim):
    # Limits of controllers that cannot work in a threaded cgroup.
    return bool(
        lim.memory
        or lim.memory_reservation
        or lim.memory_swap
        or lim.cpu_shares
        or lim.cpu_quota
        or lim.cpu_period
    )


class V2Manager(base.Manager):
    """Manager for a pure cgroup2 host: one directory, key ""."""

    mode = V2

    def __init__(self, root, path, created=()):
        super().__init__(root, {UNIFIED: path}, {UNIFIED: root}, created)
        self._path = path

    # -- create ------------------------------------------------------------

    def create(self, resources=None):
        """Make the directory and enable controllers on the way down.

        Every level above the container gets all the controllers the root
        offers in cgroup.subtree_control, as runc's CreateCgroupPath does.
        resources, when given, lets a threaded parent be refused early.
        """
        domain = False
        if resources is not None:
            lim = res.limits(resources, v1=False)
            domain = _has_domain_limits(lim)
        controllers = _read_or_raise(self.root, "cgroup.controllers").split()
        enable = " ".join("+" + c for c in controllers)
        rel = os.path.relpath(self._path, self.root)
        levels = [self.root]
        for part in rel.split("/"):
            if part not in ("", "."):
                levels.append(os.path.join(levels[-1], part))
        made = []
        try:
            for i, level in enumerate(levels):
                if i > 0:
                    fsutil.mkdir_chain(levels[i - 1], level, made)
                    _check_type(level, domain)
                if i < len(levels) - 1 and enable:
                    _enable_controllers(level, enable)
        except CgroupError:
            # Leave nothing half-made behind.
            for path in reversed(made):
                try:
                    fsutil.remove_dir(path)
                except OSError:
                    pass
            raise
        self._created.extend(made)

    # -- set ---------------------------------------------------------------

    def set(self, resources, linux_devices=None, skip_devices=False):
        """Write the limits of resources (may be None) to the cgroup.

        In runc's fs2 order. v1-only knobs that runc ignores on cgroup
        v2 are ignored with a warning; skip_devices leaves the device
        filter as it is (what `update` does).
        """
        lim = res.limits(
            resources,
            v1=False,
            linux_devices=linux_devices,
            skip_devices=skip_devices,
        )
        _warn_ignored(lim)
        path = self._path
        if lim.pids_limit != 0:
            self._write("pids.max", _num(lim.pids_limit), res.F_PIDS_LIMIT)
        self._set_memory(lim)
        self._set_io(lim)
        self._set_cpu(lim)
        if not lim.skip_devices:
            self._set_devices(lim)
        if lim.cpuset_cpus:
            self._write("cpuset.cpus", lim.cpuset_cpus, res.F_CPU_CPUS)
        if lim.cpuset_mems:
            self._write("cpuset.mems", lim.cpuset_mems, res.F_CPU_MEMS)
        for size, limit, field in lim.hugetlb:
            name = f"hugetlb.{size}.max"
            if not os.path.exists(os.path.join(path, name)):
                self._require("hugetlb", field)
                v1res.check_page_size(path, name, size, field)
            self._write(name, limit, field + ".limit")
        for name, (handles, objects) in lim.rdma.items():
            field = f"{res.F_RDMA}[{name!r}]"
            line = res.rdma_line(name, handles, objects)
            self._write("rdma.max", line, field)
        self._set_unified(lim.unified)

    def _controllers(self):
        try:
            text = fsutil.read_file(self._path, "cgroup.controllers")
        except OSError:
            return None
        return text.split()

    def _require(self, controller, field):
        """Raise a clear error if controller is not enabled here."""
        have = self._controllers()
        if have is not None and controller not in have:
            raise CgroupError(
                f"{field}: the {controller} controller is not available "
                f"in {self._path} (cgroup.controllers: {' '.join(have)})"
            )

    def _write(self, name, value, field):
        """Write one file; a missing one names its controller."""
        try:
            fsutil.write_file(self._path, name, value)
        except OSError as err:
            if err.errno == errno.ENOENT:
                self._require(name.split(".", 1)[0], field)
            target = os.path.join(self._path, name)
            raise fsutil.write_error(field, value, target, err) from err

    def _set_memory(self, lim):
        if not (lim.memory or lim.memory_reservation or lim.memory_swap):
            return
        path = self._path
        swap = res.swap_v2(lim.memory_swap, lim.memory)
        if lim.check_before_update:
            _check_memory_usage(path, lim)
        swap_str = _num(swap)
        if swap == 0 and lim.memory_swap > 0:
            # memory == memory+swap: no swap at all.
            swap_str = "0"
        # Writing "" to memory.swap.max would mean 0: only write a value.
        if swap_str:
            try:
                fsutil.write_file(path, "memory.swap.max", swap_str)
            except OSError as err:
                # A kernel without swap accounting has no such file:
                # "max" and "0" then mean what it does anyway.
                missing = err.errno == errno.ENOENT
                if not (missing and swap_str in ("max", "0")):
                    target = os.path.join(path, "memory.swap.max")
                    raise fsutil.write_error(
                        res.F_MEM_SWAP, swap_str, target, err
                    ) from err
        if lim.memory:
            self._write("memory.max", _num(lim.memory), res.F_MEM_LIMIT)
        if lim.memory_reservation:
            self._write(
                "memory.low",
                _num(lim.memory_reservation),
                res.F_MEM_RESERVATION,
            )

    def _set_io(self, lim):
        if not lim.has_blkio():
            return
        path = self._path
        bfq = None
        if lim.blkio_weight or lim.blkio_weight_device:
            bfq = _read_optional(path, "io.bfq.weight")
        if lim.blkio_weight:
            if bfq is not None:
                # BFQ takes the v1 weight range [1, 1000] as it is.
                self._write(
                    "io.bfq.weight", lim.blkio_weight, res.F_BLKIO_WEIGHT
                )
            else:
                weight = res.io_weight(lim.blkio_weight)
                self._write("io.weight", weight, res.F_BLKIO_WEIGHT)
        # io.bfq.weight takes per-device lines only on kernels that show
        # "default N" in it (5.4+); a bare number means it cannot.
        per_device = bfq is not None and not bfq.strip().isdigit()
        for wd in lim.blkio_weight_device:
            if wd.weight and per_device:
                self._write("io.bfq.weight", wd.weight_line(),
                            wd.field + ".weight")
            elif wd.weight:
                log.warning(
                    "%s: per-device weights need BFQ, ignored as runc does",
                    wd.field,
                )
        for attr, _name, _v1, key in res.THROTTLES:
            for td in lim.blkio_throttle.get(attr, ()):
                self._write("io.max", td.v2_line(key), td.field)

    def _set_cpu(self, lim):
        path = self._path
        if lim.cpu_idle is not None:
            self._write("cpu.idle", lim.cpu_idle, res.F_CPU_IDLE)
        weight = res.cpu_weight(lim.cpu_shares)
        if weight:
            self._write("cpu.weight", weight, res.F_CPU_SHARES)
        late_burst = None
        if lim.cpu_burst is not None:
            try:
                fsutil.write_file(path, "cpu.max.burst", lim.cpu_burst)
            except OSError as err:
                # A burst above the old quota is refused; retry after
                # the new quota when there is one (as runc).
                if err.errno != errno.EINVAL or not lim.cpu_quota:
                    if err.errno == errno.ENOENT:
                        self._require("cpu", res.F_CPU_BURST)
                    target = os.path.join(path, "cpu.max.burst")
                    raise fsutil.write_error(
                        res.F_CPU_BURST, lim.cpu_burst, target, err
                    ) from err
                late_burst = lim.cpu_burst
        if lim.cpu_quota or lim.cpu_period:
            quota = "max"
            if lim.cpu_quota > 0:
                quota = str(lim.cpu_quota)
            period = lim.cpu_period or _DEFAULT_PERIOD
            field = res.F_CPU_QUOTA if lim.cpu_quota else res.F_CPU_PERIOD
            self._write("cpu.max", f"{quota} {period}", field)
        if late_burst is not None:
            self._write("cpu.max.burst", late_burst, res.F_CPU_BURST)

    def _set_devices(self, lim):
        from pyrunc.cgroups import bpf, devicefilter

        insns = devicefilter.program(lim.devices)
        try:
            fd = os.open(self._path, os.O_DIRECTORY | os.O_RDONLY
                         | os.O_CLOEXEC)
        except OSError as err:
            raise CgroupError(
                f"{res.F_DEVICES}: open {self._path}: "
                f"{os.strerror(err.errno)}"
            ) from err
        try:
            bpf.attach_device_filter(fd, insns, devicefilter.LICENSE)
        except OSError as err:
            if _can_skip_bpf_error(lim.devices):
                log.debug("ignoring device filter error: %s", err)
                return
            raise CgroupError(
                f"{res.F_DEVICES}: cannot attach the device filter to "
                f"{self._path}: {err.strerror}"
            ) from err
        finally:
            os.close(fd)

    def _set_unified(self, unified):
        for key, value in unified.items():
            field = f"{res.F_UNIFIED}[{key!r}]"
            if "/" in key or key in ("", ".", ".."):
                raise ConfigError(f"{field}: must be a file name (no slashes)")
            try:
                fsutil.write_file(self._path, key, value)
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.EPERM):
                    ctrl, dot, _param = key.partition(".")
                    if not dot:
                        raise ConfigError(
                            f"{field}: must be in the form "
                            "CONTROLLER.PARAMETER"
                        ) from err
                    have = self._controllers() or []
                    if ctrl != "cgroup" and ctrl not in have:
                        raise CgroupError(
                            f"{field}: can't be set: controller {ctrl!r} "
                            "not available"
                        ) from err
                target = os.path.join(self._path, key)
                raise fsutil.write_error(field, value, target, err) \
                    from err

    # -- apply -------------------------------------------------------------

    def apply(self, pid):
        """Move pid into the container cgroup."""
        try:
            fsutil.write_pid(self._path, pid)
        except OSError as err:
            procs = os.path.join(self._path, fsutil.PROCS)
            raise fsutil.write_error(None, pid, procs, err) from err

    # -- freezer -----------------------------------------------------------

    def freeze(self):
        """Freeze the cgroup and wait until the kernel reports it."""
        self._set_freeze("1")
        self._wait_frozen()

    def thaw(self):
        """Thaw the cgroup."""
        self._set_freeze("0")

    def is_frozen(self):
        """Tell whether cgroup.freeze is set on the container cgroup."""
        try:
            value = fsutil.read_file(self._path, "cgroup.freeze")
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ENODEV):
                return False
            raise CgroupError(
                f"read {self._path}/cgroup.freeze: {os.strerror(err.errno)}"
            ) from err
        return value.strip() == "1"

    def _set_freeze(self, value):
        path = os.path.join(self._path, "cgroup.freeze")
        try:
            fsutil.write_file(self._path, "cgroup.freeze", value)
        except OSError as err:
            if value == "0" and err.errno == errno.ENOENT:
                # Nothing can be frozen without the file.
                return
            raise fsutil.write_error(None, value, path, err) from err
        actual = _read_or_raise(self._path, "cgroup.freeze").strip()
        if actual != value:
            raise CgroupError(
                f"expected {path} to be {value} but it is {actual}"
            )

    def _wait_frozen(self):
        for _ in range(_FREEZE_POLLS):
            events = _read_or_raise(self._path, "cgroup.events")
            for line in events.splitlines():
                if line.startswith("frozen "):
                    if line.split()[1] == "1":
                        return
            time.sleep(_FREEZE_PAUSE)
        raise CgroupError(f"timeout waiting for {self._path} to freeze")

    # -- misc --------------------------------------------------------------

    def _pids_dir(self):
        return self._path

    def _kill_cgroup(self):
        # cgroup.kill (Linux 5.14) kills the whole subtree atomically.
        try:
            fsutil.write_file(self._path, "cgroup.kill", "1")
        except OSError as err:
            if err.errno != errno.ENOENT:
                log.debug("cgroup.kill: %s", os.strerror(err.errno))
            return False
        return True

    def stats(self):
        """Return usage figures in the shape of runc's types.Stats."""
        # Imported here, as oom below: create, start, state and delete
        # never read usage figures.
        from pyrunc.cgroups import stats

        return stats.v2_stats(self._path)

    def oom_kills(self):
        from pyrunc.cgroups import oom

        return oom.kill_count(self._path, "memory.events")

    def oom_watcher(self):
        """Return an OomWatcher on memory.events (None without it)."""
        if not os.path.exists(os.path.join(self._path, "memory.events")):
            return None
        from pyrunc.cgroups import oom

        return oom.V2OomWatcher(self._path)


def _warn_ignored(lim):
    """Warn about the v1-only fields runc ignores on cgroup v2."""
    ignored = []
    if lim.swappiness not in (None, -1):
        ignored.append(res.F_MEM_SWAPPINESS)
    if lim.oom_kill_disable:
        ignored.append(res.F_MEM_OOM)
    if lim.use_hierarchy is False:
        # cgroup v2 is always hierarchical; true is what it does.
        ignored.append(res.F_MEM_HIERARCHY)
    if lim.cpu_rt_period:
        ignored.append(res.F_CPU_RT_PERIOD)
    if lim.cpu_rt_runtime:
        ignored.append(res.F_CPU_RT_RUNTIME)
    if lim.blkio_leaf_weight:
        ignored.append(res.F_BLKIO_LEAF_WEIGHT)
    if any(wd.leaf_weight for wd in lim.blkio_weight_device):
        ignored.append(res.F_BLKIO_WEIGHT_DEVICE + "[].leafWeight")
    if lim.net_cls_classid:
        ignored.append(res.F_NET_CLASSID)
    if lim.net_prio_ifpriomap:
        ignored.append(res.F_NET_PRIORITIES)
    for field in ignored:
        log.warning("%s: not supported on cgroup v2, ignored", field)


def _check_memory_usage(path, lim):
    """checkBeforeUpdate: refuse a limit below the current usage.

    cgroup v1 refuses such a limit by itself; v2 would accept it and
    OOM-kill the container, so runc checks first. Best effort: without
    memory.current there is nothing to compare.
    """
    try:
        usage = fsutil.read_int(path, "memory.current")
    except (OSError, ValueError):
        return
    if lim.memory_swap > 0 and lim.memory_swap <= usage:
        raise CgroupError(
            f"{res.F_MEM_SWAP}: rejecting memory+swap limit "
            f"{lim.memory_swap} <= usage {usage}"
        )
    if lim.memory > 0 and lim.memory <= usage:
        raise CgroupError(
            f"{res.F_MEM_LIMIT}: rejecting memory limit {lim.memory} <= "
            f"usage {usage}"
        )


def _can_skip_bpf_error(rules):
    """runc ignores a failed filter that would allow everything anyway,
    and any failure inside a user namespace."""
    if _in_user_namespace():
        return True
    return all(r.allow and set(r.access) >= set("rwm") for r in rules)


def _in_user_namespace():
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return False
    fields = text.split()
    return fields != ["0", "0", "4294967295"]


def _read_optional(path, name):
    try:
        return fsutil.read_file(path, name)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CgroupError(
            f"read {path}/{name}: {os.strerror(err.errno)}"
        ) from err


def _read_or_raise(path, name):
    try:
        return fsutil.read_file(path, name)
    except OSError as err:
        reason = os.strerror(err.errno)
        raise CgroupError(f"read {path}/{name}: {reason}") from err


def _enable_controllers(path, enable):
    # All at once first; if the kernel refuses (one controller busy or
    # not delegated), enable whatever it accepts one by one.
    try:
        fsutil.write_file(path, "cgroup.subtree_control", enable)
        return
    except OSError as err:
        log.debug(
            "enabling `%s` in `%s`: %s", enable, path, os.strerror(err.errno)
        )
    for ctrl in enable.split():
        try:
            fsutil.write_file(path, "cgroup.subtree_control", ctrl)
        except OSError:
            pass


def _check_type(path, domain):
    try:
        kind = fsutil.read_file(path, "cgroup.type").strip()
    except OSError:
        return
    if kind == "domain invalid":
        if domain:
            raise CgroupError(
                f"cannot enter cgroupv2 {path} with domain controllers -- "
                "it is in an invalid state"
            )
        # Without domain limits the container can live in a threaded
        # subtree; runc makes the cgroup threaded in this case.
        try:
            fsutil.write_file(path, "cgroup.type", "threaded")
        except OSError:
            pass
    elif kind in ("domain threaded", "threaded") and domain:
        raise CgroupError(
            f"cannot enter cgroupv2 {path} with domain controllers -- it "
            f"is in {kind} mode"
        )
