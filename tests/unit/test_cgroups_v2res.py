"""cgroup v2 limits beyond memory/cpu/pids on a fake tree: io, cpu idle
and burst, hugetlb, rdma, unified, checkBeforeUpdate, ignored fields."""

import errno
import os

import pytest

from pyrunc.errors import CgroupError, ConfigError
from pyrunc.spec.model import Resources

from test_cgroups_fake import FakeCgroupfs, put

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def programs(monkeypatch):
    from pyrunc.cgroups import bpf

    attached = []
    monkeypatch.setattr(bpf, "attach_device_filter",
                        lambda fd, insns, lic: attached.append(insns))
    return attached


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeCgroupfs(tmp_path, "v2", monkeypatch=monkeypatch)


@pytest.fixture
def made(fake):
    m = fake.new_manager("/c")
    m.create()
    fake.writes.clear()
    return m


def path_of(made, name):
    return os.path.join(made.paths()[""], name)


def apply(made, obj, **kw):
    made.set(Resources.from_json(obj), **kw)


def writes(fake):
    return [(os.path.basename(p), v) for p, v in fake.writes]


class TestIo:
    def test_weight_converted_without_bfq(self, fake, made):
        put(path_of(made, "io.weight"), "default 100\n")
        apply(made, {"blockIO": {"weight": 500}})
        assert writes(fake) == [("io.weight", "4950")]

    def test_bfq_takes_the_v1_weight(self, fake, made):
        put(path_of(made, "io.bfq.weight"), "default 100\n")
        apply(made, {"blockIO": {
            "weight": 500,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
        }})
        assert writes(fake) == [
            ("io.bfq.weight", "500"),
            ("io.bfq.weight", "8:0 300"),
        ]

    def test_device_weight_needs_new_bfq(self, fake, made, pyrunc_logs):
        put(path_of(made, "io.bfq.weight"), "100\n")
        apply(made, {"blockIO": {"weightDevice": [
            {"major": 8, "minor": 0, "weight": 300}]}})
        assert writes(fake) == []
        assert "per-device weights need BFQ" in pyrunc_logs.text

    def test_throttles_go_to_io_max(self, fake, made):
        put(path_of(made, "io.max"), "")
        apply(made, {"blockIO": {
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0,
                                         "rate": 4}],
        }})
        assert writes(fake) == [
            ("io.max", "8:0 rbps=1"),
            ("io.max", "8:0 wbps=2"),
            ("io.max", "8:0 riops=3"),
            ("io.max", "8:0 wiops=4"),
        ]

    def test_no_io_file_names_field(self, fake, made):
        # The fake root offers io, but this cgroup has no io.weight.
        with pytest.raises(CgroupError, match=(
                "^linux.resources.blockIO.weight: write 4950 to .*io.weight"
                ": No such file or directory")):
            apply(made, {"blockIO": {"weight": 500}})

    def test_controller_not_enabled_names_it(self, fake, made):
        put(path_of(made, "cgroup.controllers"), "cpu memory pids\n")
        with pytest.raises(CgroupError, match=(
                "^linux.resources.blockIO.weight: the io controller is not "
                "available")):
            apply(made, {"blockIO": {"weight": 500}})


