"""Turn a parsed config into the ordered launch plan the executor runs.

The plan is plain data: a list of ``(op, arg, ...)`` tuples, each one a
system call or a short group of them, in the order runc performs them.
Everything that needs judgement (paths, flags, which devices, which
capabilities) is decided here, in Python, where it can be unit-tested
without root; the compiled executor only carries it out.
"""

from pyrunc import log as _log
import os
import stat
# The builtin behind struct (see pyrunc/_native/launcher.pyx).
from _struct import pack

from pyrunc.errors import ConfigError, SpecError
from pyrunc.process import caps
from pyrunc.spec import mountopts as mo

log = _log.get_logger(__name__)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
AT_EMPTY_PATH = 0x1000

NAMESPACE_FLAGS = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER,
    "time": CLONE_NEWTIME,
}

# Sync points: the child stops and the parent acts before answering.
SYNC_CGROUP = 1     # parent joins the child to its cgroup
SYNC_HOOKS = 2      # parent runs prestart/createRuntime, sends the state

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# The devices every container gets, in runc's order (which shows in the
# order of their bind mounts in a user namespace).
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/random", 1, 8),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/zero", 1, 5),
    ("/dev/urandom", 1, 9),
)

SYSFS_MAGIC_DIR = "/sys/fs/cgroup"


class Options:
    """What the plan needs beyond config.json.

    A plain class: importing dataclasses costs the CLI about 7 ms.
    """

    __slots__ = ("cid", "bundle", "fifo_fd", "console_fd", "preserve_fds",
                 "no_pivot", "no_new_keyring", "cgroup_paths", "extra_env",
                 "dmz_fd", "stdio")

    def __init__(self, cid, bundle, fifo_fd=-1, console_fd=-1,
                 preserve_fds=0, no_pivot=False, no_new_keyring=False,
                 cgroup_paths=None, extra_env=None, dmz_fd=-1, stdio=None):
        self.cid = cid
        self.bundle = bundle
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.cgroup_paths = cgroup_paths or {}
        self.extra_env = extra_env or []
        # The sealed pyrunc-dmz memfd the process execs through (dmz.py).
        self.dmz_fd = dmz_fd
        # The child's ends of a foreground run's stdio pipes, or None to
        # inherit the runtime's (pyrunc.process.stdio).
        self.stdio = stdio


class Plan:
    """An ordered launch plan; see docs/design.md.

    trees lists the IdmappedTree requests of the plan's idmapped mounts;
    each such OP_MOUNT step holds its index until the parent swaps in
    the fd of the detached tree (pyrunc.process.idmap).
    """

    __slots__ = ("clone_flags", "steps", "rootfs", "new_namespaces",
                 "uid_map", "gid_map", "trees")

    def __init__(self, clone_flags, steps, rootfs, new_namespaces=0,
                 uid_map="", gid_map="", trees=None):
        self.clone_flags = clone_flags
        self.steps = steps
        self.rootfs = rootfs
        self.new_namespaces = new_namespaces
        self.uid_map = uid_map
        self.gid_map = gid_map
        self.trees = [] if trees is None else trees


class IdmappedTree:
    """A detached, idmapped copy of a bind mount's source to prepare.

    The parent makes it before the clone: only the host's root may
    idmap a mount of a host filesystem, and the child is in the
    container's user namespace from its first instruction. uid_map and
    gid_map are the texts of the user namespace's maps; userns_path
    names a user namespace to use instead (a joined one). propagation
    is the one a bind would get in the container's mount namespace
    (tree_propagation). field is where the maps come from ("mounts[2]",
    or "linux" for the container's), so that an error names them.
    """

    __slots__ = ("where", "source", "uid_map", "gid_map", "userns_path",
                 "recursive_tree", "recursive_idmap", "field",
                 "propagation")

    def __init__(self, where, source, uid_map="", gid_map="",
                 userns_path=None, recursive_tree=False,
                 recursive_idmap=False, field=None,
                 propagation=mo.MS_SLAVE):
        self.where = where
        self.source = source
        self.uid_map = uid_map
        self.gid_map = gid_map
        self.userns_path = userns_path
        self.recursive_tree = recursive_tree
        self.recursive_idmap = recursive_idmap
        self.field = field or where
        self.propagation = propagation

    def __repr__(self):
        parts = [f"{name}={getattr(self, name)!r}" for name in self.__slots__]
        return f"IdmappedTree({', '.join(parts)})"


def b(text):
    """Encode a str for the executor (paths and values are bytes)."""
    return os.fsencode(text)


