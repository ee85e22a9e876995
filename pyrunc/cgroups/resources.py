"""Flatten linux.resources into the values the drivers write.

The spec model is duck-typed here: any object with the model's snake_case
attributes (or a dict with those keys) works, so tests can use
SimpleNamespace. Zero means "not set", as in runc's configs.Resources;
fields that runc keeps as pointers (swappiness, cpu idle and burst,
useHierarchy) are None when unset.
"""

from pyrunc import log as _log

from pyrunc.cgroups import devices
from pyrunc.errors import ConfigError

log = _log.get_logger(__name__)

PREFIX = "linux.resources"

# JSON names of the fields, for error messages.
F_MEM_LIMIT = PREFIX + ".memory.limit"
F_MEM_RESERVATION = PREFIX + ".memory.reservation"
F_MEM_SWAP = PREFIX + ".memory.swap"
F_MEM_SWAPPINESS = PREFIX + ".memory.swappiness"
F_MEM_OOM = PREFIX + ".memory.disableOOMKiller"
F_MEM_HIERARCHY = PREFIX + ".memory.useHierarchy"
F_MEM_CHECK = PREFIX + ".memory.checkBeforeUpdate"
F_CPU_SHARES = PREFIX + ".cpu.shares"
F_CPU_QUOTA = PREFIX + ".cpu.quota"
F_CPU_PERIOD = PREFIX + ".cpu.period"
F_CPU_RT_RUNTIME = PREFIX + ".cpu.realtimeRuntime"
F_CPU_RT_PERIOD = PREFIX + ".cpu.realtimePeriod"
F_CPU_CPUS = PREFIX + ".cpu.cpus"
F_CPU_MEMS = PREFIX + ".cpu.mems"
F_CPU_IDLE = PREFIX + ".cpu.idle"
F_CPU_BURST = PREFIX + ".cpu.burst"
F_PIDS_LIMIT = PREFIX + ".pids.limit"
F_BLKIO = PREFIX + ".blockIO"
F_BLKIO_WEIGHT = F_BLKIO + ".weight"
F_BLKIO_LEAF_WEIGHT = F_BLKIO + ".leafWeight"
F_BLKIO_WEIGHT_DEVICE = F_BLKIO + ".weightDevice"
F_HUGETLB = PREFIX + ".hugepageLimits"
F_NET_CLASSID = PREFIX + ".network.classID"
F_NET_PRIORITIES = PREFIX + ".network.priorities"
F_RDMA = PREFIX + ".rdma"
F_DEVICES = devices.FIELD
F_UNIFIED = PREFIX + ".unified"

# The four throttle lists: model attribute, JSON name, v1 file, v2 key.
THROTTLES = (
    ("throttle_read_bps_device", "throttleReadBpsDevice",
     "blkio.throttle.read_bps_device", "rbps"),
    ("throttle_write_bps_device", "throttleWriteBpsDevice",
     "blkio.throttle.write_bps_device", "wbps"),
    ("throttle_read_iops_device", "throttleReadIOPSDevice",
     "blkio.throttle.read_iops_device", "riops"),
    ("throttle_write_iops_device", "throttleWriteIOPSDevice",
     "blkio.throttle.write_iops_device", "wiops"),
)


def _get(obj, name):
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _fields(value):
    """Return the public attribute names of a model object, or None."""
    names = getattr(type(value), "__dataclass_fields__", None)
    if names is not None:
        return list(names)
    try:
        return [k for k in vars(value) if k[:1] != "_"]
    except TypeError:
        pass
    slots = getattr(type(value), "__slots__", None)
    if slots is not None:
        return [slots] if isinstance(slots, str) else list(slots)
    return None


