"""Cgroups for a runtime without root, as runc's rootless cgroupfs driver.

An unprivileged user may create cgroups only where the hierarchy was
delegated to them. Each hierarchy is tried on its own: one the user may
not create or join (EACCES, EPERM, EROFS) is dropped, and the container
stays in the runtime's own cgroup there, as with runc. This holds only
when linux.cgroupsPath is unset: an explicit path is a request, and its
errors stand. Limits that need a dropped hierarchy fail with a clear
error; the devices cgroup is left alone, as runc leaves it.
"""

import errno
import os

from pyrunc import log as _log
from pyrunc.errors import CgroupError

log = _log.get_logger(__name__)

IGNORABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def is_rootless():
    """runc's --rootless=auto: not root, as far as the kernel goes."""
    return os.geteuid() != 0


def ignorable(err):
    """Whether err (CgroupError or OSError) is a permission problem."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in IGNORABLE:
            return True
        err = err.__cause__
    return False


class RootlessManager:
    """A Manager whose hierarchies may each be dropped on EACCES."""

    def __init__(self, inner, explicit):
        from pyrunc.cgroups import manager_from_dict

        self.explicit = explicit
        self._state = inner.to_dict()
        self._subs = {}
        for ctrl, path in self._state["paths"].items():
            self._subs[ctrl] = manager_from_dict(self._only(ctrl))
        self._dropped = {}

    def _only(self, ctrls):
        if isinstance(ctrls, str):
            ctrls = [ctrls]
        state = dict(self._state)
        state["paths"] = {c: self._state["paths"][c] for c in ctrls}
        state["mounts"] = {c: self._state["mounts"][c] for c in ctrls
                           if c in self._state.get("mounts", {})}
        state["created"] = []
        return state

    def _drop(self, ctrl, err):
        if self.explicit or not ignorable(err):
            raise err
        log.debug("rootless: not using the %r cgroup: %s", ctrl or "cgroup2",
                  err)
        self._dropped[ctrl] = self._subs.pop(ctrl)

    def _kept(self):
        """One Manager over the hierarchies still in use, or None."""
        from pyrunc.cgroups import manager_from_dict
        from pyrunc.cgroups.detect import V2

        if not self._subs and self._state["mode"] == V2:
            return None
        state = self._only(list(self._subs))
        created = []
        for sub in self._subs.values():
            created.extend(sub.to_dict().get("created", []))
        state["created"] = created
        return manager_from_dict(state)

    def create(self, resources=None):
        for ctrl, sub in list(self._subs.items()):
            try:
                sub.create()
            except (CgroupError, OSError) as err:
                self._drop(ctrl, err)
                continue
            # Membership-only hierarchies (name=systemd, cgroup2 on a
            # hybrid host) swallow their errors: see if the dir is there.
            if not os.path.isdir(sub.paths()[ctrl]):
                self._drop(ctrl, PermissionError(
                    errno.EACCES, "not created", sub.paths()[ctrl]))

    def set(self, resources, linux_devices=None, skip_devices=False):
        # A rootless runtime cannot program the devices cgroup; runc
        # skips it. Limits on a dropped hierarchy fail in the driver,
        # which says that the controller is not available.
        kept = self._kept()
        if kept is None:
            if resources is not None:
                raise CgroupError("cannot set limits: a rootless container "
                                  "could not create or join a cgroup")
            return
        kept.set(resources, linux_devices=linux_devices, skip_devices=True)

    def apply(self, pid):
        for ctrl, sub in list(self._subs.items()):
            try:
                sub.apply(pid)
            except (CgroupError, OSError) as err:
                self._drop(ctrl, err)
                self._dropped[ctrl].destroy()

    def paths(self):
        """Where the container's cgroups are, dropped ones included.

        For a dropped hierarchy that is the runtime's own cgroup (the
        parent of the one it could not create), which the container's
        /sys/fs/cgroup then shows, as with runc.
        """
        out = {ctrl: sub.paths()[ctrl] for ctrl, sub in self._subs.items()}
        for ctrl, sub in self._dropped.items():
            out[ctrl] = os.path.dirname(sub.paths()[ctrl])
        return out

    def to_dict(self):
        """Only the hierarchies the container has its own cgroup in."""
        if not self._subs:
            return {}
        return self._kept().to_dict()

    def planned_dict(self):
        if not self._subs:
            return {}
        return self._kept().planned_dict()

    def destroy(self):
        for sub in list(self._subs.values()) + list(self._dropped.values()):
            sub.destroy()

    def __getattr__(self, name):
        # pids, exists, kill_all, freeze...: on what we own.
        if name.startswith("_"):
            raise AttributeError(name)
        kept = self._kept()
        if kept is None:
            raise CgroupError("a rootless container without a cgroup of "
                              "its own has no " + name)
        return getattr(kept, name)
