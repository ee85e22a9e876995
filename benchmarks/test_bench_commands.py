"""Latency of each command, four runtimes side by side, two modes.

Commands: create, start, state, kill, delete, run (/bin/true, in the
foreground) and the create + start + delete lifecycle. Modes:
back-to-back, and with 50 ms idle before each measured command (on this
kernel the first cgroup v1 attach after an idle spell costs 10-20 ms
more). All runtimes and both modes are sampled in one round-robin loop
per command (benchlib.Bench.sample); each parametrized test then reports
one runtime's samples in one mode to pytest-benchmark.

Also here: the cost of crun's wrapper (crunwrap.c) on its own.
"""

import pytest

import benchlib
from benchlib import record_benchmark

OPTIONAL = ("runc", "crun")


def usable_or_skip(bench, name):
    """Return runtime name, or skip/fail the test when it cannot run."""
    rt = bench.runtime(name)
    if rt is None:
        pytest.skip(f"{name} not selected (PYRUNC_BENCH_RUNTIMES)")
    if rt.error:
        if name in OPTIONAL and "not found" in rt.error:
            pytest.skip(rt.error)
        pytest.fail(f"{name}: {rt.error}", pytrace=False)
    return rt


def measure_command(bench, command):
    """Sample command for every runtime in both modes, interleaved."""
    settings = bench.settings
    modes = [(mode, benchlib.MODE_IDLE[mode]) for mode in benchlib.MODES]
    out = bench.sample(benchlib.OPS[command], bench.usable(),
                       settings.rounds, settings.warmup, modes)
    for mode, by_rt in out.items():
        section = (bench.results.setdefault("commands", {})
                   .setdefault(mode, {}).setdefault(command, {}))
        for rt in bench.runtimes:
            if rt.name in by_rt:
                entry = benchlib.describe_samples(by_rt[rt.name]["samples"])
                entry["error"] = by_rt[rt.name]["error"]
                entry["failures"] = by_rt[rt.name]["failures"]
            else:
                entry = {"n": 0, "error": rt.error}
            section[rt.name] = entry
    return out


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
@pytest.mark.parametrize("command", benchlib.COMMANDS)
@pytest.mark.parametrize("mode", benchlib.MODES)
def test_command(benchmark, bench, mode, command, runtime):
    out = bench.cached(("command", command),
                       lambda: measure_command(bench, command))
    rt = usable_or_skip(bench, runtime)
    result = out[mode][rt.name]
    samples = result["samples"]
    extra = {"runtime": rt.name, "mode": mode, "command": command}
    rss = [s.maxrss_kib for s in samples if s.maxrss_kib is not None]
    if rss:
        extra["maxrss_kib_max"] = max(rss)
    record_benchmark(benchmark, [s.ns / 1e9 for s in samples],
                     group=f"{command} [{mode}]", extra=extra)
    if result["error"]:
        pytest.fail(result["error"], pytrace=False)


def measure_wrapper(bench):
    out = bench.wrapper_overhead(bench.settings.wrapper_rounds)
    bench.results["wrapper"] = {
        name: benchlib.describe_samples(samples)
        for name, samples in out.items()}
    return out


@pytest.mark.parametrize("variant", ("direct", "crunwrap", "unshare-sh"))
def test_crun_wrapper(benchmark, bench, variant):
    """/bin/true alone, under crunwrap, under unshare -m sh -c mount."""
    usable_or_skip(bench, "crun")
    out = bench.cached("wrapper", lambda: measure_wrapper(bench))
    record_benchmark(benchmark, [s.ns / 1e9 for s in out[variant]],
                     group="crun wrapper (runs /bin/true)",
                     extra={"variant": variant})
