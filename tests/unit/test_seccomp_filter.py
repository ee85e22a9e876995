"""linux.seccomp -> BPF through libseccomp: checks, errors, semantics.

The exported programs are run here by a small classic-BPF evaluator on
made-up seccomp_data, so the meaning of each rule is tested without
loading anything into the kernel.
"""

import errno
import struct

import pytest

from pyrunc.errors import ConfigError, SpecError
from pyrunc.seccomp import filter as sf
from pyrunc.seccomp import compile_filter

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

RET_KILL_THREAD = 0x00000000
RET_KILL_PROCESS = 0x80000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

# x86_64 syscall numbers used below.
NR = {"read": 0, "write": 1, "mkdir": 83, "personality": 135,
      "getpid": 39, "mkdirat": 258, "openat": 257, "chmod": 90}
# i386 numbers.
NR32 = {"mkdir": 39, "getpid": 20}


def run_bpf(program, nr, arch=AUDIT_ARCH_X86_64, args=(0,) * 6, ip=0):
    """Evaluate a classic BPF seccomp program; return what it returns."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("=HBBI", program, off)
             for off in range(0, len(program), 8)]
    acc = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:                          # BPF_LD
            mode = code & 0xE0
            if mode == 0x20:                     # BPF_ABS, BPF_W
                acc = struct.unpack_from("=I", data, k)[0]
            elif mode == 0x00:                   # BPF_IMM
                acc = k
            elif mode == 0x60:                   # BPF_MEM
                acc = mem[k]
            else:
                raise AssertionError(f"ld mode {code:#x}")
        elif cls == 0x01:                        # BPF_LDX
            x = mem[k] if code & 0xE0 == 0x60 else k
        elif cls == 0x02:                        # BPF_ST
            mem[k] = acc
        elif cls == 0x03:                        # BPF_STX
            mem[k] = x
        elif cls == 0x04:                        # BPF_ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            acc = {0x00: lambda: acc + operand, 0x10: lambda: acc - operand,
                   0x40: lambda: acc | operand, 0x50: lambda: acc & operand,
                   0x60: lambda: acc << operand,
                   0x70: lambda: acc >> operand}[op]() & 0xFFFFFFFF
        elif cls == 0x05:                        # BPF_JMP
            op = code & 0xF0
            operand = x if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: acc == operand, 0x20: acc > operand,
                     0x30: acc >= operand, 0x40: bool(acc & operand)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:                        # BPF_RET
            return acc if code & 0x18 == 0x10 else k
        elif cls == 0x07:                        # BPF_MISC
            if code & 0xF8 == 0x00:
                x = acc
            else:
                acc = x
        else:
            raise AssertionError(f"opcode {code:#x}")


def profile(default="SCMP_ACT_ALLOW", syscalls=(), **extra):
    config = {"defaultAction": default, "syscalls": list(syscalls)}
    config.update(extra)
    return config


def rule(names, action, **extra):
    entry = {"names": list(names), "action": action}
    entry.update(extra)
    return entry


def arg(index, value, op, value_two=None):
    item = {"index": index, "value": value, "op": op}
    if value_two is not None:
        item["valueTwo"] = value_two
    return item


class TestNoFilter:
    @pytest.mark.parametrize("config", [None, {}, {"defaultAction": ""},
                                        {"syscalls": []}])
    def test_nothing_to_filter(self, config):
        assert compile_filter(config) is None

    def test_syscalls_without_default_action(self):
        with pytest.raises(SpecError) as info:
            compile_filter({"syscalls": [rule(["mkdir"], "SCMP_ACT_ERRNO")]})
        assert info.value.path == "linux.seccomp.defaultAction"


class TestSemantics:
    def test_deny_mkdir_with_eperm(self):
        f = compile_filter(profile(syscalls=[
            rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO")]))
        assert len(f.bpf) % 8 == 0
        assert f.flags == 0 and not f.notify
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | errno.EPERM
        assert run_bpf(f.bpf, NR["mkdirat"]) == RET_ERRNO | errno.EPERM
        assert run_bpf(f.bpf, NR["getpid"]) == RET_ALLOW

    def test_errno_ret(self):
        f = compile_filter(profile(syscalls=[
            rule(["mkdir"], "SCMP_ACT_ERRNO", errnoRet=38)]))
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 38

    def test_default_errno_ret(self):
        f = compile_filter(profile("SCMP_ACT_ERRNO", [
            rule(["getpid"], "SCMP_ACT_ALLOW")], defaultErrnoRet=38))
        assert run_bpf(f.bpf, NR["getpid"]) == RET_ALLOW
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 38

    @pytest.mark.parametrize("action, ret", [
        ("SCMP_ACT_KILL", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", RET_TRAP),
        ("SCMP_ACT_ERRNO", RET_ERRNO | errno.EPERM),
        ("SCMP_ACT_TRACE", RET_TRACE | errno.EPERM),
        ("SCMP_ACT_LOG", RET_LOG),
    ])
    def test_actions(self, action, ret):
        f = compile_filter(profile(syscalls=[rule(["mkdir"], action)]))
        assert run_bpf(f.bpf, NR["mkdir"]) == ret

    def test_trace_takes_errno_ret(self):
        f = compile_filter(profile(syscalls=[
            rule(["mkdir"], "SCMP_ACT_TRACE", errnoRet=7)]))
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_TRACE | 7

    def test_allow_list_with_default_deny(self):
        f = compile_filter(profile("SCMP_ACT_KILL_PROCESS", [
            rule(["read", "write", "getpid"], "SCMP_ACT_ALLOW")]))
        for name in ("read", "write", "getpid"):
            assert run_bpf(f.bpf, NR[name]) == RET_ALLOW
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_KILL_PROCESS

    def test_rule_equal_to_default_is_skipped(self):
        # libseccomp would refuse it; runc drops it silently.
        f = compile_filter(profile(syscalls=[
            rule(["getpid"], "SCMP_ACT_ALLOW"),
            rule(["mkdir"], "SCMP_ACT_ERRNO")]))
        assert run_bpf(f.bpf, NR["getpid"]) == RET_ALLOW

    def test_same_action_other_errno_is_not_redundant(self):
        f = compile_filter(profile("SCMP_ACT_ERRNO", [
            rule(["mkdir"], "SCMP_ACT_ERRNO", errnoRet=38)]))
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 38
        assert run_bpf(f.bpf, NR["getpid"]) == RET_ERRNO | errno.EPERM

    def test_bad_arch_is_killed(self):
        f = compile_filter(profile(syscalls=[
            rule(["mkdir"], "SCMP_ACT_ERRNO")]))
        assert run_bpf(f.bpf, NR32["mkdir"], arch=AUDIT_ARCH_I386) == \
            RET_KILL_THREAD

    def test_architectures(self):
        f = compile_filter(profile(
            syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO")],
            architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                           "SCMP_ARCH_X32"]))
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 1
        assert run_bpf(f.bpf, NR32["mkdir"], arch=AUDIT_ARCH_I386) == \
            RET_ERRNO | 1
        assert run_bpf(f.bpf, NR32["getpid"], arch=AUDIT_ARCH_I386) == \
            RET_ALLOW
        assert run_bpf(f.bpf, NR["mkdir"] | X32_SYSCALL_BIT) == \
            RET_ERRNO | 1


    def test_conflicting_rules_first_one_wins(self):
        # libseccomp keeps the first unconditional rule, for runc too.
        f = compile_filter(profile(syscalls=[
            rule(["mkdir"], "SCMP_ACT_ERRNO"),
            rule(["mkdir"], "SCMP_ACT_KILL")]))
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 1


class TestArguments:
    def test_personality_allowed_only_with_its_argument(self):
        # Docker's profile: one rule per allowed value.
        f = compile_filter(profile("SCMP_ACT_ERRNO", [
            rule(["personality"], "SCMP_ACT_ALLOW",
                 args=[arg(0, 0x0, "SCMP_CMP_EQ")]),
            rule(["personality"], "SCMP_ACT_ALLOW",
                 args=[arg(0, 0xFFFFFFFF, "SCMP_CMP_EQ")])]))
        nr = NR["personality"]
        assert run_bpf(f.bpf, nr, args=[0xFFFFFFFF]) == RET_ALLOW
        assert run_bpf(f.bpf, nr, args=[0]) == RET_ALLOW
        assert run_bpf(f.bpf, nr, args=[8]) == RET_ERRNO | 1
        # The upper half counts: 64-bit comparisons.
        assert run_bpf(f.bpf, nr, args=[0x1FFFFFFFF]) == RET_ERRNO | 1

    @pytest.mark.parametrize("op, value, matches, misses", [
        ("SCMP_CMP_EQ", 5, [5], [4, 6, 5 | 1 << 40]),
        ("SCMP_CMP_NE", 5, [4, 6, 1 << 40], [5]),
        ("SCMP_CMP_LT", 5, [0, 4], [5, 6, 1 << 33]),
        ("SCMP_CMP_LE", 5, [0, 5], [6, 1 << 33]),
        ("SCMP_CMP_GE", 5, [5, 6, 1 << 33], [0, 4]),
        ("SCMP_CMP_GT", 5, [6, 1 << 33], [0, 5]),
    ])
    def test_operators(self, op, value, matches, misses):
        f = compile_filter(profile(syscalls=[
            rule(["chmod"], "SCMP_ACT_ERRNO", args=[arg(1, value, op)])]))
        for v in matches:
            assert run_bpf(f.bpf, NR["chmod"], args=[0, v]) == \
                RET_ERRNO | 1, v
        for v in misses:
            assert run_bpf(f.bpf, NR["chmod"], args=[0, v]) == \
                RET_ALLOW, v

    def test_masked_eq_takes_mask_then_value(self):
        # value is the mask, valueTwo what the masked argument must be.
        f = compile_filter(profile(syscalls=[
            rule(["chmod"], "SCMP_ACT_ERRNO",
                 args=[arg(1, 0o7000, "SCMP_CMP_MASKED_EQ", 0o4000)])]))
        nr = NR["chmod"]
        assert run_bpf(f.bpf, nr, args=[0, 0o4755]) == RET_ERRNO | 1
        assert run_bpf(f.bpf, nr, args=[0, 0o6755]) == RET_ALLOW
        assert run_bpf(f.bpf, nr, args=[0, 0o0755]) == RET_ALLOW

    def test_conditions_on_distinct_arguments_all_must_match(self):
        f = compile_filter(profile(syscalls=[
            rule(["openat"], "SCMP_ACT_ERRNO",
                 args=[arg(0, 3, "SCMP_CMP_EQ"), arg(2, 1, "SCMP_CMP_EQ")])]))
        nr = NR["openat"]
        assert run_bpf(f.bpf, nr, args=[3, 0, 1]) == RET_ERRNO | 1
        assert run_bpf(f.bpf, nr, args=[3, 0, 0]) == RET_ALLOW
        assert run_bpf(f.bpf, nr, args=[4, 0, 1]) == RET_ALLOW

    def test_conditions_on_one_argument_are_separate_rules(self):
        # runc: two tests of one argument become two rules (either one).
        f = compile_filter(profile(syscalls=[
            rule(["personality"], "SCMP_ACT_ERRNO",
                 args=[arg(0, 8, "SCMP_CMP_EQ"),
                       arg(0, 0x20008, "SCMP_CMP_EQ")])]))
        nr = NR["personality"]
        assert run_bpf(f.bpf, nr, args=[8]) == RET_ERRNO | 1
        assert run_bpf(f.bpf, nr, args=[0x20008]) == RET_ERRNO | 1
        assert run_bpf(f.bpf, nr, args=[0]) == RET_ALLOW


class TestUnknownSyscalls:
    def test_skipped_with_a_warning(self, pyrunc_logs):
        f = compile_filter(profile(syscalls=[
            rule(["mkdir", "no_such_syscall"], "SCMP_ACT_ERRNO")]))
        assert f.skipped == ("no_such_syscall",)
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_ERRNO | 1
        text = pyrunc_logs.text
        assert "unknown seccomp syscall 'no_such_syscall' ignored" in text
        assert "linux.seccomp.syscalls[0].names[1]" in text

    def test_syscall_of_another_arch_is_known(self):
        # socketcall exists on i386 only: libseccomp takes it by name.
        f = compile_filter(profile(
            syscalls=[rule(["socketcall"], "SCMP_ACT_ERRNO")],
            architectures=["SCMP_ARCH_X86"]))
        assert f.skipped == ()
        assert run_bpf(f.bpf, 102, arch=AUDIT_ARCH_I386) == RET_ERRNO | 1


class TestFlags:
    def test_log_and_spec_allow(self):
        f = compile_filter(profile(flags=["SECCOMP_FILTER_FLAG_LOG",
                                          "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
        assert f.flags == sf.FLAG_LOG | sf.FLAG_SPEC_ALLOW

    def test_tsync_is_accepted_and_ignored(self):
        # The child is single-threaded; runc ignores it as well.
        f = compile_filter(profile(flags=["SECCOMP_FILTER_FLAG_TSYNC"]))
        assert f.flags == 0

    def test_wait_killable_recv_needs_libseccomp_2_6(self):
        if sf.native().ATTR_CTL_WAITKILL is not None:
            pytest.skip("this libseccomp supports it")
        with pytest.raises(ConfigError) as info:
            compile_filter(profile(
                flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
        assert "linux.seccomp.flags[0]" in str(info.value)

    def test_notify_adds_new_listener(self):
        f = compile_filter(profile(
            syscalls=[rule(["mkdir"], "SCMP_ACT_NOTIFY")],
            listenerPath="/run/agent.sock", listenerMetadata="m"))
        assert f.notify
        assert f.flags == sf.FLAG_NEW_LISTENER
        assert f.listener_path == "/run/agent.sock"
        assert f.listener_metadata == "m"
        assert run_bpf(f.bpf, NR["mkdir"]) == RET_USER_NOTIF


class TestErrorsNameTheField:
    @pytest.mark.parametrize("config, path", [
        ("allow", "linux.seccomp"),
        (profile("SCMP_ACT_BOGUS"), "linux.seccomp.defaultAction"),
        (profile(syscalls=[rule(["a"], "SCMP_ACT_ERRNO")] * 3 +
                 [rule(["mkdir"], "SCMP_ACT_NOPE")]),
         "linux.seccomp.syscalls[3].action"),
        (profile(syscalls=[{"names": ["mkdir"]}]),
         "linux.seccomp.syscalls[0].action"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO",
                                args=[arg(0, 1, "SCMP_CMP_EQ"),
                                      arg(1, 1, "SCMP_CMP_BAD")])]),
         "linux.seccomp.syscalls[0].args[1].op"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO",
                                args=[arg(6, 1, "SCMP_CMP_EQ")])]),
         "linux.seccomp.syscalls[0].args[0].index"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO",
                                args=[arg(0, -1, "SCMP_CMP_EQ")])]),
         "linux.seccomp.syscalls[0].args[0].value"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO",
                                args=[arg(0, 1, "SCMP_CMP_EQ", 1 << 64)])]),
         "linux.seccomp.syscalls[0].args[0].valueTwo"),
        (profile(syscalls=[rule(["mkdir", ""], "SCMP_ACT_ERRNO")]),
         "linux.seccomp.syscalls[0].names[1]"),
        (profile(syscalls=[rule([7], "SCMP_ACT_ERRNO")]),
         "linux.seccomp.syscalls[0].names[0]"),
        (profile(syscalls=["mkdir"]), "linux.seccomp.syscalls[0]"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ALLOW",
                                errnoRet=1)]),
         "linux.seccomp.syscalls[0].errnoRet"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_ERRNO",
                                errnoRet=True)]),
         "linux.seccomp.syscalls[0].errnoRet"),
        (profile(defaultErrnoRet=1), "linux.seccomp.defaultErrnoRet"),
        (profile(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
         "linux.seccomp.architectures[1]"),
        (profile(flags=["SECCOMP_FILTER_FLAG_BOGUS"]),
         "linux.seccomp.flags[0]"),
        (profile(listenerMetadata="m"), "linux.seccomp.listenerMetadata"),
        (profile(syscalls=[rule(["mkdir"], "SCMP_ACT_NOTIFY")]),
         "linux.seccomp.listenerPath"),
        (profile("SCMP_ACT_NOTIFY", listenerPath="/x"),
         "linux.seccomp.defaultAction"),
        (profile(syscalls=[rule(["sendmsg"], "SCMP_ACT_NOTIFY")],
                 listenerPath="/x"),
         "linux.seccomp.syscalls[0].names[0]"),
    ])
    def test_spec_errors(self, config, path):
        with pytest.raises(SpecError) as info:
            compile_filter(config)
        assert info.value.path == path
        assert str(info.value).startswith(path + ": ")

    def test_arch_this_libseccomp_lacks(self):
        with pytest.raises(ConfigError) as info:
            compile_filter(profile(architectures=["SCMP_ARCH_SH"]))
        assert str(info.value).startswith(
            "linux.seccomp.architectures[0]: SCMP_ARCH_SH is not supported")

class TestLaziness:
    def test_package_import_does_not_load_libseccomp(self):
        import subprocess
        import sys

        code = ("import sys, pyrunc.seccomp, pyrunc.process.plan; "
                "print('pyrunc._native.seccomp' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], check=True,
                             capture_output=True, text=True).stdout
        assert out.strip() == "False"
