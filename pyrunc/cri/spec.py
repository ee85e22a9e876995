"""CRI requests and image configs -> OCI runtime config.json dicts.

Pure functions over the runtime.v1 protobuf messages, so they can be
unit-tested without root. The defaults (capabilities, masked and
read-only paths, mounts) follow containerd's CRI plugin, which is what
kubelet and critest expect of a runtime.
"""

import copy
import os
import re
import stat

from pyrunc.cri import seccomp
from pyrunc.cri.errors import InvalidArgument
from pyrunc.process import caps

OCI_VERSION = "1.0.2"

# NamespaceMode values of the CRI.
POD, CONTAINER, NODE, TARGET = 0, 1, 2, 3
# MountPropagation values of the CRI.
PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL = 0, 1, 2

DEFAULT_PATH = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                "/sbin:/bin")

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
    "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

# In kernel order: the index is the capability's number.
ALL_CAPS = list(caps.NAMES)

DEFAULT_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
DEFAULT_READONLY = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]

# The pause process: the program built with pyrunc-cri (pause.c), bound
# read-only at /pause in the pause rootfs. Without it, a busybox shell
# that waits on a fifo, so that no child of it shows in the pod.
PAUSE_ARGS = ["/pause"]
PAUSE_FALLBACK_SCRIPT = (
    "trap 'exit 0' TERM INT; exec 3<>/pause.fifo; "
    "while :; do read -t 3600 x <&3; done")

# Where the host's mounts are listed, for the propagation checks.
MOUNTINFO = "/proc/self/mountinfo"


def known_caps():
    """Return the capabilities a container can get here.

    Those the kernel has (cap_last_cap) and our bounding set holds: the
    runtime inherits our bounding set, and asking it for more fails.
    """
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    bounding = (1 << (last + 1)) - 1
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    bounding = int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return [cap for i, cap in enumerate(ALL_CAPS[:last + 1])
            if bounding >> i & 1]


def base_spec(rootfs, readonly=False):
    """Return a config.json dict with the mounts every container gets."""
    return {
        "ociVersion": OCI_VERSION,
        "root": {"path": rootfs, "readonly": readonly},
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [],
            "env": [],
            "cwd": "/",
            "capabilities": _caps(DEFAULT_CAPS),
            "noNewPrivileges": False,
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755",
                         "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts",
             "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance",
                         "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/mqueue", "type": "mqueue",
             "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup",
             "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "maskedPaths": list(DEFAULT_MASKED),
            "readonlyPaths": list(DEFAULT_READONLY),
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        },
    }


def _caps(names):
    names = list(names)
    return {"bounding": list(names), "effective": list(names),
            "permitted": list(names)}


# --- the pod sandbox


def sandbox_spec(config, sandbox_id, rootfs, files, cgroup_parent,
                 pause_binary=None):
    """Return the config.json of a pod's pause container.

    config is the CRI PodSandboxConfig; files maps "hostname", "hosts",
    "resolv.conf" and "shm" (a directory) to paths in the sandbox dir.
    pause_binary is the host path of the pause program, bound at /pause
    (None: the rootfs's busybox runs PAUSE_FALLBACK_SCRIPT instead).
    The pause process holds the pod's network, IPC, UTS and (when the
    pod shares one) PID namespaces for the containers to join.
    """
    spec = base_spec(rootfs, readonly=True)
    proc = spec["process"]
    if pause_binary:
        proc["args"] = list(PAUSE_ARGS)
        spec["mounts"].append({
            "destination": PAUSE_ARGS[0], "type": "bind",
            "source": pause_binary,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev"]})
    else:
        proc["args"] = ["/bin/sh", "-c", PAUSE_FALLBACK_SCRIPT]
    proc["env"] = [DEFAULT_PATH]
    ns_opts = _pod_ns_options(config)
    linux = spec["linux"]
    if ns_opts.pid != NODE:
        linux["namespaces"].append({"type": "pid"})
    if ns_opts.ipc != NODE:
        linux["namespaces"].append({"type": "ipc"})
    if ns_opts.network != NODE:
        linux["namespaces"].append({"type": "network"})
        # The pod's hostname lives in its own UTS namespace; with the
        # host network the node's hostname is the pod's, as in k8s.
        linux["namespaces"].append({"type": "uts"})
        spec["hostname"] = config.hostname or ""
    sec = config.linux.security_context
    _check_group_has_user(sec)
    if sec.HasField("run_as_user"):
        proc["user"]["uid"] = sec.run_as_user.value
    if sec.HasField("run_as_group"):
        proc["user"]["gid"] = sec.run_as_group.value
    if sec.privileged:
        _make_privileged(spec)
    profile = seccomp.profile_for(
        sec, sec.privileged, proc["capabilities"]["bounding"])
    if profile is not None:
        linux["seccomp"] = profile
    sysctls = dict(config.linux.sysctls)
    if sysctls:
        linux["sysctl"] = sysctls
    linux["cgroupsPath"] = cgroup_path(cgroup_parent, sandbox_id)
    spec["mounts"] += _pod_file_mounts(files, readonly=True)
    spec["annotations"] = {
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-id": sandbox_id,
    }
    return spec


def _check_group_has_user(sec):
    """A group without a user is refused, as containerd does."""
    if not sec.HasField("run_as_group"):
        return
    if sec.HasField("run_as_user") or getattr(sec, "run_as_username", ""):
        return
    raise InvalidArgument(
        f"user group `{sec.run_as_group.value}` is specified without user")


def _pod_ns_options(config):
    return config.linux.security_context.namespace_options


def cgroup_path(parent, cid):
    """Return linux.cgroupsPath for a container under a cgroup parent."""
    parent = (parent or "").rstrip("/")
    if not parent:
        return cid
    return f"{parent}/{cid}"


def _pod_file_mounts(files, readonly):
    mounts = []
    for name, dest in (("hostname", "/etc/hostname"),
                       ("hosts", "/etc/hosts"),
                       ("resolv.conf", "/etc/resolv.conf")):
        path = files.get(name)
        if path:
            opts = ["rbind", "rprivate", "ro" if readonly else "rw"]
            mounts.append({"destination": dest, "type": "bind",
                           "source": path, "options": opts})
    shm = files.get("shm")
    if shm:
        mounts.append({"destination": "/dev/shm", "type": "bind",
                       "source": shm,
                       "options": ["rbind", "rprivate", "rw"]})
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs",
                       "source": "shm",
                       "options": ["nosuid", "noexec", "nodev",
                                   "mode=1777", "size=65536k"]})
    return mounts


