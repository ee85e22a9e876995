"""Hypothesis strategies for hostile config.json files and CLI arguments.

A generated case starts from the busybox bundle's config and applies a
few mutations: a field set to a value of the wrong type, a huge or
negative number, a bad enum, a hostile path, a field removed, or a whole
section (mounts, namespaces, devices, rlimits, capabilities, seccomp,
resources, ...) replaced by one built to be almost right. Rarely the
whole document is garbage.

``live=True`` builds cases the fuzz tests run through the real runtime,
as root, on this host. It leaves out what would reach the host itself
rather than test pyrunc: joining the host's namespaces by path, absolute
cgroup paths outside the tests' prefix, hooks that run host programs,
and container processes other than a few harmless shell commands.
"""

import copy
import functools
import json
import time
from dataclasses import dataclass

from hypothesis import strategies as st

# What the container prints when it ran as configured.
OK_WORD = "fuzz-ok"
OK_ARGS = ["sh", "-c", f"echo {OK_WORD}"]

# Symlinks the live tests plant in the rootfs (see plant_symlinks): a
# path through them must never lead out of it.
ESCAPE_LINKS = ("escape", "abs", "loop", "dotdot", "procsys")

HUGE_INTS = (
    -(1 << 64), -(1 << 63) - 1, -(1 << 63), -(1 << 32), -(1 << 31), -2,
    -1, 0, 1, 2, 7, 255, 256, 4095, 65535, 65536, (1 << 31) - 1, 1 << 31,
    (1 << 32) - 1, 1 << 32, (1 << 53) + 1, (1 << 63) - 1, 1 << 63,
    (1 << 64) - 1, 1 << 64, 10 ** 30,
)

BAD_STRINGS = (
    "", " ", ".", "..", "../../..", "/../../../../etc", "\x00", "a\x00b",
    "x" * 300, "x" * 5000, "\n", "\t-1", "-rf", "$(reboot)", "%s%n",
    "\u00e9t\u00e9", "\ud800", "\udcff", "/proc/self/exe", "null",
    "-1", "1e3", "0x10", "  42 ", "true",
)

HOSTILE_PATHS = (
    "/", "", ".", "..", "/..", "/../../../tmp/pyrunc-fuzz-x",
    "../../../../tmp/pyrunc-fuzz-x", "relative/path", "//double//slash",
    "/tmp/./../tmp", "/escape", "/escape/x", "/escape/x/y", "/abs/x",
    "/abs", "/loop", "/loop/x", "/dotdot/dotdot/dotdot/x",
    "/procsys/kernel/x", "/proc", "/proc/sys", "/proc/self",
    "/proc/sys/kernel/hostname", "/proc/1/root", "/sys", "/sys/kernel",
    "/dev", "/dev/null", "/dev/../../etc", "/etc/passwd", "/bin/busybox",
    "/bin/sh/x", "/a\x00b", "/" + "a" * 300, "/" + "a/" * 2100, "/tmp",
    "/mnt/\u00e9", "/\ud800", "/x\n/y",
)

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user",
                   "cgroup", "time")
BAD_NS_PATHS = ("/nonexistent/ns", "", "relative", "/etc/passwd", "/dev/null",
                "/proc", "/\x00", "/proc/self/ns/../../../etc")
# Only in-process: these name real namespaces of the host.
HOST_NS_PATHS = ("/proc/1/ns/net", "/proc/self/ns/user", "/proc/1/ns/mnt",
                 "/proc/self/ns/pid", "/proc/1/ns/time")

MOUNT_TYPES = ("bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue",
               "cgroup", "cgroup2", "none", "", "ext4", "overlay", "nfs",
               "ramfs", "rbind", "securityfs", "Bind")
