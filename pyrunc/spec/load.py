"""Read config.json from a bundle into a validated spec.model.Spec.

This is the only module that knows the OCI camelCase field names. The
parse accepts what runc 1.1.5 accepts: unknown fields are ignored, JSON
null means the field is absent, and every value must have the JSON type
of the Go field runc decodes it into (a bool or a float is never an
integer; an unsigned field refuses negative numbers). Semantic checks
follow runc's libcontainer/configs/validate. Every failure raises
SpecError with the JSON path of the offending value, for example
`linux.resources.memory.limit: expected an integer, got "abc"`.
"""

import os
import stat

from pyrunc import jsonfast
from pyrunc import log as _log
from pyrunc.errors import NotSupported, SpecError
from pyrunc.spec import model

log = _log.get_logger(__name__)

# Bounds of the Go integer types runc decodes each field into.
U16 = (0, (1 << 16) - 1)
U32 = (0, (1 << 32) - 1)
U64 = (0, (1 << 64) - 1)
I64 = (-(1 << 63), (1 << 63) - 1)

NAMESPACE_TYPES = frozenset(
    ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
)
PROPAGATIONS = frozenset(
    (
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    )
)
DEVICE_TYPES = ("c", "b", "u", "p")
DEVICE_RULE_TYPES = ("a", "b", "c")
RLIMIT_TYPES = frozenset(
    "RLIMIT_" + name
    for name in (
        "AS CORE CPU DATA FSIZE LOCKS MEMLOCK MSGQUEUE NICE NOFILE "
        "NPROC RSS RTPRIO RTTIME SIGPENDING STACK"
    ).split()
)
# Sysctls isolated by the ipc namespace besides the fs.mqueue.* family.
IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)


# --- public entry points


def load_bundle(bundle_dir, require_process=True):
    """Read, parse and validate `<bundle_dir>/config.json`.

    Checks that need the host (the rootfs exists and is a directory, a
    joined network namespace is not the host's, the kernel has the
    namespaces asked for) run here, after parse_spec. With
    require_process (create, run) a config without `process` is refused.

    >>> spec = load_bundle("/tmp/bundle")      # doctest: +SKIP
    >>> spec.process.args
    ['sh']
    """
    path = os.path.join(bundle_dir, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SpecError(None, f"not found in bundle {bundle_dir}") from None
    except OSError as err:
        raise SpecError(None, f"cannot read {path}: {err.strerror}") from err

    obj = decode_json(data)
    spec = parse_spec(obj)
    validate_host(spec, bundle_dir, require_process=require_process)
    return spec


def decode_json(data):
    """Decode config.json bytes; refuses NaN and Infinity like Go."""
    try:
        obj = jsonfast.loads(data, strict_numbers=True)
    except (ValueError, UnicodeDecodeError) as err:
        raise SpecError(None, f"invalid json: {err}") from None
    except RecursionError:
        # Go's decoder stops at 10000 levels; Python's stack much sooner.
        raise SpecError(None, "invalid json: nested too deeply") from None
    # A lone surrogate escape ("\ud800") cannot become a path or an
    # argument; Go's decoder reads it as U+FFFD, and so does pyrunc.
    escapes = ("\\ud", "\\uD")
    if isinstance(data, (bytes, bytearray)):
        escapes = tuple(e.encode() for e in escapes)
    if escapes[0] in data or escapes[1] in data:
        obj = _replace_surrogates(obj)
    return obj


def _replace_surrogates(value):
    if isinstance(value, str):
        if not any("\ud800" <= ch <= "\udfff" for ch in value):
            return value
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch
                       for ch in value)
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v)
                for k, v in value.items()}
    return value


def parse_spec(obj):
    """Build a Spec from a decoded config.json object and validate it.

    Runs every check that needs nothing but the JSON; validate_host does
    the rest.
    """
    if type(obj) is not dict:
        raise _want(None, "an object", obj)

    spec = model.Spec(
        oci_version=_str(obj, "ociVersion", "") or "",
        root=_parse_root(obj.get("root")),
        process=_parse_process(obj.get("process")),
        hostname=_opt_str(obj, "hostname", ""),
        domainname=_opt_str(obj, "domainname", ""),
        mounts=_objects(obj, "mounts", "", _parse_mount),
        hooks=_parse_hooks(obj.get("hooks")),
        # Only ever JSON (state, hooks): any string will do.
        annotations=_str_map(obj, "annotations", "", c_strings=False),
        linux=_parse_linux(obj.get("linux")),
        raw=obj,
    )
    _check_spec(spec)
    return spec


