"""The v1 / hybrid driver on a fake cgroupfs: files, values and order."""

import dataclasses
import errno
import json
import os
from types import SimpleNamespace as NS

import pytest

from pyrunc.cgroups import manager_from_dict
from pyrunc.cgroups.v1 import V1Manager
from pyrunc.errors import CgroupError, ConfigError

from test_cgroups_fake import UNLIMITED, FakeCgroupfs, put

MIB = 1024 * 1024

# runc's default allow list as written after "deny all", in its order.
DEFAULT_ALLOWS = [
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


def deny_all():
    return NS(allow=False, type=None, major=None, minor=None, access="rwm")


def resources(**kw):
    base = dict(
        devices=[deny_all()],
        memory=None,
        cpu=None,
        pids=None,
        block_io=None,
        hugepage_limits=[],
        network=None,
        rdma={},
        unified={},
    )
    base.update(kw)
    return NS(**base)


def memory(**kw):
    base = dict(
        limit=None,
        reservation=None,
        swap=None,
        kernel=None,
        kernel_tcp=None,
        swappiness=None,
        disable_oom_killer=None,
        use_hierarchy=None,
        check_before_update=None,
    )
    base.update(kw)
    return NS(**base)


def cpu(**kw):
    base = dict(
        shares=None,
        quota=None,
        period=None,
        realtime_runtime=None,
        realtime_period=None,
        cpus=None,
        mems=None,
        idle=None,
        burst=None,
    )
    base.update(kw)
    return NS(**base)


@pytest.fixture(autouse=True)
def no_device_check(monkeypatch):
    # A fake devices.list does not follow the writes.
    monkeypatch.setattr(V1Manager, "verify_devices", False)


@pytest.fixture(params=["v1", "hybrid"])
def fake(request, tmp_path, monkeypatch):
    return FakeCgroupfs(
        tmp_path,
        request.param,
        own={"memory": "/process_api/x"},
        monkeypatch=monkeypatch,
    )


@pytest.fixture
def made(fake):
    fake.mkdir_cgroup(fake.path("memory", "process_api", "x"))
    m = fake.new_manager("pyrunc-t")
    m.create()
    fake.writes.clear()
    return m


class TestCreate:
    def test_makes_each_controller_dir(self, fake, made):
        for ctrl, path in made.paths().items():
            assert os.path.isdir(path), ctrl
        assert made.paths()["memory"] == fake.path(
            "memory", "process_api", "x", "pyrunc-t"
        )
        created = made.to_dict()["created"]
        # The runtime's own memory cgroup existed already.
        assert fake.path("memory", "process_api", "x") not in created
        assert fake.path("memory", "process_api", "x", "pyrunc-t") in created

    def test_idempotent(self, fake, made):
        before = made.to_dict()
        made.create()
        assert made.to_dict() == before

    def test_cpuset_copied_from_parent_at_each_level(self, fake):
        m = fake.new_manager("/a/b")
        m.create()
        for rel in (("a",), ("a", "b")):
            assert fake.read("cpuset", *rel, "cpuset.cpus") == "0-3"
            assert fake.read("cpuset", *rel, "cpuset.mems") == "0"

    def test_cpuset_not_overwritten_when_set(self, fake):
        fake.mkdir_cgroup(fake.path("cpuset", "a"))
        put(fake.path("cpuset", "a", "cpuset.cpus"), "1\n")
        put(fake.path("cpuset", "a", "cpuset.mems"), "0\n")
        m = fake.new_manager("/a/b")
        m.create()
        assert fake.read("cpuset", "a", "b", "cpuset.cpus") == "1"
        assert fake.read("cpuset", "a", "cpuset.cpus") == "1\n"

    def test_unified_join_is_best_effort(self, fake, made, monkeypatch):
        if fake.mode != "hybrid":
            pytest.skip("hybrid only")
        from pyrunc.cgroups import fsutil

        real = fsutil.make_dir

        def refuse_unified(path):
            if fake.hierarchy(path) == "unified":
                raise PermissionError(errno.EACCES, "denied", path)
            real(path)

        monkeypatch.setattr(fsutil, "make_dir", refuse_unified)
        m = fake.new_manager("/c")
        m.create()
        assert os.path.isdir(fake.path("memory", "c"))
        assert not os.path.exists(fake.path("unified", "c"))
        m.apply(5)
        assert fake.read("memory", "c", "cgroup.procs") == "5"


class TestSetMemory:
    def test_limit_reservation_swappiness_oom(self, fake, made):
        made.set(
            resources(
                memory=memory(
                    limit=32 * MIB,
                    reservation=16 * MIB,
                    swappiness=10,
                    disable_oom_killer=True,
                )
            )
        )
        mem = made.paths()["memory"]
        rel = os.path.relpath(mem, fake.root)
        writes = fake.written("memory")
        assert writes == [
            (rel + "/memory.limit_in_bytes", str(32 * MIB)),
            (rel + "/memory.soft_limit_in_bytes", str(16 * MIB)),
            (rel + "/memory.oom_control", "1"),
            (rel + "/memory.swappiness", "10"),
        ]

    def test_swap_after_limit_when_lowering(self, fake, made):
        # Current limit (unlimited) is above the new memsw: limit first.
        made.set(resources(memory=memory(limit=32 * MIB, swap=64 * MIB)))
        names = [os.path.basename(p) for p, _ in fake.written("memory")]
        assert names == [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
        ]

    def test_swap_first_when_raising(self, fake, made):
        mem = made.paths()["memory"]
        put(os.path.join(mem, "memory.limit_in_bytes"), str(16 * MIB))
        put(os.path.join(mem, "memory.memsw.limit_in_bytes"), str(16 * MIB))
        made.set(resources(memory=memory(limit=32 * MIB, swap=64 * MIB)))
        names = [os.path.basename(p) for p, _ in fake.written("memory")]
        assert names == [
            "memory.memsw.limit_in_bytes",
            "memory.limit_in_bytes",
        ]

    def test_unlimited_swap_first(self, fake, made):
        made.set(resources(memory=memory(limit=32 * MIB, swap=-1)))
        assert [v for _, v in fake.written("memory")] == ["-1", str(32 * MIB)]

    def test_unlimited_memory_means_unlimited_swap(self, fake, made):
        made.set(resources(memory=memory(limit=-1)))
        names = [os.path.basename(p) for p, _ in fake.written("memory")]
        assert names == [
            "memory.memsw.limit_in_bytes",
            "memory.limit_in_bytes",
        ]
        assert [v for _, v in fake.written("memory")] == ["-1", "-1"]

    def test_busy_names_field_file_and_usage(self, fake, made):
        fake.fail["memory.limit_in_bytes"] = errno.EBUSY
        with pytest.raises(CgroupError) as exc:
            made.set(resources(memory=memory(limit=1)))
        path = os.path.join(made.paths()["memory"], "memory.limit_in_bytes")
        assert str(exc.value) == (
            f"linux.resources.memory.limit: write 1 to {path}: Device or "
            "resource busy (current usage: 4096, peak usage: 8192)"
        )

    def test_invalid_swappiness(self, fake, made):
        with pytest.raises(ConfigError, match="valid range is 0-100"):
            made.set(resources(memory=memory(swappiness=101)))

    def test_kernel_memory_ignored_with_warning(self, fake, made,
                                                pyrunc_logs):
        made.set(resources(memory=memory(kernel=1 << 30)))
        assert "kernel memory settings are ignored" in pyrunc_logs.text
        assert fake.written("memory") == []


class TestSetCpu:
    def test_shares_quota_period(self, fake, made):
        made.set(resources(cpu=cpu(shares=512, quota=50000, period=100000)))
        rel = os.path.relpath(made.paths()["cpu"], fake.root)
        assert fake.written("cpu/") == [
            (rel + "/cpu.shares", "512"),
            (rel + "/cpu.cfs_period_us", "100000"),
            (rel + "/cpu.cfs_quota_us", "50000"),
        ]

    def test_period_refused_then_after_quota(self, fake, made):
        calls = []

        def refuse_first(rel, value):
            calls.append(value)
            return errno.EINVAL if len(calls) == 1 else 0

        fake.fail["cpu.cfs_period_us"] = refuse_first
        made.set(resources(cpu=cpu(quota=20000, period=10000)))
        names = [os.path.basename(p) for p, _ in fake.written("cpu/")]
        assert names == [
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
        ]

    def test_period_refused_without_quota(self, fake, made):
        fake.fail["cpu.cfs_period_us"] = errno.EINVAL
        with pytest.raises(
            CgroupError, match="^linux.resources.cpu.period: write 5 "
        ):
            made.set(resources(cpu=cpu(period=5)))

    def test_shares_clamped_by_kernel(self, fake, made, monkeypatch):
        from pyrunc.cgroups import fsutil

        real = fsutil.write_file

        def clamp(dirpath, name, value):
            if name == "cpu.shares":
                value = max(int(value), 2)
            real(dirpath, name, value)

        monkeypatch.setattr(fsutil, "write_file", clamp)
        with pytest.raises(CgroupError) as exc:
            made.set(resources(cpu=cpu(shares=1)))
        assert str(exc.value) == (
            "linux.resources.cpu.shares: the minimum allowed cpu-shares is 2"
        )

    def test_realtime(self, fake, made):
        made.set(
            resources(
                cpu=cpu(realtime_period=1000000, realtime_runtime=950000)
            )
        )
        assert fake.written("cpu/")[-2:] == [
            (
                os.path.relpath(made.paths()["cpu"], fake.root)
                + "/cpu.rt_period_us",
                "1000000",
            ),
            (
                os.path.relpath(made.paths()["cpu"], fake.root)
                + "/cpu.rt_runtime_us",
                "950000",
            ),
        ]

    def test_cpuset(self, fake, made):
        made.set(resources(cpu=cpu(cpus="1", mems="0")))
        cpuset = made.paths()["cpuset"]
        assert fake.read(cpuset, "cpuset.cpus") == "1"
        assert fake.read(cpuset, "cpuset.mems") == "0"

    def test_cpuset_refused(self, fake, made):
        fake.fail["cpuset.cpus"] = errno.EINVAL
        with pytest.raises(CgroupError) as exc:
            made.set(resources(cpu=cpu(cpus="99")))
        path = os.path.join(made.paths()["cpuset"], "cpuset.cpus")
        assert str(exc.value) == (
            f"linux.resources.cpu.cpus: write 99 to {path}: Invalid argument"
        )


class TestSetPids:
    @pytest.mark.parametrize(
        "limit, text", [(20, "20"), (-1, "max"), (-5, "max")]
    )
    def test_limit(self, fake, made, limit, text):
        made.set(resources(pids=NS(limit=limit)))
        assert fake.read(made.paths()["pids"], "pids.max") == text

    def test_zero_leaves_alone(self, fake, made):
        made.set(resources(pids=NS(limit=0)))
        assert fake.written("pids") == []

    def test_missing_file_is_not_created(self, fake, made):
        path = os.path.join(made.paths()["pids"], "pids.max")
        os.unlink(path)
        with pytest.raises(CgroupError) as exc:
            made.set(resources(pids=NS(limit=20)))
        assert str(exc.value) == (
            f"linux.resources.pids.limit: write 20 to {path}: No such file "
            "or directory"
        )
        assert not os.path.exists(path)

    def test_controller_not_mounted(self, tmp_path, monkeypatch):
        fake = FakeCgroupfs(tmp_path, "v1", monkeypatch=monkeypatch)
        put(fake.proc_self_cgroup, "5:devices:/\n")
        m = fake.new_manager("c")
        m.create()
        with pytest.raises(CgroupError) as exc:
            m.set(resources(pids=NS(limit=20)))
        assert str(exc.value) == (
            "linux.resources.pids.limit: the pids cgroup controller is not "
            "available"
        )


class TestSetDevices:
    def devices_writes(self, fake):
        return [(os.path.basename(p), v) for p, v in fake.written("devices")]

    def test_deny_all_then_defaults(self, fake, made):
        made.set(resources())
        assert self.devices_writes(fake) == (
            [("devices.deny", "a *:* rwm")]
            + [("devices.allow", line) for line in DEFAULT_ALLOWS]
        )

    def test_without_resources_defaults_still_apply(self, fake, made):
        made.set(None)
        writes = self.devices_writes(fake)
        assert writes[0] == ("devices.deny", "a *:* rwm")
        assert len(writes) == 1 + len(DEFAULT_ALLOWS)
        assert fake.written("memory") == []

    def test_spec_rules_merge(self, fake, made):
        rules = [
            deny_all(),
            NS(allow=True, type="c", major=4, minor=None, access="rw"),
            NS(allow=True, type="c", major=1, minor=3, access="r"),
        ]
        made.set(resources(devices=rules))
        allows = [
            v for n, v in self.devices_writes(fake) if n == "devices.allow"
        ]
        assert "c 4:* rw" in allows
        assert "c 1:3 rwm" in allows
        assert allows.index("c 1:9 rwm") < allows.index("c 4:* rw")

    def test_linux_device_overrides_default(self, fake, made):
        made.set(resources(), linux_devices=[NS(path="/dev/null")])
        allows = [
            v for n, v in self.devices_writes(fake) if n == "devices.allow"
        ]
        assert "c 1:3 rwm" not in allows
        assert "c 1:5 rwm" in allows

    def test_already_whitelisted_writes_only_the_difference(self, fake, made):
        path = made.paths()["devices"]
        put(
            os.path.join(path, "devices.list"),
            "\n".join(DEFAULT_ALLOWS[:-1] + ["c 4:1 rwm"]) + "\n",
        )
        made.set(resources())
        assert self.devices_writes(fake) == [
            ("devices.deny", "c 4:1 rwm"),
            ("devices.allow", "c 136:* rwm"),
        ]

    def test_punch_hole_refused(self, fake, made):
        rules = [
            deny_all(),
            NS(allow=True, type="c", major=None, minor=None, access="rwm"),
            NS(allow=False, type="c", major=1, minor=3, access="r"),
        ]
        with pytest.raises(CgroupError, match="cannot punch a hole"):
            made.set(resources(devices=rules))

    def test_bad_type(self, fake, made):
        rules = [NS(allow=True, type="p", major=1, minor=1, access="rwm")]
        with pytest.raises(
            ConfigError, match=r"devices\[0\].type: invalid device type"
        ):
            made.set(resources(devices=rules))

    def test_empty_access(self, fake, made):
        rules = [NS(allow=True, type="c", major=1, minor=1, access="")]
        with pytest.raises(ConfigError, match="cannot be empty"):
            made.set(resources(devices=rules))

    def test_final_check(self, fake, made, monkeypatch):
        monkeypatch.setattr(V1Manager, "verify_devices", True)
        with pytest.raises(CgroupError, match="doesn't precisely match"):
            made.set(resources())


class TestEmptyAndRefused:
    def test_empty_dataclass_with_slots_accepted(self, fake, made):
        @dataclasses.dataclass(slots=True)
        class BlockIO:
            weight: int = None
            weight_device: list = dataclasses.field(default_factory=list)

        made.set(resources(block_io=BlockIO()))
        assert fake.written("blkio") == []

    def test_empty_values_accepted(self, fake, made):
        made.set(
            resources(
                block_io=NS(weight=None, weight_device=[]),
                network=NS(class_id=None, priorities=[]),
            )
        )
        assert fake.written("blkio") == []

    def test_unified_on_v1(self, fake, made):
        with pytest.raises(ConfigError, match="cannot use unified on"):
            made.set(resources(unified={"memory.high": "1"}))


class TestApply:
    def test_joins_every_hierarchy(self, fake, made):
        made.apply(4242)
        for ctrl, path in made.paths().items():
            assert fake.read(path, "cgroup.procs") == "4242", ctrl
        if fake.mode == "hybrid":
            assert made.paths()[""] == fake.path("unified", "pyrunc-t")

    def test_failure_names_file(self, fake, made):
        fake.fail["cgroup.procs"] = lambda rel, v: (
            errno.ESRCH if rel.startswith("memory") else 0
        )
        with pytest.raises(CgroupError) as exc:
            made.apply(7)
        path = os.path.join(made.paths()["memory"], "cgroup.procs")
        assert str(exc.value) == f"write 7 to {path}: No such process"

    def test_optional_hierarchies_may_fail(self, fake, made):
        fake.fail["cgroup.procs"] = lambda rel, v: (
            errno.EPERM if rel.startswith(("systemd", "unified")) else 0
        )
        made.apply(8)
        assert fake.read(made.paths()["memory"], "cgroup.procs") == "8"

    def test_empty_cpuset_filled_on_enospc(self, fake, made):
        cpuset = made.paths()["cpuset"]
        put(os.path.join(cpuset, "cpuset.cpus"), "")

        def enospc(rel, value):
            if not rel.startswith("cpuset"):
                return 0
            cpus = fake.read(cpuset, "cpuset.cpus")
            return 0 if cpus.strip() else errno.ENOSPC

        fake.fail["cgroup.procs"] = enospc
        made.apply(9)
        assert fake.read(cpuset, "cpuset.cpus") == "0-3"
        assert fake.read(cpuset, "cgroup.procs") == "9"


class TestDestroy:
    def test_removes_created_keeps_own(self, fake, made):
        own = fake.path("memory", "process_api", "x")
        made.destroy()
        for path in made.paths().values():
            assert not os.path.exists(path)
        assert os.path.isdir(own)
        made.destroy()

    def test_intermediates_removed_unless_shared(self, fake):
        m1 = fake.new_manager("/pod/a")
        m1.create()
        m2 = fake.new_manager("/pod/b")
        m2.create()
        m1.destroy()
        assert os.path.isdir(fake.path("memory", "pod", "b"))
        assert not os.path.exists(fake.path("memory", "pod", "a"))
        # m2 did not make /pod, so it stays after m2 is gone.
        m2.destroy()
        assert os.path.isdir(fake.path("memory", "pod"))

    def test_intermediates_of_sole_user_removed(self, fake):
        m = fake.new_manager("/pod/a")
        m.create()
        m.destroy()
        assert not os.path.exists(fake.path("memory", "pod"))
        assert os.path.isdir(fake.path("memory"))

    def test_sub_cgroups_removed_first(self, fake, made):
        fake.mkdir_cgroup(os.path.join(made.paths()["memory"], "inner"))
        made.destroy()
        assert not os.path.exists(made.paths()["memory"])

    def test_busy_retries_then_fails(self, fake, made):
        procs = os.path.join(made.paths()["memory"], "cgroup.procs")
        put(procs, "123\n")
        with pytest.raises(CgroupError) as exc:
            made.destroy()
        assert str(exc.value) == (
            f"rmdir {made.paths()['memory']}: Device or resource busy"
        )
        put(procs, "")
        made.destroy()
        assert not os.path.exists(made.paths()["memory"])

    def test_from_dict_in_another_command(self, fake, made):
        d = json.loads(json.dumps(made.to_dict()))
        manager_from_dict(d).destroy()
        for path in made.paths().values():
            assert not os.path.exists(path)
        assert os.path.isdir(fake.path("memory", "process_api", "x"))


class TestPidsFreezerKill:
    def test_pids_recursive(self, fake, made):
        dev = made.paths()["devices"]
        put(os.path.join(dev, "cgroup.procs"), "10\n11\n")
        fake.mkdir_cgroup(os.path.join(dev, "sub"))
        put(os.path.join(dev, "sub", "cgroup.procs"), "12\n")
        assert sorted(made.pids()) == [10, 11, 12]
        assert made.exists()

    def test_exists_false_after_destroy(self, fake, made):
        made.destroy()
        assert not made.exists()
        assert made.pids() == []

    def test_freeze_thaw(self, fake, made):
        fz = made.paths()["freezer"]
        made.freeze()
        assert fake.read(fz, "freezer.state") == "FROZEN"
        put(os.path.join(fz, "freezer.self_freezing"), "1\n")
        assert made.is_frozen()
        put(os.path.join(fz, "freezer.self_freezing"), "0\n")
        # Frozen only through an ancestor: runc reports it thawed.
        assert not made.is_frozen()
        made.thaw()
        assert fake.read(fz, "freezer.state") == "THAWED"
        assert not made.is_frozen()

    def test_freeze_failure_thaws(self, fake, made, monkeypatch):
        from pyrunc.cgroups import v1

        monkeypatch.setattr(v1.time, "sleep", lambda s: None)
        fz = made.paths()["freezer"]
        real = fake._real_write

        def stuck(dirpath, name, value):
            if value == "FROZEN":
                value = "FREEZING"
            real(dirpath, name, value)

        fake._real_write = stuck
        with pytest.raises(CgroupError, match="unable to freeze"):
            made.freeze()
        assert fake.read(fz, "freezer.state") == "THAWED"

    def test_kill_all_freezes_signals_thaws(self, fake, made, monkeypatch):
        put(os.path.join(made.paths()["devices"], "cgroup.procs"), "21\n22\n")
        sent = []

        def fake_kill(pid, sig):
            state = fake.read(made.paths()["freezer"], "freezer.state")
            sent.append((pid, sig, state))
            if pid == 22:
                raise ProcessLookupError

        monkeypatch.setattr(os, "kill", fake_kill)
        made.kill_all(15)
        assert sent == [(21, 15, "FROZEN"), (22, 15, "FROZEN")]
        assert fake.read(made.paths()["freezer"], "freezer.state") == "THAWED"

    def test_kill_all_gone_cgroup_is_noop(self, fake, made, monkeypatch):
        made.destroy()
        monkeypatch.setattr(os, "kill", lambda p, s: pytest.fail("kill"))
        made.kill_all(9)

    def test_stats(self, fake, made):
        paths = made.paths()
        put(os.path.join(paths["memory"], "memory.stat"), "cache 7\n")
        put(os.path.join(paths["memory"], "memory.failcnt"), "0\n")
        put(os.path.join(paths["memory"], "memory.use_hierarchy"), "1\n")
        put(os.path.join(paths["cpuacct"], "cpuacct.stat"),
            "user 2\nsystem 1\n")
        put(os.path.join(paths["cpuacct"], "cpuacct.usage_percpu"),
            "12000 345\n")
        st = made.stats()
        assert st["memory"]["cache"] == 7
        assert st["memory"]["usage"] == {
            "limit": int(UNLIMITED), "usage": 4096, "max": 8192,
            "failcnt": 0}
        assert st["pids"] == {}
        assert st["cpu"]["usage"] == {
            "total": 12345, "percpu": [12000, 345], "kernel": 10000000,
            "user": 20000000}


class TestWithSpecModel:
    """The duck typing matches the real spec model."""

    @pytest.fixture
    def model(self):
        return pytest.importorskip("pyrunc.spec.model")

    def test_from_json(self, fake, made, model):
        r = model.Resources.from_json(
            {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": 32 * MIB, "swappiness": 0},
                "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
                "pids": {"limit": 20},
                "blockIO": {},
                "network": {},
            }
        )
        made.set(r)
        paths = made.paths()
        assert fake.read(paths["memory"], "memory.limit_in_bytes") == str(
            32 * MIB
        )
        assert fake.read(paths["memory"], "memory.swappiness") == "0"
        assert fake.read(paths["cpu"], "cpu.cfs_quota_us") == "50000"
        assert fake.read(paths["cpuset"], "cpuset.cpus") == "0"
        assert fake.read(paths["pids"], "pids.max") == "20"
        devices = [v for p, v in fake.written("devices")]
        assert devices == ["a *:* rwm"] + DEFAULT_ALLOWS

    def test_block_io_weight(self, fake, made, model):
        r = model.Resources.from_json({"blockIO": {"weight": 10}})
        with pytest.raises(CgroupError, match="blockIO.weight: write 10"):
            made.set(r)
        put(os.path.join(made.paths()["blkio"], "blkio.bfq.weight"), "1\n")
        made.set(r)
        assert fake.read(made.paths()["blkio"], "blkio.bfq.weight") == "10"
