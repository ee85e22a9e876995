"""The cgroup-attach prewarm helper never moves itself (prewarm.h).

Under a cgroup namespace /proc/self/cgroup names paths from the
namespace's root; with the host's cgroup mounts still in place those
paths lead elsewhere, and writing "0" to that cgroup.procs would move
the helper there. It checks that the file lists it first.
"""

import os
import shutil
import subprocess
import time

import pytest

from pyrunc.process import prewarm
from tests import helpers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def cgroup_of(pid, hierarchy):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            ident, _, path = line.rstrip("\n").split(":", 2)
            if ident == hierarchy:
                return path
    return None


def test_the_helper_stays_in_its_cgroup_under_a_cgroup_namespace():
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    dirs = helpers.own_cgroup_dirs()
    if not dirs:
        pytest.skip("no cgroup mounts")
    # The hierarchy the helper tries first: the first line.
    with open("/proc/self/cgroup") as f:
        hierarchy = f.readline().split(":", 1)[0]
    place = dirs[0] / f"pyrunc-test-prewarm-{os.getpid()}"
    place.mkdir()
    helper = None
    try:
        helper = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec unshare -C "$2"',
             "sh", str(place), prewarm.PATH],
            stdin=subprocess.PIPE)
        expected = None
        for _ in range(100):
            time.sleep(0.01)
            expected = cgroup_of(helper.pid, hierarchy)
            if expected and expected.endswith(place.name):
                break
        assert expected and expected.endswith(place.name)
        # A dozen rounds of writes later, it is still there.
        time.sleep(0.05)
        assert helper.poll() is None
        assert cgroup_of(helper.pid, hierarchy) == expected
        helper.stdin.close()
        assert helper.wait(timeout=5) == 0
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait()
        for _ in range(50):
            try:
                place.rmdir()
                break
            except OSError:
                time.sleep(0.02)
