"""podman and conmon drive pyrunc.

Debian's podman 4.3 runs with ``--runtime`` naming pyrunc, private
``--root``/``--runroot``/``--tmpdir``, ``--cgroup-manager cgroupfs`` (no
systemd here) and ``--events-backend file``; the image comes from the
local OCI archive (scripts/make-image.sh) through ``podman load``.
Containers get a relative ``--cgroup-parent``, which pyrunc puts below
its own cgroup, i.e. the test's. See enginekit.Podman for the rest of the
private configuration (containers.conf).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

import enginekit
import helpers

pytestmark = [
    pytest.mark.root,
    pytest.mark.no_residue,
    pytest.mark.timeout(300),
]

IMAGE = enginekit.BUSYBOX_REF
DEFAULT_ROOT = "/run/pyrunc"


def parent(request):
    return helpers.cgroup_name(request.node.name)


def settle(podman):
    """Wait until conmon and podman's cleanup are gone; say so."""
    enginekit.wait_for(lambda: not podman.helpers_alive(), timeout=30,
                       what="conmon and `podman container cleanup`")
    return True


def failed_calls(podman):
    return "\n".join(f"{rc}: {' '.join(argv)}"
                     for rc, argv in podman.recorder.failures())


def default_root_ids():
    root = Path(DEFAULT_ROOT)
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def test_it_works(podman, request, engine_pyrunc):
    """The issue's acceptance line, with pyrunc as found on PATH
    (when that is this checkout's).

    No wrapper here: pyrunc keeps its state in its default root.
    """
    runtime = engine_pyrunc
    found = shutil.which("pyrunc")
    # The PATH spelling when it is this checkout's pyrunc; another
    # checkout's (set-up with PYRUNC_LINK=) is not the one under test.
    if found and os.path.realpath(found) == os.path.realpath(runtime):
        runtime = found
    before = default_root_ids()
    proc = podman("run", "--rm", "--pull", "never",
                  "--cgroup-parent", parent(request),
                  "--memory", "512k", IMAGE, "echo", "it works",
                  runtime=runtime)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "it works\n"
    assert settle(podman)
    assert default_root_ids() - before == set()


def test_memory_limit_applies(podman, request):
    proc = podman("run", "--rm", "--pull", "never",
                  "--cgroup-parent", parent(request), "--memory", "512k",
                  IMAGE, "sh", "-c",
                  "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                  "2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert proc.returncode == 0, (proc.stderr, failed_calls(podman))
    assert proc.stdout == f"{512 * 1024}\n"
    assert settle(podman)


def test_run_rm_output_and_exit_code(podman, request):
    proc = podman("run", "--rm", "--pull", "never",
                  "--cgroup-parent", parent(request), IMAGE,
                  "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3, (proc.stderr, failed_calls(podman))
    assert proc.stdout == "out\n"
    assert "err\n" in proc.stderr
    called = podman.recorder.commands()
    assert called[:2] == ["create", "start"], called
    assert podman.recorder.runc_calls() == []
    assert settle(podman)


@pytest.mark.parametrize("command, words", [
    ("nosuchcmd", "executable file not found in $PATH"),
    ("/nonexistent/binary", "no such file or directory"),
])
def test_missing_executable_exits_127(podman, request, command, words):
    """podman maps these runtime messages to exit status 127."""
    proc = podman("run", "--rm", "--pull", "never",
                  "--cgroup-parent", parent(request), IMAGE, command)
    assert proc.returncode == 127, proc.stderr
    assert words in proc.stderr
    assert settle(podman)
    assert podman.pyrunc_ids() == []


def test_detached_exec_logs_stop_rm(podman, request):
    name = helpers.unique_id("pod")
    script = ("trap 'echo bye; exit 0' TERM; echo started; "
              "while :; do sleep 0.1; done")
    proc = podman("run", "-d", "--name", name, "--pull", "never",
                  "--cgroup-parent", parent(request), IMAGE,
                  "sh", "-c", script)
    assert proc.returncode == 0, (proc.stderr, failed_calls(podman))
    cid = proc.stdout.strip()
    try:
        # pyrunc's state dir (the root the wrapper gives) holds it.
        assert podman.pyrunc_ids() == [cid]
        state = json.loads(enginekit.run(
            [podman.pyrunc, "--root", podman.pyrunc_root, "state",
             cid]).stdout)
        assert state["status"] == "running"

        proc = podman("exec", name, "sh", "-c", "echo in exec; exit 7")
        assert proc.returncode == 7, (proc.stderr, failed_calls(podman))
        assert proc.stdout == "in exec\n"
        proc = podman("exec", "-t", name, "tty")
        assert proc.returncode == 0, (proc.stderr, failed_calls(podman))
        assert proc.stdout.startswith("/dev/pts/")

        assert podman("pause", name).returncode == 0
        proc = podman("inspect", "--format", "{{.State.Status}}", name)
        assert proc.stdout.strip() == "paused"
        assert podman("unpause", name).returncode == 0

        proc = podman("top", name, "pid", "args")
        assert proc.returncode == 0, proc.stderr
        assert "while" in proc.stdout

        enginekit.wait_for(lambda: "started" in podman("logs", name).stdout,
                           what="the container's first line")
        proc = podman("stop", "-t", "20", name)
        assert proc.returncode == 0, (proc.stderr, failed_calls(podman))
        proc = podman("inspect", "--format", "{{.State.ExitCode}}", name)
        assert proc.stdout.strip() == "0"
        proc = podman("logs", name)
        assert proc.stdout.splitlines() == ["started", "bye"]
        proc = podman("rm", name)
        assert proc.returncode == 0, proc.stderr
    finally:
        podman("rm", "-f", "-t", "0", name)
    called = podman.recorder.commands(cid)
    for sub in ("create", "start", "exec", "pause", "resume", "kill",
                "delete"):
        assert sub in called, (sub, called)
    assert settle(podman)
    assert podman.pyrunc_ids() == []
    # --events-backend file: podman logged the lifecycle there.
    events = podman.events.read_text()
    assert cid in events and '"Status":"died"' in events


def test_run_with_a_pty(podman, request):
    argv = podman.argv("run", "--rm", "-it", "--pull", "never",
                       "--cgroup-parent", parent(request), IMAGE,
                       "sh", "-c", "tty; stty size; exit 6")
    status, out = enginekit.run_in_pty(argv, env=podman.env, rows=13,
                                       cols=91)
    assert status == 6, (out, failed_calls(podman))
    lines = [line.strip() for line in out.splitlines()]
    assert "/dev/pts/0" in lines
    assert "13 91" in lines
    creates = [argv for _, argv in podman.recorder.calls()
               if enginekit.split_global(argv)[0] == "create"]
    assert "--console-socket" in creates[-1]
    assert settle(podman)


def test_run_tty_without_a_terminal(podman, request):
    """`run -t` with stdin not a terminal: conmon still owns the pty."""
    proc = podman("run", "--rm", "-t", "--pull", "never",
                  "--cgroup-parent", parent(request), IMAGE,
                  "sh", "-c", "tty; exit 2")
    assert proc.returncode == 2, (proc.stderr, failed_calls(podman))
    assert proc.stdout.strip() == "/dev/pts/0"
    assert settle(podman)
