"""Cgroup usage figures in the JSON shape of runc's `events --stats`.

runc prints a types.Stats (runc/types/events.go) encoded by Go: struct
fields in declaration order, map keys sorted, and the fields tagged
omitempty left out when zero. The builders below produce dicts whose
json.dumps is that text; the readers follow runc's fs (v1) and fs2 (v2)
GetStats, including which missing files are not an error.
"""

import errno
import os

from pyrunc.cgroups import fsutil
from pyrunc.errors import CgroupError

MAX_UINT64 = (1 << 64) - 1

# runc converts cpuacct.stat ticks with a fixed USER_HZ.
_CLOCK_TICKS = 100
_NS_PER_SEC = 1_000_000_000

_BLKIO_KEYS = (
    ("io_service_bytes", "ioServiceBytesRecursive"),
    ("io_serviced", "ioServicedRecursive"),
    ("io_queued", "ioQueueRecursive"),
    ("io_service_time", "ioServiceTimeRecursive"),
    ("io_wait_time", "ioWaitTimeRecursive"),
    ("io_merged", "ioMergedRecursive"),
    ("io_time", "ioTimeRecursive"),
    ("sectors", "sectorsRecursive"),
)

_CPUSET_FIELDS = (
    ("cpu_exclusive", "cpuset.cpu_exclusive"),
    ("mem_hardwall", "cpuset.mem_hardwall"),
    ("mem_exclusive", "cpuset.mem_exclusive"),
    ("memory_migrate", "cpuset.memory_migrate"),
    ("memory_spread_page", "cpuset.memory_spread_page"),
    ("memory_spread_slab", "cpuset.memory_spread_slab"),
    ("memory_pressure", "cpuset.memory_pressure"),
    ("sched_load_balance", "cpuset.sched_load_balance"),
    ("sched_relax_domain_level", "cpuset.sched_relax_domain_level"),
)


class Raw:
    """The figures runc's cgroups.Stats holds, before JSON shaping."""

    def __init__(self):
        self.cpu_total = 0
        self.percpu = []
        self.percpu_kernel = []
        self.percpu_user = []
        self.cpu_kernel = 0
        self.cpu_user = 0
        self.periods = 0
        self.throttled_periods = 0
        self.throttled_time = 0
        self.cpuset = {}
        self.cpuset_cpus = []
        self.cpuset_mems = []
        self.mem_cache = 0
        # name -> (limit, usage, max, failcnt)
        self.mem = {}
        self.mem_raw = {}
        self.pids_current = 0
        self.pids_limit = 0
        # JSON key -> list of (major, minor, op, value)
        self.blkio = {}
        # page size -> (usage, max, failcnt)
        self.hugetlb = {}


# -- parsing helpers -------------------------------------------------------


def parse_uint(text):
    """runc's ParseUint: "max" is 2^64-1, a negative number reads 0."""
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    value = int(text)
    if value < 0:
        return 0
    return value


def _read(path, name):
    try:
        return fsutil.read_file(path, name)
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise
        raise CgroupError(
            f"read {os.path.join(path, name)}: {os.strerror(err.errno)}"
        ) from err


def _uint(path, name):
    text = _read(path, name)
    try:
        return parse_uint(text)
    except ValueError as err:
        raise CgroupError(
            f"unable to parse {os.path.join(path, name)}: {text.strip()!r}"
        ) from err


def _uint_opt(path, name, default=0):
    try:
        return _uint(path, name)
    except FileNotFoundError:
        return default


def _key_values(path, name):
    """Parse a "key value" per line file into a dict of ints."""
    out = {}
    for line in _read(path, name).splitlines():
        parts = line.split(" ")
        if len(parts) != 2:
            if line.strip():
                raise CgroupError(
                    f"unable to parse {os.path.join(path, name)}: line "
                    f"{line!r} is not in key value format"
                )
            continue
        try:
            out[parts[0]] = parse_uint(parts[1])
        except ValueError as err:
            raise CgroupError(
                f"unable to parse {os.path.join(path, name)}: {line!r}"
            ) from err
    return out


def parse_cpu_list(text):
    """Expand a cpuset list such as "0-2,4" into [0, 1, 2, 4]."""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(lo))
    return out