def parse_resources(obj, path="linux.resources"):
    """Build a Resources from a LinuxResources object (`update`)."""
    if obj is None:
        obj = {}
    _check_obj(obj, path)

    res = model.Resources(
        devices=_objects(obj, "devices", path, _parse_device_rule),
        memory=_maybe(obj, "memory", path, _parse_memory),
        cpu=_maybe(obj, "cpu", path, _parse_cpu),
        pids=_maybe(obj, "pids", path, _parse_pids),
        block_io=_maybe(obj, "blockIO", path, _parse_block_io),
        hugepage_limits=_objects(
            obj, "hugepageLimits", path, _parse_hugepage_limit
        ),
        network=_maybe(obj, "network", path, _parse_network),
        rdma=_parse_rdma(obj, path),
        unified=_str_map(obj, "unified", path),
    )
    _check_device_rules(res.devices, path)
    return res


def resolve_rootfs(spec, bundle_dir):
    """Return the absolute rootfs path, relative paths taken from bundle.

    The bundle path is resolved first, as runc works from its (physical)
    working directory inside the bundle.
    """
    bundle = os.path.realpath(bundle_dir)
    return os.path.join(bundle, spec.root.path)


def validate_host(spec, bundle_dir, require_process=True):
    """Run the checks of runc's validator that look at the host."""
    if require_process and spec.process is None:
        raise SpecError("process", "must be present to run a container")
    if spec.root is None:
        raise SpecError("root", "must be specified")

    _check_rootfs(resolve_rootfs(spec, bundle_dir))

    check_idmapped_mounts(spec)
    linux = spec.linux
    if linux is not None:
        _check_kernel_namespaces(linux)
        _check_host_net_sysctls(linux)
        _check_joined_userns(linux)

    if spec.process is not None:
        _check_selinux_label(spec.process)


def _check_selinux_label(proc):
    if proc.selinux_label and not _selinux_enabled():
        raise SpecError(
            "process.selinuxLabel",
            "selinux label is specified in config, but selinux is "
            "disabled or not supported",
        )


# --- JSON value helpers


def _join(path, key):
    if not path:
        return key
    return f"{path}.{key}"


def _show(value):
    if type(value) is dict:
        return "an object"
    if type(value) is list:
        return "an array"
    text = jsonfast.dumps(value)
    if len(text) > 64:
        text = text[:61] + "..."
    return text


def _want(path, what, value):
    return SpecError(path, f"expected {what}, got {_show(value)}")


def _check_obj(value, path):
    if type(value) is not dict:
        raise _want(path, "an object", value)


def _check_int(value, path, bounds):
    # bool is a subclass of int; Go refuses true for a number.
    if type(value) is not int:
        raise _want(path, "an integer", value)
    low, high = bounds
    if value < low or value > high:
        raise SpecError(
            path, f"expected an integer from {low} to {high}, got {value}"
        )
    return value


def _str(obj, key, path):
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise _want(_join(path, key), "a string", value)
    _check_nul(value, _join(path, key))
    return value


def _check_nul(value, where):
    # JSON allows "\u0000", but these strings end up as C strings (paths,
    # argv, mount data): the kernel would silently cut them there.
    if "\0" in value:
        raise SpecError(where, "contains a null byte")


def _opt_str(obj, key, path):
    # Go cannot tell "" from absent; neither do we.
    return _str(obj, key, path) or None


def _bool(obj, key, path):
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not bool:
        raise _want(_join(path, key), "a boolean", value)
    return value


def _int(obj, key, path, bounds):
    value = obj.get(key)
    if value is None:
        return None
    return _check_int(value, _join(path, key), bounds)


def _raw(obj, key, path):
    value = obj.get(key)
    if value is None:
        return None
    _check_obj(value, _join(path, key))
    return value


def _array(obj, key, path):
    value = obj.get(key)
    if value is None:
        return ()
    if type(value) is not list:
        raise _want(_join(path, key), "an array", value)
    return value


def _str_list(obj, key, path, c_strings=True):
    items = _array(obj, key, path)
    out = []
    for i, item in enumerate(items):
        if item is None:
            item = ""
        elif type(item) is not str:
            raise _want(f"{_join(path, key)}[{i}]", "a string", item)
        if c_strings:
            _check_nul(item, f"{_join(path, key)}[{i}]")
        out.append(item)
    return out


def _int_list(obj, key, path, bounds):
    items = _array(obj, key, path)
    where = _join(path, key)
    out = []
    for i, item in enumerate(items):
        if item is None:
            item = 0
        out.append(_check_int(item, f"{where}[{i}]", bounds))
    return out


