"""`events --stats`, `ps --format json` and pause errors against runc.

Both runtimes run the same bundle; the figures differ but the JSON shape
(keys, their order, which zero fields are left out) must not.
"""

import json
import os

import pytest

import helpers

MIB = 1024 * 1024

pytestmark = [
    pytest.mark.root,
    pytest.mark.runc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(os.environ.get("PYRUNC_VM") is not None,
                       reason="runc comparisons run on the host"),
]


def configure(bundle):
    bundle.config["process"]["args"] = ["sleep", "1000"]
    bundle.config["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 32 * MIB},
        "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 20},
    }
    bundle.save()
    return bundle


def has_command(rt, name):
    return rt(name, "--help").returncode == 0


def shape(value):
    """The keys of a JSON value, recursively, in order."""
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list"]
    return type(value).__name__


def test_stats_shape_matches_runc(runtime, bundle):
    rt = runtime
    if not has_command(rt, "events"):
        pytest.skip(f"{rt.name} has no events command")
    configure(bundle)
    cid = helpers.unique_id()
    proc = rt("run", "-d", "--bundle", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    try:
        proc = rt("events", "--stats", cid)
        assert proc.returncode == 0, proc.stderr
        event = json.loads(proc.stdout)
        data = event["data"]
        assert list(event) == ["type", "id", "data"]
        assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio",
                              "hugetlb", "intel_rdt", "network_interfaces"]
        assert data["network_interfaces"] is None
        assert data["intel_rdt"] == {}
        assert data["cpuset"]["cpus"] == [0]
        assert shape(data["cpuset"]) == [
            ("cpus", ["list"]), ("cpu_exclusive", "int"),
            ("mems", ["list"]), ("mem_hardwall", "int"),
            ("mem_exclusive", "int"), ("memory_migrate", "int"),
            ("memory_spread_page", "int"), ("memory_spread_slab", "int"),
            ("memory_pressure", "int"), ("sched_load_balance", "int"),
            ("sched_relax_domain_level", "int")]
        memory = data["memory"]
        assert [k for k in memory if k != "cache"] == [
            "usage", "swap", "kernel", "kernelTCP", "raw"]
        assert memory["usage"]["limit"] == 32 * MIB
        assert list(memory["usage"]) == ["limit", "usage", "max", "failcnt"]
        assert "total_rss" in memory["raw"]
        assert list(memory["raw"]) == sorted(memory["raw"])
        assert data["pids"] == {"current": 1, "limit": 20}
        usage = data["cpu"]["usage"]
        assert [k for k in usage if k in ("kernel", "user")] == ["kernel",
                                                                  "user"]
        assert "percpu" in usage and "percpu_kernel" in usage
        # The first line is the whole event, as runc's encoder writes it.
        assert proc.stdout.count("\n") == 1
    finally:
        rt("delete", "--force", cid)


def test_ps_json_and_pause_errors_match_runc(runtime, bundle):
    rt = runtime
    for name in ("ps", "pause", "resume"):
        if not has_command(rt, name):
            pytest.skip(f"{rt.name} has no {name} command")
    configure(bundle)
    cid = helpers.unique_id()
    assert rt("run", "-d", "--bundle", bundle, cid).returncode == 0
    try:
        proc = rt("ps", "--format", "json", cid)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [rt.state(cid)["pid"]]
        proc = rt("resume", cid)
        assert proc.returncode == 1
        assert "container not paused" in proc.stderr
        assert rt("pause", cid).returncode == 0
        proc = rt("pause", cid)
        assert proc.returncode == 1
        assert "container not running" in proc.stderr
        assert rt.state(cid)["status"] == "paused"
    finally:
        rt("delete", "--force", cid)
    proc = rt("events", "--stats", cid)
    assert proc.returncode == 1
