"""cgroup v1 driver (also used on hybrid hosts), after runc's cgroupfs.

One directory per mounted controller. On a hybrid host the container also
joins the cgroup2 hierarchy (key ""), best effort and without limits, as
runc 1.1.5 does; name=systemd is joined the same way.
"""

import errno
from pyrunc import log as _log
import os
import time

from pyrunc.cgroups import base, fsutil
from pyrunc.cgroups import resources as res
from pyrunc.cgroups.devices import Emulator
from pyrunc.cgroups.detect import HYBRID, UNIFIED, V1
from pyrunc.errors import CgroupError, ConfigError

log = _log.get_logger(__name__)

# Hierarchies that only track membership: failures there are not fatal.
_JOIN_ONLY = ("name=systemd", UNIFIED)

_MEM_LIMIT = "memory.limit_in_bytes"
_MEMSW_LIMIT = "memory.memsw.limit_in_bytes"


class V1Manager(base.Manager):
    """Manager for a v1 host, or a hybrid one when mode is "hybrid"."""

    # Reread devices.list after writing and compare, as runc does. Unit
    # tests turn this off: a fake devices.list does not change by itself.
    verify_devices = True

    def __init__(self, mode, root, paths, mounts, created=()):
        if mode not in (V1, HYBRID):
            raise ValueError(f"not a v1 mode: {mode}")
        super().__init__(root, paths, mounts, created)
        self.mode = mode

    # -- create ------------------------------------------------------------

    def create(self, resources=None):
        """Make the cgroup directory of every controller (idempotent)."""
        for ctrl, path in self._paths.items():
            mnt = self._mounts[ctrl]
            if ctrl == "cpuset":
                self._create_cpuset(mnt, path)
                continue
            try:
                fsutil.mkdir_chain(mnt, path, self._created)
            except CgroupError as err:
                if ctrl not in _JOIN_ONLY:
                    raise
                log.debug("not joining %r: %s", ctrl or "cgroup2", err)

    def _create_cpuset(self, mnt, path):
        # A new cpuset cgroup starts with empty cpus and mems, and no task
        # can join it until both are filled: copy them down from the
        # parent at every level, as runc's cpusetEnsureParent does.
        rel = os.path.relpath(path, mnt)
        current = mnt
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            parent = current
            current = os.path.join(current, part)
            fsutil.mkdir_chain(parent, current, self._created)
            _cpuset_copy(current, parent)

    # -- set ---------------------------------------------------------------

    def set(self, resources, linux_devices=None):
        """Write the limits of resources (may be None) to the cgroups.

        linux_devices (spec linux.devices) only drops runc's default
        allow rule of a device the spec redefines, by path.
        """
        lim = res.limits(resources, v1=True, linux_devices=linux_devices)
        self._set_cpuset(lim)
        self._set_devices(lim)
        self._set_memory(lim)
        self._set_cpu(lim)
        self._set_pids(lim)

    def _dir(self, ctrl, field):
        path = self._paths.get(ctrl)
        if path is None:
            raise CgroupError(
                f"{field}: the {ctrl} cgroup controller is not available"
            )
        return path

    def _set_cpuset(self, lim):
        if lim.cpuset_cpus:
            path = self._dir("cpuset", res.F_CPU_CPUS)
            fsutil.set_value(
                path, "cpuset.cpus", lim.cpuset_cpus, res.F_CPU_CPUS
            )
        if lim.cpuset_mems:
            path = self._dir("cpuset", res.F_CPU_MEMS)
            fsutil.set_value(
                path, "cpuset.mems", lim.cpuset_mems, res.F_CPU_MEMS
            )

    def _set_devices(self, lim):
        path = self._dir("devices", res.F_DEVICES)
        current = _devices_state(path)
        target = Emulator.from_rules(lim.devices)
        for rule in current.transition(target):
            name = "devices.allow" if rule.allow else "devices.deny"
            fsutil.set_value(path, name, rule.line(), res.F_DEVICES)
        if not self.verify_devices:
            return
        after = _devices_state(path)
        # An allow-all cgroup cannot list its deny rules, so only its mode
        # can be checked.
        if not target.default_allow and after != target:
            raise CgroupError(
                f"{res.F_DEVICES}: resulting devices cgroup doesn't "
                "precisely match target"
            )
        if after.default_allow != target.default_allow:
            raise CgroupError(
                f"{res.F_DEVICES}: resulting devices cgroup doesn't "
                "match target mode"
            )

    def _set_memory(self, lim):
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
        ]
        fields = [field for value, field in wanted if value]
        if not fields:
            return
        path = self._dir("memory", fields[0])
        if swappiness is not None and not 0 <= swappiness <= 100:
            raise ConfigError(
                f"{res.F_MEM_SWAPPINESS}: invalid memory swappiness value: "
                f"{swappiness} (valid range is 0-100)"
            )
        memsw = os.path.join(path, _MEMSW_LIMIT)
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

    def _set_cpu(self, lim):
        wanted = [
            (lim.cpu_shares, res.F_CPU_SHARES),
            (lim.cpu_period, res.F_CPU_PERIOD),
            (lim.cpu_quota, res.F_CPU_QUOTA),
            (lim.cpu_rt_period, res.F_CPU_RT_PERIOD),
            (lim.cpu_rt_runtime, res.F_CPU_RT_RUNTIME),
        ]
        fields = [field for value, field in wanted if value]
        if not fields:
            return
        path = self._dir("cpu", fields[0])
        if lim.cpu_shares:
            _set_shares(path, lim.cpu_shares)
        _set_cfs(path, lim.cpu_quota, lim.cpu_period)
        if lim.cpu_rt_period:
            fsutil.set_value(
                path,
                "cpu.rt_period_us",
                lim.cpu_rt_period,
                res.F_CPU_RT_PERIOD,
            )
        if lim.cpu_rt_runtime:
            fsutil.set_value(
                path,
                "cpu.rt_runtime_us",
                lim.cpu_rt_runtime,
                res.F_CPU_RT_RUNTIME,
            )

    def _set_pids(self, lim):
        if lim.pids_limit == 0:
            return
        path = self._dir("pids", res.F_PIDS_LIMIT)
        # Any negative limit means unlimited on v1 (runc fs/pids.go).
        value = "max" if lim.pids_limit < 0 else lim.pids_limit
        fsutil.set_value(path, "pids.max", value, res.F_PIDS_LIMIT)

    # -- apply -------------------------------------------------------------

    def apply(self, pid):
        """Move pid into the container cgroup of every hierarchy."""
        for ctrl, path in self._paths.items():
            try:
                fsutil.write_pid(path, pid)
                continue
            except OSError as err:
                if ctrl in _JOIN_ONLY:
                    log.debug("not joining %r: %s", ctrl or "cgroup2", err)
                    continue
                if ctrl != "cpuset" or err.errno != errno.ENOSPC:
                    raise _join_error(pid, path, err) from err
            # ENOSPC: the cpuset is empty (made by someone else, or the
            # parent changed since); fill it from the parent and retry.
            _cpuset_copy(path, os.path.dirname(path))
            try:
                fsutil.write_pid(path, pid)
            except OSError as err:
                raise _join_error(pid, path, err) from err

    # -- freezer -----------------------------------------------------------

    def freeze(self):
        """Freeze every task of the container (v1 freezer controller)."""
        path = self._freezer_dir()
        try:
            _freeze(path)
        except OSError as err:
            # A cgroup left FREEZING or FROZEN by a failure is dangerous.
            _write_quiet(path, "freezer.state", "THAWED")
            state = os.path.join(path, "freezer.state")
            raise fsutil.write_error(None, "FROZEN", state, err) from err
        except CgroupError:
            _write_quiet(path, "freezer.state", "THAWED")
            raise

    def thaw(self):
        """Let the tasks of a frozen container run again."""
        path = self._freezer_dir()
        fsutil.set_value(path, "freezer.state", "THAWED", None)

    def is_frozen(self):
        """Tell whether the container itself (not an ancestor) is frozen."""
        path = self._paths.get("freezer")
        if path is None:
            return False
        # FREEZING is a passing state; poll it for up to about a second,
        # then report a cgroup stuck half-way as frozen.
        for _ in range(1000):
            try:
                state = fsutil.read_file(path, "freezer.state").strip()
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.ENODEV):
                    return False
                raise CgroupError(
                    f"read {path}/freezer.state: {os.strerror(err.errno)}"
                ) from err
            if state == "FREEZING":
                time.sleep(0.001)
                continue
            if state != "FROZEN":
                return False
            try:
                own = fsutil.read_file(path, "freezer.self_freezing")
            except OSError:
                # Old kernels lack self_freezing: frozen is frozen.
                return True
            return own.strip() == "1"
        return True

    def _freezer_dir(self):
        path = self._paths.get("freezer")
        if path is None:
            raise CgroupError(
                "cannot toggle freezer: cgroups not configured for container"
            )
        return path

    # -- misc --------------------------------------------------------------

    def _pids_dir(self):
        # runc reads pids from the devices cgroup, which always exists.
        for ctrl in ("devices", "pids", "memory", "freezer"):
            if ctrl in self._paths:
                return self._paths[ctrl]
        return None

    def stats(self):
        """Return memory, pids and cpu usage figures that can be read."""
        out = {}
        mem = self._paths.get("memory")
        if mem is not None:
            out["memory"] = {
                "usage": base.read_stat(mem, "memory.usage_in_bytes"),
                "max_usage": base.read_stat(mem, "memory.max_usage_in_bytes"),
                "limit": base.read_stat(mem, _MEM_LIMIT),
            }
        pids = self._paths.get("pids")
        if pids is not None:
            out["pids"] = {
                "current": base.read_stat(pids, "pids.current"),
                "limit": base.read_stat(pids, "pids.max"),
            }
        acct = self._paths.get("cpuacct")
        if acct is not None:
            out["cpu"] = {"usage": base.read_stat(acct, "cpuacct.usage")}
        return out