# --- containers


def container_spec(config, sandbox, image_config, rootfs, cid,
                   cgroup_parent, files, pause_pid, target_pid=None,
                   passwd_root=None):
    """Return the config.json of a container in a pod.

    config is the CRI ContainerConfig, sandbox the PodSandboxConfig,
    image_config the image's parsed config JSON; pause_pid is the pid of
    the pod's pause process, whose namespaces the container joins;
    target_pid the pid whose PID namespace TARGET mode joins. Users and
    groups named by name are looked up in passwd_root (the mounted
    rootfs) /etc/passwd and /etc/group.
    """
    img = (image_config or {}).get("config") or {}
    sec = config.linux.security_context
    spec = base_spec(rootfs, readonly=sec.readonly_rootfs)
    proc = spec["process"]
    proc["args"] = _args(config, img)
    if not proc["args"]:
        raise InvalidArgument("no command specified: the image has no "
                              "entrypoint or cmd and the request none")
    proc["env"] = _env(config, img, sandbox.hostname)
    proc["cwd"] = config.working_dir or img.get("WorkingDir") or "/"
    proc["terminal"] = bool(config.tty)
    _check_group_has_user(sec)
    proc["user"] = _user(sec, img.get("User", ""), passwd_root)
    proc["noNewPrivileges"] = bool(sec.no_new_privs)
    linux = spec["linux"]
    linux["namespaces"] += _container_namespaces(
        sandbox, sec.namespace_options, pause_pid, target_pid)
    if sec.privileged:
        if not sandbox.linux.security_context.privileged:
            raise InvalidArgument(
                "privileged container in a non-privileged pod")
        _make_privileged(spec)
    else:
        proc["capabilities"] = _cap_set(sec.capabilities)
        if sec.masked_paths or sec.readonly_paths:
            linux["maskedPaths"] = list(sec.masked_paths)
            linux["readonlyPaths"] = list(sec.readonly_paths)
    _apply_resources(spec, config.linux.resources)
    _apply_seccomp(spec, sec, privileged=sec.privileged)
    _apply_devices(spec, config.devices, privileged=sec.privileged)
    linux["cgroupsPath"] = cgroup_path(cgroup_parent, cid)
    mounts = _pod_file_mounts(files, readonly=sec.readonly_rootfs)
    mounts += [_bind_mount(m, linux) for m in config.mounts]
    spec["mounts"] = _merge_mounts(spec["mounts"], mounts)
    spec["annotations"] = {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": config.metadata.name,
    }
    return spec


def _args(config, img):
    if config.command:
        return list(config.command) + list(config.args)
    entry = list(img.get("Entrypoint") or [])
    cmd = list(config.args) or list(img.get("Cmd") or [])
    return entry + cmd


