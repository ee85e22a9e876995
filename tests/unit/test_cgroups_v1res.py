"""v1 controllers beyond memory/cpu/pids on a fake tree: blkio, hugetlb,
net_cls, net_prio, rdma, cpu idle and burst, memory.use_hierarchy.

This host has no CFQ blkio.weight, no v1 hugetlb, net_cls, net_prio or
rdma: the writes are pinned here, and a missing controller or file must
fail naming the field, as runc 1.1.5 fails (checked against it on this
host: "cannot set hugetlb limit: container could not join or create
cgroup", and so on).
"""

import errno
import os

import pytest

from pyrunc.cgroups.v1 import V1Manager
from pyrunc.errors import CgroupError, ConfigError
from pyrunc.spec.model import Resources

from test_cgroups_fake import V1_FILES, FakeCgroupfs, put

MIB = 1024 * 1024

EXTRA = ("hugetlb", "net_cls", "net_prio", "rdma")


@pytest.fixture(autouse=True)
def no_device_check(monkeypatch):
    monkeypatch.setattr(V1Manager, "verify_devices", False)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A v1 tree that also mounts hugetlb, net_cls, net_prio and rdma."""
    files = dict(V1_FILES)
    files["blkio"] = {"blkio.bfq.weight": "100\n",
                      "blkio.bfq.weight_device": ""}
    files["hugetlb"] = {"hugetlb.2MB.limit_in_bytes": "max\n"}
    files["net_cls"] = {"net_cls.classid": "0\n"}
    files["net_prio"] = {"net_prio.ifpriomap": ""}
    files["rdma"] = {"rdma.max": ""}
    files["cpu"] = dict(files["cpu"], **{"cpu.idle": "0\n",
                                         "cpu.cfs_burst_us": "0\n"})
    files["memory"] = dict(files["memory"],
                           **{"memory.use_hierarchy": "1\n"})
    monkeypatch.setattr("test_cgroups_fake.V1_FILES", files)
    layout = __import__("test_cgroups_fake").V1_LAYOUT + EXTRA
    monkeypatch.setattr("test_cgroups_fake.V1_LAYOUT", layout)
    return FakeCgroupfs(tmp_path, "v1", monkeypatch=monkeypatch)


@pytest.fixture
def made(fake):
    m = fake.new_manager("/c")
    m.create()
    fake.writes.clear()
    return m


def apply(made, obj):
    made.set(Resources.from_json(obj))


def fail_once(err):
    """A FakeCgroupfs.fail entry refusing only the first write."""
    calls = []

    def fail(rel, value):
        calls.append(value)
        return err if len(calls) == 1 else 0

    return fail


def writes(fake, ctrl):
    return [(os.path.basename(p), v) for p, v in fake.written(ctrl + "/")]


class TestBlkio:
    def test_bfq_weight_names_when_no_cfq(self, fake, made):
        apply(made, {"blockIO": {
            "weight": 500,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
        }})
        assert writes(fake, "blkio") == [
            ("blkio.bfq.weight", "500"),
            ("blkio.bfq.weight_device", "8:0 300"),
        ]

    def test_cfq_names_when_present(self, fake, made):
        path = made.paths()["blkio"]
        put(os.path.join(path, "blkio.weight"), "500\n")
        put(os.path.join(path, "blkio.weight_device"), "")
        put(os.path.join(path, "blkio.leaf_weight"), "500\n")
        put(os.path.join(path, "blkio.leaf_weight_device"), "")
        apply(made, {"blockIO": {
            "weight": 200, "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 10,
                              "leafWeight": 20}],
        }})
        assert writes(fake, "blkio") == [
            ("blkio.weight", "200"),
            ("blkio.leaf_weight", "300"),
            ("blkio.weight_device", "8:0 10"),
            ("blkio.leaf_weight_device", "8:0 20"),
        ]

    def test_throttles_in_runc_order(self, fake, made):
        for name in ("read_bps", "write_bps", "read_iops", "write_iops"):
            put(os.path.join(made.paths()["blkio"],
                             f"blkio.throttle.{name}_device"), "")
        apply(made, {"blockIO": {
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0,
                                         "rate": 4}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1},
                                      {"major": 8, "minor": 16,
                                       "rate": 5}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}],
        }})
        assert writes(fake, "blkio") == [
            ("blkio.throttle.read_bps_device", "8:0 1"),
            ("blkio.throttle.read_bps_device", "8:16 5"),
            ("blkio.throttle.write_bps_device", "8:0 2"),
            ("blkio.throttle.read_iops_device", "8:0 3"),
            ("blkio.throttle.write_iops_device", "8:0 4"),
        ]

    def test_missing_leaf_weight_names_field(self, fake, made):
        # What this host does: BFQ has no leaf weights.
        with pytest.raises(CgroupError) as exc:
            apply(made, {"blockIO": {"leafWeight": 500}})
        assert str(exc.value).startswith(
            "linux.resources.blockIO.leafWeight: write 500 to ")
        assert "No such file or directory" in str(exc.value)

    def test_unknown_device_names_entry(self, fake, made):
        fake.fail["blkio.bfq.weight_device"] = errno.ENODEV
        with pytest.raises(CgroupError, match=(
                r"blockIO.weightDevice\[0\].weight: write 8:0 300 .*No "
                r"such device")):
            apply(made, {"blockIO": {"weightDevice": [
                {"major": 8, "minor": 0, "weight": 300}]}})


class TestHugetlbNetRdma:
    def test_writes(self, fake, made):
        apply(made, {
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}],
            "network": {"classID": 0x100001, "priorities": [
                {"name": "eth0", "priority": 5},
                {"name": "lo", "priority": 2}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        })
        assert writes(fake, "hugetlb") == [
            ("hugetlb.2MB.limit_in_bytes", str(4 * MIB))]
        assert writes(fake, "net_cls") == [("net_cls.classid", "1048577")]
        assert writes(fake, "net_prio") == [
            ("net_prio.ifpriomap", "eth0 5"),
            ("net_prio.ifpriomap", "lo 2")]
        assert writes(fake, "rdma") == [
            ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000")]

    def test_unknown_page_size(self, fake, made, monkeypatch):
        from pyrunc.cgroups import v1res

        monkeypatch.setattr(v1res, "host_page_sizes",
                            lambda: ["2MB", "1GB"])
        with pytest.raises(ConfigError) as exc:
            apply(made, {"hugepageLimits": [{"pageSize": "3MB",
                                             "limit": 1}]})
        assert str(exc.value) == (
            "linux.resources.hugepageLimits[0].pageSize: hugepage size 3MB "
            "is not supported by this host (supported: 2MB, 1GB)")

    @pytest.mark.parametrize("obj, field, ctrl", [
        ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]},
         "linux.resources.hugepageLimits", "hugetlb"),
        ({"network": {"classID": 1}}, "linux.resources.network.classID",
         "net_cls"),
        ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
         r"linux.resources.network.priorities\[0\]", "net_prio"),
        ({"rdma": {"mlx": {"hcaHandles": 1}}},
         r"linux.resources.rdma\['mlx'\]", "rdma"),
    ])
    def test_controller_missing_names_field(self, tmp_path, monkeypatch,
                                            obj, field, ctrl):
        # The plain layout, like this host: none of these is mounted.
        plain = FakeCgroupfs(tmp_path, "hybrid", monkeypatch=monkeypatch)
        m = plain.new_manager("/c")
        m.create()
        with pytest.raises(CgroupError, match=(
                f"^{field}: the {ctrl} cgroup controller is not "
                "available$")):
            apply(m, obj)

    def test_page_size_names(self):
        from pyrunc.cgroups.v1res import page_size_name

        assert page_size_name(2048) == "2MB"
        assert page_size_name(1048576) == "1GB"
        assert page_size_name(64) == "64KB"

    def test_host_page_sizes(self, tmp_path):
        from pyrunc.cgroups.v1res import host_page_sizes

        for name in ("hugepages-2048kB", "hugepages-1048576kB", "junk"):
            (tmp_path / name).mkdir()
        assert host_page_sizes(str(tmp_path)) == ["1GB", "2MB"]


class TestCpuExtras:
    def test_idle_and_burst(self, fake, made):
        apply(made, {"cpu": {"quota": 50000, "burst": 20000, "idle": 1}})
        assert writes(fake, "cpu") == [
            ("cpu.cfs_burst_us", "20000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.idle", "1"),
        ]

    def test_burst_refused_then_after_quota(self, fake, made):
        fake.fail["cpu.cfs_burst_us"] = fail_once(errno.EINVAL)
        apply(made, {"cpu": {"quota": 50000, "burst": 20000}})
        assert writes(fake, "cpu") == [
            ("cpu.cfs_burst_us", "20000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_burst_us", "20000"),
        ]

    def test_missing_burst_ignored_with_warning(self, fake, made,
                                                pyrunc_logs):
        os.unlink(os.path.join(made.paths()["cpu"], "cpu.cfs_burst_us"))
        apply(made, {"cpu": {"burst": 20000}})
        assert "cpu.cfs_burst_us is missing" in pyrunc_logs.text

    def test_missing_idle_names_field(self, fake, made):
        os.unlink(os.path.join(made.paths()["cpu"], "cpu.idle"))
        with pytest.raises(CgroupError, match="^linux.resources.cpu.idle"):
            apply(made, {"cpu": {"idle": 1}})

    def test_rt_period_refused_then_after_runtime(self, fake, made):
        fake.fail["cpu.rt_period_us"] = fail_once(errno.EINVAL)
        apply(made, {"cpu": {"realtimePeriod": 500000,
                             "realtimeRuntime": 1000}})
        assert writes(fake, "cpu") == [
            ("cpu.rt_period_us", "500000"),
            ("cpu.rt_runtime_us", "1000"),
            ("cpu.rt_period_us", "500000"),
        ]


class TestUseHierarchy:
    def test_true_written(self, fake, made):
        apply(made, {"memory": {"useHierarchy": True}})
        assert writes(fake, "memory") == [("memory.use_hierarchy", "1")]

    def test_false_refused_by_kernel_names_field(self, fake, made):
        # Linux >= 5.16 is always hierarchical and refuses 0.
        fake.fail["memory.use_hierarchy"] = errno.EINVAL
        with pytest.raises(CgroupError, match=(
                "^linux.resources.memory.useHierarchy: write 0 to .*"
                "Invalid argument")):
            apply(made, {"memory": {"useHierarchy": False}})

    def test_check_before_update_is_the_kernels_job_on_v1(self, fake,
                                                          made):
        apply(made, {"memory": {"limit": MIB, "checkBeforeUpdate": True}})
        assert writes(fake, "memory") == [
            ("memory.limit_in_bytes", str(MIB))]


class TestSkipDevices:
    def test_update_leaves_devices_alone(self, fake, made):
        made.set(Resources.from_json({"pids": {"limit": 5}}),
                 skip_devices=True)
        assert writes(fake, "devices") == []
        assert writes(fake, "pids") == [("pids.max", "5")]