def _str_map(obj, key, path, c_strings=True):
    value = obj.get(key)
    if value is None:
        return {}
    where = _join(path, key)
    _check_obj(value, where)
    out = {}
    for name, item in value.items():
        if item is None:
            item = ""
        elif type(item) is not str:
            raise _want(f"{where}[{jsonfast.dumps(name)}]", "a string", item)
        if c_strings:
            _check_nul(name + item, f"{where}[{jsonfast.dumps(name)}]")
        out[name] = item
    return out


def _maybe(obj, key, path, parse):
    value = obj.get(key)
    if value is None:
        return None
    where = _join(path, key)
    _check_obj(value, where)
    return parse(value, where)


def _objects(obj, key, path, parse):
    items = _array(obj, key, path)
    where = _join(path, key)
    out = []
    for i, item in enumerate(items):
        item_path = f"{where}[{i}]"
        if item is None:
            item = {}
        _check_obj(item, item_path)
        out.append(parse(item, item_path))
    return out


# --- structure


def _parse_root(obj):
    if obj is None:
        return None
    _check_obj(obj, "root")
    return model.Root(
        path=_str(obj, "path", "root") or "",
        readonly=bool(_bool(obj, "readonly", "root")),
    )


def _parse_id_mapping(obj, path):
    return model.IdMapping(
        container_id=_int(obj, "containerID", path, U32) or 0,
        host_id=_int(obj, "hostID", path, U32) or 0,
        size=_int(obj, "size", path, U32) or 0,
    )


def _parse_mount(obj, path):
    return model.Mount(
        destination=_str(obj, "destination", path) or "",
        type=_opt_str(obj, "type", path),
        source=_opt_str(obj, "source", path),
        options=_str_list(obj, "options", path),
        uid_mappings=_objects(obj, "uidMappings", path, _parse_id_mapping),
        gid_mappings=_objects(obj, "gidMappings", path, _parse_id_mapping),
    )


def _parse_hook(obj, path):
    return model.Hook(
        path=_str(obj, "path", path) or "",
        args=_str_list(obj, "args", path),
        env=_str_list(obj, "env", path),
        timeout=_int(obj, "timeout", path, I64),
    )


def _parse_hooks(obj):
    if obj is None:
        return model.Hooks()
    path = "hooks"
    _check_obj(obj, path)
    return model.Hooks(
        prestart=_objects(obj, "prestart", path, _parse_hook),
        create_runtime=_objects(obj, "createRuntime", path, _parse_hook),
        create_container=_objects(obj, "createContainer", path, _parse_hook),
        start_container=_objects(obj, "startContainer", path, _parse_hook),
        poststart=_objects(obj, "poststart", path, _parse_hook),
        poststop=_objects(obj, "poststop", path, _parse_hook),
    )


def _parse_console_size(obj, path):
    return model.ConsoleSize(
        height=_int(obj, "height", path, U64) or 0,
        width=_int(obj, "width", path, U64) or 0,
    )


def _parse_user(obj, path):
    return model.User(
        uid=_int(obj, "uid", path, U32) or 0,
        gid=_int(obj, "gid", path, U32) or 0,
        umask=_int(obj, "umask", path, U32),
        additional_gids=_int_list(obj, "additionalGids", path, U32),
        username=_opt_str(obj, "username", path),
    )


def _parse_capabilities(obj, path):
    return model.Capabilities(
        bounding=_str_list(obj, "bounding", path),
        effective=_str_list(obj, "effective", path),
        inheritable=_str_list(obj, "inheritable", path),
        permitted=_str_list(obj, "permitted", path),
        ambient=_str_list(obj, "ambient", path),
    )


def _parse_rlimit(obj, path):
    return model.Rlimit(
        type=_str(obj, "type", path) or "",
        soft=_int(obj, "soft", path, U64) or 0,
        hard=_int(obj, "hard", path, U64) or 0,
    )


def _parse_process(obj):
    if obj is None:
        return None
    path = "process"
    _check_obj(obj, path)
    user = _maybe(obj, "user", path, _parse_user)
    return model.Process(
        terminal=bool(_bool(obj, "terminal", path)),
        console_size=_maybe(obj, "consoleSize", path, _parse_console_size),
        user=user or model.User(),
        args=_str_list(obj, "args", path),
        # _check_env says what is wrong with a variable, NUL included.
        env=_str_list(obj, "env", path, c_strings=False),
        cwd=_str(obj, "cwd", path) or "",
        capabilities=_maybe(obj, "capabilities", path, _parse_capabilities),
        rlimits=_objects(obj, "rlimits", path, _parse_rlimit),
        no_new_privileges=bool(_bool(obj, "noNewPrivileges", path)),
        apparmor_profile=_opt_str(obj, "apparmorProfile", path),
        selinux_label=_opt_str(obj, "selinuxLabel", path),
        oom_score_adj=_int(obj, "oomScoreAdj", path, I64),
        scheduler=_raw(obj, "scheduler", path),
        io_priority=_raw(obj, "ioPriority", path),
        command_line=_opt_str(obj, "commandLine", path),
    )


