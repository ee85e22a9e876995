"""Small file helpers for cgroupfs: read, write, mkdir and rmdir.

Writes never create files (no O_CREAT): a missing file means a missing
controller, and must fail rather than leave a stray regular file behind.
Every helper raises OSError with the path set; the drivers turn it into a
CgroupError that names the spec field.
"""

import errno
from pyrunc import log as _log
import os
import time

from pyrunc.errors import CgroupError

log = _log.get_logger(__name__)

PROCS = "cgroup.procs"

# O_TRUNC is accepted and ignored by cgroupfs; on a fake tree made of
# regular files it makes the last write win, like the kernel does.
_WRITE_FLAGS = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC


def read_file(dirpath, name):
    """Return the whole content of dirpath/name as text."""
    path = os.path.join(dirpath, name)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_int(dirpath, name):
    """Return dirpath/name as an int; "max" reads as -1."""
    text = read_file(dirpath, name).strip()
    if text == "max":
        return -1
    return int(text)


def write_file(dirpath, name, value):
    """Write value (str or int) to dirpath/name in a single write(2)."""
    path = os.path.join(dirpath, name)
    data = str(value).encode()
    log.debug("writing `%s` to `%s`", value, path)
    fd = os.open(path, _WRITE_FLAGS)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_error(field, value, path, err):
    """Build the CgroupError for a refused write of value to path."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    msg = f"write {value} to {path}: {reason}"
    if field:
        msg = f"{field}: {msg}"
    return CgroupError(msg)


def set_value(dirpath, name, value, field):
    """Write value to dirpath/name, raising CgroupError naming field."""
    try:
        write_file(dirpath, name, value)
    except OSError as err:
        path = os.path.join(dirpath, name)
        raise write_error(field, value, path, err) from err


def make_dir(path):
    """mkdir one cgroup (the kernel fills in its files)."""
    os.mkdir(path, 0o755)


def mkdir_chain(base, path, created):
    """Create every missing directory from below base down to path.

    Appends each directory this call made to created, so that destroy()
    removes exactly those and never a pre-existing (runtime's own) cgroup.
    """
    rel = os.path.relpath(path, base)
    current = base
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        current = os.path.join(current, part)
        try:
            make_dir(current)
        except FileExistsError:
            continue
        except OSError as err:
            reason = os.strerror(err.errno)
            raise CgroupError(f"mkdir {current}: {reason}") from err
        created.append(current)


def write_pid(dirpath, pid):
    """Move pid into the cgroup at dirpath (raises OSError)."""
    # EINVAL can mean that the task is still in TASK_NEW, right after
    # clone(); runc retries a few times for the same reason.
    for attempt in range(5):
        try:
            write_file(dirpath, PROCS, pid)
            return
        except OSError as err:
            if err.errno != errno.EINVAL or attempt == 4:
                raise
        time.sleep(0.03)


def walk_pids(dirpath):
    """Return the pids in the cgroup at dirpath and in all its children."""
    pids = []
    for current, _subdirs, _files in os.walk(dirpath):
        try:
            text = read_file(current, PROCS)
        except FileNotFoundError:
            continue
        for line in text.split():
            pids.append(int(line))
    return pids


def remove_dir(path):
    """rmdir one cgroup (its files go with it on cgroupfs)."""
    os.rmdir(path)


def _rmdir_tree(path):
    """rmdir path after its sub-cgroups, deepest first (raises OSError)."""
    try:
        remove_dir(path)
        return
    except FileNotFoundError:
        return
    except OSError as err:
        # A sub-cgroup made inside the container keeps the dir non-empty;
        # anything else is a real failure.
        if err.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST):
            raise
    for current, subdirs, _files in os.walk(path, topdown=False):
        for sub in subdirs:
            try:
                remove_dir(os.path.join(current, sub))
            except FileNotFoundError:
                pass
    try:
        remove_dir(path)
    except FileNotFoundError:
        pass


# A task killed just before destroy() may take a moment to leave the
# cgroup; poll this long in total before giving up.
RMDIR_TIMEOUT = 0.05
_RMDIR_PAUSE = 0.005


def remove_dirs(leaves, created):
    """Remove the leaf cgroups, then the intermediates this runtime made.

    leaves are the container cgroups: removed with their sub-cgroups,
    retried on EBUSY for up to RMDIR_TIMEOUT, and a failure is an error.
    created are all directories made by create(); the ones that are not
    leaves are parents possibly shared with other containers, so a
    non-empty one is left alone.
    """
    pending = [p for p in leaves if p in created]
    deadline = time.monotonic() + RMDIR_TIMEOUT
    while True:
        failed = []
        last = None
        for path in pending:
            try:
                _rmdir_tree(path)
            except OSError as err:
                failed.append(path)
                last = err
        pending = failed
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(_RMDIR_PAUSE)
    if pending:
        reason = os.strerror(last.errno)
        raise CgroupError(f"rmdir {pending[0]}: {reason}") from last
    leafset = set(leaves)
    parents = [p for p in created if p not in leafset]
    parents.sort(key=lambda p: p.count("/"), reverse=True)
    for path in parents:
        try:
            remove_dir(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            log.debug("keeping `%s`: %s", path, os.strerror(err.errno))
