"""pyrunc update [flags | -r FILE] <container-id>: change resource limits.

The flags, or the JSON of --resources (a runtime-spec LinuxResources
object; "-" reads it from stdin, as containerd sends it), become one
LinuxResources dict for pyrunc.container.update. As in runc, --resources
makes every other resource flag ignored, and a flag given as 0 (or "")
leaves that value unchanged, so it is left out of the dict. Memory sizes
take runc's suffixes: 512k, 64m, 1g, 1.5GiB (powers of 1024).
"""

import re

from pyrunc import log as _log
from pyrunc.cli.goflag import go_decimal
from pyrunc.errors import NotSupported, PyruncError

log = _log.get_logger(__name__)

# docker/go-units 0.4.0 (runc 1.1.5's RAMInBytes): a number, an optional
# space, an optional binary prefix, then optional "i" and "b"; any case.
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
           "p": 1 << 50}

# (flag, parameter, LinuxResources section, key, parser) for the string
# flags; the parser gets the flag's name and its text.
_UNSIGNED, _SIGNED, _SIZE_OR_MINUS_ONE = "uint", "int", "size"
_VALUE_FLAGS = (
    ("cpu-period", "cpu_period", "cpu", "period", _UNSIGNED),
    ("cpu-rt-period", "cpu_rt_period", "cpu", "realtimePeriod", _UNSIGNED),
    ("cpu-share", "cpu_share", "cpu", "shares", _UNSIGNED),
    ("cpu-quota", "cpu_quota", "cpu", "quota", _SIGNED),
    ("cpu-rt-runtime", "cpu_rt_runtime", "cpu", "realtimeRuntime",
     _SIGNED),
    ("memory", "memory", "memory", "limit", _SIZE_OR_MINUS_ONE),
    ("memory-swap", "memory_swap", "memory", "swap", _SIZE_OR_MINUS_ONE),
    ("kernel-memory", "kernel_memory", "memory", "kernel",
     _SIZE_OR_MINUS_ONE),
    ("kernel-memory-tcp", "kernel_memory_tcp", "memory", "kernelTCP",
     _SIZE_OR_MINUS_ONE),
    ("memory-reservation", "memory_reservation", "memory", "reservation",
     _SIZE_OR_MINUS_ONE),
)

_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1


def run(g, container_id, resources="", l3_cache_schema="",
        mem_bw_schema="", **flags):
    """Apply the new limits to the container's cgroup."""
    store = g.store()
    # runc looks the container up before it reads any value.
    store.load(container_id)
    if resources:
        body = read_resources(resources)
    else:
        body = resources_from_flags(flags)
    drop_kernel_memory(body)
    if l3_cache_schema:
        raise NotSupported("Intel RDT/CAT: l3 cache schema is not enabled "
                           "(pyrunc does not support Intel RDT)")
    if mem_bw_schema:
        raise NotSupported("Intel RDT/MBA: memory bandwidth schema is not "
                           "enabled (pyrunc does not support Intel RDT)")
    from pyrunc.container.update import update

    update(store, container_id, body)


def resources_from_flags(flags):
    """Return the LinuxResources dict that update's flags describe.

    >>> resources_from_flags({"memory": "64m", "pids_limit": 10})
    {'memory': {'limit': 67108864}, 'pids': {'limit': 10}}
    """
    body = {}
    weight = flags.get("blkio_weight", 0)
    if weight:
        body["blockIO"] = {"weight": weight}
    for dest, key in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if flags.get(dest):
            body.setdefault("cpu", {})[key] = flags[dest]
    for name, dest, section, key, kind in _VALUE_FLAGS:
        text = flags.get(dest, "")
        if not text:
            continue
        value = _parse(name, text, kind)
        # runc starts from zeros, so 0 means "leave unchanged".
        if value:
            body.setdefault(section, {})[key] = value
    limit = flags.get("pids_limit", 0)
    if limit:
        body["pids"] = {"limit": limit}
    return body


def read_resources(path):
    """Return the LinuxResources object in file path ("-": stdin)."""
    import json

    try:
        if path == "-":
            import sys

            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as err:
        raise PyruncError(
            f"open {path}: {_log.go_strerror(err.errno)}") from None
    try:
        body = json.loads(data)
    except ValueError as err:
        raise PyruncError(f"invalid resources JSON: {err}") from None
    if not isinstance(body, dict):
        raise PyruncError("invalid resources JSON: not an object")
    return body


def drop_kernel_memory(body):
    """Remove kernel memory limits, which runc ignores with a warning."""
    memory = body.get("memory")
    if not isinstance(memory, dict):
        return
    kernel = memory.pop("kernel", None)
    kernel_tcp = memory.pop("kernelTCP", None)
    if kernel or kernel_tcp:
        log.warning("Kernel memory settings are ignored and will be "
                    "removed")
    if not memory:
        del body["memory"]


def ram_in_bytes(text):
    """Parse a memory size as runc does (go-units' RAMInBytes).

    >>> ram_in_bytes("1g"), ram_in_bytes("1.5KiB"), ram_in_bytes("10")
    (1073741824, 1536, 10)
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    number, prefix = match.groups()
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f"strconv.ParseFloat: parsing "
                         f"{_log.go_quote(number)}: invalid syntax") from None
    if prefix:
        size *= _BINARY[prefix.lower()]
    # Go converts with truncation toward zero.
    value = int(size)
    if value > _INT64_MAX:
        raise ValueError(f"invalid size: '{text}': value out of range")
    return value


def _parse(name, text, kind):
    """Parse one flag's text; errors are worded like runc's."""
    try:
        if kind == _SIZE_OR_MINUS_ONE:
            return -1 if text == "-1" else ram_in_bytes(text)
        if kind == _SIGNED:
            return go_decimal(text)
        return _parse_uint(text)
    except ValueError as err:
        raise PyruncError(f"invalid value for {name}: {err}") from None


def _parse_uint(text):
    """strconv.ParseUint(text, 10, 64), with its error wording."""
    quoted = _log.go_quote(text)
    if not text.isascii() or not text.isdigit():
        raise ValueError(
            f"strconv.ParseUint: parsing {quoted}: invalid syntax")
    value = int(text)
    if value > _UINT64_MAX:
        raise ValueError(
            f"strconv.ParseUint: parsing {quoted}: value out of range")
    return value