def _parse_namespace(obj, path):
    return model.Namespace(
        type=_str(obj, "type", path) or "",
        path=_opt_str(obj, "path", path),
    )


def _parse_device(obj, path):
    device_path = _str(obj, "path", path) or ""
    if device_path.startswith("/"):
        # As for a mount destination: "/dev/../etc" names /etc, which
        # the plan then refuses as not below /dev.
        device_path = clean_path(device_path)
    return model.Device(
        type=_str(obj, "type", path) or "",
        path=device_path,
        major=_int(obj, "major", path, I64),
        minor=_int(obj, "minor", path, I64),
        file_mode=_int(obj, "fileMode", path, U32),
        uid=_int(obj, "uid", path, U32),
        gid=_int(obj, "gid", path, U32),
    )


def _parse_linux(obj):
    if obj is None:
        return None
    path = "linux"
    _check_obj(obj, path)
    return model.Linux(
        namespaces=_objects(obj, "namespaces", path, _parse_namespace),
        uid_mappings=_objects(obj, "uidMappings", path, _parse_id_mapping),
        gid_mappings=_objects(obj, "gidMappings", path, _parse_id_mapping),
        devices=_objects(obj, "devices", path, _parse_device),
        cgroups_path=_opt_str(obj, "cgroupsPath", path),
        resources=_maybe(obj, "resources", path, parse_resources),
        rootfs_propagation=_opt_str(obj, "rootfsPropagation", path),
        masked_paths=_str_list(obj, "maskedPaths", path),
        readonly_paths=_str_list(obj, "readonlyPaths", path),
        sysctl=_str_map(obj, "sysctl", path),
        seccomp=_raw(obj, "seccomp", path),
        mount_label=_opt_str(obj, "mountLabel", path),
        time_offsets=_raw(obj, "timeOffsets", path),
        personality=_raw(obj, "personality", path),
        intel_rdt=_raw(obj, "intelRdt", path),
    )


# --- linux.resources


def _parse_device_rule(obj, path):
    return model.DeviceRule(
        allow=bool(_bool(obj, "allow", path)),
        type=_opt_str(obj, "type", path),
        major=_int(obj, "major", path, I64),
        minor=_int(obj, "minor", path, I64),
        access=_opt_str(obj, "access", path),
    )


def _parse_memory(obj, path):
    return model.Memory(
        limit=_int(obj, "limit", path, I64),
        reservation=_int(obj, "reservation", path, I64),
        swap=_int(obj, "swap", path, I64),
        kernel=_int(obj, "kernel", path, I64),
        kernel_tcp=_int(obj, "kernelTCP", path, I64),
        swappiness=_int(obj, "swappiness", path, U64),
        disable_oom_killer=_bool(obj, "disableOOMKiller", path),
        use_hierarchy=_bool(obj, "useHierarchy", path),
        check_before_update=_bool(obj, "checkBeforeUpdate", path),
    )


def _parse_cpu(obj, path):
    return model.Cpu(
        shares=_int(obj, "shares", path, U64),
        quota=_int(obj, "quota", path, I64),
        period=_int(obj, "period", path, U64),
        realtime_runtime=_int(obj, "realtimeRuntime", path, I64),
        realtime_period=_int(obj, "realtimePeriod", path, U64),
        cpus=_opt_str(obj, "cpus", path),
        mems=_opt_str(obj, "mems", path),
        idle=_int(obj, "idle", path, I64),
        burst=_int(obj, "burst", path, U64),
    )


def _parse_pids(obj, path):
    return model.Pids(limit=_int(obj, "limit", path, I64) or 0)


def _parse_weight_device(obj, path):
    return model.WeightDevice(
        major=_int(obj, "major", path, I64) or 0,
        minor=_int(obj, "minor", path, I64) or 0,
        weight=_int(obj, "weight", path, U16),
        leaf_weight=_int(obj, "leafWeight", path, U16),
    )


def _parse_throttle_device(obj, path):
    return model.ThrottleDevice(
        major=_int(obj, "major", path, I64) or 0,
        minor=_int(obj, "minor", path, I64) or 0,
        rate=_int(obj, "rate", path, U64) or 0,
    )


