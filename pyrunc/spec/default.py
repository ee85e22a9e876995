"""The config.json that `pyrunc spec` writes, the same as `runc spec`.

The dict keys are in the order runc 1.1.5 writes them, so
`json.dumps(default_spec(), indent="\\t")` gives runc's bytes.
"""

import os

# The spec version runc 1.1.5 writes; kept so the files are identical.
RUNC_SPEC_VERSION = "1.0.2-dev"

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]

_READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


def default_spec(rootless=False, cgroup2=None):
    """Return the default config as a dict, like `runc spec [--rootless]`.

    runc adds a cgroup namespace only on a pure cgroup v2 host; cgroup2
    overrides the detection (for tests).
    """
    if cgroup2 is None:
        cgroup2 = _is_cgroup2_unified()

    spec = {
        "ociVersion": RUNC_SPEC_VERSION,
        "process": _process(),
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": _mounts(),
        "linux": _linux(cgroup2),
    }
    if rootless:
        _to_rootless(spec)
    return spec


def _process():
    return {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
            ":/sbin:/bin",
            "TERM=xterm",
        ],
        "cwd": "/",
        "capabilities": {
            "bounding": list(_CAPS),
            "effective": list(_CAPS),
            "permitted": list(_CAPS),
            "ambient": list(_CAPS),
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }


def _mounts():
    no_sne = ["nosuid", "noexec", "nodev"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": [*no_sne, "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": list(no_sne),
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": [*no_sne, "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": [*no_sne, "relatime", "ro"],
        },
    ]


def _linux(cgroup2):
    namespaces = [
        {"type": "pid"},
        {"type": "network"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
    ]
    if cgroup2:
        namespaces.append({"type": "cgroup"})
    return {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": namespaces,
        "maskedPaths": list(_MASKED_PATHS),
        "readonlyPaths": list(_READONLY_PATHS),
    }


def _to_rootless(spec):
    linux = spec["linux"]
    # Keys are rebuilt so that the mappings come first, as runc's
    # struct order puts them.
    namespaces = [
        ns
        for ns in linux["namespaces"]
        if ns["type"] not in ("network", "user")
    ]
    namespaces.append({"type": "user"})
    rootless = {
        "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        "namespaces": namespaces,
        "maskedPaths": linux["maskedPaths"],
        "readonlyPaths": linux["readonlyPaths"],
    }
    spec["linux"] = rootless

    mounts = []
    for mount in spec["mounts"]:
        if os.path.normpath(mount["destination"]) == "/sys":
            # Without the host's user namespace a fresh sysfs cannot be
            # mounted; bind the host's instead.
            mounts.append(
                {
                    "destination": "/sys",
                    "type": "none",
                    "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
                }
            )
            continue
        options = [
            opt
            for opt in mount.get("options", ())
            if not opt.startswith(("uid=", "gid="))
        ]
        mount = dict(mount)
        mount.pop("options", None)
        if options:
            mount["options"] = options
        mounts.append(mount)
    spec["mounts"] = mounts


def _is_cgroup2_unified():
    # On a pure v2 host /sys/fs/cgroup is the cgroup2 root and has
    # cgroup.controllers; on a v1 or hybrid host it is a tmpfs.
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")
