# cython: language_level=3
"""libseccomp for the parent: build a seccomp filter, export it as BPF.

Only the runtime's own process uses this module. It never loads a filter:
``Filter.export()`` returns the classic BPF program as bytes, which the
launch plan carries to the compiled executor, and the child loads it with
seccomp(2). Importing this module loads libseccomp, so pyrunc.seccomp
imports it only for a config that has ``linux.seccomp``.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free

import os

cdef extern from "seccomp.h":
    ctypedef void *scmp_filter_ctx

    cdef enum scmp_compare:
        SCMP_CMP_NE
        SCMP_CMP_LT
        SCMP_CMP_LE
        SCMP_CMP_EQ
        SCMP_CMP_GE
        SCMP_CMP_GT
        SCMP_CMP_MASKED_EQ

    cdef enum scmp_filter_attr:
        SCMP_FLTATR_ACT_DEFAULT
        SCMP_FLTATR_ACT_BADARCH
        SCMP_FLTATR_CTL_NNP
        SCMP_FLTATR_CTL_TSYNC
        SCMP_FLTATR_CTL_LOG
        SCMP_FLTATR_CTL_SSB

    struct scmp_arg_cmp:
        unsigned int arg
        scmp_compare op
        uint64_t datum_a
        uint64_t datum_b

    struct scmp_version:
        unsigned int major
        unsigned int minor
        unsigned int micro

    uint32_t SCMP_ACT_KILL_PROCESS
    uint32_t SCMP_ACT_KILL_THREAD
    uint32_t SCMP_ACT_KILL
    uint32_t SCMP_ACT_TRAP
    uint32_t SCMP_ACT_NOTIFY
    uint32_t SCMP_ACT_LOG
    uint32_t SCMP_ACT_ALLOW
    uint32_t SCMP_ACT_ERRNO(uint32_t x)
    uint32_t SCMP_ACT_TRACE(uint32_t x)
    int __NR_SCMP_ERROR

    const scmp_version *seccomp_version()
    unsigned int seccomp_api_get()
    scmp_filter_ctx seccomp_init(uint32_t def_action)
    void seccomp_release(scmp_filter_ctx ctx)
    uint32_t seccomp_arch_resolve_name(const char *arch_name)
    uint32_t seccomp_arch_native()
    int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token)
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token)
    int seccomp_attr_set(scmp_filter_ctx ctx, scmp_filter_attr attr,
                         uint32_t value)
    int seccomp_syscall_resolve_name(const char *name)
    int seccomp_syscall_resolve_name_arch(uint32_t arch_token,
                                          const char *name)
    char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num)
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action,
                               int syscall, unsigned int arg_cnt,
                               const scmp_arg_cmp *arg_array)
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd)

# libseccomp 2.6 added the attribute behind
# SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV; 2.5 (Debian 12) has none.
cdef extern from *:
    """
    #ifdef SCMP_FLTATR_CTL_WAITKILL
    #define PX_HAVE_WAITKILL 1
    #define PX_FLTATR_WAITKILL SCMP_FLTATR_CTL_WAITKILL
    #else
    #define PX_HAVE_WAITKILL 0
    #define PX_FLTATR_WAITKILL 0
    #endif
    """
    int PX_HAVE_WAITKILL
    int PX_FLTATR_WAITKILL

ACT_KILL_PROCESS = SCMP_ACT_KILL_PROCESS
ACT_KILL_THREAD = SCMP_ACT_KILL_THREAD
ACT_KILL = SCMP_ACT_KILL
ACT_TRAP = SCMP_ACT_TRAP
ACT_NOTIFY = SCMP_ACT_NOTIFY
ACT_LOG = SCMP_ACT_LOG
ACT_ALLOW = SCMP_ACT_ALLOW

CMP_NE = SCMP_CMP_NE
CMP_LT = SCMP_CMP_LT
CMP_LE = SCMP_CMP_LE
CMP_EQ = SCMP_CMP_EQ
CMP_GE = SCMP_CMP_GE
CMP_GT = SCMP_CMP_GT
CMP_MASKED_EQ = SCMP_CMP_MASKED_EQ

ATTR_CTL_NNP = SCMP_FLTATR_CTL_NNP
ATTR_CTL_TSYNC = SCMP_FLTATR_CTL_TSYNC
ATTR_CTL_LOG = SCMP_FLTATR_CTL_LOG
ATTR_CTL_SSB = SCMP_FLTATR_CTL_SSB
# None when this libseccomp cannot set the attribute.
ATTR_CTL_WAITKILL = PX_FLTATR_WAITKILL if PX_HAVE_WAITKILL else None

# Syscall arguments a condition may name: seccomp_data has six.
MAX_ARGS = 6


def act_errno(unsigned int value):
    """SCMP_ACT_ERRNO(value): fail the syscall with that errno."""
    return SCMP_ACT_ERRNO(value)


def act_trace(unsigned int value):
    """SCMP_ACT_TRACE(value): notify a tracer, value as the message."""
    return SCMP_ACT_TRACE(value)


def version():
    """libseccomp's version as (major, minor, micro)."""
    cdef const scmp_version *v = seccomp_version()
    if v == NULL:
        return (0, 0, 0)
    return (v.major, v.minor, v.micro)


