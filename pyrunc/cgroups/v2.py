"""cgroup v2 (unified) driver, after runc's fs2 package."""

import errno
from pyrunc import log as _log
import os
import time

from pyrunc.cgroups import base, fsutil
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

    def set(self, resources, linux_devices=None):
        """Write the limits of resources (may be None) to the cgroup."""
        lim = res.limits(resources, v1=False, linux_devices=linux_devices)
        path = self._path
        if lim.pids_limit != 0:
            fsutil.set_value(
                path, "pids.max", _num(lim.pids_limit), res.F_PIDS_LIMIT
            )
        self._set_memory(lim)
        self._set_cpu(lim)
        # TODO: device rules need an eBPF program on cgroup2; until it
        # exists a v2 container gets no device restriction.
        log.debug("skipping %d device rules on cgroup v2", len(lim.devices))
        if lim.cpuset_cpus:
            fsutil.set_value(
                path, "cpuset.cpus", lim.cpuset_cpus, res.F_CPU_CPUS
            )
        if lim.cpuset_mems:
            fsutil.set_value(
                path, "cpuset.mems", lim.cpuset_mems, res.F_CPU_MEMS
            )
        self._set_unified(lim.unified)

    def _set_memory(self, lim):
        if lim.swappiness not in (None, -1) or lim.oom_kill_disable:
            # cgroup2 has neither knob; runc 1.1.5 ignores them as well.
            log.debug("ignoring memory swappiness/disableOOMKiller on v2")
        if not (lim.memory or lim.memory_reservation or lim.memory_swap):
            return
        path = self._path
        swap = res.swap_v2(lim.memory_swap, lim.memory)
        swap_str = _num(swap)
        if swap == 0 and lim.memory_swap > 0:
            # memory == memory+swap: no swap at all.
            swap_str = "0"
        # Writing "" to memory.swap.max would mean 0: only write a value.
        if swap_str:
            fsutil.set_value(path, "memory.swap.max", swap_str, res.F_MEM_SWAP)
        if lim.memory:
            fsutil.set_value(
                path, "memory.max", _num(lim.memory), res.F_MEM_LIMIT
            )
        if lim.memory_reservation:
            fsutil.set_value(
                path,
                "memory.low",
                _num(lim.memory_reservation),
                res.F_MEM_RESERVATION,
            )

    def _set_cpu(self, lim):
        if lim.cpu_rt_period or lim.cpu_rt_runtime:
            log.debug("ignoring realtime cpu settings on v2, as runc does")
        path = self._path
        weight = res.cpu_weight(lim.cpu_shares)
        if weight:
            fsutil.set_value(path, "cpu.weight", weight, res.F_CPU_SHARES)
        if lim.cpu_quota or lim.cpu_period:
            quota = "max"
            if lim.cpu_quota > 0:
                quota = str(lim.cpu_quota)
            period = lim.cpu_period or _DEFAULT_PERIOD
            field = res.F_CPU_QUOTA if lim.cpu_quota else res.F_CPU_PERIOD
            fsutil.set_value(path, "cpu.max", f"{quota} {period}", field)

    def _set_unified(self, unified):
        for key, value in unified.items():
            field = f"{res.F_UNIFIED}[{key!r}]"
            if "/" in key or key in ("", ".", ".."):
                raise ConfigError(f"{field}: must be a file name (no slashes)")
            fsutil.set_value(self._path, key, value, field)

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
        """Return memory, pids and cpu usage figures that can be read."""
        path = self._path
        out = {
            "memory": {
                "usage": base.read_stat(path, "memory.current"),
                "limit": base.read_stat(path, "memory.max"),
            },
            "pids": {
                "current": base.read_stat(path, "pids.current"),
                "limit": base.read_stat(path, "pids.max"),
            },
        }
        try:
            text = fsutil.read_file(path, "cpu.stat")
        except OSError:
            return out
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                # In nanoseconds, like v1 cpuacct.usage.
                out["cpu"] = {"usage": int(value) * 1000}
        return out


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
