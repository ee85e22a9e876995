"""Compile linux.seccomp into a BPF program with libseccomp.

``compile_filter(config)`` checks the whole object first, naming the
JSON path of anything wrong (``linux.seccomp.syscalls[3].action``), then
builds the filter the way runc does:

- seccomp_init(defaultAction), one seccomp_arch_add per architecture;
- for each name of each syscalls[] entry, one seccomp_rule_add_array.
  An entry whose action equals the default action is redundant and
  skipped (libseccomp refuses it). A name libseccomp does not know is
  skipped with a warning: the kernel may simply not have that syscall.
  Conditions go into one rule (all must match) unless two of them test
  the same argument; then, like runc, each becomes a rule of its own, so
  that any of them matches;
- the program is exported with seccomp_export_bpf, never written by
  hand, and the flags for seccomp(2) are computed here.

runc 1.1.5 also prepends a hand-assembled stub that answers ENOSYS for
syscalls newer than the profile; pyrunc does not (the default action
applies to them).
"""

from pyrunc import log as _log
from pyrunc.errors import ConfigError, SpecError

log = _log.get_logger(__name__)

# seccomp(2) flags (linux/seccomp.h).
FLAG_TSYNC = 1 << 0
FLAG_LOG = 1 << 1
FLAG_SPEC_ALLOW = 1 << 2
FLAG_NEW_LISTENER = 1 << 3
FLAG_WAIT_KILLABLE_RECV = 1 << 5

ACTIONS = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)

# Actions that take errnoRet; the others must not have it.
ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)

# runtime-spec names -> libseccomp's (seccomp_arch_resolve_name).
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k",
    "SCMP_ARCH_SH": "sh",
    "SCMP_ARCH_SHEB": "sheb",
}

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

# Syscalls the executor makes between loading a notify filter and
# handing the listener fd to the parent: a notification there could
# never be answered, as the agent has no fd yet.
NOTIFY_FORBIDDEN = ("sendmsg",)

MAX_ERRNO = 0xFFFF          # SECCOMP_RET_DATA is 16 bits
MAX_U64 = (1 << 64) - 1
MAX_ARG_INDEX = 5           # seccomp_data holds six arguments


class Filter:
    """A compiled filter, ready for the launch plan.

    bpf: struct sock_filter[] as exported by libseccomp.
    flags: the flags argument of seccomp(SECCOMP_SET_MODE_FILTER).
    notify: a rule uses SCMP_ACT_NOTIFY; flags has NEW_LISTENER and the
        listener fd goes to listener_path.
    skipped: syscall names libseccomp did not know.

    Plain classes here: importing dataclasses costs a container start
    about 7 ms.
    """

    __slots__ = ("bpf", "flags", "notify", "listener_path",
                 "listener_metadata", "skipped")

    def __init__(self, bpf, flags, notify=False, listener_path="",
                 listener_metadata="", skipped=()):
        self.bpf = bpf
        self.flags = flags
        self.notify = notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.skipped = skipped


class Arg:
    __slots__ = ("index", "value", "value_two", "op")

    def __init__(self, index, value, value_two, op):
        self.index = index
        self.value = value
        self.value_two = value_two
        self.op = op


class Rule:
    __slots__ = ("where", "names", "action", "errno_ret", "args")

    def __init__(self, where, names, action, errno_ret, args=None):
        self.where = where          # linux.seccomp.syscalls[i]
        self.names = names
        self.action = action
        self.errno_ret = errno_ret
        self.args = [] if args is None else args


class Profile:
    """linux.seccomp, checked but not yet given to libseccomp."""

    __slots__ = ("default_action", "default_errno", "arches", "flags",
                 "listener_path", "listener_metadata", "rules")

    def __init__(self, default_action, default_errno, arches, flags,
                 listener_path, listener_metadata, rules):
        self.default_action = default_action
        self.default_errno = default_errno
        self.arches = arches        # (where, spec name)
        self.flags = flags          # (where, spec name)
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.rules = rules

    @property
    def notify(self):
        return any(r.action == "SCMP_ACT_NOTIFY" for r in self.rules)


