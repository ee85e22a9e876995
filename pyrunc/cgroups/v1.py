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
from pyrunc.cgroups.detect import HYBRID, UNIFIED, V1
from pyrunc.errors import CgroupError

log = _log.get_logger(__name__)

# Hierarchies that only track membership: failures there are not fatal.
_JOIN_ONLY = ("name=systemd", UNIFIED)


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

    def set(self, resources, linux_devices=None, skip_devices=False):
        """Write the limits of resources (may be None) to the cgroups.

        Controllers are visited in runc's order. linux_devices (spec
        linux.devices) only drops runc's default allow rule of a device
        the spec redefines, by path; skip_devices leaves the devices
        cgroup as it is (what `update` does).
        """
        # Imported here: delete, kill and state never set limits, and
        # these three modules are a third of a `delete`'s imports.
        from pyrunc.cgroups import resources as res
        from pyrunc.cgroups import v1res

        lim = res.limits(
            resources,
            v1=True,
            linux_devices=linux_devices,
            skip_devices=skip_devices,
        )
        self._set_cpuset(lim)
        if not lim.skip_devices:
            self._set_devices(lim)
        v1res.set_memory(self._dir, lim)
        v1res.set_cpu(self._dir, lim)
        v1res.set_pids(self._dir, lim)
        v1res.set_blkio(self._dir, lim)
        v1res.set_hugetlb(self._dir, lim)
        v1res.set_network(self._dir, lim)
        v1res.set_rdma(self._dir, lim)

    def _dir(self, ctrl, field):
        path = self._paths.get(ctrl)
        if path is None:
            raise CgroupError(
                f"{field}: the {ctrl} cgroup controller is not available"
            )
        return path

    def _set_cpuset(self, lim):
        from pyrunc.cgroups import resources as res

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
        from pyrunc.cgroups import resources as res
        from pyrunc.cgroups.devices import Emulator

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
        """Return usage figures in the shape of runc's types.Stats."""
        # Imported here, as oom below: create, start, state and delete
        # never read usage figures.
        from pyrunc.cgroups import stats

        return stats.v1_stats(self._paths)

    def oom_kills(self):
        path = self._paths.get("memory")
        if path is None:
            return None
        from pyrunc.cgroups import oom

        return oom.kill_count(path, "memory.oom_control")

    def oom_watcher(self):
        """Return an OomWatcher on the memory cgroup (None without)."""
        path = self._paths.get("memory")
        if path is None:
            return None
        from pyrunc.cgroups import oom

        return oom.V1OomWatcher(path)


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
    from pyrunc.cgroups.devices import Emulator

    text = _read_or_raise(path, "devices.list")
    return Emulator.from_list(text)


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
