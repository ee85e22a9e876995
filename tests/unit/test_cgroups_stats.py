"""Stats in runc's `events --stats` shape, from fake cgroup files."""

import json

import pytest

from pyrunc.cgroups import stats

MAX = 2**64 - 1


def tree(tmp_path, name, files):
    path = tmp_path / name
    path.mkdir()
    for fname, text in files.items():
        (path / fname).write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def page_sizes(monkeypatch):
    monkeypatch.setattr(stats, "host_page_sizes", lambda: ["2MB"])


class TestShape:
    def test_empty_like_runc_with_nothing(self):
        data = stats.shape(stats.Raw())
        assert json.dumps(data, separators=(",", ":")) == (
            '{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},'
            '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,'
            '"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,'
            '"memory_spread_slab":0,"memory_pressure":0,'
            '"sched_load_balance":0,"sched_relax_domain_level":0},'
            '"memory":{"usage":{"limit":0,"failcnt":0},'
            '"swap":{"limit":0,"failcnt":0},'
            '"kernel":{"limit":0,"failcnt":0},'
            '"kernelTCP":{"limit":0,"failcnt":0}},'
            '"pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},'
            '"network_interfaces":null}')

    def test_maps_sorted_like_go(self):
        raw = stats.Raw()
        raw.mem_raw = {"z": 1, "a": 2}
        raw.hugetlb = {"2MB": (1, 0, 0), "1GB": (0, 0, 3)}
        data = stats.shape(raw)
        assert list(data["memory"]["raw"]) == ["a", "z"]
        assert data["hugetlb"] == {"1GB": {"failcnt": 3},
                                   "2MB": {"usage": 1, "failcnt": 0}}


class TestV1:
    def test_all_controllers(self, tmp_path):
        paths = {
            "cpuset": tree(tmp_path, "cpuset", {
                "cpuset.cpus": "0-2,4\n", "cpuset.mems": "0\n",
                "cpuset.sched_load_balance": "1\n",
                "cpuset.sched_relax_domain_level": "-1\n"}),
            "memory": tree(tmp_path, "memory", {
                "memory.stat": "cache 5\nrss 6\n",
                "memory.usage_in_bytes": "100\n",
                "memory.max_usage_in_bytes": "200\n",
                "memory.failcnt": "1\n",
                "memory.limit_in_bytes": "300\n"}),
            "cpu": tree(tmp_path, "cpu", {
                "cpu.stat": "nr_periods 3\nnr_throttled 2\n"
                            "throttled_time 1\n"}),
            "cpuacct": tree(tmp_path, "cpuacct", {
                "cpuacct.stat": "user 10\nsystem 20\n",
                "cpuacct.usage": "999\n",
                "cpuacct.usage_percpu": "900 99 \n",
                "cpuacct.usage_all": "cpu user system\n0 500 400\n"
                                     "1 90 9\n"}),
            "pids": tree(tmp_path, "pids", {
                "pids.current": "4\n", "pids.max": "max\n"}),
            "blkio": tree(tmp_path, "blkio", {
                "blkio.throttle.io_serviced_recursive":
                    "8:0 Read 3\n8:0 Write 4\nTotal 7\n",
                "blkio.throttle.io_service_bytes_recursive":
                    "8:0 Read 300\nTotal 300\n"}),
            "hugetlb": tree(tmp_path, "hugetlb", {
                "hugetlb.2MB.usage_in_bytes": "0\n",
                "hugetlb.2MB.max_usage_in_bytes": "2097152\n",
                "hugetlb.2MB.failcnt": "1\n"}),
        }
        data = stats.v1_stats(paths)
        assert data["cpu"] == {
            "usage": {"total": 999, "percpu": [900, 99],
                      "percpu_kernel": [400, 9], "percpu_user": [500, 90],
                      "kernel": 200000000, "user": 100000000},
            "throttling": {"periods": 3, "throttledPeriods": 2,
                           "throttledTime": 1}}
        assert data["cpuset"]["cpus"] == [0, 1, 2, 4]
        assert data["cpuset"]["mems"] == [0]
        assert data["cpuset"]["sched_relax_domain_level"] == -1
        assert list(data["cpuset"])[:3] == ["cpus", "cpu_exclusive", "mems"]
        assert data["memory"]["cache"] == 5
        assert data["memory"]["usage"] == {"limit": 300, "usage": 100,
                                           "max": 200, "failcnt": 1}
        # No memsw/kmem files: zero entries, as runc.
        assert data["memory"]["swap"] == {"limit": 0, "failcnt": 0}
        assert data["pids"] == {"current": 4}
        assert data["blkio"] == {
            "ioServiceBytesRecursive": [
                {"major": 8, "op": "Read", "value": 300}],
            "ioServicedRecursive": [
                {"major": 8, "op": "Read", "value": 3},
                {"major": 8, "op": "Write", "value": 4}],
        }
        assert data["hugetlb"] == {"2MB": {"max": 2097152, "failcnt": 1}}

    def test_blkio_prefers_bfq_and_skips_empty(self, tmp_path):
        path = tree(tmp_path, "blkio", {
            # This host: BFQ files with only a Total line are empty.
            "blkio.bfq.io_serviced_recursive": "Total 0\n",
            "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n",
            "blkio.throttle.io_service_bytes_recursive": "8:0 Read 2\n",
        })
        data = stats.v1_stats({"blkio": path})
        assert data["blkio"]["ioServicedRecursive"][0]["value"] == 1

    def test_missing_required_file(self, tmp_path):
        path = tree(tmp_path, "pids", {"pids.current": "1\n"})
        with pytest.raises(Exception, match="pids.max"):
            stats.v1_stats({"pids": path})


