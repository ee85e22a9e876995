"""The cgroup manager against the real kernel (root, v1 or hybrid host).

Every cgroup is made below this process's own cgroups under a random
name, and removed again; the only process moved is a `sleep` child.
"""

import os
import secrets
import signal
import subprocess
import time
from types import SimpleNamespace as NS

import pytest

from pyrunc.cgroups import detect_mode, manager_from_dict, new_manager
from pyrunc.errors import CgroupError

MIB = 1024 * 1024

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not os.path.isdir("/sys/fs/cgroup")
        or detect_mode() not in ("v1", "hybrid"),
        reason="needs a cgroup v1 or hybrid host",
    ),
]

# devices.list after runc 1.1.5 set up a container whose spec denies all
# devices (read on this host from a runc container).
RUNC_DEVICES_LIST = [
    "b *:* m",
    "c *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
    "c 136:* rwm",
]


def read(path, name):
    with open(os.path.join(path, name), encoding="utf-8") as f:
        return f.read().strip()


def resources(memory=None, cpu=None, pids=None):
    deny = NS(allow=False, type=None, major=None, minor=None, access="rwm")
    return NS(
        devices=[deny],
        memory=memory,
        cpu=cpu,
        pids=pids,
        block_io=None,
        hugepage_limits=[],
        network=None,
        rdma={},
        unified={},
    )


def memory(limit=None, swap=None):
    return NS(
        limit=limit,
        reservation=None,
        swap=swap,
        kernel=None,
        kernel_tcp=None,
        swappiness=None,
        disable_oom_killer=None,
    )


def cpu(**kw):
    base = dict(
        shares=None,
        quota=None,
        period=None,
        realtime_runtime=None,
        realtime_period=None,
        cpus=None,
        mems=None,
    )
    base.update(kw)
    return NS(**base)


@pytest.fixture
def manager():
    name = "pyrunc-test-" + secrets.token_hex(4)
    m = new_manager(name, "unused")
    children = []
    m.children = children
    yield m
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()
    m.destroy()
    for path in m.paths().values():
        assert not os.path.exists(path), path


def spawn_sleep(m):
    child = subprocess.Popen(["/bin/sleep", "100"])
    m.children.append(child)
    return child


def test_limits_apply_kill_destroy(manager):
    m = manager
    own = {p: os.path.dirname(p) for p in m.paths().values()}
    m.create()
    m.set(
        resources(
            memory=memory(limit=32 * MIB),
            cpu=cpu(quota=50000, period=100000),
            pids=NS(limit=20),
        )
    )
    child = spawn_sleep(m)
    m.apply(child.pid)

    paths = m.paths()
    assert read(paths["memory"], "memory.limit_in_bytes") == str(32 * MIB)
    assert read(paths["cpu"], "cpu.cfs_quota_us") == "50000"
    assert read(paths["cpu"], "cpu.cfs_period_us") == "100000"
    assert read(paths["pids"], "pids.max") == "20"
    devices = read(paths["devices"], "devices.list").splitlines()
    assert devices == RUNC_DEVICES_LIST
    for ctrl, path in paths.items():
        assert str(child.pid) in read(path, "cgroup.procs").split(), ctrl
    with open(f"/proc/{child.pid}/cgroup", encoding="utf-8") as f:
        text = f.read()
    name = os.path.basename(paths["devices"])
    assert f":devices:/{name}\n" in text or f"/{name}\n" in text
    if m.mode == "hybrid":
        assert f"0::/{name}" in text
    assert m.exists()
    assert m.pids() == [child.pid]
    stats = m.stats()
    assert stats["pids"]["current"] == 1
    assert stats["memory"]["usage"]["limit"] == 32 * MIB

    m.freeze()
    assert m.is_frozen()
    m.thaw()
    assert not m.is_frozen()

    m.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert not m.is_frozen()
    m.destroy()
    for path in paths.values():
        assert not os.path.exists(path)
    for parent in own.values():
        assert os.path.isdir(parent)


def test_swap_order_when_raising_and_lowering(manager):
    m = manager
    mem_dir = m.paths()["memory"]
    if not os.path.exists(
        os.path.join(os.path.dirname(mem_dir), "memory.memsw.limit_in_bytes")
    ):
        pytest.skip("no swap accounting")
    m.create()
    m.set(resources(memory=memory(limit=32 * MIB, swap=64 * MIB)))
    # Raising: memsw must go first or the kernel refuses the limit.
    m.set(resources(memory=memory(limit=128 * MIB, swap=256 * MIB)))
    assert read(mem_dir, "memory.limit_in_bytes") == str(128 * MIB)
    assert read(mem_dir, "memory.memsw.limit_in_bytes") == str(256 * MIB)
    # Lowering: the limit must go first.
    m.set(resources(memory=memory(limit=16 * MIB, swap=32 * MIB)))
    assert read(mem_dir, "memory.limit_in_bytes") == str(16 * MIB)
    assert read(mem_dir, "memory.memsw.limit_in_bytes") == str(32 * MIB)


def test_refused_values_name_field_and_file(manager):
    m = manager
    m.create()
    with pytest.raises(CgroupError) as exc:
        m.set(resources(cpu=cpu(cpus="999")))
    path = os.path.join(m.paths()["cpuset"], "cpuset.cpus")
    # The kernel says ERANGE here (EINVAL on older kernels).
    assert str(exc.value).startswith(
        f"linux.resources.cpu.cpus: write 999 to {path}: "
    )
    with pytest.raises(CgroupError) as exc:
        m.set(resources(cpu=cpu(shares=1)))
    assert str(exc.value) == (
        "linux.resources.cpu.shares: the minimum allowed cpu-shares is 2"
    )


def test_destroy_busy_does_not_kill(manager):
    m = manager
    m.create()
    child = spawn_sleep(m)
    m.apply(child.pid)
    start = time.monotonic()
    with pytest.raises(CgroupError, match="Device or resource busy"):
        m.destroy()
    assert time.monotonic() - start < 1
    assert child.poll() is None
    child.kill()
    child.wait()
    m.destroy()


def test_rebuilt_manager_joins_and_destroys(manager):
    m = manager
    m.create()
    m.set(None)
    other = manager_from_dict(m.to_dict())
    child = spawn_sleep(m)
    other.apply(child.pid)
    assert other.pids() == [child.pid]
    other.kill_all(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    other.destroy()
    assert not other.exists()
