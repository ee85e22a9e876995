"""Issue 3's container checks, through the pyrunc CLI alone.

Unlike test_vm_cgroup2.py these run on any host: on the v1 hybrid host
in `make test`, and on a pure cgroup v2 kernel in `make test-vm`
(scripts/vm-run.sh). A container with memory 32 MiB, cpu quota
50000/100000, pids 20 and /dev/null denied must read those limits back
(from the host's cgroup files and from inside) and be refused /dev/null;
`update --resources -` must change the limits of the running container
and `events --stats` show them; `pause`, `resume` and `ps --format json`
must work.

The container's cgroups are found from /proc/PID/cgroup of its init,
not from pyrunc's state directory, so what is checked is where the
kernel put the process.
"""

import json
import os
import time
from pathlib import Path

import pytest

import helpers

MIB = 1024 * 1024

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")

pytestmark = [
    pytest.mark.root,
    pytest.mark.no_residue,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"),
                       reason="needs cgroupfs"),
]

# TCG in the VM is about ten times slower than the host.
SLOW = 10 if os.environ.get("PYRUNC_VM") else 1

ISSUE_LIMITS = {
    "memory": {"limit": 32 * MIB},
    "cpu": {"quota": 50000, "period": 100000},
    "pids": {"limit": 20},
}
ISSUE_WANT = (str(32 * MIB), "50000", "100000", "20")

# The container's own view of its limits, as (memory, quota, period,
# pids), whatever the hierarchy.
if V2:
    INSIDE = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max "
              "/sys/fs/cgroup/pids.max")
else:
    INSIDE = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
              "/sys/fs/cgroup/cpu/cpu.cfs_quota_us "
              "/sys/fs/cgroup/cpu/cpu.cfs_period_us "
              "/sys/fs/cgroup/pids/pids.max")

# The container's init: try /dev/null once, then write what it sees of
# its limits to /tmp/limits (in the bundle's rootfs) every 0.2 s.
PROBE = (
    "cat /dev/null 2>/tmp/null.err; echo $? >/tmp/null.status; "
    f"while :; do {INSIDE} >/tmp/limits.new 2>&1; "
    "mv /tmp/limits.new /tmp/limits; sleep 0.2; done"
)


def probe_bundle(bundle):
    """The bundle with the issue's limits, /dev/null denied, PROBE init."""
    cfg = bundle.config
    cfg["root"]["readonly"] = False
    cfg["process"]["args"] = ["sh", "-c", PROBE]
    cfg["process"]["terminal"] = False
    linux = cfg.setdefault("linux", {})
    # A spec device for /dev/null replaces the default allow rule for
    # it, so that the resources' deny rules decide.
    linux["devices"] = [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o666, "uid": 0, "gid": 0},
    ]
    linux["resources"] = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3,
             "access": "rwm"},
        ],
        **json.loads(json.dumps(ISSUE_LIMITS)),
    }
    bundle.save()
    return bundle


def wait_for(what, check, timeout=30):
    """Poll check() until it returns something true; return that."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def read(path):
    return Path(path).read_text().strip()


def cgroup_dirs(pid):
    """controller -> directory of pid's cgroup ("" for cgroup2)."""
    mounts = [m for m in helpers.read_mounts()
              if m.fstype in ("cgroup", "cgroup2")]
    dirs = {}
    for line in read(f"/proc/{pid}/cgroup").splitlines():
        hier, ctrls, rel = line.split(":", 2)
        for m in mounts:
            if hier == "0":
                if m.fstype != "cgroup2":
                    continue
                names = [""]
            else:
                names = [c for c in ctrls.split(",") if c]
                if m.fstype != "cgroup" or not set(names) <= set(
                        m.super_opts.split(",")):
                    continue
            for name in names:
                dirs.setdefault(name, os.path.join(m.point, rel.lstrip("/")))
            break
    return dirs


def host_limits(pid):
    """(memory, quota, period, pids) from the cgroup files of pid."""
    dirs = cgroup_dirs(pid)
    if V2:
        d = dirs[""]
        quota, period = read(f"{d}/cpu.max").split()
        return (read(f"{d}/memory.max"), quota, period, read(f"{d}/pids.max"))
    return (read(f"{dirs['memory']}/memory.limit_in_bytes"),
            read(f"{dirs['cpu']}/cpu.cfs_quota_us"),
            read(f"{dirs['cpu']}/cpu.cfs_period_us"),
            read(f"{dirs['pids']}/pids.max"))