def compile_filter(config, where="linux.seccomp"):
    """Return the Filter for a linux.seccomp object, or None.

    None means no filter: no object, or, as with runc, neither a
    defaultAction nor syscalls. Raises SpecError naming the field for a
    malformed object and ConfigError for what this host cannot do.
    """
    profile = parse(config, where)
    if profile is None:
        return None
    return build(profile, where)


# --- checking the JSON


def parse(config, where="linux.seccomp"):
    """Check linux.seccomp; return a Profile, or None for no filter."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise SpecError(where, "must be an object")
    syscalls = config.get("syscalls")
    if syscalls is None:
        syscalls = []
    if not isinstance(syscalls, list):
        raise SpecError(f"{where}.syscalls", "must be an array")
    default = config.get("defaultAction")
    if not default and not syscalls:
        return None
    default = _action(default, f"{where}.defaultAction")
    if default == "SCMP_ACT_NOTIFY":
        # Everything, the hand-over of the listener fd included, would
        # wait for an agent that has no fd yet.
        raise SpecError(f"{where}.defaultAction",
                        "SCMP_ACT_NOTIFY cannot be used as default action")
    default_errno = _errno_ret(config.get("defaultErrnoRet"), default,
                               f"{where}.defaultErrnoRet")
    arches = []
    for index, name in enumerate(_list(config, "architectures", where)):
        here = f"{where}.architectures[{index}]"
        if name not in ARCHES:
            raise SpecError(here, f"unknown architecture {name!r}")
        arches.append((here, name))
    flags = []
    for index, name in enumerate(_list(config, "flags", where)):
        here = f"{where}.flags[{index}]"
        if name not in FLAGS:
            raise SpecError(here, f"unknown seccomp flag {name!r}")
        flags.append((here, name))
    listener_path = _string(config, "listenerPath", where)
    listener_metadata = _string(config, "listenerMetadata", where)
    if listener_metadata and not listener_path:
        raise SpecError(f"{where}.listenerMetadata",
                        "must not be set without listenerPath")
    rules = [_rule(entry, f"{where}.syscalls[{index}]")
             for index, entry in enumerate(syscalls)]
    profile = Profile(default, default_errno, arches, flags, listener_path,
                      listener_metadata, rules)
    if profile.notify and not listener_path:
        raise SpecError(f"{where}.listenerPath",
                        "must be set when SCMP_ACT_NOTIFY is used")
    return profile


def _rule(entry, where):
    if not isinstance(entry, dict):
        raise SpecError(where, "must be an object")
    names = entry.get("names")
    if names is None:
        names = []
    if not isinstance(names, list):
        raise SpecError(f"{where}.names", "must be an array of strings")
    action = _action(entry.get("action"), f"{where}.action")
    for index, name in enumerate(names):
        here = f"{where}.names[{index}]"
        if not isinstance(name, str):
            raise SpecError(here, "must be a string")
        if not name:
            raise SpecError(here, "empty string is not a valid syscall")
        if action == "SCMP_ACT_NOTIFY" and name in NOTIFY_FORBIDDEN:
            raise SpecError(here, f"SCMP_ACT_NOTIFY cannot be used for "
                            f"{name}: the runtime passes the listener fd "
                            "with it")
    errno_ret = _errno_ret(entry.get("errnoRet"), action,
                           f"{where}.errnoRet")
    args = []
    raw_args = entry.get("args")
    if raw_args is None:
        raw_args = []
    if not isinstance(raw_args, list):
        raise SpecError(f"{where}.args", "must be an array")
    for index, raw in enumerate(raw_args):
        args.append(_arg(raw, f"{where}.args[{index}]"))
    return Rule(where, names, action, errno_ret, args)


def _arg(raw, where):
    if not isinstance(raw, dict):
        raise SpecError(where, "must be an object")
    index = _uint(raw.get("index"), f"{where}.index", MAX_ARG_INDEX)
    value = _uint(raw.get("value"), f"{where}.value", MAX_U64)
    value_two = raw.get("valueTwo")
    if value_two is None:
        value_two = 0
    value_two = _uint(value_two, f"{where}.valueTwo", MAX_U64)
    op = raw.get("op")
    if op not in OPERATORS:
        raise SpecError(f"{where}.op", f"unknown operator {op!r}")
    return Arg(index, value, value_two, op)


def _action(name, where):
    if name not in ACTIONS:
        if name is None:
            raise SpecError(where, "must be set")
        raise SpecError(where, f"unknown action {name!r}")
    return name


def _errno_ret(value, action, where):
    if value is None:
        return None
    if action not in ERRNO_ACTIONS:
        # The runtime-spec: an action without an errno must fail.
        raise SpecError(where, f"{action} does not take an errno")
    return _uint(value, where, MAX_ERRNO)


def _uint(value, where, limit):
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= limit:
        raise SpecError(where, f"must be an integer from 0 to {limit}")
    return value


def _list(config, key, where):
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or \
            not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}.{key}", "must be an array of strings")
    return value


def _string(config, key, where):
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SpecError(f"{where}.{key}", "must be a string")
    return value


# --- building with libseccomp


def native():
    """pyrunc._native.seccomp, imported (and libseccomp loaded) on use."""
    from pyrunc._native import seccomp

    return seccomp


def action_value(S, name, errno_ret):
    """The libseccomp action for a spec action name."""
    if name == "SCMP_ACT_ERRNO":
        return S.act_errno(1 if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return S.act_trace(1 if errno_ret is None else errno_ret)
    return {
        # runc kills the thread for SCMP_ACT_KILL, as libseccomp does.
        "SCMP_ACT_KILL": S.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": S.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": S.ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": S.ACT_TRAP,
        "SCMP_ACT_ALLOW": S.ACT_ALLOW,
        "SCMP_ACT_LOG": S.ACT_LOG,
        "SCMP_ACT_NOTIFY": S.ACT_NOTIFY,
    }[name]


def build(profile, where="linux.seccomp"):
    """Give a checked Profile to libseccomp; return the Filter."""
    S = native()
    default = action_value(S, profile.default_action, profile.default_errno)
    ctx = S.Filter(default)
    for here, name in profile.arches:
        token = S.resolve_arch(ARCHES[name])
        if token is None:
            raise ConfigError(f"{here}: {name} is not supported by "
                              f"libseccomp {version_text(S)}")
        try:
            ctx.add_arch(token)
        except OSError as err:
            raise ConfigError(f"{here}: add {name}: {err.strerror}") \
                from None
    flags = filter_flags(S, ctx, profile)
    if profile.notify:
        if S.api_level() < 5:
            raise ConfigError(
                f"{where}: SCMP_ACT_NOTIFY needs libseccomp API level 5 "
                f"(libseccomp >= 2.5 and Linux >= 5.0), got "
                f"{S.api_level()}")
        flags |= FLAG_NEW_LISTENER
    skipped = []
    for rule in profile.rules:
        skipped.extend(add_rule(S, ctx, rule, default))
    try:
        bpf = ctx.export()
    except OSError as err:
        raise ConfigError(f"{where}: export filter: {err.strerror}") \
            from None
    return Filter(bpf=bpf, flags=flags, notify=profile.notify,
                  listener_path=profile.listener_path,
                  listener_metadata=profile.listener_metadata,
                  skipped=tuple(skipped))


def filter_flags(S, ctx, profile):
    """seccomp(2) flags; each is also set on the libseccomp filter,
    which refuses one that this kernel (API level) lacks."""
    flags = 0
    for here, name in profile.flags:
        if name == "SECCOMP_FILTER_FLAG_TSYNC":
            # The child is single-threaded when it loads the filter;
            # runc ignores the flag too. With NEW_LISTENER the kernel
            # would even refuse it.
            continue
        attr = {
            "SECCOMP_FILTER_FLAG_LOG": S.ATTR_CTL_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW": S.ATTR_CTL_SSB,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": S.ATTR_CTL_WAITKILL,
        }[name]
        if attr is None:
            raise ConfigError(f"{here}: {name} is not supported by "
                              f"libseccomp {version_text(S)}")
        try:
            ctx.set_attr(attr, 1)
        except OSError:
            raise ConfigError(f"{here}: {name} is not supported by this "
                              "kernel") from None
        if name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" and \
                not profile.notify:
            # The kernel accepts it only with a listener.
            continue
        flags |= FLAGS[name]
    return flags


def add_rule(S, ctx, rule, default):
    """Add one syscalls[] entry; return the names that were skipped."""
    action = action_value(S, rule.action, rule.errno_ret)
    if action == default:
        return []
    skipped = []
    conditions = [(a.index, getattr(S, a.op[len("SCMP_"):]), a.value,
                   a.value_two) for a in rule.args]
    indexes = [a.index for a in rule.args]
    if len(set(indexes)) == len(indexes):
        groups = [conditions]
    else:
        # Two tests of one argument cannot be ANDed by libseccomp: runc
        # adds each as its own rule.
        groups = [[c] for c in conditions]
    for index, name in enumerate(rule.names):
        nr = S.resolve_syscall(name)
        if nr is None:
            log.warning("%s.names[%d]: unknown seccomp syscall %r ignored",
                        rule.where, index, name)
            skipped.append(name)
            continue
        for group in groups:
            try:
                ctx.add_rule(action, nr, group)
            except OSError as err:
                raise ConfigError(
                    f"{rule.where}: add rule for syscall {name}: "
                    f"{err.strerror}") from None
    return skipped


def version_text(S):
    return ".".join(str(n) for n in S.version())


def supported_flags():
    """The flags this libseccomp and kernel can apply (for `features`)."""
    S = native()
    ctx = S.Filter(S.ACT_ALLOW)
    names = ["SECCOMP_FILTER_FLAG_TSYNC"]
    for name, attr in (("SECCOMP_FILTER_FLAG_LOG", S.ATTR_CTL_LOG),
                       ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", S.ATTR_CTL_SSB),
                       ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                        S.ATTR_CTL_WAITKILL)):
        if attr is None:
            continue
        try:
            ctx.set_attr(attr, 1)
        except OSError:
            continue
        names.append(name)
    return names


def supported_arches():
    """The spec arch names this libseccomp knows (for `features`)."""
    S = native()
    return sorted(name for name, lib in ARCHES.items()
                  if S.resolve_arch(lib) is not None)


# --- asking a compiled filter what it does with one syscall

# struct seccomp_data: nr, arch, instruction_pointer, args[6].
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
EXECVEAT_NR = {"x86_64": 322, "aarch64": 281}
RET_ACTION_FULL = 0xFFFF0000
RET_ALLOW = 0x7FFF0000
RET_LOG = 0x7FFC0000


def verdict(bpf, arch, nr, args=()):
    """Run the classic BPF program bpf on one seccomp_data; return its
    SECCOMP_RET_* value.

    Only the instructions libseccomp emits are known: loads of the data
    (absolute, 32 bits), conditional jumps against constants, ALU AND
    and returns. Anything else raises ValueError.
    """
    import struct

    args = list(args) + [0] * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    program = [struct.unpack_from("=HBBI", bpf, i)
               for i in range(0, len(bpf), 8)]
    acc = 0
    pc = 0
    while pc < len(program):
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:            # BPF_LD | BPF_W | BPF_ABS
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:          # BPF_ALU | BPF_AND | BPF_K
            acc &= k
        elif code == 0x05:          # BPF_JMP | BPF_JA
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k,
                     0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:          # BPF_RET | BPF_K
            return k
        else:
            raise ValueError(f"unknown BPF instruction {code:#x}")
    raise ValueError("BPF program ran off its end")


def allows_execveat(seccomp_filter, fd, flags):
    """Whether the filter lets execveat(fd, "", ..., flags) through.

    The executor execs through the pyrunc-dmz memfd with execveat after
    the filter is loaded; a profile that denies execveat gets the same
    memfd by its /proc/self/fd path instead.
    """
    import platform

    machine = platform.machine()
    if machine not in AUDIT_ARCH:
        return False
    try:
        ret = verdict(seccomp_filter.bpf, AUDIT_ARCH[machine],
                      EXECVEAT_NR[machine], (fd, 0, 0, 0, flags))
    except ValueError:
        return False
    return ret & RET_ACTION_FULL in (RET_ALLOW, RET_LOG)