def is_empty(value):
    """Tell whether a spec value carries nothing to apply."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, str)):
        return len(value) == 0
    if isinstance(value, (int, float, bool)):
        return False
    names = _fields(value)
    if names is None:
        return False
    return all(is_empty(getattr(value, n, None)) for n in names)


class WeightDevice:
    """blockIO.weightDevice[i]: weights of one block device."""

    __slots__ = ("major", "minor", "weight", "leaf_weight", "field")

    def __init__(self, major, minor, weight, leaf_weight, field):
        self.major = major
        self.minor = minor
        self.weight = weight
        self.leaf_weight = leaf_weight
        self.field = field

    def weight_line(self):
        return f"{self.major}:{self.minor} {self.weight}"

    def leaf_weight_line(self):
        return f"{self.major}:{self.minor} {self.leaf_weight}"


class Throttle:
    """One entry of a blockIO throttle list: a rate for one device."""

    __slots__ = ("major", "minor", "rate", "field")

    def __init__(self, major, minor, rate, field):
        self.major = major
        self.minor = minor
        self.rate = rate
        self.field = field

    def line(self):
        """The v1 form, "8:0 1048576"."""
        return f"{self.major}:{self.minor} {self.rate}"

    def v2_line(self, key):
        """The io.max form, "8:0 rbps=1048576"."""
        return f"{self.major}:{self.minor} {key}={self.rate}"


class Limits:
    """The resources of a container as plain values; 0 means unset."""

    def __init__(self):
        self.memory = 0
        self.memory_reservation = 0
        self.memory_swap = 0
        self.swappiness = None
        self.oom_kill_disable = False
        self.use_hierarchy = None
        self.check_before_update = False
        self.cpu_shares = 0
        self.cpu_quota = 0
        self.cpu_period = 0
        self.cpu_rt_runtime = 0
        self.cpu_rt_period = 0
        self.cpuset_cpus = ""
        self.cpuset_mems = ""
        self.cpu_idle = None
        self.cpu_burst = None
        self.pids_limit = 0
        self.blkio_weight = 0
        self.blkio_leaf_weight = 0
        self.blkio_weight_device = []
        # model attribute of THROTTLES -> list of Throttle
        self.blkio_throttle = {}
        # (page size, limit, field)
        self.hugetlb = []
        self.net_cls_classid = 0
        # (interface, priority)
        self.net_prio_ifpriomap = []
        # device name -> (hca_handles or None, hca_objects or None)
        self.rdma = {}
        self.devices = []
        self.skip_devices = False
        self.unified = {}

    def has_blkio(self):
        return bool(
            self.blkio_weight
            or self.blkio_leaf_weight
            or self.blkio_weight_device
            or any(self.blkio_throttle.values())
        )


def _int(value):
    return 0 if value is None else int(value)


def _opt_int(value):
    return None if value is None else int(value)


def _memory(lim, mem):
    if mem is None:
        return
    lim.memory = _int(_get(mem, "limit"))
    lim.memory_reservation = _int(_get(mem, "reservation"))
    lim.memory_swap = _int(_get(mem, "swap"))
    lim.swappiness = _opt_int(_get(mem, "swappiness"))
    lim.oom_kill_disable = bool(_get(mem, "disable_oom_killer"))
    hierarchy = _get(mem, "use_hierarchy")
    lim.use_hierarchy = None if hierarchy is None else bool(hierarchy)
    lim.check_before_update = bool(_get(mem, "check_before_update"))
    if _get(mem, "kernel") is not None or _get(mem, "kernel_tcp") is not None:
        # Same behaviour and words as runc 1.1.5.
        log.warning("kernel memory settings are ignored and will be removed")


def _cpu(lim, cpu):
    if cpu is None:
        return
    lim.cpu_shares = _int(_get(cpu, "shares"))
    lim.cpu_quota = _int(_get(cpu, "quota"))
    lim.cpu_period = _int(_get(cpu, "period"))
    lim.cpu_rt_runtime = _int(_get(cpu, "realtime_runtime"))
    lim.cpu_rt_period = _int(_get(cpu, "realtime_period"))
    lim.cpuset_cpus = _get(cpu, "cpus") or ""
    lim.cpuset_mems = _get(cpu, "mems") or ""
    lim.cpu_idle = _opt_int(_get(cpu, "idle"))
    lim.cpu_burst = _opt_int(_get(cpu, "burst"))


def _device_numbers(item, field):
    major = _get(item, "major")
    minor = _get(item, "minor")
    if major is None or minor is None:
        raise ConfigError(f"{field}: major and minor are required")
    return int(major), int(minor)


def _block_io(lim, bio):
    if bio is None:
        return
    lim.blkio_weight = _int(_get(bio, "weight"))
    lim.blkio_leaf_weight = _int(_get(bio, "leaf_weight"))
    for i, item in enumerate(_get(bio, "weight_device") or ()):
        field = f"{F_BLKIO_WEIGHT_DEVICE}[{i}]"
        major, minor = _device_numbers(item, field)
        lim.blkio_weight_device.append(
            WeightDevice(
                major,
                minor,
                _int(_get(item, "weight")),
                _int(_get(item, "leaf_weight")),
                field,
            )
        )
    for attr, name, _v1, _v2 in THROTTLES:
        entries = []
        for i, item in enumerate(_get(bio, attr) or ()):
            field = f"{F_BLKIO}.{name}[{i}]"
            major, minor = _device_numbers(item, field)
            entries.append(
                Throttle(major, minor, _int(_get(item, "rate")), field)
            )
        lim.blkio_throttle[attr] = entries


def _hugetlb(lim, limits):
    for i, item in enumerate(limits or ()):
        field = f"{F_HUGETLB}[{i}]"
        size = _get(item, "page_size") or _get(item, "pagesize") or ""
        if not size:
            raise ConfigError(f"{field}.pageSize: cannot be empty")
        lim.hugetlb.append((size, _int(_get(item, "limit")), field))


def _network(lim, net):
    if net is None:
        return
    lim.net_cls_classid = _int(_get(net, "class_id"))
    for i, item in enumerate(_get(net, "priorities") or ()):
        if isinstance(item, (tuple, list)):
            name, prio = item
        else:
            name = _get(item, "name")
            prio = _get(item, "priority")
        if not name:
            raise ConfigError(
                f"{F_NET_PRIORITIES}[{i}].name: cannot be empty"
            )
        lim.net_prio_ifpriomap.append((name, _int(prio)))


def _rdma(lim, rdma):
    for name, item in (rdma or {}).items():
        if item is None:
            item = {}
        handles = _get(item, "hca_handles")
        if handles is None:
            handles = _get(item, "hcaHandles")
        objects = _get(item, "hca_objects")
        if objects is None:
            objects = _get(item, "hcaObjects")
        lim.rdma[name] = (_opt_int(handles), _opt_int(objects))


def limits(resources, v1, linux_devices=None, skip_devices=False):
    """Return the Limits of resources (None allowed) for a v1 or v2 host.

    Raises ConfigError for a value no host could accept. The device rules
    always end with runc's default allow list, even without resources,
    because runc builds them that way; skip_devices (what `update` asks
    for, as runc does) leaves the device cgroup alone.
    """
    lim = Limits()
    unified = _get(resources, "unified")
    if unified:
        if v1:
            raise ConfigError(
                f"{F_UNIFIED}: invalid configuration: cannot use unified "
                "on cgroup v1"
            )
        lim.unified = dict(unified)
    _memory(lim, _get(resources, "memory"))
    _cpu(lim, _get(resources, "cpu"))
    lim.pids_limit = _int(_get(_get(resources, "pids"), "limit"))
    _block_io(lim, _get(resources, "block_io"))
    _hugetlb(lim, _get(resources, "hugepage_limits"))
    _network(lim, _get(resources, "network"))
    _rdma(lim, _get(resources, "rdma"))
    lim.skip_devices = skip_devices
    if not skip_devices:
        lim.devices = devices.effective_rules(
            _get(resources, "devices"), linux_devices
        )
    return lim


def rdma_line(name, handles, objects):
    """Return the rdma.max line for one device (runc's format)."""
    line = name
    if handles is not None:
        line += f" hca_handle={handles}"
    if objects is not None:
        line += f" hca_object={objects}"
    return line


def cpu_weight(shares):
    """Convert v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000].

    The linear mapping of runc 1.1.5 (later runc versions use a curve
    that maps the default 1024 to 100; pyrunc follows 1.1.5).
    """
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio_weight):
    """Convert a v1 blkio weight [10, 1000] to v2 io.weight [1, 10000]."""
    if blkio_weight == 0:
        return 0
    return 1 + (blkio_weight - 10) * 9999 // 990


def swap_v2(swap, memory):
    """Convert the spec's memory+swap total to v2 memory.swap.max.

    Returns -1 for "max" and 0 for "leave alone"; raises ConfigError for
    combinations runc rejects.
    """
    if memory == -1 and swap == 0:
        # Unlimited memory with swap unset means unlimited swap too.
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise ConfigError(
            f"{F_MEM_SWAP}: unable to set swap limit without memory limit"
        )
    if memory < 0:
        raise ConfigError(f"{F_MEM_LIMIT}: invalid memory value: {memory}")
    if swap < memory:
        raise ConfigError(
            f"{F_MEM_SWAP}: memory+swap limit should be >= memory limit"
        )
    return swap - memory