def inside_limits(bundle, want):
    """Wait until the container reports want; fail with what it saw."""
    path = bundle.rootfs / "tmp" / "limits"
    seen = []

    def check():
        if path.exists():
            seen[:] = path.read_text().split()
        return tuple(seen) == want

    try:
        wait_for(f"the container to see {want}", check)
    except AssertionError:
        pytest.fail(f"the container sees {seen}, not {list(want)}")
    return tuple(seen)


def frozen(pid):
    """Whether pid's cgroup is frozen, from the kernel's own files."""
    dirs = cgroup_dirs(pid)
    if V2:
        return "frozen 1" in read(f"{dirs['']}/cgroup.events").split("\n")
    return read(f"{dirs['freezer']}/freezer.state") == "FROZEN"


@pytest.fixture
def container(pyrunc_cmd, bundle):
    """A running probing container: (runtime, id, init pid, bundle)."""
    rt = pyrunc_cmd
    cid = helpers.unique_id("vm")
    proc = rt("run", "-d", "--bundle", probe_bundle(bundle), cid,
              timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    try:
        state = rt.state(cid)
        assert state["status"] == "running"
        yield rt, cid, state["pid"], bundle
    finally:
        proc = rt("delete", "--force", cid, timeout=60 * SLOW)
        assert proc.returncode == 0, proc.stderr


def test_issue_limits_read_back_and_devnull_refused(container):
    rt, cid, pid, bundle = container
    assert host_limits(pid) == ISSUE_WANT
    assert inside_limits(bundle, ISSUE_WANT) == ISSUE_WANT
    tmp = bundle.rootfs / "tmp"
    status = wait_for("the /dev/null probe",
                      lambda: (tmp / "null.status").exists()
                      and read(tmp / "null.status"))
    assert status == "1"
    assert "Operation not permitted" in read(tmp / "null.err")
    if V2:
        # On v2 the rules are a BPF_CGROUP_DEVICE program attached to
        # the container's cgroup: exactly one.
        from pyrunc.cgroups import bpf

        fd = os.open(cgroup_dirs(pid)[""], os.O_DIRECTORY | os.O_RDONLY)
        try:
            assert len(bpf.prog_query(fd)) == 1
        finally:
            os.close(fd)


def test_update_from_stdin_and_events_stats(container):
    rt, cid, pid, bundle = container
    body = json.dumps({
        "memory": {"limit": 64 * MIB},
        "cpu": {"quota": 20000},
        "pids": {"limit": 30},
    })
    proc = rt("update", "--resources", "-", cid, input=body,
              timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    # The period stays when only the quota changes.
    want = (str(64 * MIB), "20000", "100000", "30")
    assert host_limits(pid) == want
    assert inside_limits(bundle, want) == want

    proc = rt("events", "--stats", cid, timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    event = json.loads(proc.stdout)
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 64 * MIB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["limit"] == 30
    assert data["pids"]["current"] >= 1
    assert "total" in data["cpu"]["usage"]

    # A second update through stdin moves the limits again.
    proc = rt("update", "--resources", "-", cid,
              input=json.dumps({"pids": {"limit": 25}}), timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    assert host_limits(pid)[3] == "25"
    proc = rt("events", "--stats", cid, timeout=60 * SLOW)
    assert json.loads(proc.stdout)["data"]["pids"]["limit"] == 25


def test_pause_resume_ps(container):
    rt, cid, pid, bundle = container
    proc = rt("ps", "--format", "json", cid)
    assert proc.returncode == 0, proc.stderr
    pids = json.loads(proc.stdout)
    assert pid in pids
    limits = bundle.rootfs / "tmp" / "limits"
    wait_for("the probe's first report", limits.exists)

    assert rt("pause", cid).returncode == 0
    assert rt.state(cid)["status"] == "paused"
    assert frozen(pid)
    # A paused container's processes are still listed.
    proc = rt("ps", "--format", "json", cid)
    assert proc.returncode == 0, proc.stderr
    assert pid in json.loads(proc.stdout)
    # Frozen, the probe stops rewriting its file.
    before = limits.stat().st_mtime_ns
    time.sleep(1)
    assert limits.stat().st_mtime_ns == before
    proc = rt("pause", cid)
    assert proc.returncode == 1 and "container not running" in proc.stderr

    assert rt("resume", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    assert not frozen(pid)
    wait_for("the probe to run again",
             lambda: limits.stat().st_mtime_ns != before)
    proc = rt("resume", cid)
    assert proc.returncode == 1 and "container not paused" in proc.stderr
