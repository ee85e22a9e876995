"""Typed model of an OCI runtime config.json, with snake_case attributes.

The classes hold values as config.json gives them: a field the JSON
leaves out or sets to null is None (an empty list or dict for
collections, the Go zero value for fields runc never treats as
optional). An empty string in an optional string field is None too, as
runc cannot tell the two apart. Defaults that runc applies later
(default devices, cgroup device rules) are not filled in here.
`pyrunc.spec.load` builds these objects and is the only module that
knows the camelCase names.
"""

# The annotations document the fields; postponed, they stay strings and
# cost nothing when the CLI imports this module.
from __future__ import annotations


class _Model:
    """Shared behaviour of the model classes: repr, equality, replace.

    Plain classes with __slots__ rather than dataclasses: building some
    thirty dataclasses costs several milliseconds at every CLI start.
    """

    __slots__ = ()

    # Slots left out of repr and ==; Spec.raw repeats the whole JSON.
    _hidden = ()

    def __repr__(self):
        parts = [
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if name not in self._hidden
        ]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(
            getattr(self, name) == getattr(other, name)
            for name in self.__slots__
            if name not in self._hidden
        )

    __hash__ = None

    def replace(self, **changes):
        """Return a shallow copy with some attributes changed."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return type(self)(**values)

    def to_dict(self):
        """Return the attributes as a dict (nested models stay objects)."""
        return {name: getattr(self, name) for name in self.__slots__}


class Root(_Model):
    """The container's root filesystem (`root`)."""

    __slots__ = ("path", "readonly")

    path: str
    readonly: bool

    def __init__(self, path="", readonly=False):
        self.path = path
        self.readonly = readonly


class IdMapping(_Model):
    """One line of a uid or gid map (`linux.uidMappings[]`)."""

    __slots__ = ("container_id", "host_id", "size")

    container_id: int
    host_id: int
    size: int

    def __init__(self, container_id=0, host_id=0, size=0):
        self.container_id = container_id
        self.host_id = host_id
        self.size = size


class Mount(_Model):
    """One entry of `mounts`; options are parsed by spec.mountopts."""

    __slots__ = (
        "destination",
        "type",
        "source",
        "options",
        "uid_mappings",
        "gid_mappings",
    )

    destination: str
    type: str | None
    source: str | None
    options: list[str]
    uid_mappings: list[IdMapping]
    gid_mappings: list[IdMapping]

    def __init__(
        self,
        destination="",
        type=None,
        source=None,
        options=None,
        uid_mappings=None,
        gid_mappings=None,
    ):
        self.destination = destination
        self.type = type
        self.source = source
        self.options = [] if options is None else options
        self.uid_mappings = [] if uid_mappings is None else uid_mappings
        self.gid_mappings = [] if gid_mappings is None else gid_mappings


class Hook(_Model):
    """A lifecycle hook command; timeout is in seconds."""

    __slots__ = ("path", "args", "env", "timeout")

    path: str
    args: list[str]
    env: list[str]
    timeout: int | None

    def __init__(self, path="", args=None, env=None, timeout=None):
        self.path = path
        self.args = [] if args is None else args
        self.env = [] if env is None else env
        self.timeout = timeout


class Hooks(_Model):
    """The hooks of every lifecycle point, each list possibly empty."""

    __slots__ = (
        "prestart",
        "create_runtime",
        "create_container",
        "start_container",
        "poststart",
        "poststop",
    )

    prestart: list[Hook]
    create_runtime: list[Hook]
    create_container: list[Hook]
    start_container: list[Hook]
    poststart: list[Hook]
    poststop: list[Hook]

    def __init__(
        self,
        prestart=None,
        create_runtime=None,
        create_container=None,
        start_container=None,
        poststart=None,
        poststop=None,
    ):
        self.prestart = [] if prestart is None else prestart
        self.create_runtime = [] if create_runtime is None else create_runtime
        if create_container is None:
            create_container = []
        self.create_container = create_container
        if start_container is None:
            start_container = []
        self.start_container = start_container
        self.poststart = [] if poststart is None else poststart
        self.poststop = [] if poststop is None else poststop


class ConsoleSize(_Model):
    """Initial size of the terminal (`process.consoleSize`)."""

    __slots__ = ("height", "width")

    height: int
    width: int

    def __init__(self, height=0, width=0):
        self.height = height
        self.width = width


class User(_Model):
    """The identity the container process runs as."""

    __slots__ = ("uid", "gid", "umask", "additional_gids", "username")

    uid: int
    gid: int
    umask: int | None
    additional_gids: list[int]
    username: str | None

    def __init__(
        self,
        uid=0,
        gid=0,
        umask=None,
        additional_gids=None,
        username=None,
    ):
        self.uid = uid
        self.gid = gid
        self.umask = umask
        if additional_gids is None:
            additional_gids = []
        self.additional_gids = additional_gids
        self.username = username


