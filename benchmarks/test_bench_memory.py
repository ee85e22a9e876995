"""Memory: what a container is charged, and the smallest limit it runs in.

The runtimes' own peak RSS comes from the command benchmarks (wait4's
ru_maxrss of every CLI invocation) and is tabulated by benchreport.py.
"""

import statistics

import pytest

import benchlib
from test_bench_commands import usable_or_skip


def measure_charged(bench):
    runtimes = bench.usable()
    out = {rt.name: {"samples": [], "error": None} for rt in runtimes}
    for index in range(bench.settings.memory_samples):
        shift = index % max(1, len(runtimes))
        for rt in runtimes[shift:] + runtimes[:shift]:
            if out[rt.name]["error"]:
                continue
            try:
                out[rt.name]["samples"].append(bench.charged_memory(rt))
            except (benchlib.RuntimeFailure, OSError) as err:
                out[rt.name]["error"] = f"{type(err).__name__}: {err}"
            benchlib.reap()
    section = (bench.results.setdefault("memory", {})
               .setdefault("charged", {}))
    for name, result in out.items():
        usage = [s["max_usage_kib"] for s in result["samples"]]
        kmem = [s["kmem_max_usage_kib"] for s in result["samples"]
                if s["kmem_max_usage_kib"] is not None]
        section[name] = {
            "max_usage_kib": usage,
            "median_kib": statistics.median(usage) if usage else None,
            "kmem_median_kib": statistics.median(kmem) if kmem else None,
            "error": result["error"],
        }
    return out


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
def test_container_memory(bench, runtime):
    """memory.max_usage_in_bytes of the container's v1 memory cgroup."""
    out = bench.cached("charged", lambda: measure_charged(bench))
    rt = usable_or_skip(bench, runtime)
    result = out[rt.name]
    if result["error"]:
        pytest.fail(result["error"], pytrace=False)
    assert result["samples"]


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
def test_memory_floor(bench, runtime):
    """Bisect linux.resources.memory.limit (64 KiB .. 64 MiB, in pages)
    for the smallest limit at which `echo it works` succeeds."""
    rt = usable_or_skip(bench, runtime)
    result = bench.memory_floor(rt)
    (bench.results.setdefault("memory", {})
     .setdefault("floor", {}))[rt.name] = result
    if result["floor_kib"] is None:
        pytest.fail(f"{runtime}: {result.get('note')}: "
                    f"{result['probes'][-1]['detail']}", pytrace=False)
