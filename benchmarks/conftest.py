"""pytest wiring of the benchmark suite: pyrunc vs runc vs crun.

Run it with `.venv/bin/python -m pytest benchmarks/` (as root). The
session fixture `bench` sets up the runtimes (benchlib.Bench); each test
measures one thing and stores its figures in bench.results. At the end
of the session the summary JSON, the markdown table and the plots are
written to benchmarks/results/ (benchreport.py), and pytest-benchmark's
own JSON goes to benchmarks/results/benchmark.json unless
--benchmark-json names another file. A run of only some of the
benchmarks (-k, -m, named files or tests) writes to
benchmarks/results/partial/ instead, and a quick one
(PYRUNC_BENCH_QUICK) to benchmarks/results/quick/, leaving the full
report alone.

`pytest tests` never sees this directory: the project's testpaths is
tests/, and nothing there imports from here.
"""

import os
import time
from pathlib import Path

import pytest

import benchlib
import benchreport

_STATE = {"bench": None, "summary": None, "started": None, "partial": False}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "bench_scale: scale benchmarks (many containers)")
    settings = benchlib.Settings()
    _STATE["partial"] = is_partial(config)
    if config.getoption("benchmark_json", None) is None:
        results = results_dir(settings)
        os.makedirs(results, exist_ok=True)
        config.option.benchmark_json = Path(results, "benchmark.json")


def pytest_sessionstart(session):
    _STATE["started"] = time.time()


def pytest_deselected(items):
    if items:
        _STATE["partial"] = True


def is_partial(config):
    """Whether only some of the benchmarks run: test files or tests
    named rather than the directory, or -k or -m given."""
    if config.option.keyword or config.option.markexpr:
        return True
    here = Path(__file__).parent.resolve()
    for arg in config.args:
        if "::" in arg or Path(arg).resolve() != here:
            return True
    return False


def results_dir(settings):
    """Where this session's reports go: a partial or quick run must not
    replace the full run's report."""
    if _STATE["partial"]:
        return os.path.join(settings.results, "partial")
    if settings.quick:
        return os.path.join(settings.results, "quick")
    return settings.results


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="the benchmarks need root")
    for item in items:
        if "benchmarks" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bench():
    """The shared harness: runtimes set up, smoke-tested, cleaned after."""
    harness = benchlib.Bench()
    _STATE["bench"] = harness
    harness.setup()
    try:
        yield harness
    finally:
        harness.close()


def _summary():
    harness = _STATE["bench"]
    if harness is None:
        return None
    if _STATE["summary"] is None:
        _STATE["summary"] = benchreport.build_summary(
            harness, started=_STATE["started"], finished=time.time())
    return _STATE["summary"]


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Put the summary (ratios, memory, scale, leaks) in the pytest-
    benchmark JSON too."""
    summary = _summary()
    if summary is not None:
        output_json["pyrunc_summary"] = summary


def pytest_sessionfinish(session, exitstatus):
    summary = _summary()
    if summary is None:
        return
    harness = _STATE["bench"]
    paths = benchreport.write_all(summary, results_dir(harness.settings),
                                  install=harness.settings.install)
    _STATE["paths"] = paths


def pytest_terminal_summary(terminalreporter):
    summary = _STATE["summary"]
    if summary is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("pyrunc benchmark summary")
    for line in benchreport.terminal_lines(summary):
        write(line)
    for path in _STATE.get("paths") or ():
        write(f"wrote {path}")