def _parse_block_io(obj, path):
    throttle = _parse_throttle_device
    return model.BlockIO(
        weight=_int(obj, "weight", path, U16),
        leaf_weight=_int(obj, "leafWeight", path, U16),
        weight_device=_objects(
            obj, "weightDevice", path, _parse_weight_device
        ),
        throttle_read_bps_device=_objects(
            obj, "throttleReadBpsDevice", path, throttle
        ),
        throttle_write_bps_device=_objects(
            obj, "throttleWriteBpsDevice", path, throttle
        ),
        throttle_read_iops_device=_objects(
            obj, "throttleReadIOPSDevice", path, throttle
        ),
        throttle_write_iops_device=_objects(
            obj, "throttleWriteIOPSDevice", path, throttle
        ),
    )


def _parse_hugepage_limit(obj, path):
    return model.HugepageLimit(
        page_size=_str(obj, "pageSize", path) or "",
        limit=_int(obj, "limit", path, U64) or 0,
    )


def _parse_priority(obj, path):
    name = _str(obj, "name", path) or ""
    prio = _int(obj, "priority", path, U32) or 0
    return (name, prio)


def _parse_network(obj, path):
    return model.Network(
        class_id=_int(obj, "classID", path, U32),
        priorities=_objects(obj, "priorities", path, _parse_priority),
    )


def _parse_rdma(obj, path):
    value = obj.get("rdma")
    if value is None:
        return {}
    where = _join(path, "rdma")
    _check_obj(value, where)
    for name, limits in value.items():
        item_path = f"{where}[{jsonfast.dumps(name)}]"
        if limits is None:
            continue
        _check_obj(limits, item_path)
        _int(limits, "hcaHandles", item_path, U32)
        _int(limits, "hcaObjects", item_path, U32)
    return value


# --- semantic checks that need only the JSON


def _check_spec(spec):
    if spec.process is not None:
        _check_process(spec.process)
    for i, mount in enumerate(spec.mounts):
        _check_mount(mount, f"mounts[{i}]")
    _check_hooks(spec.hooks)

    linux = spec.linux or model.Linux()
    present = _check_namespaces(linux)
    _check_uts(spec, present)
    _check_linux(linux, present)
    _check_sysctls(linux, present)


def _check_process(proc):
    if not proc.cwd:
        raise SpecError("process.cwd", "must not be empty")
    if not proc.cwd.startswith("/"):
        raise SpecError("process.cwd", "must be an absolute path")
    if not proc.args:
        raise SpecError("process.args", "must not be empty")
    for i, pair in enumerate(proc.env):
        _check_env(pair, f"process.env[{i}]")
    for i, rlimit in enumerate(proc.rlimits):
        _check_rlimit(rlimit, f"process.rlimits[{i}]")


def _check_env(pair, path):
    name, sep, value = pair.partition("=")
    if not sep:
        raise SpecError(path, f"invalid environment variable {pair!r}")
    if not name:
        raise SpecError(path, "environment variable name can't be empty")
    if "\0" in pair:
        raise SpecError(path, "environment variable contains a null byte")


def _check_rlimit(rlimit, path):
    if rlimit.type not in RLIMIT_TYPES:
        raise SpecError(f"{path}.type", f"unknown rlimit {rlimit.type!r}")
    # setrlimit(2) would fail with EINVAL in the child; say why up front.
    if rlimit.soft > rlimit.hard:
        raise SpecError(
            path,
            f"soft limit {rlimit.soft} exceeds hard limit {rlimit.hard}",
        )


def _check_mount(mount, path):
    where = f"{path}.destination"
    if not mount.destination:
        raise SpecError(where, "must not be empty")
    # The mount arguments travel to the child as C strings.
    for key, value in (
        ("destination", mount.destination),
        ("source", mount.source),
        ("type", mount.type),
    ):
        if value and "\0" in value:
            raise SpecError(f"{path}.{key}", "contains a null byte")
    if not mount.destination.startswith("/"):
        # runc 1.1.5 only warns and mounts relative to the rootfs; keep
        # that, but hand the rest of pyrunc an absolute path.
        log.warning(
            "mount destination %s is not absolute; using /%s",
            mount.destination,
            mount.destination,
        )
        mount.destination = "/" + mount.destination
    # Clean the path lexically, as runc does: ".." never climbs above
    # the rootfs, whatever the executor's resolution does with it.
    mount.destination = clean_path(mount.destination)
    if mount.destination == "/":
        # It would cover the rootfs that pivot_root then enters; runc
        # fails it too, less clearly.
        raise SpecError(where, "cannot mount over the container's root; "
                        "root.path names the rootfs")


