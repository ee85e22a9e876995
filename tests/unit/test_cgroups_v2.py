"""The cgroup v2 driver on a fake cgroupfs: files, conversions, order."""

import errno
import os
import re
from types import SimpleNamespace as NS

import pytest

from pyrunc.cgroups import resources as res
from pyrunc.errors import CgroupError, ConfigError

from test_cgroups_fake import V2_CONTROLLERS, FakeCgroupfs, put

from test_cgroups_v1 import cpu, memory, resources

MIB = 1024 * 1024
ENABLE = " ".join("+" + c for c in V2_CONTROLLERS.split())


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeCgroupfs(
        tmp_path, "v2", own={"": "/user.slice/me"}, monkeypatch=monkeypatch
    )


@pytest.fixture(autouse=True)
def programs(monkeypatch):
    """Record the device programs instead of calling bpf(2)."""
    from pyrunc.cgroups import bpf

    attached = []

    def attach(dirfd, insns, license):
        attached.append((os.readlink(f"/proc/self/fd/{dirfd}"), insns,
                         license))

    monkeypatch.setattr(bpf, "attach_device_filter", attach)
    return attached


@pytest.fixture
def made(fake):
    fake.mkdir_cgroup(fake.path("user.slice"))
    m = fake.new_manager("pyrunc-t")
    m.create()
    fake.writes.clear()
    return m


def writes_of(fake, m):
    rel = os.path.relpath(m.paths()[""], fake.root)
    return [
        (os.path.basename(p), v)
        for p, v in fake.writes
        if os.path.dirname(p) == rel
    ]


class TestCreate:
    def test_enables_controllers_down_to_parent(self, fake):
        m = fake.new_manager("/a/b/c")
        m.create()
        assert os.path.isdir(fake.path("a", "b", "c"))
        assert fake.written() == [
            ("cgroup.subtree_control", ENABLE),
            ("a/cgroup.subtree_control", ENABLE),
            ("a/b/cgroup.subtree_control", ENABLE),
        ]
        assert m.to_dict()["created"] == [
            fake.path("a"),
            fake.path("a", "b"),
            fake.path("a", "b", "c"),
        ]

    def test_controllers_one_by_one_when_refused(self, fake):
        fake.fail["cgroup.subtree_control"] = lambda rel, v: (
            errno.EBUSY if " " in v or v == "+io" else 0
        )
        m = fake.new_manager("/a")
        m.create()
        assert [v for _, v in fake.written()] == ([ENABLE] + ENABLE.split())

    def test_threaded_parent_refused_with_domain_limits(self, fake):
        fake.mkdir_cgroup(fake.path("t"))
        put(fake.path("t", "cgroup.type"), "threaded\n")
        m = fake.new_manager("/t/x/y")
        with pytest.raises(CgroupError, match="it is in threaded mode"):
            m.create(resources(memory=memory(limit=MIB)))

    def test_domain_invalid_cleans_up(self, fake, monkeypatch):
        from pyrunc.cgroups import fsutil

        real = fsutil.make_dir

        def invalid(path):
            real(path)
            if path.endswith("/y"):
                put(os.path.join(path, "cgroup.type"), "domain invalid\n")

        monkeypatch.setattr(fsutil, "make_dir", invalid)
        m = fake.new_manager("/x/y")
        with pytest.raises(CgroupError, match="invalid state"):
            m.create(resources(cpu=cpu(quota=1000)))
        assert not os.path.exists(fake.path("x"))

    def test_domain_invalid_made_threaded_without_limits(
        self, fake, monkeypatch
    ):
        from pyrunc.cgroups import fsutil

        real = fsutil.make_dir

        def invalid(path):
            real(path)
            put(os.path.join(path, "cgroup.type"), "domain invalid\n")

        monkeypatch.setattr(fsutil, "make_dir", invalid)
        m = fake.new_manager("/x")
        m.create(resources(pids=NS(limit=3)))
        assert fake.read("x", "cgroup.type") == "threaded"