def build(spec, opts):
    """Return the launch Plan for a parsed Spec."""
    from pyrunc._native import launcher as L

    steps = []
    rootfs = rootfs_path(spec, opts.bundle)
    linux = spec.linux
    process = spec.process
    steps.extend(stdio_steps(process, opts, L))
    clone_flags, joins = namespace_plan(linux)
    joins_user = any(t == "user" for t, _ in joins)
    new_flags = clone_flags
    # See time_ns_steps: never a clone() flag.
    clone_flags &= ~CLONE_NEWTIME
    if joins_user:
        # Namespaces made by clone() would belong to our user namespace,
        # not the joined one: make them after the setns instead.
        clone_flags = 0

    # Joining a pid namespace only affects children: fork once more so
    # that the container process itself is inside it.
    for ns_type, path in joins:
        if ns_type == "pid":
            steps.append((L.OP_SETNS, b(path), CLONE_NEWPID))
            steps.append((L.OP_FORK, 0))
    # The parent joins the cgroup and writes the id maps here. The child
    # is not dumpable, so an unprivileged parent needs it made dumpable
    # for that moment to open its /proc/<pid>/uid_map.
    sync = (L.OP_SYNC, SYNC_CGROUP)
    if new_flags & CLONE_NEWUSER and os.geteuid() != 0:
        sync += (1,)
    steps.append(sync)
    for ns_type, path in joins:
        if ns_type != "pid":
            steps.append((L.OP_SETNS, b(path), NAMESPACE_FLAGS[ns_type]))
    if joins_user:
        rest = new_flags & ~(CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWTIME)
        if rest:
            steps.append((L.OP_UNSHARE, rest))
        if new_flags & CLONE_NEWPID:
            steps.append((L.OP_UNSHARE, CLONE_NEWPID))
            steps.append((L.OP_FORK, 0))
        clone_flags = new_flags & CLONE_NEWCGROUP
    if new_flags & CLONE_NEWTIME:
        # Before taking the user namespace's root ids: the offsets file
        # of our non-dumpable process belongs to the host's root.
        steps.extend(time_ns_steps(linux, L))
    if new_flags & CLONE_NEWUSER or joins_user:
        steps.extend(become_ns_root(linux, L))
    # A new cgroup namespace must be made after joining the cgroup, so
    # that its root is the container's cgroup.
    if clone_flags & CLONE_NEWCGROUP:
        clone_flags &= ~CLONE_NEWCGROUP
        steps.append((L.OP_UNSHARE, CLONE_NEWCGROUP))
    if not opts.no_new_keyring:
        steps.append((L.OP_KEYRING, b(f"_ses.{opts.cid}")))
    if process is not None and process.oom_score_adj is not None:
        steps.append((L.OP_WRITE_PROC, b"/proc/self/oom_score_adj",
                      b(str(process.oom_score_adj)), 1))

    has_mntns = bool(new_flags & CLONE_NEWNS) or any(
        t == "mount" for t, _ in joins)
    userns = bool(new_flags & CLONE_NEWUSER) or joins_user
    trees = []
    if has_mntns:
        idmaps = IdmapContext(linux, joins, trees)
        steps.extend(rootfs_steps(spec, opts, rootfs, L, userns, idmaps))
    else:
        log.warning("no mount namespace: the rootfs is used as it is")
        steps.append((L.OP_SET_ROOT, b(rootfs)))

    if process is not None and process.terminal:
        steps.append((L.OP_CONSOLE, opts.console_fd, *console_size(process),
                      0))
    steps.append((L.OP_SYNC, SYNC_HOOKS))
    for hook in spec.hooks.create_container:
        steps.append(hook_step(hook, "createContainer", L))

    if has_mntns:
        if opts.no_pivot:
            steps.append((L.OP_MOVE_ROOT, b(rootfs)))
        else:
            steps.append((L.OP_PIVOT_ROOT,))
        steps.extend(finish_rootfs_steps(spec, L))
    else:
        steps.append((L.OP_CHROOT,))
    if spec.hostname:
        steps.append((L.OP_SETHOSTNAME, b(spec.hostname)))
    if spec.domainname:
        steps.append((L.OP_SETDOMAINNAME, b(spec.domainname)))
    if process is not None:
        steps.extend(lsm_steps(process, L))

    if process is not None:
        steps.extend(process_steps(process, opts, L, rootfs,
                                   hooks=spec.hooks.start_container,
                                   seccomp=linux.seccomp if linux else None))
        if not has_mntns:
            steps = chroot_after_fifo(steps, L)
    # A joined user namespace has its maps already; the loader checked
    # that the config's agree with them.
    maps = linux is not None and bool(new_flags & CLONE_NEWUSER)
    return Plan(clone_flags=clone_flags, steps=steps, rootfs=rootfs,
                new_namespaces=new_flags,
                uid_map=id_map(linux.uid_mappings) if maps else "",
                gid_map=id_map(linux.gid_mappings) if maps else "",
                trees=trees)


