"""A create killed at any step is undone by `delete --force`.

The runtime records what it is about to make (create.json) before it
makes it: the cgroups before mkdir, the container's process as soon as
it exists. These tests SIGKILL the runtime at many points of create,
then check that `delete --force` leaves no state directory, cgroup or
process (the residue check of tests/conftest.py sees all three).
"""

import os
import signal
import subprocess
import tempfile
import time

import helpers
import psutil
import pytest

pytestmark = pytest.mark.root


def container_cgroups(cgroups_path):
    """The container's cgroup directories that exist, in any hierarchy."""
    return [d / cgroups_path for d in helpers.own_cgroup_dirs()
            if (d / cgroups_path).exists()]


def start_create(rt, bundle, cid):
    """create in the background. Its output goes to a file: a created
    container inherits it, and would hold a pipe open."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = rt.popen("create", "--bundle", bundle, cid,
                    stdout=subprocess.DEVNULL, stderr=err)
    proc.err_file = err
    return proc


def finish(proc):
    """Wait for proc; return its stderr."""
    proc.wait(timeout=20)
    proc.err_file.seek(0)
    text = proc.err_file.read()
    proc.err_file.close()
    return text


def descendants():
    """(pid, start time) of every live process below us."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[(child.pid, child.create_time())] = child
        except psutil.Error:
            continue
    return found


@pytest.fixture
def before():
    """The processes below us before the test (session helpers...)."""
    return set(descendants())


def settle(before, timeout=5.0):
    """Wait until every process the test started below us has exited.

    What a killed runtime leaves dying (its start-up helper, a child
    that lost its parent mid-setup) goes by itself in milliseconds; the
    residue check must not catch it on the way out.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for key, p in descendants().items() if key not in before]
        if not alive:
            return []
        time.sleep(0.01)
    return alive


def kill_after(rt, bundle, cid, delay):
    proc = start_create(rt, bundle, cid)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    finish(proc)


def test_killed_in_a_hook_after_the_process_exists(pyrunc_cmd, bundle,
                                                  before):
    # Deterministic: a createRuntime hook kills the runtime, its parent,
    # while the container's process waits at the hooks sync point.
    bundle.set_args("sleep", "1000")
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]}
    bundle.save()
    cgroups_path = bundle.config["linux"]["cgroupsPath"]
    proc = start_create(pyrunc_cmd, bundle, "hooked")
    finish(proc)
    assert proc.returncode == -signal.SIGKILL
    assert container_cgroups(cgroups_path)
    done = pyrunc_cmd("delete", "--force", "hooked")
    assert done.returncode == 0, done.stderr
    assert pyrunc_cmd.state("hooked") is None
    assert settle(before) == []
    assert not container_cgroups(cgroups_path)
    assert not os.path.exists(pyrunc_cmd.root / "hooked")


@pytest.mark.parametrize("delay_ms", [2, 6, 8, 10, 12, 14, 16, 20, 30])
def test_killed_at_any_time(pyrunc_cmd, bundle, delay_ms, before):
    # Timed kills land anywhere from interpreter start-up to the end of
    # create, depending on the machine: whatever was made, goes.
    bundle.set_args("sleep", "1000")
    cgroups_path = bundle.config["linux"]["cgroupsPath"]
    kill_after(pyrunc_cmd, bundle, "timed", delay_ms / 1000)
    done = pyrunc_cmd("delete", "--force", "timed")
    assert done.returncode == 0, done.stderr
    assert settle(before) == []
    assert not container_cgroups(cgroups_path)
    assert not os.path.exists(pyrunc_cmd.root / "timed")


def test_concurrent_creates_of_one_id(pyrunc_cmd, bundle):
    # Exactly one wins; the loser must not remove the winner's state.
    bundle.set_args("sleep", "1000")
    procs = [start_create(pyrunc_cmd, bundle, "twin") for _ in range(3)]
    errors = [finish(p) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1, 1], errors
    for p, err in zip(procs, errors):
        if p.returncode:
            assert "container with given ID already exists" in err
    assert pyrunc_cmd.state("twin")["status"] == "created"
    assert pyrunc_cmd("delete", "--force", "twin").returncode == 0


def test_delete_waits_for_a_create_in_progress(pyrunc_cmd, bundle):
    # delete takes the container's lock, so it sees the finished create
    # (and removes it) or no container at all: never half of one.
    bundle.set_args("sleep", "1000")
    create = start_create(pyrunc_cmd, bundle, "racing")
    time.sleep(0.005)
    deleted = pyrunc_cmd("delete", "--force", "racing")
    finish(create)
    assert deleted.returncode == 0, deleted.stderr
    if pyrunc_cmd.state("racing") is not None:
        # delete ran first and found nothing; the create then finished.
        assert pyrunc_cmd("delete", "--force", "racing").returncode == 0
    assert not os.path.exists(pyrunc_cmd.root / "racing")