class Capabilities(_Model):
    """Capability sets by name (`CAP_KILL`); a missing set is empty."""

    __slots__ = (
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    )

    bounding: list[str]
    effective: list[str]
    inheritable: list[str]
    permitted: list[str]
    ambient: list[str]

    def __init__(
        self,
        bounding=None,
        effective=None,
        inheritable=None,
        permitted=None,
        ambient=None,
    ):
        self.bounding = [] if bounding is None else bounding
        self.effective = [] if effective is None else effective
        self.inheritable = [] if inheritable is None else inheritable
        self.permitted = [] if permitted is None else permitted
        self.ambient = [] if ambient is None else ambient


class Rlimit(_Model):
    """One POSIX resource limit; type is a name such as RLIMIT_NOFILE."""

    __slots__ = ("type", "soft", "hard")

    type: str
    soft: int
    hard: int

    def __init__(self, type="", soft=0, hard=0):
        self.type = type
        self.soft = soft
        self.hard = hard


class Process(_Model):
    """The container's init process (`process`)."""

    __slots__ = (
        "terminal",
        "console_size",
        "user",
        "args",
        "env",
        "cwd",
        "capabilities",
        "rlimits",
        "no_new_privileges",
        "apparmor_profile",
        "selinux_label",
        "oom_score_adj",
        "scheduler",
        "io_priority",
        "command_line",
    )

    terminal: bool
    console_size: ConsoleSize | None
    user: User
    args: list[str]
    env: list[str]
    cwd: str
    capabilities: Capabilities | None
    rlimits: list[Rlimit]
    no_new_privileges: bool
    apparmor_profile: str | None
    selinux_label: str | None
    oom_score_adj: int | None
    scheduler: dict | None
    io_priority: dict | None
    command_line: str | None

    def __init__(
        self,
        terminal=False,
        console_size=None,
        user=None,
        args=None,
        env=None,
        cwd="",
        capabilities=None,
        rlimits=None,
        no_new_privileges=False,
        apparmor_profile=None,
        selinux_label=None,
        oom_score_adj=None,
        scheduler=None,
        io_priority=None,
        command_line=None,
    ):
        self.terminal = terminal
        self.console_size = console_size
        self.user = User() if user is None else user
        self.args = [] if args is None else args
        self.env = [] if env is None else env
        self.cwd = cwd
        self.capabilities = capabilities
        self.rlimits = [] if rlimits is None else rlimits
        self.no_new_privileges = no_new_privileges
        self.apparmor_profile = apparmor_profile
        self.selinux_label = selinux_label
        self.oom_score_adj = oom_score_adj
        self.scheduler = scheduler
        self.io_priority = io_priority
        self.command_line = command_line


class Namespace(_Model):
    """A namespace to create, or to join when path is set."""

    __slots__ = ("type", "path")

    type: str
    path: str | None

    def __init__(self, type="", path=None):
        self.type = type
        self.path = path


class Device(_Model):
    """A device node to create in the container (`linux.devices[]`)."""

    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")

    type: str
    path: str
    major: int | None
    minor: int | None
    file_mode: int | None
    uid: int | None
    gid: int | None

    def __init__(
        self,
        type="",
        path="",
        major=None,
        minor=None,
        file_mode=None,
        uid=None,
        gid=None,
    ):
        self.type = type
        self.path = path
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid


class DeviceRule(_Model):
    """A device cgroup rule; None for type, major or minor means any."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    allow: bool
    type: str | None
    major: int | None
    minor: int | None
    access: str | None

    def __init__(
        self,
        allow=False,
        type=None,
        major=None,
        minor=None,
        access=None,
    ):
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access


class Memory(_Model):
    """Memory controller settings; None leaves the kernel's value."""

    __slots__ = (
        "limit",
        "reservation",
        "swap",
        "kernel",
        "kernel_tcp",
        "swappiness",
        "disable_oom_killer",
        "use_hierarchy",
        "check_before_update",
    )

    limit: int | None
    reservation: int | None
    swap: int | None
    kernel: int | None
    kernel_tcp: int | None
    swappiness: int | None
    disable_oom_killer: bool | None
    use_hierarchy: bool | None
    check_before_update: bool | None

    def __init__(
        self,
        limit=None,
        reservation=None,
        swap=None,
        kernel=None,
        kernel_tcp=None,
        swappiness=None,
        disable_oom_killer=None,
        use_hierarchy=None,
        check_before_update=None,
    ):
        self.limit = limit
        self.reservation = reservation
        self.swap = swap
        self.kernel = kernel
        self.kernel_tcp = kernel_tcp
        self.swappiness = swappiness
        self.disable_oom_killer = disable_oom_killer
        self.use_hierarchy = use_hierarchy
        self.check_before_update = check_before_update


