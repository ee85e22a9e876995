"""Scale: many lifecycles in a row, many at once, many containers present.

- sequential: PYRUNC_BENCH_SEQUENTIAL (100) lifecycles per runtime,
  round-robin; is the cost per container flat along the run?
- concurrent: PYRUNC_BENCH_CONCURRENT (20) lifecycles at once, one
  thread each, repeated for 3 rounds; wall time of the batch.
- many: PYRUNC_BENCH_MANY (1000) real containers in the created state
  (each one a blocked init process), one runtime at a time, then `list`
  and `state` are measured, next to a /bin/true baseline. pyrunc's CLI
  and library share one set: both read the same state directories, and
  it is filled through the library because that is the quicker way to
  make 1000 identical containers.
"""

import os
import statistics

import pytest

import benchlib
from benchlib import record_benchmark
from test_bench_commands import usable_or_skip


def _tenth_means(values):
    k = max(1, len(values) // 10)
    return statistics.fmean(values[:k]), statistics.fmean(values[-k:])


def measure_sequential(bench):
    n = bench.settings.sequential
    out = bench.sample(benchlib.OPS["lifecycle"], bench.usable(), n,
                       warmup=bench.settings.warmup)["back-to-back"]
    section = (bench.results.setdefault("scale", {})
               .setdefault("sequential", {}))
    for name, result in out.items():
        entry = benchlib.describe_samples(result["samples"])
        values = [s.ns / 1e6 for s in result["samples"]]
        if len(values) >= 2:
            first, last = _tenth_means(values)
            slope = benchlib.linear_slope(values)
            # The fitted change from the first container to the last,
            # as a share of the median: robust to a few slow samples.
            change = slope * (len(values) - 1)
            entry.update(first_tenth_ms=first, last_tenth_ms=last,
                         slope_ms_per_container=slope,
                         fitted_change_pct=(change / statistics.median(
                             values) * 100))
        entry["error"] = result["error"]
        entry["failures"] = result["failures"]
        section[name] = entry
    return out


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
def test_sequential_lifecycles(benchmark, bench, runtime):
    out = bench.cached("sequential", lambda: measure_sequential(bench))
    rt = usable_or_skip(bench, runtime)
    result = out[rt.name]
    record_benchmark(benchmark, [s.ns / 1e9 for s in result["samples"]],
                     group=f"lifecycle, {bench.settings.sequential} "
                     "sequential", extra={"runtime": rt.name})
    if result["error"]:
        pytest.fail(result["error"], pytrace=False)


def measure_concurrent(bench):
    n = bench.settings.concurrent
    runtimes = bench.usable()
    out = {rt.name: [] for rt in runtimes}
    for index in range(bench.settings.concurrent_rounds):
        shift = index % max(1, len(runtimes))
        for rt in runtimes[shift:] + runtimes[:shift]:
            out[rt.name].append(bench.concurrent(rt, n))
    section = (bench.results.setdefault("scale", {})
               .setdefault("concurrent", {}))
    for name, batches in out.items():
        walls = [b["wall_ns"] / 1e6 for b in batches]
        latencies = [x / 1e6 for b in batches for x in b["latencies_ns"]]
        errors = [e for b in batches for e in b["errors"]]
        section[name] = {
            "n": n,
            "rounds": len(batches),
            "wall_ms": walls,
            "wall_median_ms": statistics.median(walls),
            "per_container_ms": statistics.median(walls) / n,
            "latency": benchlib.describe(latencies),
            "errors": errors[:5],
            "error_count": len(errors),
        }
    return out


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
def test_concurrent_lifecycles(benchmark, bench, runtime):
    out = bench.cached("concurrent", lambda: measure_concurrent(bench))
    rt = usable_or_skip(bench, runtime)
    batches = out[rt.name]
    n = bench.settings.concurrent
    record_benchmark(benchmark, [b["wall_ns"] / 1e9 for b in batches],
                     group=f"{n} concurrent lifecycles (batch wall time)",
                     extra={"runtime": rt.name, "containers": n})
    errors = [e for b in batches for e in b["errors"]]
    if errors:
        pytest.fail(f"{len(errors)} of {n * len(batches)} lifecycles "
                    f"failed; first: {errors[0]}", pytrace=False)


FAMILIES = (
    # (family, runtimes that may fill it, first usable wins; readers)
    ("pyrunc", ("pyrunc-lib", "pyrunc-cli"), ("pyrunc-cli", "pyrunc-lib")),
    ("runc", ("runc",), ("runc",)),
    ("crun", ("crun",), ("crun",)),
)


def sample_present(bench, family, readers, cid):
    """Sample list and state of cid for readers, next to /bin/true.

    Return {command: {runtime or "true": stats}}.
    """
    baseline = benchlib.ExecBaseline(f"true@{family}", bench.spawntime,
                                     bench.settings.timeout)
    state_op = benchlib.StateOfOp(
        {rt.name: cid for rt in readers + [baseline]})
    result = {}
    for command, op in (("list", benchlib.ListOp()), ("state", state_op)):
        out = bench.sample(op, readers + [baseline],
                           bench.settings.many_rounds,
                           warmup=1)["back-to-back"]
        for name, got in out.items():
            stats = benchlib.describe_samples(got["samples"])
            stats["error"] = got["error"]
            stats["failures"] = got["failures"]
            key = "true" if name == baseline.name else name
            result.setdefault(command, {})[key] = stats
    return result


def measure_many(bench):
    """For each runtime in turn: sample list and state (and /bin/true as
    a baseline) with 1 container present, then with N; empty the root.

    One family at a time, so that each runtime is measured with its own
    containers present and nobody else's, and its 1-present and
    N-present figures are taken close together.
    """
    n = bench.settings.many
    section = bench.results.setdefault("scale", {}).setdefault(
        "many", {"n": n, "families": {}, "list": {}, "state": {},
                 "list_1": {}, "state_1": {}})
    for family, creators, users in FAMILIES:
        usable = bench.usable(creators)
        creator = next((rt for name in creators for rt in usable
                        if rt.name == name), None)
        if creator is None:
            continue
        root = os.path.join(bench.workdir, "roots", f"many-{family}")
        entry = {"creator": creator.name}
        section["families"][family] = entry
        readers = [rt.with_root(root) for rt in bench.usable(users)]
        for count, suffix in ((1, "_1"), (n, "")):
            bound, cids, times, error = bench.populate(creator, count,
                                                       root)
            try:
                if count == n:
                    entry.update(made=len(times), error=error)
                    ms = [t / 1e6 for t in times]
                    if len(ms) >= 2:
                        first, last = _tenth_means(ms)
                        entry.update(create_mean_ms=statistics.fmean(ms),
                                     first_tenth_ms=first,
                                     last_tenth_ms=last)
                if error:
                    for command in ("list", "state"):
                        for rt in readers:
                            section[command + suffix][rt.name] = {
                                "n": 0,
                                "error": f"filling {family}: {error}"}
                    continue
                got = sample_present(bench, family, readers,
                                     cids[len(cids) // 2])
                for command, by_rt in got.items():
                    for name, stats in by_rt.items():
                        if name == "true":
                            entry.setdefault("exec_true" + suffix,
                                             {})[command] = stats
                        else:
                            section[command + suffix][name] = stats
            finally:
                deletes = bench.depopulate(bound, creator.name, cids)
                if deletes and count == n:
                    entry["delete_mean_ms"] = (statistics.fmean(deletes)
                                               / 1e6)
    return section


@pytest.mark.parametrize("runtime", benchlib.RUNTIMES)
@pytest.mark.parametrize("command", ("list", "state"))
def test_with_many_containers(benchmark, bench, command, runtime):
    many = bench.cached("many", lambda: measure_many(bench))
    rt = usable_or_skip(bench, runtime)
    result = many[command].get(rt.name)
    if result is None:
        pytest.fail(f"{runtime}: not measured", pytrace=False)
    n = bench.settings.many
    record_benchmark(benchmark, [x / 1e3 for x in
                                 result.get("samples_ms") or ()],
                     group=f"{command} with {n} containers",
                     extra={"runtime": rt.name, "containers": n})
    if result.get("error"):
        pytest.fail(result["error"], pytrace=False)