def clean_path(path):
    """Go's filepath.Clean of an absolute path: no ".", "..", "//"."""
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


_HOOK_POINTS = (
    ("prestart", "prestart"),
    ("createRuntime", "create_runtime"),
    ("createContainer", "create_container"),
    ("startContainer", "start_container"),
    ("poststart", "poststart"),
    ("poststop", "poststop"),
)


def _check_hooks(hooks):
    for name, attr in _HOOK_POINTS:
        for i, hook in enumerate(getattr(hooks, attr)):
            path = f"hooks.{name}[{i}]"
            if not hook.path:
                raise SpecError(f"{path}.path", "must not be empty")
            if hook.timeout is not None and hook.timeout <= 0:
                raise SpecError(f"{path}.timeout", "must be greater than zero")


def _check_namespaces(linux):
    present = {}
    for i, ns in enumerate(linux.namespaces):
        path = f"linux.namespaces[{i}]"
        if ns.type not in NAMESPACE_TYPES:
            raise SpecError(
                f"{path}.type", f"unknown namespace type {ns.type!r}"
            )
        if ns.type in present:
            raise SpecError(path, f"duplicated namespace {ns.type!r}")
        present[ns.type] = ns
    return present


def _check_uts(spec, present):
    if "uts" in present:
        return
    if spec.hostname:
        raise SpecError(
            "hostname",
            "unable to set hostname without a private uts namespace",
        )
    # runc 1.1.5 ignores domainname; setting it here would change the
    # host's, so refuse it as later runc versions do.
    if spec.domainname:
        raise SpecError(
            "domainname",
            "unable to set domainname without a private uts namespace",
        )


def _check_linux(linux, present):
    prop = linux.rootfs_propagation
    if prop is not None and prop not in PROPAGATIONS:
        raise SpecError(
            "linux.rootfsPropagation", f"{prop!r} is not supported"
        )

    if "mount" not in present:
        if linux.masked_paths:
            raise SpecError(
                "linux.maskedPaths",
                "unable to restrict sys entries without a private mount "
                "namespace",
            )
        if linux.readonly_paths:
            raise SpecError(
                "linux.readonlyPaths",
                "unable to restrict sys entries without a private mount "
                "namespace",
            )

    user = present.get("user")
    if user is not None and user.path is None:
        if not linux.uid_mappings:
            raise SpecError(
                "linux.uidMappings",
                "user namespace enabled, but no namespace path to join "
                "nor uid mappings specified",
            )
        if not linux.gid_mappings:
            raise SpecError(
                "linux.gidMappings",
                "user namespace enabled, but no namespace path to join "
                "nor gid mappings specified",
            )
    if user is None and (linux.uid_mappings or linux.gid_mappings):
        # runc 1.1.5 ignores the mappings in this case.
        log.debug("uid/gid mappings ignored without a user namespace")

    if linux.cgroups_path and "\0" in linux.cgroups_path:
        raise SpecError("linux.cgroupsPath", "contains a null byte")

    _check_time(linux, present)

    for i, dev in enumerate(linux.devices):
        _check_device(dev, f"linux.devices[{i}]")

    if linux.intel_rdt is not None:
        clos = linux.intel_rdt.get("closID")
        if clos is not None and (
            type(clos) is not str or clos in (".", "..") or "/" in clos
        ):
            raise SpecError(
                "linux.intelRdt.closID", f"invalid value {_show(clos)}"
            )


def _check_time(linux, present):
    time_ns = present.get("time")
    if linux.time_offsets:
        if time_ns is None:
            raise SpecError(
                "linux.timeOffsets",
                "time namespace offsets specified, but time namespace "
                "isn't enabled in the config",
            )
        if time_ns.path is not None:
            raise SpecError(
                "linux.timeOffsets",
                "time namespace offsets cannot be applied when joining an "
                "existing time namespace",
            )
        for clock, offset in linux.time_offsets.items():
            where = f"linux.timeOffsets[{jsonfast.dumps(clock)}]"
            if clock not in ("monotonic", "boottime"):
                raise SpecError(where, "unknown clock")
            if offset is None:
                continue
            _check_obj(offset, where)
            _int(offset, "secs", where, I64)
            _int(offset, "nanosecs", where, U32)


def _check_device(dev, path):
    if dev.type not in DEVICE_TYPES:
        raise SpecError(
            f"{path}.type",
            f"invalid device type {dev.type!r}, expected one of c, b, u, p",
        )
    if not dev.path:
        raise SpecError(f"{path}.path", "must not be empty")


