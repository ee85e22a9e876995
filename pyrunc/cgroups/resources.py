"""Flatten linux.resources into the values the drivers write.

The spec model is duck-typed here: any object with the model's snake_case
attributes (or a dict with those keys) works, so tests can use
SimpleNamespace. Zero means "not set", as in runc's configs.Resources.
"""

from pyrunc import log as _log

from pyrunc.cgroups import devices
from pyrunc.errors import ConfigError, NotSupported

log = _log.get_logger(__name__)

PREFIX = "linux.resources"

# JSON names of the fields, for error messages.
F_MEM_LIMIT = PREFIX + ".memory.limit"
F_MEM_RESERVATION = PREFIX + ".memory.reservation"
F_MEM_SWAP = PREFIX + ".memory.swap"
F_MEM_SWAPPINESS = PREFIX + ".memory.swappiness"
F_MEM_OOM = PREFIX + ".memory.disableOOMKiller"
F_CPU_SHARES = PREFIX + ".cpu.shares"
F_CPU_QUOTA = PREFIX + ".cpu.quota"
F_CPU_PERIOD = PREFIX + ".cpu.period"
F_CPU_RT_RUNTIME = PREFIX + ".cpu.realtimeRuntime"
F_CPU_RT_PERIOD = PREFIX + ".cpu.realtimePeriod"
F_CPU_CPUS = PREFIX + ".cpu.cpus"
F_CPU_MEMS = PREFIX + ".cpu.mems"
F_PIDS_LIMIT = PREFIX + ".pids.limit"
F_DEVICES = devices.FIELD
F_UNIFIED = PREFIX + ".unified"

# Fields runc 1.1.5 implements and pyrunc does not yet: refused loudly.
_NOT_YET = (
    ("block_io", "blockIO"),
    ("hugepage_limits", "hugepageLimits"),
    ("network", "network"),
    ("rdma", "rdma"),
)

# Fields runc 1.1.5 does not know at all, so it ignores them: a config
# that works with runc must work here too.
_IGNORED = (
    ("memory", "use_hierarchy", "useHierarchy"),
    ("memory", "check_before_update", "checkBeforeUpdate"),
    ("cpu", "idle", "idle"),
    ("cpu", "burst", "burst"),
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


class Limits:
    """The resources of a container as plain values; 0 means unset."""

    def __init__(self):
        self.memory = 0
        self.memory_reservation = 0
        self.memory_swap = 0
        self.swappiness = None
        self.oom_kill_disable = False
        self.cpu_shares = 0
        self.cpu_quota = 0
        self.cpu_period = 0
        self.cpu_rt_runtime = 0
        self.cpu_rt_period = 0
        self.cpuset_cpus = ""
        self.cpuset_mems = ""
        self.pids_limit = 0
        self.devices = []
        self.unified = {}


def _int(value):
    return 0 if value is None else int(value)


def _memory(lim, mem):
    if mem is None:
        return
    lim.memory = _int(_get(mem, "limit"))
    lim.memory_reservation = _int(_get(mem, "reservation"))
    lim.memory_swap = _int(_get(mem, "swap"))
    swappiness = _get(mem, "swappiness")
    lim.swappiness = None if swappiness is None else int(swappiness)
    lim.oom_kill_disable = bool(_get(mem, "disable_oom_killer"))
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


def limits(resources, v1, linux_devices=None):
    """Return the Limits of resources (None allowed) for a v1 or v2 host.

    Raises NotSupported for a non-empty field pyrunc does not implement
    yet, and ConfigError for a value no host could accept. The device
    rules always end with runc's default allow list, even without
    resources, because runc builds them that way.
    """
    lim = Limits()
    for attr, name in _NOT_YET:
        if not is_empty(_get(resources, attr)):
            raise NotSupported(f"{PREFIX}.{name}: not supported yet")
    for group, attr, name in _IGNORED:
        if _get(_get(resources, group), attr) is not None:
            log.debug(
                "ignoring %s.%s.%s as runc 1.1.5 does", PREFIX, group, name
            )
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
    lim.devices = devices.effective_rules(
        _get(resources, "devices"), linux_devices
    )
    return lim


def cpu_weight(shares):
    """Convert v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


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