def chroot_after_fifo(steps, L):
    """Reorder a plan for a container without a mount namespace.

    There is no /proc of the container's own then, and the exec fifo is
    reopened through /proc/self/fd: wait on it before the chroot, and
    look the executable up after it.
    """
    moved = {L.OP_CLOSE_FDS, L.OP_READY, L.OP_WAIT_FIFO, L.OP_LOOKUP}
    early = [s for s in steps if s[0] in moved and s[0] != L.OP_LOOKUP]
    lookup = [s for s in steps if s[0] == L.OP_LOOKUP]
    rest = [s for s in steps if s[0] not in moved]
    at = next(i for i, s in enumerate(rest) if s[0] == L.OP_CHROOT)
    rest[at:at] = early
    rest[-1:-1] = lookup
    return rest


def time_ns_steps(linux, L):
    """A new time namespace with linux.timeOffsets.

    clone() cannot take CLONE_NEWTIME (its bit is part of the exit
    signal), and a process created in a time namespace is already in it.
    unshare() only prepares the namespace for the children and the next
    execve, and its offsets can be written until the first process
    enters it: write them at once, before any fork of the plan (every
    OP_FORK comes earlier) and before any hook runs.
    """
    steps = [(L.OP_UNSHARE, CLONE_NEWTIME)]
    lines = []
    for clock, offset in (linux.time_offsets or {}).items():
        offset = offset or {}
        lines.append(f"{clock} {offset.get('secs') or 0} "
                     f"{offset.get('nanosecs') or 0}\n")
    if lines:
        steps.append((L.OP_WRITE_PROC, b"/proc/self/timens_offsets",
                      b("".join(lines)), 1))
    return steps