class TestCpu:
    def test_idle_weight_burst_max_order(self, fake, made):
        put(path_of(made, "cpu.idle"), "0\n")
        put(path_of(made, "cpu.max.burst"), "0\n")
        apply(made, {"cpu": {"idle": 1, "shares": 1024, "burst": 1000,
                             "quota": 50000}})
        assert writes(fake) == [
            ("cpu.idle", "1"),
            ("cpu.weight", "39"),
            ("cpu.max.burst", "1000"),
            ("cpu.max", "50000 100000"),
        ]

    def test_burst_retried_after_quota(self, fake, made):
        put(path_of(made, "cpu.max.burst"), "0\n")
        calls = []

        def once(rel, value):
            calls.append(value)
            return errno.EINVAL if len(calls) == 1 else 0

        fake.fail["cpu.max.burst"] = once
        apply(made, {"cpu": {"burst": 1000, "quota": 50000}})
        assert writes(fake) == [
            ("cpu.max.burst", "1000"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
        ]

    def test_burst_refused_without_quota(self, fake, made):
        put(path_of(made, "cpu.max.burst"), "0\n")
        fake.fail["cpu.max.burst"] = errno.EINVAL
        with pytest.raises(CgroupError, match="^linux.resources.cpu.burst"):
            apply(made, {"cpu": {"burst": 1000}})

    def test_realtime_ignored_with_warning(self, fake, made, pyrunc_logs):
        apply(made, {"cpu": {"realtimeRuntime": 10, "realtimePeriod": 20}})
        assert writes(fake) == []
        text = pyrunc_logs.text
        assert "cpu.realtimeRuntime: not supported on cgroup v2" in text
        assert "cpu.realtimePeriod: not supported on cgroup v2" in text


class TestMemory:
    def test_check_before_update_refuses_low_limit(self, fake, made):
        put(path_of(made, "memory.current"), str(8 * MIB) + "\n")
        with pytest.raises(CgroupError, match=(
                "rejecting memory limit 4194304 <= usage 8388608")):
            apply(made, {"memory": {"limit": 4 * MIB,
                                    "checkBeforeUpdate": True}})
        assert writes(fake) == []
        with pytest.raises(CgroupError, match="rejecting memory\\+swap"):
            apply(made, {"memory": {"limit": 4 * MIB, "swap": 8 * MIB,
                                    "checkBeforeUpdate": True}})

    def test_check_before_update_accepts_higher_limit(self, fake, made):
        put(path_of(made, "memory.current"), str(8 * MIB) + "\n")
        apply(made, {"memory": {"limit": 16 * MIB,
                                "checkBeforeUpdate": True}})
        assert writes(fake) == [("memory.max", str(16 * MIB))]

    def test_without_check_a_low_limit_is_written(self, fake, made):
        put(path_of(made, "memory.current"), str(8 * MIB) + "\n")
        apply(made, {"memory": {"limit": 4 * MIB}})
        assert writes(fake) == [("memory.max", str(4 * MIB))]

    def test_no_swap_accounting(self, fake, made):
        os.unlink(path_of(made, "memory.swap.max"))
        # "max" and "0" are what a kernel without swap does anyway.
        apply(made, {"memory": {"limit": MIB, "swap": MIB}})
        assert writes(fake)[-1] == ("memory.max", str(MIB))
        with pytest.raises(CgroupError, match="memory.swap: write"):
            apply(made, {"memory": {"limit": MIB, "swap": 2 * MIB}})

    def test_use_hierarchy_false_warns(self, fake, made, pyrunc_logs):
        apply(made, {"memory": {"useHierarchy": False}})
        assert "useHierarchy: not supported on cgroup v2" in (
            pyrunc_logs.text)


class TestOthers:
    def test_hugetlb_and_rdma(self, fake, made):
        put(path_of(made, "hugetlb.2MB.max"), "max\n")
        put(path_of(made, "rdma.max"), "")
        apply(made, {
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
        })
        assert writes(fake) == [
            ("hugetlb.2MB.max", str(4 * MIB)),
            ("rdma.max", "mlx5_1 hca_handle=3"),
        ]

    def test_hugetlb_controller_missing(self, fake, made):
        with pytest.raises(CgroupError, match=(
                r"^linux.resources.hugepageLimits\[0\]: the hugetlb "
                "controller is not available")):
            apply(made, {"hugepageLimits": [{"pageSize": "2MB",
                                             "limit": 1}]})

    def test_network_ignored_with_warning(self, fake, made, pyrunc_logs):
        apply(made, {"network": {"classID": 1, "priorities": [
            {"name": "eth0", "priority": 1}]}})
        assert writes(fake) == []
        assert "network.classID: not supported on cgroup v2" in (
            pyrunc_logs.text)

    def test_unified_errors(self, fake, made):
        with pytest.raises(ConfigError, match="CONTROLLER.PARAMETER"):
            apply(made, {"unified": {"nodot": "1"}})
        with pytest.raises(CgroupError, match=(
                "can't be set: controller 'rdma' not available")):
            apply(made, {"unified": {"rdma.max": "x"}})
        with pytest.raises(CgroupError, match="write 1 to .*memory.oops"):
            apply(made, {"unified": {"memory.oops": "1"}})

    def test_skip_devices(self, fake, made, programs):
        apply(made, {"pids": {"limit": 4}}, skip_devices=True)
        assert programs == []
        apply(made, {"pids": {"limit": 4}})
        assert len(programs) == 1

    def test_device_program_error_names_field(self, fake, made,
                                              monkeypatch):
        from pyrunc.cgroups import bpf

        def refuse(fd, insns, lic):
            raise OSError(errno.EPERM, "bpf_prog_load: Operation not "
                          "permitted")

        monkeypatch.setattr(bpf, "attach_device_filter", refuse)
        with pytest.raises(CgroupError, match=(
                "^linux.resources.devices: cannot attach the device "
                "filter")):
            apply(made, {"devices": [{"allow": False, "access": "rwm"}]})

    def test_failure_skipped_only_for_allow_all_rwm(self, monkeypatch):
        from pyrunc.cgroups import v2
        from pyrunc.cgroups.devices import Rule

        monkeypatch.setattr(v2, "_in_user_namespace", lambda: False)
        allow = Rule(True, "a", -1, -1, "rwm")
        mknod = Rule(True, "c", -1, -1, "m")
        assert v2._can_skip_bpf_error([allow])
        # runc's default rules include "c *:* m": never skippable.
        assert not v2._can_skip_bpf_error([allow, mknod])
        monkeypatch.setattr(v2, "_in_user_namespace", lambda: True)
        assert v2._can_skip_bpf_error([mknod])