class Cpu(_Model):
    """CPU and cpuset controller settings."""

    __slots__ = (
        "shares",
        "quota",
        "period",
        "realtime_runtime",
        "realtime_period",
        "cpus",
        "mems",
        "idle",
        "burst",
    )

    shares: int | None
    quota: int | None
    period: int | None
    realtime_runtime: int | None
    realtime_period: int | None
    cpus: str | None
    mems: str | None
    idle: int | None
    burst: int | None

    def __init__(
        self,
        shares=None,
        quota=None,
        period=None,
        realtime_runtime=None,
        realtime_period=None,
        cpus=None,
        mems=None,
        idle=None,
        burst=None,
    ):
        self.shares = shares
        self.quota = quota
        self.period = period
        self.realtime_runtime = realtime_runtime
        self.realtime_period = realtime_period
        self.cpus = cpus
        self.mems = mems
        self.idle = idle
        self.burst = burst


class Pids(_Model):
    """Pids controller settings; 0 leaves the limit unchanged."""

    __slots__ = ("limit",)

    limit: int

    def __init__(self, limit=0):
        self.limit = limit


class WeightDevice(_Model):
    """A per-device blkio weight."""

    __slots__ = ("major", "minor", "weight", "leaf_weight")

    major: int
    minor: int
    weight: int | None
    leaf_weight: int | None

    def __init__(self, major=0, minor=0, weight=None, leaf_weight=None):
        self.major = major
        self.minor = minor
        self.weight = weight
        self.leaf_weight = leaf_weight


class ThrottleDevice(_Model):
    """A per-device blkio rate limit (bytes or operations per second)."""

    __slots__ = ("major", "minor", "rate")

    major: int
    minor: int
    rate: int

    def __init__(self, major=0, minor=0, rate=0):
        self.major = major
        self.minor = minor
        self.rate = rate


class BlockIO(_Model):
    """Block I/O controller settings (`linux.resources.blockIO`)."""

    __slots__ = (
        "weight",
        "leaf_weight",
        "weight_device",
        "throttle_read_bps_device",
        "throttle_write_bps_device",
        "throttle_read_iops_device",
        "throttle_write_iops_device",
    )

    weight: int | None
    leaf_weight: int | None
    weight_device: list[WeightDevice]
    throttle_read_bps_device: list[ThrottleDevice]
    throttle_write_bps_device: list[ThrottleDevice]
    throttle_read_iops_device: list[ThrottleDevice]
    throttle_write_iops_device: list[ThrottleDevice]

    def __init__(
        self,
        weight=None,
        leaf_weight=None,
        weight_device=None,
        throttle_read_bps_device=None,
        throttle_write_bps_device=None,
        throttle_read_iops_device=None,
        throttle_write_iops_device=None,
    ):
        self.weight = weight
        self.leaf_weight = leaf_weight
        self.weight_device = [] if weight_device is None else weight_device
        if throttle_read_bps_device is None:
            throttle_read_bps_device = []
        self.throttle_read_bps_device = throttle_read_bps_device
        if throttle_write_bps_device is None:
            throttle_write_bps_device = []
        self.throttle_write_bps_device = throttle_write_bps_device
        if throttle_read_iops_device is None:
            throttle_read_iops_device = []
        self.throttle_read_iops_device = throttle_read_iops_device
        if throttle_write_iops_device is None:
            throttle_write_iops_device = []
        self.throttle_write_iops_device = throttle_write_iops_device


class HugepageLimit(_Model):
    """A hugetlb limit in bytes for one page size such as "2MB"."""

    __slots__ = ("page_size", "limit")

    page_size: str
    limit: int

    def __init__(self, page_size="", limit=0):
        self.page_size = page_size
        self.limit = limit


class Network(_Model):
    """net_cls and net_prio settings; priorities are (ifname, prio)."""

    __slots__ = ("class_id", "priorities")

    class_id: int | None
    priorities: list[tuple[str, int]]

    def __init__(self, class_id=None, priorities=None):
        self.class_id = class_id
        self.priorities = [] if priorities is None else priorities


