"""linux.resources flattening and runc's v1 -> v2 conversions, pinned."""

import re

import pytest

from pyrunc.cgroups import resources as res
from pyrunc.errors import ConfigError
from pyrunc.spec.model import Resources

MIB = 1024 * 1024


def limits(obj, v1=True, **kw):
    return res.limits(Resources.from_json(obj), v1=v1, **kw)


class TestCpuWeight:
    """runc 1.1.5: 1 + (shares - 2) * 9999 / 262142 (integer division)."""

    @pytest.mark.parametrize(
        "shares, weight",
        [
            (0, 0),
            (2, 1),
            (512, 20),
            (1024, 39),
            (2048, 79),
            (131072, 5000),
            (262144, 10000),
        ],
    )
    def test_values(self, shares, weight):
        assert res.cpu_weight(shares) == weight


class TestIoWeight:
    """runc: 1 + (weight - 10) * 9999 / 990, blkio [10,1000] -> [1,10000]."""

    @pytest.mark.parametrize(
        "weight, io", [(0, 0), (10, 1), (100, 910), (500, 4950),
                       (1000, 10000)]
    )
    def test_values(self, weight, io):
        assert res.io_weight(weight) == io


class TestSwapV2:
    """v1 swap is memory+swap; v2 memory.swap.max is swap alone."""

    @pytest.mark.parametrize(
        "swap, memory, want",
        [
            (64 * MIB, 32 * MIB, 32 * MIB),
            (32 * MIB, 32 * MIB, 0),
            (-1, 32 * MIB, -1),
            (0, 32 * MIB, 0),
            (0, -1, -1),
            (0, 0, 0),
        ],
    )
    def test_values(self, swap, memory, want):
        assert res.swap_v2(swap, memory) == want

    @pytest.mark.parametrize(
        "swap, memory, msg",
        [
            (MIB, 0, "unable to set swap limit without memory limit"),
            (MIB, -1, "unable to set swap limit without memory limit"),
            (MIB, 2 * MIB, "memory+swap limit should be >= memory limit"),
            (MIB, -5, "invalid memory value: -5"),
        ],
    )
    def test_refused(self, swap, memory, msg):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            res.swap_v2(swap, memory)


class TestLimits:
    def test_every_field(self):
        lim = limits({
            "memory": {"limit": 1, "reservation": 2, "swap": 3,
                       "swappiness": 4, "disableOOMKiller": True,
                       "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 5, "quota": 6, "period": 7,
                    "realtimeRuntime": 8, "realtimePeriod": 9,
                    "cpus": "0-1", "mems": "0", "idle": 1, "burst": 10},
            "pids": {"limit": 11},
            "blockIO": {
                "weight": 12, "leafWeight": 13,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 14,
                                  "leafWeight": 15}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0,
                                           "rate": 16}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 1,
                                            "rate": 17}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 2,
                                            "rate": 18}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 3,
                                             "rate": 19}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 20}],
            "network": {"classID": 21,
                        "priorities": [{"name": "eth0", "priority": 22}]},
            "rdma": {"mlx5_1": {"hcaHandles": 23, "hcaObjects": 24}},
        })
        assert (lim.memory, lim.memory_reservation, lim.memory_swap,
                lim.swappiness, lim.oom_kill_disable, lim.use_hierarchy,
                lim.check_before_update) == (1, 2, 3, 4, True, True, True)
        assert (lim.cpu_shares, lim.cpu_quota, lim.cpu_period,
                lim.cpu_rt_runtime, lim.cpu_rt_period, lim.cpuset_cpus,
                lim.cpuset_mems, lim.cpu_idle, lim.cpu_burst) == (
            5, 6, 7, 8, 9, "0-1", "0", 1, 10)
        assert lim.pids_limit == 11
        assert (lim.blkio_weight, lim.blkio_leaf_weight) == (12, 13)
        [wd] = lim.blkio_weight_device
        assert (wd.weight_line(), wd.leaf_weight_line()) == ("8:0 14",
                                                            "8:0 15")
        assert wd.field == "linux.resources.blockIO.weightDevice[0]"
        lines = {k: [t.line() for t in v]
                 for k, v in lim.blkio_throttle.items()}
        assert lines == {
            "throttle_read_bps_device": ["8:0 16"],
            "throttle_write_bps_device": ["8:1 17"],
            "throttle_read_iops_device": ["8:2 18"],
            "throttle_write_iops_device": ["8:3 19"],
        }
        assert lim.hugetlb == [
            ("2MB", 20, "linux.resources.hugepageLimits[0]")]
        assert lim.net_cls_classid == 21
        assert lim.net_prio_ifpriomap == [("eth0", 22)]
        assert lim.rdma == {"mlx5_1": (23, 24)}
        assert lim.has_blkio()

    def test_unset_is_zero_or_none(self):
        lim = limits({})
        assert lim.memory == 0 and lim.swappiness is None
        assert lim.cpu_idle is None and lim.cpu_burst is None
        assert lim.use_hierarchy is None
        assert not lim.has_blkio()
        # runc's default device rules are there even without resources.
        assert len(lim.devices) == 11

    def test_skip_devices(self):
        lim = limits({"devices": [{"allow": True, "access": "rwm"}]},
                     skip_devices=True)
        assert lim.devices == [] and lim.skip_devices

    def test_unified_refused_on_v1_only(self):
        with pytest.raises(ConfigError, match="cannot use unified on"):
            limits({"unified": {"memory.high": "1"}})
        lim = limits({"unified": {"memory.high": "1"}}, v1=False)
        assert lim.unified == {"memory.high": "1"}

    def test_kernel_memory_warns(self, pyrunc_logs):
        limits({"memory": {"kernel": 1, "kernelTCP": 2}})
        assert "kernel memory settings are ignored" in pyrunc_logs.text

    def test_empty_page_size(self):
        with pytest.raises(ConfigError,
                           match=r"hugepageLimits\[0\].pageSize"):
            limits({"hugepageLimits": [{"pageSize": "", "limit": 1}]})

    def test_rdma_line(self):
        assert res.rdma_line("mlx", 3, None) == "mlx hca_handle=3"
        assert res.rdma_line("mlx", None, 4) == "mlx hca_object=4"
        assert res.rdma_line("mlx", 3, 4) == "mlx hca_handle=3 hca_object=4"

    def test_throttle_v2_line(self):
        lim = limits({"blockIO": {"throttleReadBpsDevice": [
            {"major": 8, "minor": 16, "rate": 1024}]}})
        [td] = lim.blkio_throttle["throttle_read_bps_device"]
        assert td.v2_line("rbps") == "8:16 rbps=1024"