def id_map(mappings):
    """The text of /proc/pid/uid_map (or gid_map) for the mappings."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n"
                   for m in mappings)


def is_mapped(mappings, ident):
    return any(m.container_id <= ident < m.container_id + m.size
               for m in mappings)


def become_ns_root(linux, L):
    """Take the user namespace's root ids, as runc does after mapping.

    Files the runtime creates then belong to the container's root, and
    the capabilities the namespace grants its creator are kept.
    """
    if linux is None:
        return []
    if linux.uid_mappings and not is_mapped(linux.uid_mappings, 0):
        return []
    if linux.gid_mappings and not is_mapped(linux.gid_mappings, 0):
        return []
    return [(L.OP_SET_USER, 0, 0, b"", 0)]


def rootfs_path(spec, bundle):
    """The absolute, symlink-free rootfs path.

    root.path may be relative to the bundle.
    """
    if spec.root is None or not spec.root.path:
        raise SpecError("root.path", "must be set")
    path = spec.root.path
    if not os.path.isabs(path):
        path = os.path.join(bundle, path)
    path = os.path.realpath(path)
    if not os.path.isdir(path):
        raise SpecError("root.path", f"{path} is not a directory")
    return path


def namespace_plan(linux):
    """Return (clone flags for new namespaces, [(type, path)] to join)."""
    flags = 0
    joins = []
    if linux is None:
        return flags, joins
    for index, ns in enumerate(linux.namespaces):
        bit = NAMESPACE_FLAGS.get(ns.type)
        if bit is None:
            raise SpecError(f"linux.namespaces[{index}].type",
                            f"unknown namespace type {ns.type!r}")
        if ns.path:
            joins.append((ns.type, ns.path))
        else:
            flags |= bit
    # runc joins namespaces in this order.
    order = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup",
             "time")
    joins.sort(key=lambda item: order.index(item[0]))
    return flags, joins


def console_size(process):
    if process.console_size is None:
        return (0, 0)
    return (process.console_size.height, process.console_size.width)


def hook_step(hook, phase, L):
    """A hook the child runs itself (createContainer, startContainer)."""
    args = [b(a) for a in (hook.args or [hook.path])]
    env = [b(e) for e in hook.env]
    return (L.OP_HOOK, b(hook.path), args, env, hook.timeout or 0, None,
            b(phase))


def rootfs_steps(spec, opts, rootfs, L, userns, idmaps):
    """Propagation, the rootfs bind, config mounts, devices.

    idmaps (an IdmapContext) collects the idmapped mounts' requests.
    """
    steps = []
    linux = spec.linux
    prop = (linux.rootfs_propagation if linux else None) or "rslave"
    prop_flag = mo.PROPAGATION.get(prop)
    if prop_flag is None:
        raise SpecError("linux.rootfsPropagation",
                        f"unknown propagation {prop!r}")
    # linux.rootfsPropagation applies to "/" of the new mount namespace
    # first, as with runc: rshared is how a container's mounts reach the
    # host (bidirectional volumes). The mount holding the rootfs is then
    # made private, so that the container's own mounts stay in it.
    steps.append((L.OP_MOUNT, None, b"/", None, prop_flag, None,
                  L.MNT_HOSTPATH, None, 0, 0))
    steps.append((L.OP_MAKE_PARENT_PRIVATE, b(rootfs)))
    # pivot_root needs the new root to be a mount point.
    steps.append((L.OP_MOUNT, b(rootfs), b(rootfs), None,
                  mo.MS_BIND | mo.MS_REC, None,
                  L.MNT_HOSTPATH | L.MNT_BIND, None, 0, 0))
    # Resolve everything below through the bind mount just made.
    steps.append((L.OP_SET_ROOT, b(rootfs)))

    dev_is_bind = False
    if linux is not None and linux.mount_label and not selinux_enabled():
        log.warning("linux.mountLabel is set but SELinux is not enabled on "
                    "this host; passing it to the mounts as runc does, and "
                    "the kernel will refuse them")
    for index, mount in enumerate(spec.mounts):
        where = f"mounts[{index}]"
        flags = mo.parse_mount_options(mount.options, f"{where}.options")
        is_bind = mount.type == "bind" or flags.bind
        if mount.destination == "/dev" and is_bind:
            dev_is_bind = True
        if linux is not None and linux.mount_label and not is_bind and \
                mount.type not in UNLABELLED_MOUNTS:
            flags.data = mount_label_data(flags.data, linux.mount_label)
        if is_read_only_tmpfs(mount, flags, is_bind):
            # Mounted writable, so that it can be given the covered
            # directory's mode and hold later mounts; finish_rootfs_steps
            # makes it read-only, as runc's finalizeRootfs does.
            flags.flags &= ~mo.MS_RDONLY
        steps.extend(mount_steps(mount, flags, is_bind, where, opts, L,
                                 idmaps))

    if not dev_is_bind:
        steps.extend(device_steps(linux, L, userns))
    return steps


def is_read_only_tmpfs(mount, flags, is_bind):
    return (mount.type == "tmpfs" and not is_bind and
            flags.flags & mo.MS_RDONLY and not flags.flags & mo.MS_REMOUNT)


def read_only_tmpfs(spec):
    """Destinations of the read-only tmpfs mounts, in config order."""
    found = []
    for index, mount in enumerate(spec.mounts):
        if mount.type != "tmpfs":
            continue
        flags = mo.parse_mount_options(mount.options,
                                       f"mounts[{index}].options")
        is_bind = flags.bind
        if is_read_only_tmpfs(mount, flags, is_bind):
            found.append(mount.destination)
    return found


def mount_steps(mount, flags, is_bind, where, opts, L, idmaps):
    dst = b(mount.destination)
    props = None
    if flags.propagation:
        props = pack(f"={len(flags.propagation)}Q", *flags.propagation)
    rec = L.MNT_ATTR_REC if (flags.recursive_set or
                             flags.recursive_clear) else 0
    attrs = (flags.recursive_set, flags.recursive_clear)
    if mount.type in ("cgroup", "cgroup2"):
        return cgroup_mount_steps(mount, flags, where, opts, L)
    if is_bind:
        source = mount.source or ""
        if not os.path.isabs(source):
            source = os.path.join(opts.bundle, source)
        try:
            st = os.stat(source)
        except OSError as err:
            raise ConfigError(
                f"{where}.source: {source}: {err.strerror}") from None
        check_proc_mount(mount.destination, source, where)
        target_kind = L.MNT_MKDIR if stat.S_ISDIR(st.st_mode) \
            else L.MNT_MKFILE
        bind_flags = flags.flags | mo.MS_BIND
        if flags.recursive_bind:
            bind_flags |= mo.MS_REC
        step = (L.OP_MOUNT, b(source), dst, None, bind_flags,
                b(flags.data) if flags.data else None,
                target_kind | L.MNT_BIND | rec, props, *attrs)
        if flags.idmap or mount.uid_mappings or mount.gid_mappings:
            step = idmaps.add(step, mount, flags, source, where, L)
        return [step]
    if mount.type not in ("proc", "sysfs", "mqueue", "tmpfs"):
        check_proc_mount(mount.destination, None, where)
    x = L.MNT_MKDIR | rec
    if flags.tmpcopyup:
        x |= L.MNT_COPYUP
    if mount.type == "tmpfs" and not flags.flags & mo.MS_REMOUNT:
        # runc gives the new tmpfs the mode of the directory it covers,
        # if there was one (over a mode= option too).
        x |= L.MNT_KEEP_MODE
    source = b(mount.source) if mount.source else b(mount.type or "none")
    fstype = b(mount.type) if mount.type else None
    return [(L.OP_MOUNT, source, dst, fstype, flags.flags,
             b(flags.data) if flags.data else None, x, props, *attrs)]


class IdmapContext:
    """Collects the IdmappedTree requests of one plan's mounts."""

    __slots__ = ("linux", "userns_path", "trees")

    def __init__(self, linux, joins, trees):
        self.linux = linux
        self.userns_path = next((p for t, p in joins if t == "user"), None)
        self.trees = trees

    def add(self, step, mount, flags, source, where, L):
        """Return step turned into the move of an idmapped tree.

        The mount's own maps win; without them (`idmap` alone) it takes
        the container's user namespace: the one it joins, else its maps.
        Mappings are only honoured on bind mounts (the loader refuses
        them elsewhere): open_tree clones an existing mount.
        """
        tree = IdmappedTree(
            where, source, recursive_tree=flags.recursive_bind,
            recursive_idmap=flags.recursive_idmap,
            propagation=tree_propagation(self.linux))
        if mount.uid_mappings or mount.gid_mappings:
            tree.uid_map = id_map(mount.uid_mappings)
            tree.gid_map = id_map(mount.gid_mappings)
            tree.field = where
        elif self.userns_path:
            tree.userns_path = self.userns_path
            tree.field = "linux"
        elif self.linux is not None and self.linux.uid_mappings:
            tree.uid_map = id_map(self.linux.uid_mappings)
            tree.gid_map = id_map(self.linux.gid_mappings)
            tree.field = "linux"
        else:
            raise SpecError(f"{where}.options", "idmap without uidMappings "
                            "and gidMappings needs the container's user "
                            "namespace, and there is none")
        index = len(self.trees)
        self.trees.append(tree)
        # Argument 9 holds the request's index until the parent opens
        # the tree and swaps in its fd.
        return step[:6] + (step[6] | L.MNT_TREE,) + step[7:] + (index,)