MOUNT_OPTIONS = (
    "rbind", "bind", "ro", "rw", "nosuid", "nodev", "noexec", "suid",
    "mode=755", "mode=99999", "size=-1", "size=65536k", "uid=abc",
    "gid=-1", "idmap", "ridmap", "rro", "rrw", "rnoexec", "nosymfollow",
    "shared", "rshared", "private", "rslave", "unbindable", "tmpcopyup",
    "strictatime", "relatime", "norelatime", "nodiratime", "bogus", "",
    "=", "a=b=c", "x-mount.mkdir", "context=\"x\"", "newinstance",
    "ptmxmode=0666", "remount", "move", "recursive", "loud", "silent",
)
BIND_SOURCES = ("/", "/tmp", "/etc/hostname", "/nonexistent", "/dev/null",
                "/proc", "/proc/self", "/sys", "rootfs/bin", "rootfs/../..",
                "rootfs/escape", "config.json", "", "relative", "/\x00")

CAP_NAMES = ("CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE",
             "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID",
             "CAP_FOO", "", "cap_kill", "KILL", "CAP_", "CAP_LAST_CAP",
             "CAP_CHECKPOINT_RESTORE", "CAP_BPF", "CAP_PERFMON")
RLIMIT_NAMES = ("RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_CORE",
                "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_RTTIME",
                "RLIMIT_FOO", "", "nofile", "RLIMIT_nofile")
SECCOMP_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                   "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                   "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
                   "SCMP_ACT_NOTIFY", "SCMP_ACT_FOO", "", "allow")
SECCOMP_ARCHES = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                  "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_FOO", "")
SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                 "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                 "SECCOMP_FILTER_FLAG_FOO", "")
SECCOMP_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
               "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
               "SCMP_CMP_FOO", "")
# Syscalls a denied or killed call of which the shell survives, plus
# names no kernel has.
SYSCALL_NAMES = ("getcwd", "mkdir", "personality", "uname", "chmod",
                 "reboot", "kexec_load", "sethostname", "write", "getpid",
                 "nosuchsyscall", "", "SYS_write", "execve")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared",
                "rshared", "unbindable", "runbindable", "", "bogus")
DEVICE_TYPES = ("c", "b", "u", "p", "a", "x", "", "cc")
SIGNALS = ("KILL", "SIGKILL", "9", "0", "-1", "65", "99999", "SIGFOO",
           "kill", "SIG", "", "TERM ", "1.5", "SIGRTMIN+99", "SIGRTMAX",
           "RTMIN+1", "-9", "0x9", "SIGCONT", "CONT", "18", "+18")
BAD_IDS = ("", ".", "..", "../x", "a/b", "/abs", "-x", "--help", "a b",
           "x" * 1024, "\u00e9", "a\nb", "a:b", "a\x01b", "*", "~",
           "state.json", "-", "ok-id", "a.b_c-D")


# How many cases ran, and for how long; conftest.py prints them.
COUNTS = {"in-process": 0, "end-to-end": 0, "cli": 0}
SECONDS = {"in-process": 0.0, "end-to-end": 0.0, "cli": 0.0}


class Clock:
    """Counts one case of a kind and adds its duration to SECONDS."""

    def __init__(self, kind):
        self.kind = kind

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        COUNTS[self.kind] += 1
        SECONDS[self.kind] += time.monotonic() - self.start


# --- scalars


def ints():
    return st.one_of(st.sampled_from(HUGE_INTS),
                     st.integers(min_value=-(1 << 70), max_value=1 << 70))


def bad_strings():
    return st.one_of(st.sampled_from(BAD_STRINGS), st.text(max_size=12))


def scalars():
    """Any JSON scalar, favouring values that break parsers."""
    return st.one_of(
        st.none(), st.booleans(), ints(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from((0.5, -0.0, 1e308, 1.0, 2.0 ** 64)),
        bad_strings())


def junk():
    """A small JSON value of any shape."""
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(("a", "type", "path", "")),
                            inner, max_size=3)),
        max_leaves=5)


def maybe(strategy, other=None):
    """strategy, sometimes junk of any type instead."""
    return st.one_of(strategy, strategy, strategy,
                     junk() if other is None else other)


def paths():
    return st.one_of(st.sampled_from(HOSTILE_PATHS),
                     st.text(max_size=10).map(lambda t: "/" + t))


def opt_fields(**fields):
    """An object with a random subset of the given fields."""
    return _opt_fields(tuple(sorted(fields.items())))


@st.composite
def _opt_fields(draw, fields):
    out = {}
    for name, strategy in fields:
        if draw(st.booleans()):
            out[name] = draw(strategy)
    return out


