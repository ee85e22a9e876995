"""Idmapped mounts, the parent's half: open the plan's detached trees.

For each IdmappedTree of a plan (see plan.IdmapContext) the runtime
gets a user namespace carrying the mount's maps, from a short-lived
child made for it (one per distinct pair of maps, as runc does), and
clones the mount's source into a detached, idmapped tree with
open_tree(2) and mount_setattr(2). The child inherits the trees' fds
and moves each onto its target (executor.c, PX_MNT_TREE). All of this
happens before the clone: the kernel only lets the host's root idmap a
mount of a host filesystem, and the child is in the container's user
namespace from its first instruction.
"""

import errno
import os
# _signal, not signal: see launch.py.
import _signal as signal

from pyrunc import log as _log
from pyrunc.errors import ConfigError

log = _log.get_logger(__name__)


def open_trees(plan, L):
    """Return the fds of the plan's trees, in the order of plan.trees.

    On failure the fds opened so far are closed and ConfigError names
    the field at fault.
    """
    fds = []
    namespaces = {}
    try:
        for tree in plan.trees:
            userns_fd = userns_for(tree, namespaces, L)
            fds.append(open_tree(tree, userns_fd, L))
    except BaseException:
        close_all(fds)
        raise
    finally:
        close_all(namespaces.values())
    return fds


def with_tree_fds(steps, fds, L):
    """The steps with each idmapped mount's request index swapped for
    the fd of its tree (argument 9 of OP_MOUNT)."""
    out = []
    for step in steps:
        if step[0] == L.OP_MOUNT and len(step) > 10 and \
                step[6] & L.MNT_TREE:
            step = step[:10] + (fds[step[10]],)
        out.append(step)
    return out


def userns_for(tree, namespaces, L):
    """An fd of a user namespace with the tree's maps (cached by maps)."""
    if tree.userns_path:
        key = ("path", tree.userns_path)
    else:
        key = ("maps", tree.uid_map, tree.gid_map)
    fd = namespaces.get(key)
    if fd is not None:
        return fd
    if tree.userns_path:
        try:
            fd = os.open(tree.userns_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise ConfigError(
                f"{tree.where}.options: open user namespace "
                f"{tree.userns_path}: {err.strerror}") from None
    else:
        fd = new_userns(tree, L)
    namespaces[key] = fd
    return fd


def new_userns(tree, L):
    """Make a user namespace with tree's maps; return an fd of it."""
    pid = L.userns_child()
    try:
        write_map(pid, "uid_map", tree.uid_map, f"{tree.field}.uidMappings")
        # setgroups stays denied in it, as runc leaves it; nothing ever
        # runs there.
        write_map(pid, "setgroups", "deny", f"{tree.field}.gidMappings")
        write_map(pid, "gid_map", tree.gid_map, f"{tree.field}.gidMappings")
        log.debug("user namespace for the idmapped mount %s: uid_map `%s` "
                  "gid_map `%s`", tree.where, tree.uid_map.strip(),
                  tree.gid_map.strip())
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def write_map(pid, name, text, field):
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise ConfigError(f"{field}: write /proc/{pid}/{name}: "
                          f"{err.strerror}") from None


def open_tree(tree, userns_fd, L):
    """The detached, idmapped copy of tree.source; returns its fd."""
    try:
        fd = L.idmapped_tree(os.fsencode(tree.source), userns_fd,
                             tree.recursive_tree, tree.recursive_idmap,
                             tree.propagation)
    except OSError as err:
        syscall = err.strerror
        reason = os.strerror(err.errno)
        if syscall == "open_tree":
            raise ConfigError(f"{tree.where}.source: open_tree "
                              f"{tree.source}: {reason}") from None
        hint = ""
        if err.errno == errno.EINVAL:
            hint = " (does its filesystem support idmapped mounts?)"
        raise ConfigError(f"{tree.where}: cannot idmap the mount of "
                          f"{tree.source}: {syscall}: {reason}{hint}") \
            from None
    log.debug("idmapped tree of %s for %s: fd %d", tree.source, tree.where,
              fd)
    return fd


def close_all(fds):
    for fd in list(fds):
        try:
            os.close(fd)
        except OSError:
            pass
