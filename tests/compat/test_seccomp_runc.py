"""Seccomp, pyrunc against runc: same bundle, same observable results.

Each profile runs the same probe in both runtimes; every line the probe
prints (what each syscall returned, the signal that killed it, the
seccomp state in /proc/self/status) and the exit status must match.
"""

import pytest

from helpers import unique_id

pytestmark = [pytest.mark.root, pytest.mark.runc]

PROBE = r"""
try() { "$@" 2>&1; echo "$1: rc=$?"; }
try mkdir /tmp/d
try chmod 4755 /bin/busybox
try chmod 0755 /tmp
try linux32 true
try linux64 true
try rmdir /tmp
try sync
try uname -s
try renice -n 1 -p $$
try sh -c 'echo hi > /tmp/f; cat /tmp/f'
grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters|Speculation_Store_Bypass):' \
    /proc/self/status
"""

ALLOW_LIST = """
access arch_prctl brk capget capset chdir clock_gettime clone clone3
close close_range dup dup2 dup3 execve exit exit_group faccessat
faccessat2 fchdir fcntl fork fstat futex getcwd getdents64 getegid
geteuid getgid getgroups getpgid getpgrp getpid getppid getrandom
getrlimit gettid getuid ioctl lseek lstat madvise mmap mprotect munmap
nanosleep newfstatat open openat openat2 pipe pipe2 prctl pread64
prlimit64 read readlink readlinkat rseq rt_sigaction rt_sigprocmask
rt_sigreturn rt_sigsuspend sched_getaffinity sched_yield sendto
set_robust_list set_tid_address setgid setgroups setpgid setresgid
setresuid setsid setuid sigaltstack stat statfs statx tgkill umask uname
vfork wait4 waitid write writev epoll_pwait epoll_ctl epoll_create1
epoll_wait eventfd2 fstatfs fsync getresgid getresuid kill tkill poll
ppoll select pselect6 setitimer recvfrom recvmsg sendmsg socket connect
getsockopt membarrier
""".split()

MIXED = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 38},
        # A setuid bit, whatever the rest of the mode: value is the mask.
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 1, "value": 0o4000, "valueTwo": 0o4000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 2, "value": 0o4000, "valueTwo": 0o4000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        # Two tests of one argument: either one matches.
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 22,
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 0x20008, "op": "SCMP_CMP_EQ"}]},
        {"names": ["rmdir"], "action": "SCMP_ACT_KILL"},
        {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
        {"names": ["uname"], "action": "SCMP_ACT_LOG"},
        {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 13},
        {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
    ],
}

DENY_BY_DEFAULT = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ALLOW_LIST, "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
    ],
}


def run_both(bundle, pyrunc_cmd, runc_cmd):
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        # A fresh /tmp for each runtime: the probe writes there.
        for name in ("f", "d"):
            path = bundle.rootfs / "tmp" / name
            if path.exists():
                path.unlink() if name == "f" else path.rmdir()
        results[rt.name] = rt.run(bundle, unique_id("sc"))
    return results["pyrunc"], results["runc"]


@pytest.mark.parametrize("nnp, user", [
    (True, None),
    (False, {"uid": 1000, "gid": 1000}),
], ids=["no-new-privs", "user-without-nnp"])
@pytest.mark.parametrize("profile", [MIXED, DENY_BY_DEFAULT],
                         ids=["mixed-actions", "deny-by-default"])
def test_probe_matches_runc(bundle, pyrunc_cmd, runc_cmd, profile, nnp,
                            user):
    config = bundle.config
    config["root"]["readonly"] = False
    config["linux"]["seccomp"] = profile
    config["process"]["noNewPrivileges"] = nnp
    if user is not None:
        config["process"]["user"] = user
    (bundle.rootfs / "tmp").chmod(0o1777)
    bundle.set_args("sh", "-c", PROBE)
    mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd)
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == theirs.returncode, mine.stderr
    assert mine.stdout.splitlines() == theirs.stdout.splitlines()
    # The probe saw the profile at work.
    assert "mkdir: rc=1" in mine.stdout
    assert "Seccomp:\t2" in mine.stdout