class Resources(_Model):
    """Cgroup resource settings (`linux.resources`)."""

    __slots__ = (
        "devices",
        "memory",
        "cpu",
        "pids",
        "block_io",
        "hugepage_limits",
        "network",
        "rdma",
        "unified",
    )

    devices: list[DeviceRule]
    memory: Memory | None
    cpu: Cpu | None
    pids: Pids | None
    block_io: BlockIO | None
    hugepage_limits: list[HugepageLimit]
    network: Network | None
    rdma: dict
    unified: dict

    def __init__(
        self,
        devices=None,
        memory=None,
        cpu=None,
        pids=None,
        block_io=None,
        hugepage_limits=None,
        network=None,
        rdma=None,
        unified=None,
    ):
        self.devices = [] if devices is None else devices
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
        self.block_io = block_io
        if hugepage_limits is None:
            hugepage_limits = []
        self.hugepage_limits = hugepage_limits
        self.network = network
        self.rdma = {} if rdma is None else rdma
        self.unified = {} if unified is None else unified

    @classmethod
    def from_json(cls, obj, path="linux.resources"):
        """Parse a LinuxResources JSON object, as `update --resources` reads.

        Raises SpecError naming the path of a malformed field, e.g.
        `Resources.from_json({"pids": {"limit": "x"}})` raises
        `linux.resources.pids.limit: expected an integer, got "x"`.
        """
        # Imported here: load imports this module at its top.
        from pyrunc.spec.load import parse_resources

        return parse_resources(obj, path)


class Linux(_Model):
    """Linux-specific configuration (`linux`)."""

    __slots__ = (
        "namespaces",
        "uid_mappings",
        "gid_mappings",
        "devices",
        "cgroups_path",
        "resources",
        "rootfs_propagation",
        "masked_paths",
        "readonly_paths",
        "sysctl",
        "seccomp",
        "mount_label",
        "time_offsets",
        "personality",
        "intel_rdt",
    )

    namespaces: list[Namespace]
    uid_mappings: list[IdMapping]
    gid_mappings: list[IdMapping]
    devices: list[Device]
    cgroups_path: str | None
    resources: Resources | None
    rootfs_propagation: str | None
    masked_paths: list[str]
    readonly_paths: list[str]
    sysctl: dict[str, str]
    seccomp: dict | None
    mount_label: str | None
    time_offsets: dict | None
    personality: dict | None
    intel_rdt: dict | None

    def __init__(
        self,
        namespaces=None,
        uid_mappings=None,
        gid_mappings=None,
        devices=None,
        cgroups_path=None,
        resources=None,
        rootfs_propagation=None,
        masked_paths=None,
        readonly_paths=None,
        sysctl=None,
        seccomp=None,
        mount_label=None,
        time_offsets=None,
        personality=None,
        intel_rdt=None,
    ):
        self.namespaces = [] if namespaces is None else namespaces
        self.uid_mappings = [] if uid_mappings is None else uid_mappings
        self.gid_mappings = [] if gid_mappings is None else gid_mappings
        self.devices = [] if devices is None else devices
        self.cgroups_path = cgroups_path
        self.resources = resources
        self.rootfs_propagation = rootfs_propagation
        self.masked_paths = [] if masked_paths is None else masked_paths
        self.readonly_paths = [] if readonly_paths is None else readonly_paths
        self.sysctl = {} if sysctl is None else sysctl
        self.seccomp = seccomp
        self.mount_label = mount_label
        self.time_offsets = time_offsets
        self.personality = personality
        self.intel_rdt = intel_rdt

    def namespace(self, ns_type):
        """Return the Namespace entry of that type, or None."""
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def has_namespace(self, ns_type):
        """Tell whether the config lists a namespace of that type."""
        return self.namespace(ns_type) is not None


class Spec(_Model):
    """A whole config.json; raw is the JSON object it was parsed from."""

    __slots__ = (
        "oci_version",
        "root",
        "process",
        "hostname",
        "domainname",
        "mounts",
        "hooks",
        "annotations",
        "linux",
        "raw",
    )

    oci_version: str
    root: Root | None
    process: Process | None
    hostname: str | None
    domainname: str | None
    mounts: list[Mount]
    hooks: Hooks
    annotations: dict[str, str]
    linux: Linux | None
    raw: dict

    def __init__(
        self,
        oci_version="",
        root=None,
        process=None,
        hostname=None,
        domainname=None,
        mounts=None,
        hooks=None,
        annotations=None,
        linux=None,
        raw=None,
    ):
        self.oci_version = oci_version
        self.root = root
        self.process = process
        self.hostname = hostname
        self.domainname = domainname
        self.mounts = [] if mounts is None else mounts
        self.hooks = Hooks() if hooks is None else hooks
        self.annotations = {} if annotations is None else annotations
        self.linux = linux
        self.raw = {} if raw is None else raw

    _hidden = ("raw",)
