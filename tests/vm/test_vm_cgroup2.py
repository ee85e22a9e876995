"""The cgroup v2 driver against a real cgroup v2 kernel.

These tests need a pure cgroup2 host (`cgroup_no_v1=all`); on any other
host they skip. scripts/vm-run.sh (`make test-vm`) boots one in a VM and
runs them there, together with tests/integration/test_resources_e2e.py.
Each test drives the manager directly on a cgroup below the test's own,
moving only `sleep` children into it.
"""

import json
import os
import secrets
import signal
import subprocess
import time
from types import SimpleNamespace as NS

import pytest

import helpers
from pyrunc.cgroups import bpf, detect_mode, manager_from_dict, new_manager
from pyrunc.errors import CgroupError
from pyrunc.spec.model import Resources
from pyrunc.state.store import Store

MIB = 1024 * 1024
ROOT = "/sys/fs/cgroup"

pytestmark = [
    pytest.mark.root,
    pytest.mark.no_residue,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not os.path.exists(os.path.join(ROOT, "cgroup.controllers")),
        reason="needs a pure cgroup v2 host (make test-vm boots one)",
    ),
]


def read(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


@pytest.fixture
def manager():
    """A fresh container cgroup; removed (and emptied) afterwards."""
    name = f"{helpers.CGROUP_PREFIX}vm-{secrets.token_hex(4)}"
    m = new_manager(name, name)
    assert m.mode == "v2" and detect_mode() == "v2"
    m.create()
    children = []
    m.children = children
    yield m
    for child in children:
        child.kill()
        child.wait()
    m.kill_all(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    m.destroy()


def spawn(m, *argv):
    """Start argv as a child in the manager's cgroup (through apply).

    A shell is moved in first and only then execs argv, so that argv's
    memory is charged to the cgroup: v2 does not move the charges of
    pages a task touched before it was moved.
    """
    argv = list(argv) or ["sleep", "1000"]
    child = subprocess.Popen(["sh", "-c", 'read _ && exec "$@"', "sh",
                              *argv], stdin=subprocess.PIPE)
    m.children.append(child)
    m.apply(child.pid)
    child.stdin.write(b"go\n")
    child.stdin.close()
    deadline = time.monotonic() + 30
    while _cmdline(child.pid) == ["sh", "-c", 'read _ && exec "$@"', "sh",
                                  *argv]:
        assert time.monotonic() < deadline, "the child never exec'd"
        time.sleep(0.01)
    return child


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [w.decode() for w in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def res(obj):
    return Resources.from_json(obj, path="linux.resources")


def test_issue_limits_read_back(manager):
    manager.set(res({
        "memory": {"limit": 32 * MIB, "swap": 64 * MIB},
        "cpu": {"quota": 50000, "period": 100000, "shares": 1024},
        "pids": {"limit": 20},
    }))
    path = manager.paths()[""]
    assert read(path, "memory.max") == str(32 * MIB)
    assert read(path, "cpu.max") == "50000 100000"
    assert read(path, "pids.max") == "20"
    # runc 1.1.5's conversions: v2 swap excludes memory, shares -> weight.
    if os.path.exists(os.path.join(path, "memory.swap.max")):
        assert read(path, "memory.swap.max") == str(32 * MIB)
    assert read(path, "cpu.weight") == "39"


def test_controllers_enabled_on_the_way_down(manager):
    parent = os.path.dirname(manager.paths()[""])
    enabled = read(parent, "cgroup.subtree_control").split()
    for ctrl in ("cpu", "memory", "pids", "io"):
        assert ctrl in enabled


def test_device_filter_is_an_ebpf_program(manager):
    deny_null = [
        {"allow": False, "access": "rwm"},
    ]
    manager.set(res({"devices": deny_null}),
                linux_devices=[NS(path="/dev/null")])
    path = manager.paths()[""]
    fd = os.open(path, os.O_DIRECTORY | os.O_RDONLY)
    try:
        assert len(bpf.prog_query(fd)) == 1
        # A second set replaces the program instead of adding one.
        manager.set(res({"devices": deny_null}),
                    linux_devices=[NS(path="/dev/null")])
        assert len(bpf.prog_query(fd)) == 1
    finally:
        os.close(fd)
    script = (f"echo $$ > {path}/cgroup.procs; "
              "cat /dev/null && echo null-ok; "
              "head -c 1 /dev/zero | wc -c")
    proc = subprocess.run(["sh", "-c", script], capture_output=True,
                          text=True, timeout=30)
    assert "null-ok" not in proc.stdout
    assert "Operation not permitted" in proc.stderr
    assert proc.stdout.strip() == "1"


def test_unified_and_v2_only_fields(manager):
    path = manager.paths()[""]
    manager.set(res({
        "unified": {"memory.high": str(48 * MIB)},
        "cpu": {"idle": 0, "burst": 1000, "quota": 20000},
    }))
    assert read(path, "memory.high") == str(48 * MIB)
    if os.path.exists(os.path.join(path, "cpu.max.burst")):
        assert read(path, "cpu.max.burst") == "1000"
    if os.path.exists(os.path.join(path, "cpu.idle")):
        assert read(path, "cpu.idle") == "0"


def test_unified_unknown_controller(manager):
    with pytest.raises(CgroupError, match="not available"):
        manager.set(res({"unified": {"nosuch.max": "1"}}))


def test_hugetlb(manager):
    path = manager.paths()[""]
    names = [n for n in os.listdir(path) if n.startswith("hugetlb.")
             and n.endswith(".max")]
    if not names:
        pytest.skip("no hugetlb controller")
    size = names[0].split(".")[1]
    manager.set(res({"hugepageLimits": [
        {"pageSize": size, "limit": 4 * MIB}]}))
    assert read(path, f"hugetlb.{size}.max") == str(4 * MIB)
    with pytest.raises(Exception, match="hugepageLimits"):
        manager.set(res({"hugepageLimits": [
            {"pageSize": "3MB", "limit": 4 * MIB}]}))


def test_io_weight_conversion(manager):
    path = manager.paths()[""]
    if os.path.exists(os.path.join(path, "io.bfq.weight")):
        manager.set(res({"blockIO": {"weight": 500}}))
        assert "500" in read(path, "io.bfq.weight")
    elif os.path.exists(os.path.join(path, "io.weight")):
        manager.set(res({"blockIO": {"weight": 500}}))
        assert read(path, "io.weight").split()[-1] == "4950"
    else:
        with pytest.raises(CgroupError, match="blockIO.weight"):
            manager.set(res({"blockIO": {"weight": 500}}))


def test_check_before_update(manager):
    spawn(manager)
    path = manager.paths()[""]
    usage = int(read(path, "memory.current"))
    assert usage > 0
    with pytest.raises(CgroupError, match="rejecting memory limit"):
        manager.set(res({"memory": {"limit": max(4096, usage // 2),
                                    "checkBeforeUpdate": True}}))
    manager.set(res({"memory": {"limit": 64 * MIB,
                                "checkBeforeUpdate": True}}))
    assert read(path, "memory.max") == str(64 * MIB)


def test_freeze_thaw_and_kill(manager):
    child = spawn(manager)
    manager.freeze()
    assert manager.is_frozen()
    assert "frozen 1" in read(manager.paths()[""], "cgroup.events")
    manager.thaw()
    assert not manager.is_frozen()
    manager.freeze()
    # cgroup.kill reaches frozen tasks too.
    manager.kill_all(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    manager.thaw()


def test_stats_shape(manager):
    spawn(manager)
    manager.set(res({"memory": {"limit": 32 * MIB}, "pids": {"limit": 20}}))
    data = manager.stats()
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio",
                          "hugetlb", "intel_rdt", "network_interfaces"]
    assert data["memory"]["usage"]["limit"] == 32 * MIB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 20}
    assert "total" in data["cpu"]["usage"]
    json.dumps(data)


def test_oom_watcher(manager):
    manager.set(res({"memory": {"limit": 16 * MIB, "swap": 16 * MIB}}))
    watcher = manager.oom_watcher()
    assert watcher is not None
    try:
        child = spawn(manager, "dd", "if=/dev/zero", "of=/dev/null",
                      "bs=64M", "count=1")
        assert child.wait(timeout=60) == -signal.SIGKILL
        assert watcher.read() >= 1
    finally:
        watcher.close()


def test_update_keeps_period_and_roundtrips(tmp_path, manager):
    """update() through a record, without a container process."""
    from pyrunc.container import update
    from pyrunc.state import proc
    from pyrunc.state.store import Record

    child = spawn(manager)
    store = Store(tmp_path / "root")
    store.new("vm")
    record = Record(
        id="vm", pid=child.pid, pid_start=proc.start_time(child.pid),
        bundle=str(tmp_path), config={"linux": {"resources": {
            "cpu": {"quota": 50000, "period": 100000}}}},
        cgroup=manager.to_dict())
    store.save(record)
    try:
        update.update(store, "vm", {"cpu": {"quota": 25000}})
        assert read(manager.paths()[""], "cpu.max") == "25000 100000"
        update.update(store, "vm", {"cpu": {"period": 50000}})
        assert read(manager.paths()[""], "cpu.max") == "25000 50000"
        saved = store.load("vm").config["linux"]["resources"]
        assert saved["cpu"] == {"quota": 25000, "period": 50000}
    finally:
        store.destroy("vm")


def test_manager_rebuilt_from_dict(manager):
    again = manager_from_dict(json.loads(json.dumps(manager.to_dict())))
    assert again.paths() == manager.paths()
    assert again.exists()


def test_swap_refused_without_limit(manager):
    from pyrunc.errors import ConfigError

    with pytest.raises(ConfigError, match="without memory limit"):
        manager.set(res({"memory": {"swap": 64 * MIB}}))