def api_level():
    """The API level libseccomp found for this kernel (seccomp_api_get)."""
    return seccomp_api_get()


def native_arch():
    """The arch token of the machine the runtime runs on."""
    return seccomp_arch_native()


def resolve_arch(name):
    """libseccomp's token for an arch name such as "x86_64", or None."""
    cdef uint32_t token = seccomp_arch_resolve_name(os.fsencode(name))
    return token if token else None


def resolve_syscall(name, arch=None):
    """The syscall number of name, or None if libseccomp does not know it.

    Without arch the number is the native one, or one of libseccomp's
    negative pseudo numbers for a syscall that exists only on other
    architectures; rules take either.
    """
    cdef int nr
    raw = os.fsencode(name)
    if arch is None:
        nr = seccomp_syscall_resolve_name(raw)
    else:
        nr = seccomp_syscall_resolve_name_arch(arch, raw)
    if nr == __NR_SCMP_ERROR:
        return None
    return nr


def syscall_name(int nr, arch=None):
    """The name of syscall number nr (native unless arch), or None."""
    cdef char *name = seccomp_syscall_resolve_num_arch(
        seccomp_arch_native() if arch is None else arch, nr)
    if name == NULL:
        return None
    try:
        return name.decode()
    finally:
        free(name)


cdef class Filter:
    """A libseccomp filter context (scmp_filter_ctx) being built.

    Methods raise OSError with libseccomp's errno when it refuses.
    """

    cdef scmp_filter_ctx ctx

    def __cinit__(self, uint32_t default_action):
        self.ctx = seccomp_init(default_action)
        if self.ctx == NULL:
            raise OSError(22, "seccomp_init: invalid default action "
                          f"{default_action:#x}")

    def __dealloc__(self):
        if self.ctx != NULL:
            seccomp_release(self.ctx)
            self.ctx = NULL

    def add_arch(self, uint32_t token):
        """Add an architecture; return False if the filter had it."""
        cdef int rc
        if seccomp_arch_exist(self.ctx, token) == 0:
            return False
        rc = seccomp_arch_add(self.ctx, token)
        if rc < 0:
            raise OSError(-rc, f"seccomp_arch_add: {os.strerror(-rc)}")
        return True

    def set_attr(self, int attr, uint32_t value):
        cdef int rc = seccomp_attr_set(self.ctx, <scmp_filter_attr>attr,
                                       value)
        if rc < 0:
            raise OSError(-rc, f"seccomp_attr_set: {os.strerror(-rc)}")

    def add_rule(self, uint32_t action, int syscall, conditions=()):
        """seccomp_rule_add_array with conditions (arg, op, a, b)."""
        cdef scmp_arg_cmp cmps[6]
        cdef unsigned int n = len(conditions)
        cdef unsigned int i
        cdef int rc
        if n > MAX_ARGS:
            raise OSError(22, "seccomp_rule_add: too many conditions")
        for i in range(n):
            arg, op, a, b = conditions[i]
            cmps[i].arg = arg
            cmps[i].op = <scmp_compare>op
            cmps[i].datum_a = a
            cmps[i].datum_b = b
        rc = seccomp_rule_add_array(self.ctx, action, syscall, n, cmps)
        if rc < 0:
            raise OSError(-rc, f"seccomp_rule_add: {os.strerror(-rc)}")

    def export(self):
        """The filter as classic BPF (struct sock_filter[]), as bytes.

        libseccomp writes it to a file descriptor; a memfd keeps it off
        the disk.
        """
        cdef int rc
        fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
        try:
            rc = seccomp_export_bpf(self.ctx, fd)
            if rc < 0:
                raise OSError(-rc,
                              f"seccomp_export_bpf: {os.strerror(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while size > 0:
                chunk = os.read(fd, size)
                if not chunk:
                    break
                chunks.append(chunk)
                size -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