def tree_propagation(linux):
    """The propagation of a bind made in the container's mount namespace.

    rootfs_steps gives "/" linux.rootfsPropagation (rslave by default)
    first: a bind then copies it. A detached tree is cloned in the
    host's namespace instead, so it is given the same by hand; shared
    keeps the source's peer group (a bidirectional volume). The
    unbindable kinds refuse a bind: the tree is made private.
    """
    prop = (linux.rootfs_propagation if linux else None) or "rslave"
    if prop in ("shared", "rshared"):
        return 0
    if prop in ("slave", "rslave"):
        return mo.MS_SLAVE
    return mo.MS_PRIVATE


# The only files below /proc a config may mount over, as in runc: those
# lxcfs emulates.
PROC_MOUNTS_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
    "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
    "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
))


def check_proc_mount(destination, source, where):
    """Refuse a mount over or inside /proc, as runc's checkProcMount does.

    A bind over /proc/sys/... would let the config (or an image that
    names its volumes there) redirect the sysctl writes the runtime makes
    later, or hide the masked paths. Only procfs itself may go on /proc.
    """
    dest = os.path.normpath("/" + destination.lstrip("/"))
    if dest != "/proc" and not dest.startswith("/proc/"):
        return
    if dest in PROC_MOUNTS_ALLOWED:
        return
    if dest == "/proc":
        if source is not None and is_procfs(source):
            return
        raise ConfigError(f"{where}.destination: \"{dest}\" cannot be "
                          "mounted because it is not of type proc")
    raise ConfigError(f"{where}.destination: \"{dest}\" cannot be "
                      "mounted because it is inside /proc")