def lists(strategy, max_size=4):
    return st.lists(strategy, max_size=max_size)


# --- sections


def mounts(live):
    sources = st.sampled_from(BIND_SOURCES)
    mount = opt_fields(
        destination=maybe(paths()),
        type=maybe(st.sampled_from(MOUNT_TYPES)),
        source=maybe(st.one_of(sources, paths())),
        options=maybe(lists(maybe(st.sampled_from(MOUNT_OPTIONS)), 6)),
        uidMappings=maybe(lists(id_mapping(), 2)),
        gidMappings=maybe(lists(id_mapping(), 2)),
    )
    return lists(maybe(mount), 5)


def id_mapping():
    small = st.integers(min_value=0, max_value=70000)
    return opt_fields(containerID=maybe(small, ints()),
                      hostID=maybe(small, ints()),
                      size=maybe(small, ints()))


def namespaces(live):
    ns_paths = BAD_NS_PATHS if live else BAD_NS_PATHS + HOST_NS_PATHS
    ns = opt_fields(
        type=maybe(st.sampled_from(NAMESPACE_TYPES + ("net", "", "PID"))),
        path=maybe(st.sampled_from(ns_paths)),
    )
    typical = st.lists(st.sampled_from(NAMESPACE_TYPES), unique=True).map(
        lambda types: [{"type": t} for t in types])
    return st.one_of(typical, lists(maybe(ns), 9))


def devices():
    dev = opt_fields(
        path=maybe(st.one_of(st.sampled_from(("/dev/fuzz", "/dev/null",
                                              "/dev/../escape", "/dev",
                                              "/dev/pts/x")), paths())),
        type=maybe(st.sampled_from(DEVICE_TYPES)),
        major=maybe(ints()), minor=maybe(ints()),
        fileMode=maybe(ints()), uid=maybe(ints()), gid=maybe(ints()))
    return lists(maybe(dev), 3)


def rlimits():
    rl = opt_fields(type=maybe(st.sampled_from(RLIMIT_NAMES)),
                    soft=maybe(ints()), hard=maybe(ints()))
    return lists(maybe(rl), 3)


def capabilities():
    names = lists(maybe(st.sampled_from(CAP_NAMES)), 4)
    return opt_fields(bounding=maybe(names), effective=maybe(names),
                      permitted=maybe(names), inheritable=maybe(names),
                      ambient=maybe(names))


def seccomp():
    arg = opt_fields(index=maybe(ints()), value=maybe(ints()),
                     valueTwo=maybe(ints()),
                     op=maybe(st.sampled_from(SECCOMP_OPS)))
    rule = opt_fields(
        names=maybe(lists(maybe(st.sampled_from(SYSCALL_NAMES)), 3)),
        action=maybe(st.sampled_from(SECCOMP_ACTIONS)),
        errnoRet=maybe(ints()), args=maybe(lists(maybe(arg), 3)))
    return opt_fields(
        defaultAction=maybe(st.sampled_from(SECCOMP_ACTIONS)),
        defaultErrnoRet=maybe(ints()),
        architectures=maybe(lists(st.sampled_from(SECCOMP_ARCHES), 3)),
        flags=maybe(lists(st.sampled_from(SECCOMP_FLAGS), 3)),
        listenerPath=maybe(st.sampled_from(("/nonexistent.sock", "",
                                            "rel", "/dev/null"))),
        listenerMetadata=maybe(bad_strings()),
        syscalls=maybe(lists(maybe(rule), 4)))