def _join_error(pid, path, err):
    procs = os.path.join(path, fsutil.PROCS)
    return fsutil.write_error(None, pid, procs, err)


def _write_quiet(path, name, value):
    try:
        fsutil.write_file(path, name, value)
    except OSError:
        pass


def _read_or_raise(path, name):
    try:
        return fsutil.read_file(path, name)
    except OSError as err:
        reason = os.strerror(err.errno)
        raise CgroupError(f"read {path}/{name}: {reason}") from err


def _cpuset_copy(current, parent):
    """Fill empty cpuset.cpus/mems of current from its parent."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if _read_or_raise(current, name).strip():
            continue
        value = _read_or_raise(parent, name).strip()
        fsutil.set_value(current, name, value, None)


def _devices_state(path):
    text = _read_or_raise(path, "devices.list")
    return Emulator.from_list(text)


def _set_limit(path, value):
    """Write memory.limit_in_bytes; EBUSY reports the usage, as runc."""
    try:
        fsutil.write_file(path, _MEM_LIMIT, value)
    except OSError as err:
        error = fsutil.write_error(
            res.F_MEM_LIMIT, value, os.path.join(path, _MEM_LIMIT), err
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
            current = fsutil.read_int(path, _MEM_LIMIT)
        except (OSError, ValueError) as err:
            raise CgroupError(
                f"{res.F_MEM_LIMIT}: read {path}/{_MEM_LIMIT}: {err}"
            ) from err
        if swap == -1 or (current != -1 and current < swap):
            fsutil.set_value(path, _MEMSW_LIMIT, swap, res.F_MEM_SWAP)
            _set_limit(path, limit)
            return
    if limit:
        _set_limit(path, limit)
    if swap:
        fsutil.set_value(path, _MEMSW_LIMIT, swap, res.F_MEM_SWAP)


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


def _set_cfs(path, quota, period):
    # The kernel refuses a period whose quota (already set) would exceed
    # limits; in that case write the quota first and the period after.
    late_period = 0
    if period:
        try:
            fsutil.write_file(path, "cpu.cfs_period_us", period)
        except OSError as err:
            if err.errno != errno.EINVAL or not quota:
                name = os.path.join(path, "cpu.cfs_period_us")
                raise fsutil.write_error(
                    res.F_CPU_PERIOD, period, name, err
                ) from err
            late_period = period
    if quota:
        fsutil.set_value(path, "cpu.cfs_quota_us", quota, res.F_CPU_QUOTA)
        if late_period:
            fsutil.set_value(
                path, "cpu.cfs_period_us", late_period, res.F_CPU_PERIOD
            )


def _freeze(path):
    """Write FROZEN until the state reads FROZEN (runc's retry loop)."""
    # v1 freezing races with tasks forking or joining; runc found that
    # rewriting FROZEN, with an occasional thaw and sleep, settles it.
    for i in range(1000):
        if i % 50 == 49:
            _write_quiet(path, "freezer.state", "THAWED")
            time.sleep(0.01)
        fsutil.write_file(path, "freezer.state", "FROZEN")
        if i % 25 == 24:
            time.sleep(0.00001)
        state = fsutil.read_file(path, "freezer.state").strip()
        if state == "FREEZING":
            continue
        if state == "FROZEN":
            if i > 1:
                log.debug("frozen after %d retries", i)
            return
        raise CgroupError(f"unexpected state {state} while freezing")
    raise CgroupError("unable to freeze")