def _check_device_rules(rules, path):
    for i, rule in enumerate(rules):
        where = f"{path}.devices[{i}]"
        if rule.type is not None and rule.type not in DEVICE_RULE_TYPES:
            raise SpecError(
                f"{where}.type",
                f"invalid cgroup device type {rule.type!r}",
            )
        if not rule.access:
            raise SpecError(f"{where}.access", "must not be empty")
        if rule.access.strip("rwm"):
            raise SpecError(
                f"{where}.access",
                f"invalid access {rule.access!r}, expected letters of rwm",
            )


def sysctl_dotted(name):
    """Return a sysctl name with dots as separators.

    sysctl.d(5) also accepts slashes; when the first separator is a
    slash the roles swap, so "net/ipv4/conf/eth0.100/rp_filter" means
    "net.ipv4.conf.eth0/100.rp_filter".
    """
    for ch in name:
        if ch == ".":
            return name
        if ch == "/":
            return name.translate(_SWAP_SEPARATORS)
    return name


_SWAP_SEPARATORS = str.maketrans("./", "/.")


def _check_sysctls(linux, present):
    # /proc/sys is only partly namespaced: allow what the namespaces of
    # this container isolate, and nothing that would reach the host.
    for key in linux.sysctl:
        name = sysctl_dotted(key)
        where = f"linux.sysctl[{jsonfast.dumps(key)}]"
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in present:
                raise SpecError(
                    where, "not allowed in the host's ipc namespace"
                )
            continue
        if name.startswith("net."):
            # A joined netns is checked against the host's in
            # validate_host.
            if "network" not in present:
                raise SpecError(
                    where, "not allowed in the host's network namespace"
                )
            continue
        if "uts" in present:
            if name == "kernel.domainname":
                continue
            if name == "kernel.hostname":
                raise SpecError(
                    where, 'conflicts with the OCI "hostname" field'
                )
        raise SpecError(where, "is not in a separate kernel namespace")


# --- checks that look at the host