def resources():
    num = maybe(ints())
    dev_rule = opt_fields(allow=maybe(st.booleans()),
                          type=maybe(st.sampled_from(("a", "b", "c", "x"))),
                          major=num, minor=num,
                          access=maybe(st.sampled_from(("rwm", "r", "",
                                                        "rwmx", "q"))))
    throttle = opt_fields(major=num, minor=num, rate=num)
    return opt_fields(
        devices=maybe(lists(maybe(dev_rule), 3)),
        memory=maybe(opt_fields(limit=num, reservation=num, swap=num,
                                kernel=num, kernelTCP=num, swappiness=num,
                                disableOOMKiller=maybe(st.booleans()),
                                useHierarchy=maybe(st.booleans()))),
        cpu=maybe(opt_fields(
            shares=num, quota=num, period=num, realtimeRuntime=num,
            realtimePeriod=num, idle=num, burst=num,
            cpus=maybe(st.sampled_from(("0", "0-1", "0-1000", "", "x",
                                        "1,0", "-1"))),
            mems=maybe(st.sampled_from(("0", "", "0-99", "x"))))),
        pids=maybe(opt_fields(limit=num)),
        blockIO=maybe(opt_fields(
            weight=num, leafWeight=num,
            weightDevice=maybe(lists(opt_fields(
                major=num, minor=num, weight=num, leafWeight=num), 2)),
            throttleReadBpsDevice=maybe(lists(throttle, 2)),
            throttleWriteIOPSDevice=maybe(lists(throttle, 2)))),
        hugepageLimits=maybe(lists(opt_fields(
            pageSize=maybe(st.sampled_from(("2MB", "1GB", "3KB", ""))),
            limit=num), 2)),
        network=maybe(opt_fields(classID=num, priorities=maybe(lists(
            opt_fields(name=maybe(bad_strings()), priority=num), 2)))),
        rdma=maybe(st.dictionaries(
            bad_strings(), opt_fields(hcaHandles=num, hcaObjects=num),
            max_size=2)),
        unified=maybe(st.dictionaries(
            st.sampled_from(("memory.max", "pids.max", "../x", "")),
            bad_strings(), max_size=2)),
    )


def cgroups_paths(live, prefix):
    safe = (f"{prefix}", f"{prefix}/a/../b", f"{prefix}/../../{prefix}z",
            f"../../../{prefix}y", f"{prefix}/./x//y", f"{prefix}:a:b",
            f"/{prefix}abs", f"{prefix}/" + "a" * 300, f"{prefix}\x00")
    if live:
        return st.sampled_from(safe)
    return st.one_of(st.sampled_from(safe + ("/", "", "..", "/sys/fs/cgroup",
                                             "system.slice:a:b")), junk())


def sysctls(live):
    keys = ["kernel.shmmax", "fs.mqueue.msg_max", "net.ipv4.ip_forward",
            "kernel.domainname", "kernel.hostname", "kernel.core_pattern",
            "vm.swappiness", "", "net", "net.", "net/ipv4/ip_forward",
            "kernel.msgmax", "net.ipv4.conf.all.forwarding"]
    if not live:
        # A net.* prefix must not carry a write out of /proc/sys/net.
        keys += ["net.ipv4/../../kernel/core_pattern",
                 "net/../kernel/core_pattern", "net.a..b",
                 "fs.mqueue/../../kernel/shmmax", "net.\x00"]
    return st.dictionaries(st.sampled_from(keys),
                           maybe(bad_strings(), ints()), max_size=3)


def hooks(live):
    if live:
        hook_paths = ("/bin/true", "/bin/false", "/nonexistent", "rel", "")
    else:
        hook_paths = ("/bin/true", "/nonexistent", "rel", "", "/\x00")
    hook = opt_fields(path=maybe(st.sampled_from(hook_paths)),
                      args=maybe(lists(bad_strings(), 2)),
                      env=maybe(lists(bad_strings(), 2)),
                      timeout=maybe(ints()))
    names = ("prestart", "createRuntime", "createContainer",
             "startContainer", "poststart", "poststop", "bogus")
    return st.dictionaries(st.sampled_from(names), maybe(lists(hook, 2)),
                           max_size=2)


def process_args(live):
    choices = (["/nonexistent"], [""], ["../../bin/sh"], ["/bin"],
               ["/etc/passwd"], ["sh", "-c", "exit 3"],
               ["sh", "-c", "kill -9 $$"], ["sh", "-c", f"echo {OK_WORD}"],
               ["/bin/sh", "-c", f"echo {OK_WORD}"], ["escape/x"],
               ["/abs/x"], ["\u00e9"], ["sh\x00"], [])
    if live:
        return st.sampled_from(choices)
    return st.one_of(st.sampled_from(choices), lists(bad_strings()))


