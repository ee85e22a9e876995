"""The residue check finds, and cleans, what a careless test leaves."""

import subprocess
import time

import pytest

import helpers


@pytest.fixture
def watch(tmp_path, runc_cmd):
    """A second watch, inside the test, so the autouse one stays clean."""
    w = helpers.ResidueWatch(prefixes=[tmp_path], strict=False)
    w.add_runtime(runc_cmd)
    w.snapshot()
    return w


def assert_clean(w):
    time.sleep(0.05)
    left = w.find()
    assert not left, left.describe()


@pytest.mark.root
class TestResidue:
    def test_clean_test_has_no_residue(self, watch):
        assert not watch.check()

    def test_child_process(self, watch):
        child = subprocess.Popen(["sleep", "1000"])
        res = watch.check()
        assert [pid for pid, _ in res.processes] == [child.pid]
        assert child.poll() is not None or child.wait(5) is not None
        assert_clean(watch)

    def test_mount(self, watch, tmp_path):
        point = tmp_path / "mnt"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "leak", str(point)],
                       check=True)
        res = watch.check()
        assert [m.point for m in res.mounts] == [str(point)]
        assert_clean(watch)

    def test_namespace_bind_mount(self, watch, tmp_path):
        point = tmp_path / "netns"
        point.touch()
        subprocess.run(
            ["mount", "--bind", "/proc/self/ns/net", str(point)],
            check=True)
        res = watch.check()
        assert [m.fstype for m in res.mounts] == ["nsfs"]
        assert_clean(watch)

    @pytest.mark.runc
    @pytest.mark.parametrize("paused", [False, True])
    def test_detached_container(self, watch, bundle, runc_cmd, paused):
        bundle.set_args("sleep", "1000")
        cid = helpers.unique_id()
        proc = runc_cmd("run", "--detach", "--bundle", bundle, cid)
        assert proc.returncode == 0, proc.stderr
        pid = runc_cmd.state(cid)["pid"]
        if paused:
            runc_cmd("pause", cid, check=True)
        # Only the state directory, cgroups and process are residue: the
        # runtime's own delete is what the cleanup tries first.
        res = watch.find()
        assert res.states == [runc_cmd.root / cid]
        assert pid in [p for p, _ in res.processes]
        name = bundle.config["linux"]["cgroupsPath"]
        assert res.cgroups
        assert all(p.name == name for p in res.cgroups)
        watch.cleanup(res)
        assert_clean(watch)