def host_page_sizes():
    from pyrunc.cgroups.v1res import host_page_sizes as sizes

    return sizes()


# -- v1 --------------------------------------------------------------------


def v1_stats(paths):
    """Stats of a v1 container from controller -> directory."""
    raw = Raw()
    readers = (
        ("cpuset", _v1_cpuset),
        ("memory", _v1_memory),
        ("cpu", _v1_cpu),
        ("cpuacct", _v1_cpuacct),
        ("pids", _v1_pids),
        ("blkio", _v1_blkio),
        ("hugetlb", _v1_hugetlb),
    )
    for ctrl, reader in readers:
        path = paths.get(ctrl)
        if path is None or not os.path.isdir(path):
            continue
        try:
            reader(path, raw)
        except FileNotFoundError as err:
            raise CgroupError(
                f"open {err.filename}: no such file or directory"
            ) from err
    return shape(raw)


def _v1_cpuset(path, raw):
    try:
        raw.cpuset_cpus = parse_cpu_list(_read(path, "cpuset.cpus"))
        raw.cpuset_mems = parse_cpu_list(_read(path, "cpuset.mems"))
    except FileNotFoundError:
        pass
    for key, name in _CPUSET_FIELDS:
        try:
            text = _read(path, name).strip()
        except FileNotFoundError:
            continue
        raw.cpuset[key] = int(text)


def _v1_memory_entry(path, prefix, optional):
    try:
        usage = _uint(path, f"{prefix}.usage_in_bytes")
    except FileNotFoundError:
        if optional:
            return (0, 0, 0, 0)
        raise
    peak = _uint(path, f"{prefix}.max_usage_in_bytes")
    failcnt = _uint(path, f"{prefix}.failcnt")
    limit = _uint(path, f"{prefix}.limit_in_bytes")
    return (limit, usage, peak, failcnt)


def _v1_memory(path, raw):
    try:
        raw.mem_raw = _key_values(path, "memory.stat")
    except FileNotFoundError:
        return
    raw.mem_cache = raw.mem_raw.get("cache", 0)
    raw.mem["usage"] = _v1_memory_entry(path, "memory", False)
    raw.mem["swap"] = _v1_memory_entry(path, "memory.memsw", True)
    raw.mem["kernel"] = _v1_memory_entry(path, "memory.kmem", True)
    raw.mem["kernelTCP"] = _v1_memory_entry(path, "memory.kmem.tcp", True)


def _v1_cpu(path, raw):
    try:
        values = _key_values(path, "cpu.stat")
    except FileNotFoundError:
        return
    raw.periods = values.get("nr_periods", 0)
    raw.throttled_periods = values.get("nr_throttled", 0)
    raw.throttled_time = values.get("throttled_time", 0)


def _v1_cpuacct(path, raw):
    fields = _read(path, "cpuacct.stat").split()
    if len(fields) < 4 or fields[0] != "user" or fields[2] != "system":
        raise CgroupError(f"malformed {path}/cpuacct.stat")
    raw.cpu_user = int(fields[1]) * _NS_PER_SEC // _CLOCK_TICKS
    raw.cpu_kernel = int(fields[3]) * _NS_PER_SEC // _CLOCK_TICKS
    raw.cpu_total = _uint(path, "cpuacct.usage")
    raw.percpu = [int(v) for v in _read(path, "cpuacct.usage_percpu").split()]
    try:
        lines = _read(path, "cpuacct.usage_all").splitlines()[1:]
    except FileNotFoundError:
        lines = []
    for line in lines:
        cols = line.split(" ")
        if len(cols) != 3:
            continue
        raw.percpu_user.append(int(cols[1]))
        raw.percpu_kernel.append(int(cols[2]))


def _v1_pids(path, raw):
    raw.pids_current = _uint(path, "pids.current")
    limit = _uint(path, "pids.max")
    # runc reports "no limit" as 0.
    raw.pids_limit = 0 if limit == MAX_UINT64 else limit


def _blkio_entries(path, name):
    """Parse a v1 blkio stat file; None when missing or empty."""
    try:
        text = _read(path, name)
    except FileNotFoundError:
        return None
    entries = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            if len(fields) == 2 and fields[0] == "Total":
                continue
            raise CgroupError(f"malformed line {line!r} in {path}/{name}")
        op = ""
        value = fields[2]
        if len(fields) == 4:
            op = fields[2]
            value = fields[3]
        entries.append((int(fields[0]), int(fields[1]), op, int(value)))
    return entries or None


