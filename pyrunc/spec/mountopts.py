"""Translate the `options` of an OCI mount into mount(2) flags and data.

The table follows runc's specconv: an option that is neither a mount flag,
a propagation type, a recursive attribute (mount_setattr(2)) nor an
extension is passed to the filesystem in the data string, in order. So
`defaults` and `acl` end up in data, as they do with runc.
"""

from pyrunc.errors import SpecError

# mount(2) flags, from <linux/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# mount_setattr(2) attributes, from <linux/mount.h>.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# option -> (clears the flag?, MS_* flag)
_FLAGS = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
    "symfollow": (True, MS_NOSYMFOLLOW),
}

PROPAGATION = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# option -> (clears the attribute?, MOUNT_ATTR_* value)
_RECURSIVE = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME),
    "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}

# Runtime extensions, never passed to mount(2). idmap and ridmap ask for
# an idmapped mount (runtime-spec 1.2): ridmap maps every mount of an
# rbind, idmap only its top one, as runc does.
_EXTENSIONS = ("tmpcopyup", "idmap", "ridmap")

# Every option the parser turns into something other than data; the
# features document lists these.
KNOWN_OPTIONS = tuple(
    sorted([*_FLAGS, *PROPAGATION, *_RECURSIVE, *_EXTENSIONS])
)


class MountFlags:
    """The parsed form of one mount's options.

    flags are MS_* bits to pass to mount(2); clear holds the MS_* bits an
    option explicitly turned off ("rw", "dev"), which a remount of a bind
    mount must not copy from the source. propagation lists the MS_*
    values for separate mount(2) calls, in order. recursive_set and
    recursive_clear are the attr_set and attr_clr of mount_setattr(2)
    with AT_RECURSIVE. idmap is set by `idmap` or `ridmap`, and
    recursive_idmap by the latter.
    """

    __slots__ = (
        "flags",
        "clear",
        "propagation",
        "data",
        "recursive_set",
        "recursive_clear",
        "tmpcopyup",
        "bind",
        "recursive_bind",
        "idmap",
        "recursive_idmap",
    )

    def __init__(
        self,
        flags=0,
        clear=0,
        propagation=None,
        data="",
        recursive_set=0,
        recursive_clear=0,
        tmpcopyup=False,
        bind=False,
        recursive_bind=False,
        idmap=False,
        recursive_idmap=False,
    ):
        self.flags = flags
        self.clear = clear
        self.propagation = [] if propagation is None else propagation
        self.data = data
        self.recursive_set = recursive_set
        self.recursive_clear = recursive_clear
        self.tmpcopyup = tmpcopyup
        self.bind = bind
        self.recursive_bind = recursive_bind
        self.idmap = idmap
        self.recursive_idmap = recursive_idmap

    def __repr__(self):
        parts = [f"{name}={getattr(self, name)!r}" for name in self.__slots__]
        return f"MountFlags({', '.join(parts)})"

    def __eq__(self, other):
        if type(other) is not MountFlags:
            return NotImplemented
        return all(
            getattr(self, name) == getattr(other, name)
            for name in self.__slots__
        )

    __hash__ = None


def parse_mount_options(options, path="mounts[].options"):
    """Parse a list of OCI mount options.

    >>> m = parse_mount_options(["rbind", "ro", "mode=755"])
    >>> m.flags == MS_BIND | MS_REC | MS_RDONLY, m.data
    (True, 'mode=755')

    Raises SpecError naming path when an option is not a string.
    """
    flags = 0
    clear = 0
    propagation = []
    data = []
    rec_set = 0
    rec_clear = 0
    tmpcopyup = False
    idmap = recursive_idmap = False
    for i, opt in enumerate(options or ()):
        if type(opt) is not str:
            raise SpecError(f"{path}[{i}]", "expected a string")

        flag = _FLAGS.get(opt)
        if flag is not None:
            clears, bit = flag
            if clears:
                flags &= ~bit
                clear |= bit
            else:
                flags |= bit
                clear &= ~bit
            continue

        prop = PROPAGATION.get(opt)
        if prop is not None:
            propagation.append(prop)
            continue

        attr = _RECURSIVE.get(opt)
        if attr is not None:
            clears, bit = attr
            is_atime = bit & MOUNT_ATTR__ATIME == bit
            if is_atime and not clears:
                # The access-time settings are one enum inside the 0x70
                # mask, so the last one given wins (runc would OR them
                # and get EINVAL from the kernel).
                rec_set &= ~MOUNT_ATTR__ATIME
            if clears:
                rec_clear |= bit
                rec_set &= ~bit
            else:
                rec_set |= bit
                rec_clear &= ~bit
            # mount_setattr(2) wants the whole access-time mask in
            # attr_clr whenever one of those settings changes.
            if is_atime:
                rec_clear |= MOUNT_ATTR__ATIME
            continue

        if opt == "tmpcopyup":
            tmpcopyup = True
            continue

        if opt in ("idmap", "ridmap"):
            # The last one given wins, as with runc.
            idmap = True
            recursive_idmap = opt == "ridmap"
            continue

        data.append(opt)

    bind = bool(flags & MS_BIND)
    return MountFlags(
        flags=flags,
        clear=clear,
        propagation=propagation,
        data=",".join(data),
        recursive_set=rec_set,
        recursive_clear=rec_clear,
        tmpcopyup=tmpcopyup,
        bind=bind,
        recursive_bind=bind and bool(flags & MS_REC),
        idmap=idmap,
        recursive_idmap=recursive_idmap,
    )
