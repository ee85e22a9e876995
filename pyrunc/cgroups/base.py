"""The Manager protocol shared by the v1 (and hybrid) and v2 drivers."""

from pyrunc import log as _log
import os

from pyrunc.cgroups import fsutil
from pyrunc.errors import CgroupError

log = _log.get_logger(__name__)

# signal.SIGKILL without importing the signal module (and enum) on the
# hot path of every command.
SIGKILL = 9

STATE_VERSION = 1


class Manager:
    """A container's cgroup, on one or several hierarchies.

    Lifecycle: create() makes the directories, set() writes the limits,
    apply() moves the container's first process in, destroy() removes
    what create() made. A manager rebuilt from to_dict() (in another
    command such as delete) acts on the same directories without looking
    at the host again.
    """

    mode = None

    def __init__(self, root, paths, mounts, created=()):
        self.root = root
        # controller -> cgroup dir; "" is the cgroup2 hierarchy
        self._paths = dict(paths)
        # controller -> directory where that hierarchy is mounted
        self._mounts = dict(mounts)
        # every directory create() made, so destroy() removes only those
        self._created = list(created)

    def __repr__(self):
        return f"<{type(self).__name__} {self.mode} {self._paths}>"

    # -- state -------------------------------------------------------------

    def paths(self):
        """Return controller -> absolute cgroup dir ("" for cgroup2)."""
        return dict(self._paths)

    def to_dict(self):
        """Return a JSON-serialisable record for state.json."""
        return {
            "version": STATE_VERSION,
            "mode": self.mode,
            "root": self.root,
            "paths": dict(self._paths),
            "mounts": dict(self._mounts),
            "created": list(self._created),
        }

    def planned_dict(self):
        """to_dict() as it will read once create() has run.

        Every directory still missing counts as made. create writes this
        before making any, so that `delete --force` can undo a runtime
        killed halfway through create(); removing a directory that was
        never made, or a shared parent still in use, is a no-op.
        """
        data = self.to_dict()
        created = list(self._created)
        for ctrl, path in self._paths.items():
            mount = self._mounts.get(ctrl)
            if mount is None:
                continue
            current = mount
            for part in os.path.relpath(path, mount).split("/"):
                if part in ("", "."):
                    continue
                current = os.path.join(current, part)
                if current not in created and not os.path.isdir(current):
                    created.append(current)
        data["created"] = created
        return data

    # -- lifecycle ---------------------------------------------------------

    def destroy(self):
        """Remove the directories create() made, deepest first.

        Nothing is killed: a cgroup that still holds a task after a short
        grace period raises CgroupError. Directories that existed before
        create() (the runtime's own cgroups, shared parents) are kept.
        """
        leaves = list(self._paths.values())
        fsutil.remove_dirs(leaves, self._created)
        self._created = [p for p in self._created if os.path.isdir(p)]

    def pids(self):
        """Return every pid in the container cgroup and its children."""
        path = self._pids_dir()
        if path is None:
            return []
        try:
            return fsutil.walk_pids(path)
        except OSError as err:
            reason = os.strerror(err.errno)
            raise CgroupError(f"read pids of {path}: {reason}") from err

    def exists(self):
        """Tell whether the container cgroup directory exists."""
        path = self._pids_dir()
        return path is not None and os.path.isdir(path)

    def kill_all(self, sig):
        """Send sig to every process of the cgroup.

        The cgroup is frozen while the signals go out so that a forking
        process cannot leave a child behind (as runc does), and thawed
        again afterwards; waiting for the processes is the caller's job.
        """
        if not self.exists():
            return
        if sig == SIGKILL and self._kill_cgroup():
            return
        frozen = self._try_freezer(self.freeze, "freeze")
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self._try_freezer(self.thaw, "thaw")

    def _try_freezer(self, action, verb):
        try:
            action()
        except CgroupError as err:
            log.warning(
                "cannot %s the cgroup before signalling: %s", verb, err
            )
            return False
        return True

    def stats(self):
        """Return usage figures in the shape of runc's types.Stats.

        The dict json.dumps into what `runc events --stats` prints as
        the event's data (cpu, cpuset, memory, pids, blkio, hugetlb,
        intel_rdt, network_interfaces).
        """
        raise NotImplementedError

    def oom_kills(self):
        """How many tasks the kernel has OOM-killed in the cgroup so far.

        None without a memory cgroup or a kernel that counts them.
        """
        raise NotImplementedError

    def oom_watcher(self):
        """Return a watcher of OOM kills, or None without a memory cgroup.

        The watcher has fileno() and poll_events() for select.poll,
        read() (how many OOM events since the last read; never blocks)
        and close().
        """
        raise NotImplementedError

    # -- driver hooks ------------------------------------------------------

    def _pids_dir(self):
        raise NotImplementedError

    def _kill_cgroup(self):
        """Kill everything at once if the kernel can; True when done."""
        return False


def read_stat(dirpath, name, default=None):
    """Return an int cgroup file, or default when it cannot be read."""
    try:
        return fsutil.read_int(dirpath, name)
    except (OSError, ValueError):
        return default
