"""The few bpf(2) commands that attach a device filter to a cgroup.

Called through libc's syscall() with ctypes: five commands on small
fixed-layout attribute unions need no compiled module. Every function
raises OSError with the command's name, as the compiled core does.
"""

import ctypes
import errno
import os
import platform
import struct

from pyrunc import log as _log

log = _log.get_logger(__name__)

# bpf(2) syscall numbers per machine (asm/unistd.h).
_SYS_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "ppc64le": 361,
    "s390x": 351,
    "riscv64": 280,
    "i686": 357,
}

# enum bpf_cmd
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6

BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2

# Big enough for every command used here; the kernel accepts a larger
# attribute as long as the bytes it does not know are zero.
_ATTR_SIZE = 128

_libc = None


def _syscall():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc.syscall


def _bpf(cmd, attr, name):
    """Run bpf(cmd, attr) on a mutable buffer; return the result."""
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"bpf: unknown machine "
                      f"{platform.machine()}")
    buf = ctypes.create_string_buffer(bytes(attr), _ATTR_SIZE)
    ret = _syscall()(
        ctypes.c_long(number),
        ctypes.c_long(cmd),
        buf,
        ctypes.c_uint(_ATTR_SIZE),
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    attr[:] = buf.raw[: len(attr)]
    return ret


def _attr():
    return bytearray(_ATTR_SIZE)


def prog_load(insns, license, log_size=0):
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; return its fd.

    On failure the verifier's log is added to the error, so that a
    rejected program can be understood.
    """
    lic = ctypes.create_string_buffer(license.encode())
    code = ctypes.create_string_buffer(bytes(insns), len(insns))
    logbuf = ctypes.create_string_buffer(log_size) if log_size else None
    attr = _attr()
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
    # log_level, log_size, log_buf, kern_version, prog_flags, prog_name.
    struct.pack_into(
        "<IIQQIIQII16s",
        attr,
        0,
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(insns) // 8,
        ctypes.addressof(code),
        ctypes.addressof(lic),
        1 if log_size else 0,
        log_size,
        ctypes.addressof(logbuf) if logbuf is not None else 0,
        0,
        0,
        b"pyrunc_devices",
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf_prog_load")
    except OSError as err:
        if log_size or err.errno in (errno.EPERM, errno.ENOSYS):
            if logbuf is not None and logbuf.value:
                text = logbuf.value.decode(errors="replace").strip()
                raise OSError(err.errno, f"{err.strerror}: {text}") from None
            raise
    # Load again with the verifier log on, only to explain the failure.
    return prog_load(insns, license, log_size=1 << 16)


def prog_attach(target_fd, prog_fd, flags, replace_fd=0):
    """Attach prog_fd to the cgroup directory target_fd."""
    attr = _attr()
    # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
    struct.pack_into(
        "<IIIII", attr, 0, target_fd, prog_fd, BPF_CGROUP_DEVICE, flags,
        replace_fd,
    )
    _bpf(BPF_PROG_ATTACH, attr, "bpf_prog_attach")


def prog_detach(target_fd, prog_fd):
    """Detach prog_fd (BPF_CGROUP_DEVICE) from the cgroup target_fd."""
    attr = _attr()
    struct.pack_into(
        "<III", attr, 0, target_fd, prog_fd, BPF_CGROUP_DEVICE
    )
    _bpf(BPF_PROG_DETACH, attr, "bpf_prog_detach")


def prog_query(target_fd):
    """Return the ids of the device programs attached to target_fd."""
    size = 64
    for _ in range(10):
        ids = (ctypes.c_uint32 * size)()
        attr = _attr()
        # target_fd, attach_type, query_flags, attach_flags, prog_ids,
        # prog_cnt
        struct.pack_into(
            "<IIIIQI", attr, 0, target_fd, BPF_CGROUP_DEVICE, 0, 0,
            ctypes.addressof(ids), size,
        )
        try:
            _bpf(BPF_PROG_QUERY, attr, "bpf_prog_query")
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            # More programs than room: prog_cnt now holds how many.
            size = struct.unpack_from("<I", attr, 24)[0]
            continue
        count = struct.unpack_from("<I", attr, 24)[0]
        return list(ids[:count])
    raise OSError(errno.ENOSPC, "bpf_prog_query: list keeps growing")


def prog_get_fd_by_id(prog_id):
    """Return an fd for the loaded program prog_id."""
    attr = _attr()
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, "bpf_prog_get_fd_by_id")


_replace_supported = None


def have_prog_replace():
    """Tell whether the kernel knows BPF_F_REPLACE (Linux 5.6).

    Probed as runc does: attaching a trivial program to a non-cgroup fd
    with the flag fails with EBADF when the flag is known and EINVAL
    when it is not.
    """
    global _replace_supported
    if _replace_supported is not None:
        return _replace_supported
    _replace_supported = False
    # r0 = 0; exit
    trivial = struct.pack("<BBhiBBhi", 0xB4, 0, 0, 0, 0x95, 0, 0, 0)
    try:
        prog = prog_load(trivial, "MIT")
    except OSError as err:
        log.debug("probing BPF_F_REPLACE: %s", err)
        return False
    try:
        null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            prog_attach(null, prog, BPF_F_ALLOW_MULTI | BPF_F_REPLACE)
        except OSError as err:
            _replace_supported = err.errno == errno.EBADF
        finally:
            os.close(null)
    finally:
        os.close(prog)
    return _replace_supported


def attach_device_filter(dirfd, insns, license):
    """Load insns and make it the only device program of a cgroup.

    Like runc: with exactly one old program and BPF_F_REPLACE the swap is
    atomic; otherwise the new program is attached first (so the cgroup
    is never without a filter) and the old ones are detached after.
    """
    old_ids = prog_query(dirfd)
    old_fds = []
    try:
        for prog_id in old_ids:
            try:
                old_fds.append(prog_get_fd_by_id(prog_id))
            except OSError as err:
                if err.errno != errno.EPERM:
                    raise
                log.debug("ignoring device program %d: %s", prog_id, err)
        prog = prog_load(insns, license)
        try:
            if len(old_fds) == 1 and have_prog_replace():
                flags = BPF_F_ALLOW_MULTI | BPF_F_REPLACE
                prog_attach(dirfd, prog, flags, old_fds[0])
                return
            prog_attach(dirfd, prog, BPF_F_ALLOW_MULTI)
            for fd in old_fds:
                prog_detach(dirfd, fd)
        finally:
            # The cgroup holds its own reference to an attached program.
            os.close(prog)
    finally:
        for fd in old_fds:
            os.close(fd)
