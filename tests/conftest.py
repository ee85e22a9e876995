"""Fixtures shared by every test: bundles, runtimes and the residue check.

- ``bundle``: a private copy of bundles/busybox with a unique relative
  cgroupsPath; edit ``bundle.config`` and call ``bundle.save()``.
- ``pyrunc_cmd`` / ``runc_cmd``: run a runtime with a per-test --root and
  return a CompletedProcess; ``runtime`` is parametrized over both.
- ``no_residue`` (autouse under tests/integration, or with the
  ``no_residue`` marker): fails a test that leaves mounts, cgroups,
  processes or state directories behind, after cleaning them up.
- markers ``root`` and ``runc`` skip when not root or runc is missing.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

# Importable whatever pytest's import mode or package layout is.
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import helpers  # noqa: E402

# Test directories whose tests run containers and are checked for residue.
CHECKED_DIRS = ("integration", "compat")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "root: needs root and a real kernel")
    config.addinivalue_line(
        "markers", "runc: compares with Debian's runc")
    config.addinivalue_line(
        "markers",
        "no_residue: check for leftover mounts, cgroups and processes "
        "(automatic under tests/integration)")
    helpers.set_child_subreaper()


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root")
    if item.get_closest_marker("runc") and shutil.which("runc") is None:
        pytest.skip("runc is not installed")


@pytest.fixture(scope="session")
def default_bundle():
    """Path of bundles/busybox, built or refreshed once per session."""
    return helpers.build_default_bundle()


@pytest.fixture
def bundle(tmp_path, default_bundle, request):
    """A private copy of the default bundle, under tmp_path/bundle."""
    cgroups_path = helpers.cgroup_name(request.node.name)
    return helpers.make_bundle(
        tmp_path / "bundle", cgroups_path=cgroups_path,
        source=default_bundle)


@pytest.fixture
def residue_watch(tmp_path):
    """The ResidueWatch of this test; runtime fixtures register on it."""
    return helpers.ResidueWatch(prefixes=[tmp_path])


@pytest.fixture
def pyrunc_cmd(tmp_path, residue_watch):
    """Run the installed pyrunc CLI with --root tmp_path/root."""
    argv = helpers.pyrunc_argv()
    if argv is None:
        pytest.fail("pyrunc is not installed: run scripts/setup.sh")
    rt = helpers.Runtime("pyrunc", argv, tmp_path / "root")
    residue_watch.add_runtime(rt)
    return rt


@pytest.fixture
def runc_cmd(tmp_path, residue_watch):
    """Run Debian's runc with --root tmp_path/runc-root."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    rt = helpers.Runtime("runc", [runc], tmp_path / "runc-root")
    residue_watch.add_runtime(rt)
    return rt


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request):
    """Each runtime in turn, for tests that must behave the same."""
    return request.getfixturevalue(f"{request.param}_cmd")


def _is_checked(item):
    if item.get_closest_marker("no_residue"):
        return True
    try:
        rel = Path(item.path).resolve().relative_to(TESTS)
    except ValueError:
        return False
    return rel.parts[0] in CHECKED_DIRS


@pytest.fixture(autouse=True)
def no_residue(request):
    """Fail the test if it left anything behind on the host."""
    if not _is_checked(request.node):
        yield None
        return
    watch = request.getfixturevalue("residue_watch")
    watch.snapshot()
    yield watch
    res = watch.check()
    if res:
        pytest.fail(
            "test left residue behind (now cleaned up):\n"
            + res.describe(),
            pytrace=False)


class _LogCapture:
    def __init__(self, capfd):
        self._capfd = capfd
        self._seen = ""

    @property
    def text(self):
        self._seen += self._capfd.readouterr().err
        return self._seen


@pytest.fixture
def pyrunc_logs(capfd):
    """What pyrunc logged (at debug level and up) during the test.

    pyrunc's modules log through pyrunc.log, not the logging module, so
    pytest's caplog does not see them; this reads them off stderr.
    """
    from pyrunc import log

    log.setup(None, "text", debug=True)
    try:
        yield _LogCapture(capfd)
    finally:
        log.reset()