def is_procfs(path):
    """Whether path lies on a procfs mount of the host."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return False
    wanted = f"{os.major(dev)}:{os.minor(dev)}".encode()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            sep = fields.index(b"-")
            if fields[2] == wanted and fields[sep + 1] == b"proc":
                return True
    return False


# Mounts runc makes without the SELinux mount label.
UNLABELLED_MOUNTS = ("proc", "sysfs", "mqueue", "cgroup", "cgroup2")


def mount_label_data(data, label):
    """Add linux.mountLabel to a mount's data, as runc 1.1.5 does.

    runc adds it whether or not SELinux is enabled; without SELinux the
    kernel refuses the context= option and the mount fails, as with runc.
    """
    option = f'context="{label}"'
    return f"{data},{option}" if data else option


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def apparmor_enabled():
    """runc's test: the securityfs directory and the module parameter."""
    if not os.path.isdir("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def apparmor_step(profile, L):
    """Ask for process.apparmorProfile at the next execve.

    As runc 1.1.5 does, the profile is written whether or not AppArmor
    is enabled: without it the kernel refuses the write and the
    container fails to start, naming /proc/self/attr/exec.
    """
    attr = "/proc/self/attr/apparmor/exec"
    if not os.path.exists(attr):
        attr = "/proc/self/attr/exec"
    if apparmor_enabled():
        log.debug("applying apparmor profile %s through %s", profile, attr)
    else:
        log.warning("process.apparmorProfile is set but AppArmor is not "
                    "enabled on this host; writing %s anyway as runc does, "
                    "and the kernel will refuse it", attr)
    return (L.OP_WRITE_PROC, b(attr), b(f"exec {profile}"), 0)


def selinux_step(label, L):
    """Ask for process.selinuxLabel at the next execve, as runc does.

    The loader refuses a label on a host without SELinux (runc's
    validator does too), so this only runs where the kernel takes it.
    """
    log.debug("applying selinux label %s", label)
    return (L.OP_WRITE_PROC, b"/proc/self/attr/exec", b(label), 0)


def lsm_steps(process, L):
    """The AppArmor profile, then the SELinux label, in runc's order."""
    steps = []
    if process.apparmor_profile:
        steps.append(apparmor_step(process.apparmor_profile, L))
    if process.selinux_label:
        steps.append(selinux_step(process.selinux_label, L))
    return steps


def cgroup_mount_steps(mount, flags, where, opts, L):
    """Show the container its own cgroups at the mount's destination.

    On cgroup v1 this is a tmpfs holding one bind mount per hierarchy,
    each of the container's own cgroup directory, as runc does; on the
    unified hierarchy a bind of the container's cgroup2 directory.
    """
    steps = []
    dst = mount.destination.rstrip("/") or "/"
    ro = bool(flags.flags & mo.MS_RDONLY)
    paths = opts.cgroup_paths or {}
    base = flags.flags & ~(mo.MS_RDONLY | mo.MS_BIND | mo.MS_REC)
    unified = paths.get("") or paths.get("unified")
    v1 = {k: v for k, v in paths.items() if k not in ("", "unified")}
    if not v1:
        if not unified:
            return steps
        bind = base | mo.MS_BIND | mo.MS_REC | (mo.MS_RDONLY if ro else 0)
        return [(L.OP_MOUNT, b(unified), b(dst), None, bind, None,
                 L.MNT_MKDIR | L.MNT_BIND, None, 0, 0)]
    # runc's keeps the mode of the directory it covers (555 in sysfs).
    steps.append((L.OP_MOUNT, b"tmpfs", b(dst), b"tmpfs", base,
                  b"mode=755", L.MNT_MKDIR | L.MNT_KEEP_MODE, None, 0, 0))
    seen = set()
    # runc shows a hybrid host's unified hierarchy only through cgroup2
    # mounts, not in the v1 tmpfs; it binds the rest in the host's order.
    order = hierarchy_order()
    dirs = sorted(v1.values(), key=lambda d: order.get(hierarchy_name(d),
                                                      len(order)))
    for host_dir in dirs:
        name = hierarchy_name(host_dir)
        if name is None or name in seen:
            continue
        seen.add(name)
        bind = base | mo.MS_BIND | mo.MS_REC | (mo.MS_RDONLY if ro else 0)
        steps.append((L.OP_MOUNT, b(host_dir), b(f"{dst}/{name}"), None,
                      bind, None, L.MNT_MKDIR | L.MNT_BIND, None, 0, 0))
    for link in ("cpu", "cpuacct"):
        if link not in seen and "cpu,cpuacct" in seen:
            steps.append((L.OP_SYMLINK, b"cpu,cpuacct", b(f"{dst}/{link}")))
    # Like runc, the tmpfs itself stays writable; only the binds are ro.
    return steps


def hierarchy_order():
    """Cgroup hierarchy names in the order the host mounted them."""
    order = {}
    prefix = SYSFS_MAGIC_DIR + "/"
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            point = os.fsdecode(fields[4])
            if point.startswith(prefix):
                order.setdefault(point[len(prefix):], len(order))
    return order


def hierarchy_name(host_dir):
    """The hierarchy's directory name below /sys/fs/cgroup, if any."""
    prefix = SYSFS_MAGIC_DIR + "/"
    if not host_dir.startswith(prefix):
        return None
    return host_dir[len(prefix):].split("/", 1)[0]


def check_device_number(where, number):
    """A node's major or minor: -1 is a cgroup rule's wildcard only."""
    if number is None or 0 <= number <= 0xFFFFFFFF:
        return
    if number == -1:
        raise SpecError(where, "-1 (a wildcard in device rules) cannot "
                        "name a device node")
    raise SpecError(where, f"{number} is not a device number")


def device_steps(linux, L, userns=False):
    steps = []
    wanted = {}
    for path, major, minor in DEFAULT_DEVICES:
        wanted[path] = (stat.S_IFCHR | 0o666, os.makedev(major, minor), 0, 0)
    for index, dev in enumerate(linux.devices if linux else []):
        where = f"linux.devices[{index}]"
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK,
                "p": stat.S_IFIFO}.get(dev.type)
        if kind is None:
            raise SpecError(f"{where}.type", f"unknown device type "
                            f"{dev.type!r}")
        if not dev.path.startswith("/dev/"):
            raise SpecError(f"{where}.path", "must be below /dev")
        if kind != stat.S_IFIFO and (dev.major is None or dev.minor is None):
            raise SpecError(f"{where}", "major and minor are required")
        for name, number in (("major", dev.major), ("minor", dev.minor)):
            check_device_number(f"{where}.{name}", number)
        mode = kind | (dev.file_mode if dev.file_mode is not None
                       else 0o666) & 0o7777
        rdev = os.makedev(dev.major or 0, dev.minor or 0)
        wanted[dev.path] = (mode, rdev, dev.uid or 0, dev.gid or 0)
    for path, (mode, rdev, uid, gid) in wanted.items():
        if userns:
            # mknod is not allowed in a user namespace: bind the host's.
            steps.append((L.OP_BIND_DEV, b(path), b(path)))
        else:
            steps.append((L.OP_MKNOD, b(path), mode, rdev, uid, gid))
    links = [("/proc/self/fd", "/dev/fd"),
             ("/proc/self/fd/0", "/dev/stdin"),
             ("/proc/self/fd/1", "/dev/stdout"),
             ("/proc/self/fd/2", "/dev/stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, path in links:
        steps.append((L.OP_SYMLINK, b(target), b(path)))
    # /dev/ptmx must be the container's own devpts instance.
    steps.append((L.OP_SYMLINK, b"pts/ptmx", b"/dev/ptmx"))
    return steps


def finish_rootfs_steps(spec, L):
    """After pivot_root: propagation, read-only tmpfs mounts, sysctls,
    masks, read-only root."""
    steps = []
    linux = spec.linux
    if linux is not None:
        prop = linux.rootfs_propagation
        if prop in ("shared", "rshared", "private", "rprivate",
                    "unbindable", "runbindable"):
            steps.append((L.OP_MOUNT, None, b"/", None,
                          mo.PROPAGATION[prop], None, L.MNT_HOSTPATH,
                          None, 0, 0))
    for path in read_only_tmpfs(spec):
        # In place: no bind of the path onto itself first.
        steps.append((L.OP_READONLY, b(path), 1))
    if linux is not None:
        for key, value in linux.sysctl.items():
            path = "/proc/sys/" + key.replace(".", "/")
            steps.append((L.OP_WRITE_PROC, b(path), b(value), 0))
        # runc makes paths read-only before it masks others.
        for path in linux.readonly_paths:
            steps.append((L.OP_READONLY, b(path)))
        for path in linux.masked_paths:
            steps.append((L.OP_MASK, b(path)))
    if spec.root.readonly:
        steps.append((L.OP_REMOUNT_ROOT_RO,))
    return steps


def stdio_steps(process, opts, L):
    """The pipes of a foreground process as its stdio, from the first
    step on (a process with a terminal gets the pty instead)."""
    if opts.stdio is None or (process is not None and process.terminal):
        return []
    return [(L.OP_STDIO, *opts.stdio)]


def build_exec(process, joins, opts, rootfs, seccomp=None):
    """The plan of `exec`: join the container, then run process.

    joins lists (type, path) of the container's namespaces in runc's
    order. Joining the mount namespace makes the container's root the
    process's root and cwd, so the steps after it resolve inside it.
    seccomp is the container's linux.seccomp, which applies to exec'd
    processes too.
    """
    from pyrunc._native import launcher as L

    steps = stdio_steps(process, opts, L)
    # The user namespace first, as runc does: the container's other
    # namespaces belong to it, and a rootless runtime has no capability
    # to join them but the ones it gets there.
    for ns_type, path in joins:
        if ns_type == "user":
            steps.append((L.OP_SETNS, b(path), CLONE_NEWUSER))
    for ns_type, path in joins:
        if ns_type == "pid":
            steps.append((L.OP_SETNS, b(path), CLONE_NEWPID))
            steps.append((L.OP_FORK, 0))
    steps.append((L.OP_SYNC, SYNC_CGROUP))
    for ns_type, path in joins:
        if ns_type not in ("pid", "user"):
            steps.append((L.OP_SETNS, b(path), NAMESPACE_FLAGS[ns_type]))
    steps.append((L.OP_SET_ROOT, b"/"))
    if process.terminal:
        steps.append((L.OP_CONSOLE, opts.console_fd,
                      *console_size(process), 1))
    steps.extend(lsm_steps(process, L))
    steps.extend(process_steps(process, opts, L, rootfs, exec_mode=True,
                               seccomp=seccomp))
    return Plan(clone_flags=0, steps=steps, rootfs=rootfs)


def process_steps(process, opts, L, rootfs, exec_mode=False, hooks=(),
                  seccomp=None):
    """Rlimits, console, credentials, capabilities, then the exec.

    seccomp is linux.seccomp; see pyrunc.seccomp for where its filter is
    loaded and why.
    """
    steps = []
    seccomp_filter = None
    if seccomp is not None:
        from pyrunc.seccomp import compile_filter

        seccomp_filter = compile_filter(seccomp)
    nnp = bool(process.no_new_privileges)
    for index, rl in enumerate(process.rlimits):
        number = RLIMITS.get(rl.type)
        if number is None:
            raise SpecError(f"process.rlimits[{index}].type",
                            f"unknown rlimit {rl.type!r}")
        steps.append((L.OP_SETRLIMIT, number, rl.soft, rl.hard))
    cwd = process.cwd or "/"
    if not os.path.isabs(cwd):
        raise SpecError("process.cwd", "must be an absolute path")
    if not exec_mode:
        steps.append((L.OP_CHDIR, b(cwd), 1))
    # The container's process leads its own session, as with runc; with
    # a terminal, that session also takes the pty as its controlling tty.
    if process.terminal:
        steps.append((L.OP_CONSOLE_STDIO,))
    else:
        steps.append((L.OP_SETSID,))

    env = container_env(process, opts, rootfs)
    steps.append((L.OP_CLOSE_FDS, 3 + opts.preserve_fds, opts.fifo_fd,
                  opts.dmz_fd))
    if seccomp_filter is not None and not nnp:
        # Loading needs CAP_SYS_ADMIN without no_new_privs: do it before
        # the capability drop and the user switch, as runc does.
        steps.append(seccomp_step(seccomp_filter, L))

    last = caps.last_cap()
    user = process.user
    capset = process.capabilities
    if capset is None:
        # runc drops every capability when the object is absent.
        from pyrunc.spec.model import Capabilities

        capset = Capabilities()
    if capset is not None:
        bounding = caps.to_mask(capset.bounding,
                                "process.capabilities.bounding", last)
        steps.append((L.OP_CAPS_BOUNDING, bounding, last))
    gids = pack(f"={len(user.additional_gids)}I", *user.additional_gids)
    # A rootless runtime denied setgroups(2) in the user namespace (see
    # create.write_id_maps): runc then leaves the groups alone.
    set_groups = 0 if os.geteuid() != 0 else 1
    steps.append((L.OP_SET_USER, user.uid, user.gid, gids, set_groups))
    if capset is not None:
        masks = [caps.to_mask(getattr(capset, name),
                              f"process.capabilities.{name}", last)
                 for name in ("effective", "permitted", "inheritable",
                              "ambient")]
        steps.append((L.OP_CAPS_APPLY, *masks, last))
    if process.no_new_privileges:
        steps.append((L.OP_NO_NEW_PRIVS,))
    umask = user.umask if user.umask is not None else 0o022
    steps.append((L.OP_UMASK, umask))
    steps.append((L.OP_CHDIR, b(cwd), 0))
    # runc looks the program up here, as the user and in the cwd, with
    # the process's own PATH; a failure is still a create-time error.
    steps.append((L.OP_LOOKUP, b(process.args[0]), env))
    notify_early = seccomp_filter is not None and nnp and \
        seccomp_filter.notify
    if notify_early:
        # The listener fd goes to the parent, which listens until READY.
        steps.append(seccomp_step(seccomp_filter, L))
    steps.append((L.OP_READY,))
    if not exec_mode:
        steps.append((L.OP_WAIT_FIFO, opts.fifo_fd))
    if seccomp_filter is not None and nnp and not notify_early:
        # As late as possible, so that the profile need not allow the
        # runtime's own syscalls; startContainer hooks run under it.
        steps.append(seccomp_step(seccomp_filter, L))
    for hook in hooks:
        steps.append(hook_step(hook, "startContainer", L))
    argv = [b(a) for a in process.args]
    steps.append((L.OP_EXEC, argv, env, opts.dmz_fd,
                  dmz_path(seccomp_filter, opts.dmz_fd)))
    return steps


def dmz_path(seccomp_filter, dmz_fd):
    """Empty to exec pyrunc-dmz with execveat, else the path to execve.

    The filter is loaded before the exec; a profile that denies execveat
    (runc's exec is an execve) still gets the sealed memfd, by its
    /proc/self/fd path. The executor falls back to a plain execve of the
    program when the container has no /proc.
    """
    if dmz_fd < 0 or seccomp_filter is None:
        return b""
    from pyrunc.seccomp.filter import allows_execveat

    if allows_execveat(seccomp_filter, dmz_fd, AT_EMPTY_PATH):
        return b""
    return b"/proc/self/fd/%d" % dmz_fd


def seccomp_step(seccomp_filter, L):
    """OP_SECCOMP (bpf, flags, sync tag of the notify listener fd)."""
    from pyrunc.seccomp import SYNC_NOTIFY

    tag = SYNC_NOTIFY if seccomp_filter.notify else 0
    return (L.OP_SECCOMP, seccomp_filter.bpf, seccomp_filter.flags, tag)


def container_env(process, opts, rootfs):
    """The container's environment as bytes, with HOME filled in."""
    # Like runc, a name given twice keeps its first place and last value
    # (exec -e PATH=... overrides the config's PATH).
    merged = {}
    for item in list(process.env) + list(opts.extra_env):
        name = item.split("=", 1)[0]
        merged[name] = item
    if "HOME" not in merged:
        merged["HOME"] = "HOME=" + home_dir(process.user.uid, rootfs)
    return [b(item) for item in merged.values()]


def home_dir(uid, rootfs):
    """HOME from the rootfs's /etc/passwd, as runc sets it; else "/"."""
    try:
        data = read_in_rootfs(rootfs, "etc/passwd")
    except OSError:
        return "/"
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2] == str(uid):
            return parts[5] or "/"
    return "/"


def read_in_rootfs(rootfs, relpath, limit=1 << 20):
    """Read a small file of the rootfs without following any symlink."""
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        parts = relpath.split("/")
        for part in parts[:-1]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY |
                          os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=fd)
        try:
            return os.read(ffd, limit)
        finally:
            os.close(ffd)
    finally:
        os.close(fd)
