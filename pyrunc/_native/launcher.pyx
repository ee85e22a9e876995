# cython: language_level=3
"""Clone the container's child and hand it the launch plan.

The plan arrives as a list of tuples ``(op, arg, ...)``. Before cloning,
each tuple is copied into a C ``px_step``; the bytes objects it points to
stay alive in ``keep`` until the parent returns, and the child owns a
copy-on-write image of the same memory. After clone the child runs
executor.c only: no Python code, no interpreter state.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

import os
# _struct, the builtin behind struct: importing struct scans the
# standard library's directory, which the hot path otherwise never reads.
from _struct import calcsize

cdef extern from "executor.h":
    enum:
        PX_MAX_ARGS
        PX_SET_ROOT
        PX_SETNS
        PX_UNSHARE
        PX_SYNC
        PX_FORK
        PX_MOUNT
        PX_MKDIR
        PX_MKNOD
        PX_SYMLINK
        PX_MAKE_PARENT_PRIVATE
        PX_PIVOT_ROOT
        PX_MOVE_ROOT
        PX_MASK
        PX_READONLY
        PX_REMOUNT_ROOT_RO
        PX_SETHOSTNAME
        PX_SETDOMAINNAME
        PX_WRITE_PROC
        PX_CHDIR
        PX_SETRLIMIT
        PX_UMASK
        PX_CAPS_BOUNDING
        PX_SET_USER
        PX_CAPS_APPLY
        PX_NO_NEW_PRIVS
        PX_CONSOLE
        PX_CONSOLE_STDIO
        PX_SETSID
        PX_CLOSE_FDS
        PX_HOOK
        PX_READY
        PX_WAIT_FIFO
        PX_SECCOMP
        PX_LOOKUP
        PX_EXEC
        PX_BIND_DEV
        PX_KEYRING
        PX_CHROOT
        PX_STDIO
        PX_OP_MAX
        PX_MNT_HOSTPATH
        PX_MNT_MKDIR
        PX_MNT_MKFILE
        PX_MNT_BIND
        PX_MNT_COPYUP
        PX_MNT_ATTR_REC
        PX_MNT_SRC_ROOT
        PX_MNT_TREE
        PX_MNT_KEEP_MODE
        PX_MSG_SYNC
        PX_MSG_PID
        PX_MSG_READY
        PX_MSG_ERROR

    struct px_arg:
        int64_t i
        const char *s
        size_t len
        char **v

    struct px_step:
        int op
        int nargs
        px_arg a[10]

    struct px_plan:
        int nsteps
        px_step *steps
        int sync_fd
        int close_fd

    int px_spawn(const px_plan *plan, unsigned long clone_flags) nogil

# Operation codes, exported for process/plan.py.
OP_SET_ROOT = PX_SET_ROOT
OP_SETNS = PX_SETNS
OP_UNSHARE = PX_UNSHARE
OP_SYNC = PX_SYNC
OP_FORK = PX_FORK
OP_MOUNT = PX_MOUNT
OP_MKDIR = PX_MKDIR
OP_MKNOD = PX_MKNOD
OP_SYMLINK = PX_SYMLINK
OP_MAKE_PARENT_PRIVATE = PX_MAKE_PARENT_PRIVATE
OP_PIVOT_ROOT = PX_PIVOT_ROOT
OP_MOVE_ROOT = PX_MOVE_ROOT
OP_MASK = PX_MASK
OP_READONLY = PX_READONLY
OP_REMOUNT_ROOT_RO = PX_REMOUNT_ROOT_RO
OP_SETHOSTNAME = PX_SETHOSTNAME
OP_SETDOMAINNAME = PX_SETDOMAINNAME
OP_WRITE_PROC = PX_WRITE_PROC
OP_CHDIR = PX_CHDIR
OP_SETRLIMIT = PX_SETRLIMIT
OP_UMASK = PX_UMASK
OP_CAPS_BOUNDING = PX_CAPS_BOUNDING
OP_SET_USER = PX_SET_USER
OP_CAPS_APPLY = PX_CAPS_APPLY
OP_NO_NEW_PRIVS = PX_NO_NEW_PRIVS
OP_CONSOLE = PX_CONSOLE
OP_CONSOLE_STDIO = PX_CONSOLE_STDIO
OP_SETSID = PX_SETSID
OP_CLOSE_FDS = PX_CLOSE_FDS
OP_HOOK = PX_HOOK
OP_READY = PX_READY
OP_WAIT_FIFO = PX_WAIT_FIFO
OP_SECCOMP = PX_SECCOMP
OP_LOOKUP = PX_LOOKUP
OP_EXEC = PX_EXEC
OP_BIND_DEV = PX_BIND_DEV
OP_KEYRING = PX_KEYRING
OP_CHROOT = PX_CHROOT
OP_STDIO = PX_STDIO

MNT_HOSTPATH = PX_MNT_HOSTPATH
MNT_MKDIR = PX_MNT_MKDIR
MNT_MKFILE = PX_MNT_MKFILE
MNT_BIND = PX_MNT_BIND
MNT_COPYUP = PX_MNT_COPYUP
MNT_ATTR_REC = PX_MNT_ATTR_REC
MNT_SRC_ROOT = PX_MNT_SRC_ROOT
MNT_TREE = PX_MNT_TREE
MNT_KEEP_MODE = PX_MNT_KEEP_MODE

MSG_SYNC = PX_MSG_SYNC
MSG_PID = PX_MSG_PID
MSG_READY = PX_MSG_READY
MSG_ERROR = PX_MSG_ERROR

# struct px_msg: kind, arg, err, step, op[32], text[480].
MSG_FORMAT = "=iiii32s480s"
MSG_SIZE = calcsize(MSG_FORMAT)


cdef char **make_vector(list keep, object items) except? NULL:
    """Copy a sequence of bytes into a NULL-terminated char* array."""
    cdef Py_ssize_t n = len(items)
    cdef char **vec = <char **>calloc(n + 1, sizeof(char *))
    cdef Py_ssize_t i
    if vec == NULL:
        raise MemoryError()
    for i in range(n):
        item = items[i]
        if not isinstance(item, bytes):
            free(vec)
            raise TypeError("vector items must be bytes")
        keep.append(item)
        vec[i] = PyBytes_AS_STRING(item)
    return vec


cdef int fill_step(px_step *step, tuple spec, list keep,
                   list vectors) except -1:
    cdef Py_ssize_t j
    cdef char **vec
    if len(spec) - 1 > PX_MAX_ARGS:
        raise ValueError(f"too many arguments in step {spec[0]}")
    op = spec[0]
    if not (0 < op < PX_OP_MAX):
        raise ValueError(f"unknown step {op}")
    step.op = op
    step.nargs = len(spec) - 1
    for j in range(1, len(spec)):
        arg = spec[j]
        if arg is None:
            continue
        if isinstance(arg, bool) or isinstance(arg, int):
            # Masks use all 64 bits; store them as two's complement.
            step.a[j - 1].i = <int64_t><uint64_t>(
                arg & 0xFFFFFFFFFFFFFFFF)
        elif isinstance(arg, bytes):
            keep.append(arg)
            step.a[j - 1].s = PyBytes_AS_STRING(arg)
            step.a[j - 1].len = PyBytes_GET_SIZE(arg)
        elif isinstance(arg, (list, tuple)):
            vec = make_vector(keep, arg)
            vectors.append(<size_t>vec)
            step.a[j - 1].v = vec
        else:
            raise TypeError(
                f"step {op}: argument {j} has type {type(arg).__name__}")
    return 0


def spawn(steps, unsigned long clone_flags, int sync_fd, int close_fd):
    """Clone the child, which runs ``steps``; return its pid.

    ``sync_fd`` is the child's end of the sync socketpair and ``close_fd``
    the parent's end, which the child closes first.
    """
    cdef px_plan plan
    cdef Py_ssize_t n = len(steps)
    cdef Py_ssize_t i
    cdef int pid
    cdef list keep = []
    cdef list vectors = []

    memset(&plan, 0, sizeof(plan))
    plan.steps = <px_step *>calloc(n if n else 1, sizeof(px_step))
    if plan.steps == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            fill_step(&plan.steps[i], tuple(steps[i]), keep, vectors)
        plan.nsteps = n
        plan.sync_fd = sync_fd
        plan.close_fd = close_fd
        with nogil:
            pid = px_spawn(&plan, clone_flags)
        if pid < 0:
            err = os.strerror(_errno())
            raise OSError(_errno(), f"clone: {err}")
        return pid
    finally:
        for addr in vectors:
            free(<void *><size_t>addr)
        free(plan.steps)


cdef extern from "errno.h":
    int errno


cdef int _errno():
    return errno


cdef extern from "sys/socket.h":
    int AF_UNIX
    int SOCK_SEQPACKET
    int SOCK_CLOEXEC
    int c_socketpair "socketpair"(int domain, int type, int protocol,
                                  int *sv)


def socketpair():
    """A close-on-exec SOCK_SEQPACKET pair (parent end, child end).

    Made here rather than with the socket module, which the hot path
    would otherwise import only for this.
    """
    cdef int sv[2]
    if c_socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0:
        raise OSError(_errno(), os.strerror(_errno()))
    return sv[0], sv[1]


cdef extern from "sys/prctl.h":
    int prctl(int option, unsigned long arg2, unsigned long arg3,
              unsigned long arg4, unsigned long arg5)
    int PR_SET_CHILD_SUBREAPER


def set_child_subreaper():
    """Adopt orphaned descendants, so `run` can wait for the container
    process even when the launch forked it from an intermediate child."""
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0:
        raise OSError(_errno(), os.strerror(_errno()))


cdef extern from "idmap.h":
    int px_userns_child() nogil
    int px_idmapped_tree(const char *source, int userns_fd,
                         int recursive_tree, int recursive_idmap,
                         unsigned long propagation,
                         const char **failed) nogil


def userns_child():
    """Fork a child in a new user namespace, waiting to be killed.

    The caller writes its maps, opens its /proc/<pid>/ns/user, then
    kills and reaps it (pyrunc.process.idmap).
    """
    cdef int pid = px_userns_child()
    if pid < 0:
        raise OSError(_errno(), f"clone: {os.strerror(_errno())}")
    return pid


def idmapped_tree(bytes source, int userns_fd, bint recursive_tree,
                  bint recursive_idmap, unsigned long propagation):
    """Return the fd of a detached, idmapped copy of the mount at source.

    propagation is MS_SLAVE or MS_PRIVATE for the copy, or 0 to keep
    the source's. Raises OSError(errno, syscall, source) on failure.
    """
    cdef const char *failed = NULL
    cdef int fd = px_idmapped_tree(source, userns_fd, recursive_tree,
                                   recursive_idmap, propagation, &failed)
    if fd < 0:
        raise OSError(_errno(), failed.decode(), os.fsdecode(source))
    return fd