class TestSetMemory:
    def test_swap_before_limit(self, fake, made):
        made.set(
            resources(
                memory=memory(
                    limit=32 * MIB, swap=64 * MIB, reservation=8 * MIB
                )
            )
        )
        assert writes_of(fake, made) == [
            ("memory.swap.max", str(32 * MIB)),
            ("memory.max", str(32 * MIB)),
            ("memory.low", str(8 * MIB)),
        ]

    def test_swap_equal_limit_disables_swap(self, fake, made):
        made.set(resources(memory=memory(limit=MIB, swap=MIB)))
        assert writes_of(fake, made) == [
            ("memory.swap.max", "0"),
            ("memory.max", str(MIB)),
        ]

    def test_unlimited(self, fake, made):
        made.set(resources(memory=memory(limit=-1)))
        assert writes_of(fake, made) == [
            ("memory.swap.max", "max"),
            ("memory.max", "max"),
        ]

    def test_limit_only(self, fake, made):
        made.set(resources(memory=memory(limit=MIB)))
        assert writes_of(fake, made) == [("memory.max", str(MIB))]

    @pytest.mark.parametrize(
        "limit, swap, msg",
        [
            (None, MIB, "unable to set swap limit without memory limit"),
            (2 * MIB, MIB, "memory+swap limit should be >= memory limit"),
        ],
    )
    def test_bad_swap(self, fake, made, limit, swap, msg):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            made.set(resources(memory=memory(limit=limit, swap=swap)))

    def test_v1_only_knobs_ignored(self, fake, made, pyrunc_logs):
        made.set(
            resources(memory=memory(swappiness=10, disable_oom_killer=True))
        )
        assert writes_of(fake, made) == []
        text = pyrunc_logs.text
        assert "memory.swappiness: not supported on cgroup v2" in text
        assert "memory.disableOOMKiller: not supported on cgroup v2" in text

    def test_refused_value(self, fake, made):
        fake.fail["memory.max"] = errno.EINVAL
        with pytest.raises(CgroupError) as exc:
            made.set(resources(memory=memory(limit=1)))
        path = os.path.join(made.paths()[""], "memory.max")
        assert str(exc.value) == (
            f"linux.resources.memory.limit: write 1 to {path}: Invalid "
            "argument"
        )


class TestSetCpuPids:
    @pytest.mark.parametrize(
        "shares, weight", [(2, 1), (1024, 39), (262144, 10000), (512, 20)]
    )
    def test_weight_conversion(self, shares, weight):
        assert res.cpu_weight(shares) == weight

    def test_shares_quota_period(self, fake, made):
        made.set(resources(cpu=cpu(shares=1024, quota=50000, period=100000)))
        assert writes_of(fake, made) == [
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
        ]

    @pytest.mark.parametrize(
        "quota, period, text",
        [
            (None, 200000, "max 200000"),
            (-1, None, "max 100000"),
            (30000, None, "30000 100000"),
        ],
    )
    def test_cpu_max(self, fake, made, quota, period, text):
        made.set(resources(cpu=cpu(quota=quota, period=period)))
        assert writes_of(fake, made) == [("cpu.max", text)]

    def test_cpuset(self, fake, made):
        made.set(resources(cpu=cpu(cpus="0-1", mems="0")))
        assert writes_of(fake, made) == [
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
        ]

    @pytest.mark.parametrize("limit, text", [(20, "20"), (-1, "max")])
    def test_pids(self, fake, made, limit, text):
        made.set(resources(pids=NS(limit=limit)))
        assert writes_of(fake, made) == [("pids.max", text)]

    def test_order_like_runc(self, fake, made):
        made.set(
            resources(
                pids=NS(limit=5),
                memory=memory(limit=MIB),
                cpu=cpu(shares=2, cpus="0"),
            )
        )
        assert [n for n, _ in writes_of(fake, made)] == [
            "pids.max",
            "memory.max",
            "cpu.weight",
            "cpuset.cpus",
        ]

    def test_devices_become_a_program(self, fake, made, programs):
        made.set(resources())
        assert writes_of(fake, made) == []
        [(path, insns, license)] = programs
        assert path == made.paths()[""]
        assert license == "Apache"
        from pyrunc.cgroups import devicefilter

        assert devicefilter.run(insns, "c", 1, 3, "rw")
        assert not devicefilter.run(insns, "c", 4, 1, "r")

    def test_skip_devices(self, fake, made, programs):
        made.set(resources(), skip_devices=True)
        assert programs == []

    def test_unified(self, fake, made):
        made.set(resources(unified={"memory.high": "1000"}))
        assert writes_of(fake, made) == [("memory.high", "1000")]

    def test_unified_with_slash(self, fake, made):
        with pytest.raises(ConfigError, match="no slashes"):
            made.set(resources(unified={"../x": "1"}))

    def test_hugetlb(self, fake, made):
        put(os.path.join(made.paths()[""], "hugetlb.2MB.max"), "max\n")
        made.set(resources(hugepage_limits=[NS(page_size="2MB", limit=4)]))
        assert writes_of(fake, made) == [("hugetlb.2MB.max", "4")]