def user():
    return opt_fields(uid=maybe(ints()), gid=maybe(ints()),
                      umask=maybe(ints()),
                      additionalGids=maybe(lists(ints(), 3)),
                      username=maybe(bad_strings()))


def time_offsets():
    offset = opt_fields(secs=maybe(ints()), nanosecs=maybe(ints()))
    return st.dictionaries(
        st.sampled_from(("monotonic", "boottime", "realtime", "")),
        maybe(offset), max_size=2)


# --- mutations of the base config


@dataclass
class Case:
    """A generated config.json and what running it should print."""

    data: bytes             # the file
    args_ok: bool           # process.args is still OK_ARGS
    what: list              # a description of each mutation, for reports

    def __repr__(self):
        return f"Case({'; '.join(self.what)})"


def base_config(config, prefix):
    """The busybox config, made quick to run and given a cgroupsPath."""
    config = copy.deepcopy(config)
    config["process"]["args"] = list(OK_ARGS)
    config.setdefault("linux", {})["cgroupsPath"] = prefix
    return config


# Where a generic mutation may land: dotted paths in the config.
FIELDS = (
    "ociVersion", "root", "root.path", "root.readonly", "process",
    "process.terminal", "process.consoleSize",
    "process.consoleSize.height", "process.user", "process.user.uid",
    "process.user.gid", "process.user.umask", "process.user.additionalGids",
    "process.args", "process.env", "process.cwd", "process.capabilities",
    "process.capabilities.bounding", "process.capabilities.ambient",
    "process.rlimits", "process.noNewPrivileges", "process.apparmorProfile",
    "process.oomScoreAdj", "process.selinuxLabel", "hostname",
    "domainname", "mounts", "hooks", "annotations", "linux",
    "linux.uidMappings", "linux.gidMappings", "linux.sysctl",
    "linux.resources", "linux.resources.memory",
    "linux.resources.memory.limit", "linux.resources.cpu",
    "linux.resources.cpu.shares", "linux.resources.pids",
    "linux.resources.devices", "linux.cgroupsPath", "linux.namespaces",
    "linux.devices", "linux.seccomp", "linux.rootfsPropagation",
    "linux.maskedPaths", "linux.readonlyPaths", "linux.mountLabel",
    "linux.intelRdt", "linux.personality", "linux.timeOffsets",
)


def set_path(config, dotted, value):
    """Set config[a][b]... = value, making objects on the way."""
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def del_path(config, dotted):
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return
    node.pop(keys[-1], None)


@functools.lru_cache(maxsize=None)
def sections(live, prefix):
    """(dotted path, strategy) of the domain-specific replacements."""
    return (
        ("mounts", mounts(live)),
        ("linux.namespaces", namespaces(live)),
        ("linux.devices", devices()),
        ("process.rlimits", rlimits()),
        ("process.capabilities", capabilities()),
        ("linux.seccomp", seccomp()),
        ("linux.resources", resources()),
        ("linux.cgroupsPath", cgroups_paths(live, prefix)),
        ("linux.sysctl", sysctls(live)),
        ("hooks", hooks(live)),
        ("process.args", process_args(live)),
        ("process.user", user()),
        ("process.cwd", paths()),
        ("process.env", lists(maybe(st.sampled_from(
            ("A=b", "=x", "novalue", "PATH=", "A=\x00", "é=é", "")),
            bad_strings()))),
        ("linux.uidMappings", lists(id_mapping(), 3)),
        ("linux.gidMappings", lists(id_mapping(), 3)),
        ("linux.maskedPaths", lists(paths())),
        ("linux.readonlyPaths", lists(paths())),
        ("linux.rootfsPropagation", st.sampled_from(PROPAGATIONS)),
        ("linux.timeOffsets", time_offsets()),
        ("root.path", st.sampled_from(("rootfs", "rootfs/", "/", "",
                                       "rootfs/escape", "rootfs/abs",
                                       "rootfs/bin/sh", "nonexistent",
                                       "rootfs/../rootfs", "rootfs/loop"))),
        ("hostname", maybe(bad_strings())),
        ("process.oomScoreAdj", ints()),
        ("process.consoleSize", opt_fields(height=maybe(ints()),
                                           width=maybe(ints()))),
        ("linux.personality", opt_fields(
            domain=maybe(st.sampled_from(("LINUX", "LINUX32", "BOGUS"))),
            flags=maybe(lists(bad_strings(), 2)))),
    )


