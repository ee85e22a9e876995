"""CPU, memory and process counts of a container, read from its cgroup.

The cgroup is found from the container's init pid (/proc/<pid>/cgroup)
and the cgroup mounts, so this works whichever runtime created it and on
cgroup v1, v2 and hybrid hosts alike.
"""

import os
import time


def _mounts():
    """Return {controller or "": mount point} of the cgroup mounts."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype, _, super_opts = right.split()[:3]
            if fstype == "cgroup2":
                out.setdefault("", fields[4])
            elif fstype == "cgroup":
                for opt in super_opts.split(","):
                    out.setdefault(opt, fields[4])
    return out


def cgroup_dirs(pid):
    """Return {controller: directory} of pid's cgroups ("" for v2)."""
    mounts = _mounts()
    dirs = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return dirs
    for line in lines:
        hier, ctrls, path = line.split(":", 2)
        names = [""] if hier == "0" else ctrls.split(",")
        for name in names:
            point = mounts.get(name)
            if point:
                dirs[name] = os.path.join(point, path.lstrip("/"))
    return dirs


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if value.strip().isdigit():
                    out[key] = int(value)
    except OSError:
        pass
    return out


def usage(pid):
    """Return a dict of cgroup statistics for pid (empty if it is gone).

    Keys: timestamp (ns), cpu_ns (cumulative CPU time), memory_usage,
    working_set (usage less inactive file pages), rss, page_faults,
    major_page_faults, processes.
    """
    return usage_of(cgroup_dirs(pid))


def usage_of(dirs):
    """Return usage() for cgroup directories ({controller: dir})."""
    if not dirs:
        return {}
    out = {"timestamp": time.time_ns()}
    v1cpu = dirs.get("cpuacct")
    v1mem = dirs.get("memory")
    v2 = dirs.get("")
    if v1cpu:
        out["cpu_ns"] = _read_int(os.path.join(v1cpu, "cpuacct.usage"))
    elif v2:
        usec = _read_kv(os.path.join(v2, "cpu.stat")).get("usage_usec")
        out["cpu_ns"] = usec * 1000 if usec is not None else None
    if v1mem:
        used = _read_int(os.path.join(v1mem, "memory.usage_in_bytes"))
        stat = _read_kv(os.path.join(v1mem, "memory.stat"))
        inactive = stat.get("total_inactive_file", 0)
        rss = stat.get("total_rss")
        faults = stat.get("total_pgfault")
        major = stat.get("total_pgmajfault")
    elif v2 and os.path.exists(os.path.join(v2, "memory.current")):
        used = _read_int(os.path.join(v2, "memory.current"))
        stat = _read_kv(os.path.join(v2, "memory.stat"))
        inactive = stat.get("inactive_file", 0)
        rss = stat.get("anon")
        faults = stat.get("pgfault")
        major = stat.get("pgmajfault")
    else:
        used = inactive = rss = faults = major = None
    if used is not None:
        out["memory_usage"] = used
        out["working_set"] = max(0, used - (inactive or 0))
    out["rss"] = rss
    out["page_faults"] = faults
    out["major_page_faults"] = major
    pids_dir = dirs.get("pids") or v2
    if pids_dir:
        out["processes"] = _read_int(os.path.join(pids_dir, "pids.current"))
    return out