class TestLifecycle:
    def test_apply(self, fake, made):
        made.apply(77)
        assert fake.read(made.paths()[""], "cgroup.procs") == "77"

    def test_apply_failure(self, fake, made):
        fake.fail["cgroup.procs"] = errno.EBUSY
        with pytest.raises(CgroupError, match="write 78 to .*cgroup.procs"):
            made.apply(78)

    def test_destroy_keeps_parent(self, fake, made):
        made.destroy()
        assert not os.path.exists(made.paths()[""])
        assert os.path.isdir(fake.path("user.slice"))

    def test_freeze_thaw(self, fake, made):
        path = made.paths()[""]
        put(os.path.join(path, "cgroup.events"), "populated 1\nfrozen 1\n")
        made.freeze()
        assert made.is_frozen()
        made.thaw()
        assert not made.is_frozen()
        assert writes_of(fake, made) == [
            ("cgroup.freeze", "1"),
            ("cgroup.freeze", "0"),
        ]

    def test_freeze_waits_for_events(self, fake, made, monkeypatch):
        from pyrunc.cgroups import v2

        path = made.paths()[""]
        naps = []

        def nap(seconds):
            naps.append(seconds)
            put(os.path.join(path, "cgroup.events"), "frozen 1\n")

        monkeypatch.setattr(v2.time, "sleep", nap)
        made.freeze()
        assert len(naps) == 1

    def test_kill_all_uses_cgroup_kill(self, fake, made, monkeypatch):
        monkeypatch.setattr(os, "kill", lambda p, s: pytest.fail("kill"))
        made.kill_all(9)
        assert writes_of(fake, made) == [("cgroup.kill", "1")]

    def test_kill_all_without_cgroup_kill(self, fake, made, monkeypatch):
        path = made.paths()[""]
        os.unlink(os.path.join(path, "cgroup.kill"))
        put(os.path.join(path, "cgroup.procs"), "31\n")
        put(os.path.join(path, "cgroup.events"), "frozen 1\n")
        sent = []
        monkeypatch.setattr(os, "kill", lambda p, s: sent.append((p, s)))
        made.kill_all(9)
        assert sent == [(31, 9)]
        assert [
            v for n, v in writes_of(fake, made) if n == "cgroup.freeze"
        ] == ["1", "0"]

    def test_other_signal_does_not_use_cgroup_kill(
        self, fake, made, monkeypatch
    ):
        path = made.paths()[""]
        put(os.path.join(path, "cgroup.procs"), "31\n32\n")
        put(os.path.join(path, "cgroup.events"), "frozen 1\n")
        sent = []
        monkeypatch.setattr(os, "kill", lambda p, s: sent.append((p, s)))
        made.kill_all(15)
        assert sent == [(31, 15), (32, 15)]

    def test_stats(self, fake, made):
        path = made.paths()[""]
        put(os.path.join(path, "memory.stat"), "anon 4096\nfile 512\n")
        put(os.path.join(path, "pids.max"), "20\n")
        st = made.stats()
        assert st["memory"]["cache"] == 512
        assert st["memory"]["usage"] == {
            "limit": 2**64 - 1, "usage": 4096, "failcnt": 0}
        assert st["pids"] == {"current": 1, "limit": 20}
        assert st["cpu"]["usage"] == {"total": 7000, "kernel": 0,
                                      "user": 5000}