def _env(config, img, hostname):
    env = {}
    order = []

    def put(item):
        key, _, value = item.partition("=")
        if key not in env:
            order.append(key)
        env[key] = value

    put(DEFAULT_PATH)
    if hostname:
        put(f"HOSTNAME={hostname}")
    for item in img.get("Env") or []:
        put(item)
    for kv in config.envs:
        put(f"{kv.key}={kv.value}")
    return [f"{k}={env[k]}" for k in order]


def _container_namespaces(sandbox, opts, pause_pid, target_pid):
    pod = _pod_ns_options(sandbox)
    out = []
    if pod.network != NODE:
        out.append({"type": "network", "path": f"/proc/{pause_pid}/ns/net"})
        out.append({"type": "uts", "path": f"/proc/{pause_pid}/ns/uts"})
    if pod.ipc != NODE:
        out.append({"type": "ipc", "path": f"/proc/{pause_pid}/ns/ipc"})
    mode = opts.pid
    if pod.pid == NODE or mode == NODE:
        return out
    if mode == POD or pod.pid == POD:
        out.append({"type": "pid", "path": f"/proc/{pause_pid}/ns/pid"})
    elif mode == TARGET:
        if not target_pid:
            raise InvalidArgument("pid namespace TARGET without a target")
        out.append({"type": "pid", "path": f"/proc/{target_pid}/ns/pid"})
    else:
        out.append({"type": "pid"})
    return out


def _cap_name(name):
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def _cap_set(caps):
    have = known_caps()
    current = list(DEFAULT_CAPS)
    adds = [_cap_name(c) for c in caps.add_capabilities]
    drops = [_cap_name(c) for c in caps.drop_capabilities]
    if "CAP_ALL" in drops:
        current = []
    if "CAP_ALL" in adds:
        current = list(have)
    for cap in adds:
        if cap != "CAP_ALL" and cap not in current:
            if cap not in ALL_CAPS:
                raise InvalidArgument(f"unknown capability `{cap}`")
            current.append(cap)
    current = [c for c in current if c not in drops or c in adds]
    current = [c for c in current if c in have]
    out = _caps(current)
    ambient = [_cap_name(c) for c in caps.add_ambient_capabilities]
    if ambient:
        out["ambient"] = ambient
        out["inheritable"] = list(ambient)
    return out


def _make_privileged(spec):
    spec["process"]["capabilities"] = _caps(known_caps())
    linux = spec["linux"]
    linux["maskedPaths"] = []
    linux["readonlyPaths"] = []
    linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    for m in spec["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]


def _user(sec, image_user, passwd_root):
    """Return process.user from the security context and image User."""
    user = {"uid": 0, "gid": 0}
    name = ""
    group = ""
    if sec.HasField("run_as_user"):
        user["uid"] = sec.run_as_user.value
    elif sec.run_as_username:
        name = sec.run_as_username
    elif image_user:
        name, _, group = image_user.partition(":")
    if name:
        if name.isdigit():
            user["uid"] = int(name)
        else:
            entry = _passwd_entry(passwd_root, name)
            if entry is None:
                raise InvalidArgument(f"no user `{name}` in the image")
            user["uid"] = entry[0]
    entry = _passwd_entry(passwd_root, uid=user["uid"])
    if entry is not None:
        user["gid"] = entry[1]
    if group:
        user["gid"] = _group_id(passwd_root, group)
    if sec.HasField("run_as_group"):
        user["gid"] = sec.run_as_group.value
    extra = []
    if entry is not None:
        extra = _member_groups(passwd_root, entry[2])
    for gid in sec.supplemental_groups:
        if gid not in extra:
            extra.append(gid)
    extra = [g for g in extra if g != user["gid"]]
    if extra:
        user["additionalGids"] = extra
    return user


def _read_db(root, name):
    if not root:
        return []
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, "etc", name))
    # A symlink in the image must not make us read a host file.
    if not path.startswith(real_root + "/"):
        return []
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f
                    if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def _passwd_entry(root, name=None, uid=None):
    """Return (uid, gid, name) of a passwd entry, or None."""
    for fields in _read_db(root, "passwd"):
        if len(fields) < 4:
            continue
        try:
            entry = (int(fields[2]), int(fields[3]), fields[0])
        except ValueError:
            continue
        if (name is not None and fields[0] == name) or \
                (uid is not None and entry[0] == uid):
            return entry
    return None


def _group_id(root, group):
    if group.isdigit():
        return int(group)
    for fields in _read_db(root, "group"):
        if len(fields) >= 3 and fields[0] == group:
            return int(fields[2])
    raise InvalidArgument(f"no group `{group}` in the image")


def _member_groups(root, username):
    out = []
    for fields in _read_db(root, "group"):
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        if username in fields[3].split(","):
            out.append(int(fields[2]))
    return out


