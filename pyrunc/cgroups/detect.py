"""Find the cgroup layout of the host and where the container goes.

Everything is derived from a root directory (normally /sys/fs/cgroup) and
the text of /proc/self/cgroup and /proc/self/mountinfo, so the rules can be
exercised on a fake tree under a temporary directory.
"""

import os
import posixpath

from pyrunc.errors import CgroupError, ConfigError

DEFAULT_ROOT = "/sys/fs/cgroup"

V1 = "v1"
V2 = "v2"
HYBRID = "hybrid"
MODES = (V1, V2, HYBRID)

# The v1 controllers runc's cgroupfs driver knows, in the order it applies
# them (libcontainer/cgroups/fs/fs.go).
V1_CONTROLLERS = (
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
)

# Key of the cgroup2 hierarchy in /proc/self/cgroup and in paths().
UNIFIED = ""

_mode_cache = {}


def detect_mode(root=DEFAULT_ROOT):
    """Return "v2", "hybrid" or "v1" for the hierarchy mounted at root.

    Only cgroup2 has a cgroup.controllers file at its top, so its presence
    at root (pure v2) or at root/unified (v1 plus cgroup2, the layout
    runc calls hybrid) tells the modes apart without parsing mountinfo.
    The answer is cached per root for the life of the process.
    """
    mode = _mode_cache.get(root)
    if mode is not None:
        return mode
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        mode = V2
    elif os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        mode = HYBRID
    else:
        mode = V1
    _mode_cache[root] = mode
    return mode


def parse_proc_cgroup(text):
    """Map each controller of /proc/<pid>/cgroup text to its cgroup path.

    The cgroup2 line "0::/path" maps under the key "" (UNIFIED); a line
    for co-mounted controllers ("2:cpu,cpuacct:/x") gives one key each.
    """
    result = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise CgroupError(f"invalid cgroup entry: {line!r}")
        for name in parts[1].split(","):
            result[name] = parts[2]
    return result


def read_proc_cgroup(path):
    """Read and parse a /proc/<pid>/cgroup file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        reason = os.strerror(err.errno)
        raise CgroupError(f"open {path}: {reason}") from err
    return parse_proc_cgroup(text)


def _unescape(field):
    """Undo the octal escapes (\\040 for a space) of mountinfo fields."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
            continue
        out.append(field[i])
        i += 1
    return "".join(out)


def parse_mount_roots(text):
    """Map each cgroup mount point of mountinfo text to its mount root.

    The root is "/" unless a subtree was bind-mounted, as in a nested
    container without a cgroup namespace.
    """
    roots = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fstype = right.split(" ", 1)[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        fields = left.split(" ")
        if len(fields) < 5:
            continue
        roots[_unescape(fields[4])] = _unescape(fields[3])
    return roots


def read_mount_roots(path):
    """Read mountinfo at path; a missing file means every root is "/"."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    return parse_mount_roots(text)


def clean_path(path):
    """Normalise a cgroupsPath the way runc's utils.CleanPath does.

    Relative paths are cleaned as if rooted at "/" so that ".." can never
    climb above the directory they are joined to.
    """
    if not path:
        return ""
    # Go's filepath.Clean folds leading "//" that posixpath keeps.
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    if path.startswith("/"):
        return cleaned
    return cleaned[1:]


def inner_path(cgroups_path, cid):
    """Return the cleaned inner path for linux.cgroupsPath and the id."""
    if cgroups_path:
        parts = cgroups_path.split(":")
        if not cgroups_path.startswith("/") and len(parts) == 3:
            raise ConfigError(
                "linux.cgroupsPath: systemd cgroup paths need "
                "--systemd-cgroup, which is not supported"
            )
        inner = clean_path(cgroups_path)
    else:
        inner = clean_path(cid)
    if inner in ("", "/"):
        # runc would put the container in its own (or the root) cgroup
        # and later try to remove it; refuse instead.
        raise ConfigError(
            f"linux.cgroupsPath: {cgroups_path!r} does not name a cgroup "
            "below the hierarchy"
        )
    return inner


def _listdir(root):
    try:
        return os.listdir(root)
    except OSError:
        return []


def v1_mount(root, controller, _entries=None):
    """Return the directory where a v1 controller is mounted, or None.

    Looks for root/<name> first (resolving a "cpu -> cpu,cpuacct" link),
    then for a co-mounted directory whose comma-split name includes it.
    A directory counts only if it holds cgroup.procs, so an empty
    placeholder directory is not taken for a mount.
    """
    name = controller
    if name.startswith("name="):
        name = name[len("name=") :]
    candidate = os.path.join(root, name)
    if os.path.islink(candidate):
        target = os.readlink(candidate)
        candidate = os.path.join(root, os.path.basename(target))
    if os.path.exists(os.path.join(candidate, "cgroup.procs")):
        return candidate
    for entry in _entries if _entries is not None else _listdir(root):
        if name in entry.split(","):
            candidate = os.path.join(root, entry)
            if os.path.exists(os.path.join(candidate, "cgroup.procs")):
                return candidate
    return None


def _own_path(own, controller):
    """Return the runtime's own cgroup for controller, or None."""
    path = own.get(controller)
    if path is None and not controller.startswith("name="):
        path = own.get("name=" + controller)
    return path


def v1_paths(root, inner, own, mount_roots, hybrid):
    """Compute controller -> (mount dir, cgroup dir) for a v1 host.

    own maps controllers to the runtime's own cgroups (/proc/self/cgroup)
    and mount_roots maps mount points to their roots (mountinfo); both
    matter only for a relative inner path. Controllers that are not
    mounted are left out, except devices: without it the container would
    get every device, so that is an error (as in runc).
    """
    result = {}
    entries = _listdir(root)
    for ctrl in V1_CONTROLLERS:
        mnt = v1_mount(root, ctrl, entries)
        if mnt is None:
            continue
        if inner.startswith("/"):
            result[ctrl] = (mnt, mnt + inner)
            continue
        mine = _own_path(own, ctrl)
        if mine is None:
            continue
        mroot = mount_roots.get(mnt, "/")
        rel = posixpath.relpath(mine, mroot)
        if rel.startswith(".."):
            raise CgroupError(
                f"own {ctrl} cgroup {mine} is outside its mount root {mroot}"
            )
        parent = posixpath.normpath(posixpath.join(mnt, rel))
        result[ctrl] = (mnt, posixpath.join(parent, inner))
    if "devices" not in result:
        raise CgroupError("mountpoint for devices not found")
    if hybrid:
        # runc joins the cgroup2 hierarchy too, always at <unified>/<path>
        # even for a relative path: it ignores its own cgroup2 cgroup there
        # (checked against runc 1.1.5 started from 0::/sub: the container
        # landed in 0::/<id>).
        mnt = os.path.join(root, "unified")
        if inner.startswith("/") or UNIFIED in own:
            result[UNIFIED] = (mnt, posixpath.join(mnt, inner.lstrip("/")))
    return result


def v2_path(root, inner, own):
    """Compute the cgroup dir on a pure cgroup2 host.

    A relative path goes next to the runtime's own cgroup, i.e. below its
    parent: the own cgroup holds processes, and cgroup2 forbids enabling
    controllers for children of a cgroup with processes (as runc does).
    """
    if inner.startswith("/"):
        return root + inner
    mine = own.get(UNIFIED)
    if mine is None:
        raise CgroupError("cgroup2 path not found in /proc/self/cgroup")
    parent = posixpath.dirname(mine)
    return posixpath.normpath(posixpath.join(root + parent, inner))