def _check_rootfs(rootfs):
    try:
        st = os.stat(rootfs)
    except OSError as err:
        raise SpecError(
            "root.path", f"invalid rootfs {rootfs}: {err.strerror}"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SpecError(
            "root.path", f"invalid rootfs {rootfs}: not a directory"
        )
    # runc refuses a rootfs reached through a symlink, as the mounts
    # inside it are resolved against the path it was given.
    if os.path.realpath(rootfs) != os.path.normpath(rootfs):
        raise SpecError(
            "root.path", f"invalid rootfs {rootfs}: path has a symlink"
        )


def _check_kernel_namespaces(linux):
    for i, ns in enumerate(linux.namespaces):
        if ns.type not in ("user", "cgroup", "time"):
            continue
        if not os.path.exists(f"/proc/self/ns/{ns.type}"):
            raise SpecError(
                f"linux.namespaces[{i}]",
                f"{ns.type} namespaces aren't enabled in the kernel",
            )


def _check_host_net_sysctls(linux):
    if not any(sysctl_dotted(k).startswith("net.") for k in linux.sysctl):
        return
    index, netns = _find_namespace(linux, "network")
    if netns is None or netns.path is None:
        return

    where = f"linux.namespaces[{index}].path"
    try:
        ours = os.stat("/proc/self/ns/net")
        theirs = os.stat(netns.path)
    except OSError as err:
        raise SpecError(
            where, f"invalid netns path {err.filename}: {err.strerror}"
        ) from None
    # "Host" means the namespace pyrunc itself runs in.
    if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
        raise SpecError(
            "linux.sysctl",
            "net.* sysctls are not allowed in the host's network namespace",
        )


def check_idmapped_mounts(spec):
    """Check each mount's idmapping, as runc 1.2 and the spec's rules do.

    An idmapped mount (`uidMappings` and `gidMappings`, or the `idmap` /
    `ridmap` options) must be a bind mount and name both maps. Without
    maps of its own it takes the container's user namespace, so the
    container must have one. runc 1.2 needs no user namespace for a mount
    with maps, and neither do we. Like runc, a runtime without root is
    refused: only the host's root may idmap a mount of a host filesystem.
    """
    linux = spec.linux
    userns = None
    if linux is not None:
        userns = _find_namespace(linux, "user")[1]
    for index, mount in enumerate(spec.mounts):
        _check_idmapped_mount(mount, f"mounts[{index}]", userns)


def _check_idmapped_mount(mount, path, userns):
    options = mount.options or ()
    has_option = "idmap" in options or "ridmap" in options
    if mount.uid_mappings:
        field = f"{path}.uidMappings"
    elif mount.gid_mappings:
        field = f"{path}.gidMappings"
    elif has_option:
        field = f"{path}.options"
    else:
        return
    if mount.type != "bind" and "bind" not in options and \
            "rbind" not in options:
        raise SpecError(field, "idmapped mounts are only supported for "
                        "bind mounts")
    if os.geteuid() != 0:
        raise NotSupported(f"{field}: idmapped mounts are not supported "
                           "for rootless containers")
    if mount.uid_mappings and not mount.gid_mappings:
        raise SpecError(f"{path}.gidMappings", "must be given along with "
                        "uidMappings for an idmapped mount")
    if mount.gid_mappings and not mount.uid_mappings:
        raise SpecError(f"{path}.uidMappings", "must be given along with "
                        "gidMappings for an idmapped mount")
    if not mount.uid_mappings and userns is None:
        raise SpecError(field, "idmap without uidMappings and gidMappings "
                        "needs the container's user namespace, and there "
                        "is none")
    for key, maps in (("uidMappings", mount.uid_mappings),
                      ("gidMappings", mount.gid_mappings)):
        for i, m in enumerate(maps):
            if m.size == 0:
                raise SpecError(f"{path}.{key}[{i}].size", "must not be 0")


def _check_joined_userns(linux):
    """Mappings given with a user namespace to join must be its own.

    containerd and CRI-O send both the path and the mappings; runc 1.2
    refuses the config when they disagree, rather than run the container
    with ids other than those its engine expects.
    """
    index, userns = _find_namespace(linux, "user")
    if userns is None or userns.path is None:
        return
    if not linux.uid_mappings and not linux.gid_mappings:
        return
    where = f"linux.namespaces[{index}].path"
    try:
        uid_map, gid_map = userns_maps(userns.path)
    except OSError as err:
        raise SpecError(
            where, f"cannot read the mappings of {userns.path}: "
            f"{err.strerror}") from None
    for field, wanted, have in (("linux.uidMappings", linux.uid_mappings,
                                 uid_map),
                                ("linux.gidMappings", linux.gid_mappings,
                                 gid_map)):
        given = sorted((m.container_id, m.host_id, m.size) for m in wanted)
        if wanted and given != sorted(have):
            raise SpecError(
                field, f"user namespace at path {userns.path} has an "
                "incompatible mapping")


def userns_maps(path):
    """Return (uid_map, gid_map) of the user namespace at path.

    Each is a list of (inside, outside, size) with outside ids as this
    process sees them. /proc/<pid>/ns/user is read through that pid; any
    other nsfs file through a short-lived child that enters it.
    """
    parts = os.path.normpath(path).split("/")
    if len(parts) == 5 and parts[:2] == ["", "proc"] and \
            parts[2].isdigit() and parts[3:] == ["ns", "user"]:
        base = f"/proc/{parts[2]}"
        return (_read_id_map(f"{base}/uid_map"),
                _read_id_map(f"{base}/gid_map"))
    return _userns_maps_via_child(path)


def _read_id_map(path):
    with open(path) as f:
        text = f.read()
    return _parse_id_map(text)


def _parse_id_map(text):
    return [tuple(int(x) for x in line.split())
            for line in text.splitlines() if line.strip()]


def _userns_maps_via_child(path):
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The child: enter the namespace and report its own maps, which
        # then read relative to the namespace's parent, as configs give.
        status = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, 0x10000000) == 0:
                data = b""
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/self/{name}", "rb") as f:
                        data += f.read() + b"--\n"
                os.write(wfd, data)
                status = 0
            else:
                os.write(wfd, b"%d" % ctypes.get_errno())
        finally:
            os._exit(status)
    os.close(fd)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks).decode()
    if status != 0:
        err = int(data) if data.isdigit() else 0
        raise OSError(err, os.strerror(err) if err else "setns failed")
    uid_text, gid_text = data.split("--\n")[:2]
    return _parse_id_map(uid_text), _parse_id_map(gid_text)


def _find_namespace(linux, ns_type):
    for i, ns in enumerate(linux.namespaces):
        if ns.type == ns_type:
            return i, ns
    return -1, None


def _selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def parse_process(obj):
    """Parse and check a runtime-spec Process object on its own.

    `exec --process FILE` reads one, as containerd writes it; errors name
    the field below ``process``.
    """
    proc = _parse_process(obj)
    if proc is None:
        raise SpecError("process", "must be an object")
    _check_process(proc)
    _check_selinux_label(proc)
    return proc
