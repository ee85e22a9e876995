"""The CLI's cgroup-attach prewarm helper (pyrunc/process/prewarm.py)."""

import os
import subprocess

import pytest

from pyrunc.process import prewarm


def test_the_helper_is_built_and_exits_zero():
    assert os.access(prewarm.PATH, os.X_OK), "run scripts/setup.sh"
    # Root or not, cgroup mounts or not: it never fails its caller.
    done = subprocess.run([prewarm.PATH], capture_output=True, timeout=10)
    assert done.returncode == 0
    assert done.stdout == done.stderr == b""


def test_start_spawns_and_finish_reaps():
    prewarm.start()
    pid = prewarm._helper
    assert pid > 0
    # A second start while one runs does nothing.
    prewarm.start()
    assert prewarm._helper == pid
    prewarm.finish()
    assert prewarm._helper == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    # Finishing twice is harmless.
    prewarm.finish()


def test_a_missing_helper_changes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(prewarm, "PATH", str(tmp_path / "nothing"))
    prewarm.start()
    assert prewarm._helper == 0
    prewarm.finish()