def resources(res):
    """Return OCI linux.resources (without devices) for CRI resources."""
    out = {}
    cpu = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpu_quota:
        cpu["quota"] = res.cpu_quota
    if res.cpu_period:
        cpu["period"] = res.cpu_period
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        cpu["mems"] = res.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    memory = {}
    if res.memory_limit_in_bytes:
        memory["limit"] = res.memory_limit_in_bytes
    if res.memory_swap_limit_in_bytes:
        memory["swap"] = res.memory_swap_limit_in_bytes
    if memory:
        out["memory"] = memory
    if res.hugepage_limits:
        out["hugepageLimits"] = [
            {"pageSize": h.page_size, "limit": h.limit}
            for h in res.hugepage_limits]
    if res.unified:
        out["unified"] = dict(res.unified)
    return out


def _apply_resources(spec, res):
    spec["linux"]["resources"].update(resources(res))
    if res.oom_score_adj:
        spec["process"]["oomScoreAdj"] = res.oom_score_adj


def _apply_seccomp(spec, sec, privileged):
    bounding = spec["process"]["capabilities"]["bounding"]
    profile = seccomp.profile_for(sec, privileged, bounding)
    if profile is not None:
        spec["linux"]["seccomp"] = profile


def _apply_devices(spec, devices, privileged):
    linux = spec["linux"]
    for dev in devices:
        node = device_node(dev.host_path, dev.container_path)
        linux.setdefault("devices", []).append(node)
        if not privileged:
            linux["resources"]["devices"].append({
                "allow": True, "type": node["type"],
                "major": node["major"], "minor": node["minor"],
                "access": dev.permissions or "rwm"})


def device_node(host_path, container_path):
    """Return an OCI linux.devices entry for a host device node."""
    try:
        st = os.stat(host_path)
    except OSError as err:
        raise InvalidArgument(
            f"device {host_path}: {err.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"device {host_path}: not a device node")
    return {"path": container_path or host_path, "type": kind,
            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid}


def _bind_mount(m, linux):
    """Return the OCI mount of a CRI Mount; may set rootfsPropagation.

    As in containerd: a bidirectional mount needs a shared source mount
    and makes the container's root rshared (without it, the copy of the
    host's mount in the container's namespace is a slave, and mounts
    made in the container do not reach the host); a host-to-container
    one needs a shared or slave source and makes the root rslave.
    """
    if not m.container_path or not os.path.isabs(m.container_path):
        raise InvalidArgument(
            f"mount destination `{m.container_path}` is not absolute")
    if not os.path.exists(m.host_path):
        raise InvalidArgument(f"mount source {m.host_path} does not exist")
    if m.propagation == BIDIRECTIONAL:
        _check_source_propagation(m.host_path, ("shared:",), "a shared")
        prop = "rshared"
        linux["rootfsPropagation"] = "rshared"
    elif m.propagation == HOST_TO_CONTAINER:
        _check_source_propagation(m.host_path, ("shared:", "master:"),
                                  "a shared or slave")
        prop = "rslave"
        if linux.get("rootfsPropagation") not in ("rshared", "rslave"):
            linux["rootfsPropagation"] = "rslave"
    else:
        prop = "rprivate"
    opts = ["rbind", prop, "ro" if m.readonly else "rw"]
    return {"destination": m.container_path, "type": "bind",
            "source": m.host_path, "options": opts}


def _check_source_propagation(path, tags, what):
    """Refuse a source whose host mount has none of tags (mountinfo)."""
    real = os.path.realpath(path)
    found = _mount_of(real)
    if found is None:
        raise InvalidArgument(f"mount source {path}: no mount holds it")
    point, fields = found
    if not any(f.startswith(t) for f in fields for t in tags):
        raise InvalidArgument(
            f"mount source {path} is on the mount {point}, which is not "
            f"{what} mount")


def _mount_of(path):
    """Return (mount point, optional fields) of the mount holding path.

    The longest mount point that is path or a parent of it; of mounts
    stacked on one point, the last listed (the one on top).
    """
    best = None
    try:
        with open(MOUNTINFO) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 7 or "-" not in fields:
            continue
        point = _unescape(fields[4])
        inside = point == "/" or path == point or \
            path.startswith(point.rstrip("/") + "/")
        if not inside:
            continue
        if best is None or len(point) >= len(best[0]):
            best = (point, fields[6:fields.index("-")])
    return best


def _unescape(text):
    """Undo mountinfo's octal escapes (\\040 for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                  text)


def _merge_mounts(defaults, extra):
    """Later mounts replace earlier ones of the same destination."""
    by_dest = {}
    for m in defaults + extra:
        by_dest.pop(m["destination"], None)
        by_dest[m["destination"]] = m
    out = list(by_dest.values())
    # A mount inside another one must come after it.
    out.sort(key=lambda m: len(m["destination"].rstrip("/").split("/")))
    return copy.deepcopy(out)
