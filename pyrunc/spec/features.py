"""The runtime-spec "features" document that `pyrunc features` prints.

It states what this runtime implements, not what the spec allows: a
config that uses something missing here is refused or ignored. The
format is the one of runc's `features` command (runtime-spec
features.md).
"""

import pyrunc
from pyrunc.spec.mountopts import KNOWN_OPTIONS

OCI_VERSION_MIN = "1.0.0"

HOOKS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)

NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user",
              "uts")

# Every capability up to CAP_CHECKPOINT_RESTORE (40), in kernel order.
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

ANNOTATION_VERSION = "io.github.pyrunc.version"


def features():
    """Return the features document as a dict, ready for json.dumps.

    >>> features()["linux"]["cgroup"]["v2"]
    True
    """
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": pyrunc.SPEC_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": list(KNOWN_OPTIONS),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            "cgroup": {
                "v1": True,
                "v2": True,
                "systemd": False,
                "systemdUser": False,
            },
            "seccomp": seccomp_features(),
            # LSM labels and RDT are not applied yet.
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            # uidMappings/gidMappings of bind mounts, and idmap/ridmap.
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {ANNOTATION_VERSION: pyrunc.__version__},
    }


def seccomp_features():
    """The seccomp section: what linux.seccomp may use here.

    Filters are built with libseccomp (pyrunc._native.seccomp); without
    that extension seccomp is reported as disabled. The architectures
    and supported flags are the ones this libseccomp and kernel handle.
    """
    from pyrunc.seccomp import filter as sf

    try:
        archs = sf.supported_arches()
        flags = sf.supported_flags()
    except ImportError:
        return {"enabled": False}
    return {
        "enabled": True,
        "actions": sorted(sf.ACTIONS),
        "operators": sorted(sf.OPERATORS),
        "archs": archs,
        "knownFlags": list(sf.FLAGS),
        "supportedFlags": flags,
    }