def _v1_blkio(path, raw):
    # Tried in runc's order: the first group whose first file has data
    # wins (BFQ with debug files, BFQ, CFQ, throttle recursive, throttle).
    bfq_debug = [
        ("blkio.bfq.sectors_recursive", "sectors"),
        ("blkio.bfq.io_service_time_recursive", "io_service_time"),
        ("blkio.bfq.io_wait_time_recursive", "io_wait_time"),
        ("blkio.bfq.io_merged_recursive", "io_merged"),
        ("blkio.bfq.io_queued_recursive", "io_queued"),
        ("blkio.bfq.time_recursive", "io_time"),
        ("blkio.bfq.io_serviced_recursive", "io_serviced"),
        ("blkio.bfq.io_service_bytes_recursive", "io_service_bytes"),
    ]
    bfq = bfq_debug[-2:]
    cfq = [(name.replace("bfq.", ""), key) for name, key in bfq_debug]
    throttle = [
        ("blkio.throttle.io_serviced_recursive", "io_serviced"),
        ("blkio.throttle.io_service_bytes_recursive", "io_service_bytes"),
    ]
    base = [
        ("blkio.throttle.io_serviced", "io_serviced"),
        ("blkio.throttle.io_service_bytes", "io_service_bytes"),
    ]
    keys = dict(_BLKIO_KEYS)
    for group in (bfq_debug, bfq, cfq, throttle, base):
        for i, (name, key) in enumerate(group):
            entries = _blkio_entries(path, name)
            if entries is None:
                if i == 0:
                    break
                return
            raw.blkio[keys[key]] = entries
            if i == len(group) - 1:
                return


def _v1_hugetlb(path, raw):
    for size in host_page_sizes():
        prefix = f"hugetlb.{size}"
        raw.hugetlb[size] = (
            _uint(path, f"{prefix}.usage_in_bytes"),
            _uint(path, f"{prefix}.max_usage_in_bytes"),
            _uint(path, f"{prefix}.failcnt"),
        )


# -- v2 --------------------------------------------------------------------


def v2_stats(path):
    """Stats of a cgroup v2 container directory, as runc's fs2."""
    raw = Raw()
    _v2_pids(path, raw)
    for reader in (_v2_memory, _v2_io, _v2_cpu, _v2_hugetlb):
        try:
            reader(path, raw)
        except FileNotFoundError:
            # A controller that is not enabled has no files: runc leaves
            # its figures at zero.
            continue
    return shape(raw)


def _v2_pids(path, raw):
    try:
        raw.pids_current = _uint(path, "pids.current")
    except FileNotFoundError:
        try:
            procs = _read(path, "cgroup.procs")
        except FileNotFoundError as err:
            raise CgroupError(
                f"open {path}/cgroup.procs: no such file or directory"
            ) from err
        raw.pids_current = procs.count("\n")
        return
    limit = _uint(path, "pids.max")
    raw.pids_limit = 0 if limit == MAX_UINT64 else limit


def _v2_memory(path, raw):
    raw.mem_raw = _key_values(path, "memory.stat")
    raw.mem_cache = raw.mem_raw.get("file", 0)
    usage = _uint(path, "memory.current")
    limit = _uint(path, "memory.max")
    raw.mem["usage"] = (limit, usage, 0, 0)
    try:
        swap_usage = _uint(path, "memory.swap.current")
        swap_limit = _uint(path, "memory.swap.max")
    except FileNotFoundError:
        swap_usage = swap_limit = 0
    # runc reports swap as memory+swap, like v1's memsw, with Go's
    # unsigned wrap-around when the memory limit is "max".
    swap_usage += usage
    if swap_limit != MAX_UINT64:
        swap_limit = (swap_limit + limit) & MAX_UINT64
    raw.mem["swap"] = (swap_limit, swap_usage, 0, 0)
    raw.mem["kernel"] = (0, 0, 0, 0)
    raw.mem["kernelTCP"] = (0, 0, 0, 0)