class TestV2:
    def test_memory_swap_is_memory_plus_swap(self, tmp_path):
        path = tree(tmp_path, "c", {
            "memory.stat": "anon 10\nfile 20\n",
            "memory.current": "100\n", "memory.max": "1000\n",
            "memory.swap.current": "5\n", "memory.swap.max": "500\n",
            "pids.current": "2\n", "pids.max": "max\n",
            "cpu.stat": "usage_usec 3\nuser_usec 2\nsystem_usec 1\n"
                        "nr_periods 4\nnr_throttled 1\n"
                        "throttled_usec 7\n",
            "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n",
            "hugetlb.2MB.current": "0\n",
            "hugetlb.2MB.events": "max 2\n",
        })
        data = stats.v2_stats(path)
        assert data["memory"]["cache"] == 20
        assert data["memory"]["usage"] == {"limit": 1000, "usage": 100,
                                           "failcnt": 0}
        assert data["memory"]["swap"] == {"limit": 1500, "usage": 105,
                                          "failcnt": 0}
        assert data["pids"] == {"current": 2}
        assert data["cpu"] == {
            "usage": {"total": 3000, "kernel": 1000, "user": 2000},
            "throttling": {"periods": 4, "throttledPeriods": 1,
                           "throttledTime": 7000}}
        assert data["blkio"] == {
            "ioServiceBytesRecursive": [
                {"major": 8, "op": "Read", "value": 10},
                {"major": 8, "op": "Write", "value": 20}],
            "ioServicedRecursive": [
                {"major": 8, "op": "Read", "value": 1},
                {"major": 8, "op": "Write", "value": 2}],
        }
        assert data["hugetlb"] == {"2MB": {"failcnt": 2}}

    def test_unlimited_swap_and_go_wraparound(self, tmp_path):
        path = tree(tmp_path, "c", {
            "memory.stat": "", "memory.current": "1\n",
            "memory.max": "max\n", "memory.swap.current": "0\n",
            "memory.swap.max": "10\n", "pids.current": "1\n",
            "pids.max": "3\n"})
        data = stats.v2_stats(path)
        assert data["memory"]["usage"]["limit"] == MAX
        # runc adds the two limits as uint64: max + 10 wraps to 9.
        assert data["memory"]["swap"]["limit"] == 9

    def test_pids_without_controller(self, tmp_path):
        path = tree(tmp_path, "c", {"cgroup.procs": "1\n2\n3\n"})
        data = stats.v2_stats(path)
        assert data["pids"] == {"current": 3}

    def test_parse_uint(self):
        assert stats.parse_uint("max") == MAX
        assert stats.parse_uint("-1") == 0
        assert stats.parse_uint(" 42\n") == 42