@st.composite
def mutation(draw, live, prefix):
    """One mutation: (description, function applying it to a config)."""
    kind = draw(st.sampled_from(("section", "section", "section", "set",
                                 "delete")))
    if kind == "section":
        dotted, strategy = draw(st.sampled_from(sections(live, prefix)))
        value = draw(strategy)
        return f"{dotted}={value!r:.200}", dotted, value
    dotted = draw(st.sampled_from(FIELDS))
    if kind == "delete":
        return f"del {dotted}", dotted, DELETE
    value = draw(junk())
    return f"{dotted}={value!r:.200}", dotted, value


DELETE = object()


def _apply(config, dotted, value, live):
    if live and dotted == "process.args" and not isinstance(value, list):
        value = ["/nonexistent"]
    if live and dotted == "linux.cgroupsPath" and isinstance(value, str) \
            and value.startswith("/") and "pyrunc-test-" not in value:
        value = "relative"
    if live and dotted in ("hooks", "linux.namespaces") and not (
            value is DELETE or isinstance(value, (dict, list))):
        value = DELETE
    if value is DELETE:
        del_path(config, dotted)
    else:
        set_path(config, dotted, value)


@st.composite
def configs(draw, base, prefix, live=False):
    """A Case: base (a parsed config) with one to four mutations."""
    if not live and draw(st.integers(0, 49)) == 0:
        data = draw(st.one_of(
            st.binary(max_size=40),
            st.sampled_from((b"", b"[]", b"null", b"{", b"\xff\xfe",
                             b"{\"root\": NaN}", b"[" * 5000,
                             b"{\"a\":1, \"a\":2}", b"\"str\"", b"1e999"))))
        return Case(data, False, ["raw bytes"])
    config = base_config(base, prefix)
    what = []
    for _ in range(draw(st.integers(1, 4))):
        desc, dotted, value = draw(mutation(live, prefix))
        what.append(desc)
        if live and not _live_safe(dotted, value):
            continue
        if value is not DELETE:
            value = copy.deepcopy(value)
        _apply(config, dotted, value, live)
    args_ok = isinstance(config.get("process"), dict) and \
        config["process"].get("args") == OK_ARGS
    try:
        data = json.dumps(config, indent=1).encode("utf-8", "surrogatepass")
    except (ValueError, UnicodeEncodeError):
        data = json.dumps(config, ensure_ascii=True).encode()
    return Case(data, args_ok, what)


def _live_safe(dotted, value):
    """Whether a generic mutation may run on the host (see the docstring)."""
    # A junk process or linux object could name host namespaces or
    # programs only through the sections above, which live mode tames;
    # a junk value replacing either is refused by the loader anyway.
    if dotted in ("process", "linux") and isinstance(value, dict):
        return False
    return True


# --- command lines


def cli_commands():
    """A hostile argv for one pyrunc command (without --root)."""
    # An argv word can hold neither NUL nor a lone surrogate.
    chars = st.characters(blacklist_categories=("Cs",),
                          blacklist_characters="\x00")
    ids = st.one_of(st.sampled_from(BAD_IDS),
                    st.text(alphabet=chars, max_size=8))
    flags = st.sampled_from(("--bogus", "-Z", "--force=maybe", "--all",
                             "--detach", "-d", "--pid-file", "--format",
                             "--format=yaml", "--preserve-fds=-1",
                             "--preserve-fds=99999999999999999999",
                             "--console-socket=/nonexistent",
                             "--pid-file=/nonexistent/dir/pid",
                             "--bundle=/nonexistent", "--bundle=",
                             "--no-pivot", "--keep", "--signal", "--",
                             "--log-format=xml", "-"))
    commands = st.sampled_from(("create", "run", "start", "kill", "delete",
                                "state", "pause", "resume", "ps", "update",
                                "events", "list", "spec", "features",
                                "checkpoint", "restore", "bogus", ""))
    return st.tuples(commands, lists(st.one_of(ids, flags), 4))