def _v2_io(path, raw):
    ops = {
        "rbytes": ("Read", "ioServiceBytesRecursive"),
        "wbytes": ("Write", "ioServiceBytesRecursive"),
        "rios": ("Read", "ioServicedRecursive"),
        "wios": ("Write", "ioServicedRecursive"),
    }
    for line in _read(path, "io.stat").splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        dev = parts[0].split(":")
        if len(dev) != 2:
            continue
        major, minor = int(dev[0]), int(dev[1])
        for item in parts[1:]:
            key, sep, value = item.partition("=")
            if not sep or key not in ops:
                continue
            op, table = ops[key]
            entry = (major, minor, op, parse_uint(value))
            raw.blkio.setdefault(table, []).append(entry)


def _v2_cpu(path, raw):
    values = _key_values(path, "cpu.stat")
    raw.cpu_total = values.get("usage_usec", 0) * 1000
    raw.cpu_user = values.get("user_usec", 0) * 1000
    raw.cpu_kernel = values.get("system_usec", 0) * 1000
    raw.periods = values.get("nr_periods", 0)
    raw.throttled_periods = values.get("nr_throttled", 0)
    raw.throttled_time = values.get("throttled_usec", 0) * 1000


def _v2_hugetlb(path, raw):
    for size in host_page_sizes():
        usage = _uint(path, f"hugetlb.{size}.current")
        events = _key_values(path, f"hugetlb.{size}.events")
        raw.hugetlb[size] = (usage, 0, events.get("max", 0))


# -- JSON shaping ----------------------------------------------------------


def _omit_zero(pairs):
    """Build a dict from (key, value, omitempty) triples, Go style."""
    out = {}
    for key, value, omitempty in pairs:
        if omitempty and not value:
            continue
        out[key] = value
    return out


def _memory_entry(entry):
    limit, usage, peak, failcnt = entry
    return _omit_zero(
        (
            ("limit", limit, False),
            ("usage", usage, True),
            ("max", peak, True),
            ("failcnt", failcnt, False),
        )
    )


def _blkio_entry(entry):
    major, minor, op, value = entry
    return _omit_zero(
        (
            ("major", major, True),
            ("minor", minor, True),
            ("op", op, True),
            ("value", value, True),
        )
    )


def shape(raw):
    """Return the `data` object of a runc stats event."""
    cpu = {
        "usage": _omit_zero(
            (
                ("total", raw.cpu_total, True),
                ("percpu", raw.percpu, True),
                ("percpu_kernel", raw.percpu_kernel, True),
                ("percpu_user", raw.percpu_user, True),
                ("kernel", raw.cpu_kernel, False),
                ("user", raw.cpu_user, False),
            )
        ),
        "throttling": _omit_zero(
            (
                ("periods", raw.periods, True),
                ("throttledPeriods", raw.throttled_periods, True),
                ("throttledTime", raw.throttled_time, True),
            )
        ),
    }
    cpuset = _omit_zero((("cpus", raw.cpuset_cpus, True),))
    cpuset["cpu_exclusive"] = raw.cpuset.get("cpu_exclusive", 0)
    if raw.cpuset_mems:
        cpuset["mems"] = raw.cpuset_mems
    for key, _name in _CPUSET_FIELDS[1:]:
        cpuset[key] = raw.cpuset.get(key, 0)
    zero = (0, 0, 0, 0)
    memory = _omit_zero((("cache", raw.mem_cache, True),))
    for key in ("usage", "swap", "kernel", "kernelTCP"):
        memory[key] = _memory_entry(raw.mem.get(key, zero))
    if raw.mem_raw:
        memory["raw"] = dict(sorted(raw.mem_raw.items()))
    blkio = {}
    for _name, key in _BLKIO_KEYS:
        entries = raw.blkio.get(key)
        if entries:
            blkio[key] = [_blkio_entry(e) for e in entries]
    hugetlb = {}
    for size in sorted(raw.hugetlb):
        usage, peak, failcnt = raw.hugetlb[size]
        hugetlb[size] = _omit_zero(
            (
                ("usage", usage, True),
                ("max", peak, True),
                ("failcnt", failcnt, False),
            )
        )
    return {
        "cpu": cpu,
        "cpuset": cpuset,
        "memory": memory,
        "pids": _omit_zero(
            (
                ("current", raw.pids_current, True),
                ("limit", raw.pids_limit, True),
            )
        ),
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }
