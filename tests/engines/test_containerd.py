"""containerd drives pyrunc: ctr through the runc shim, then the CRI.

Debian's containerd 1.6 runs on a private socket, root and state (see
enginekit.Containerd). ``ctr`` uses the shim io.containerd.runc.v2 with
pyrunc as its runc binary (--runc-binary, --runc-root); the CRI plugin has
a runtime handler named ``pyrunc`` whose options name pyrunc and its root,
as docs/containerd.md tells an operator to configure it. Every call the
shim makes is recorded, and a fake runc first on containerd's PATH shows
that runc itself is never called.
"""

import json

import pytest

import enginekit
import helpers

pytestmark = [
    pytest.mark.root,
    pytest.mark.no_residue,
    pytest.mark.timeout(300),
]

IMAGE = enginekit.BUSYBOX_REF


def ctr_run(containerd, request, cid, *args, extra=(), **kwargs):
    """`ctr run` with pyrunc as the shim's runc, in the test's cgroup."""
    cgroup = helpers.cgroup_name(request.node.name)
    return containerd.ctr(
        "run", "--runtime", "io.containerd.runc.v2",
        "--runc-binary", containerd.runtime,
        "--runc-root", containerd.pyrunc_root,
        "--fifo-dir", containerd.fifo_dir,
        "--cgroup", cgroup, *extra, IMAGE, cid, *args, **kwargs)


def task_status(containerd, cid):
    """Return (pid, status) of the task as `ctr task ls` shows it."""
    proc = containerd.ctr("task", "ls")
    for line in proc.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return int(fields[1]), fields[2]
    return None


def pyrunc_state(containerd, cid, namespace="default"):
    """pyrunc's own view of the container, from its own state dir."""
    root = containerd.pyrunc_root / namespace
    proc = enginekit.run([containerd.pyrunc, "--root", root, "state", cid])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def memory_metrics(metrics):
    """Return (usage, limit) from `ctr task metrics --format json`.

    cgroup v1 metrics nest them under usage; v2 metrics are flat.
    """
    memory = metrics["memory"]
    if isinstance(memory.get("usage"), dict):
        return memory["usage"]["usage"], memory["usage"]["limit"]
    return memory.get("usage", 0), memory.get("usage_limit")


def shims_gone(containerd):
    """Wait until no shim of this containerd is left, and say so."""
    enginekit.wait_for(
        lambda: not enginekit.shim_processes(str(containerd.socket)),
        timeout=20, what="the shims to exit")
    return True


def assert_only_pyrunc(containerd, namespace="default"):
    """Every runtime call went to pyrunc, with its root; none to runc."""
    rec = containerd.recorder
    assert rec.runc_calls() == []
    calls = rec.calls()
    assert calls, "the shim never called pyrunc"
    wanted = str(containerd.pyrunc_root / namespace)
    for _, argv in calls:
        if enginekit.global_flag(argv, "--root") == wanted:
            # The shim passes its log file and json format every time.
            assert enginekit.global_flag(argv, "--log-format") == "json"
            assert enginekit.global_flag(argv, "--log").endswith(
                "log.json")


def failed_calls(containerd):
    """The recorded calls that exited non-zero, for assertion messages."""
    return "\n".join(f"{rc}: {' '.join(argv)}"
                     for rc, argv in containerd.recorder.failures())


# --- ctr and the runc shim


def test_run_output_and_exit_code(containerd, request):
    cid = helpers.unique_id("ctr")
    proc = ctr_run(containerd, request, cid, "sh", "-c",
                   "echo hello from ctr; exit 3", extra=["--rm"])
    assert proc.returncode == 3, (proc.stderr, failed_calls(containerd))
    assert proc.stdout.splitlines() == ["hello from ctr"]
    assert containerd.recorder.commands(cid)[:2] == ["create", "start"]
    assert "delete" in containerd.recorder.commands(cid)
    assert_only_pyrunc(containerd)
    assert containerd.pyrunc_ids() == []
    assert shims_gone(containerd)


def test_run_with_a_terminal(containerd, request):
    cid = helpers.unique_id("ctr")
    cgroup = helpers.cgroup_name(request.node.name)
    argv = containerd.ctr_argv(
        "run", "--rm", "-t", "--runc-binary", containerd.runtime,
        "--runc-root", containerd.pyrunc_root,
        "--fifo-dir", containerd.fifo_dir, "--cgroup", cgroup,
        IMAGE, cid, "sh", "-c", "tty; exit 4")
    status, out = enginekit.run_in_pty(argv, env=containerd.env)
    assert status == 4, (out, failed_calls(containerd))
    assert "/dev/pts/0" in out
    create = [argv for _, argv in containerd.recorder.calls()
              if enginekit.split_global(argv)[0] == "create"
              and argv[-1] == cid]
    assert create and "--console-socket" in create[0]
    assert shims_gone(containerd)


def test_task_lifecycle(containerd, request):
    """run -d, exec, pause/resume, metrics, ps, kill, delete."""
    cid = helpers.unique_id("ctr")
    proc = ctr_run(containerd, request, cid, "sh", "-c",
                   "while :; do sleep 1; done", extra=["-d"])
    assert proc.returncode == 0, (proc.stderr, failed_calls(containerd))
    try:
        pid, status = task_status(containerd, cid)
        assert status == "RUNNING"
        # pyrunc's own state dir (the shim's Root) holds the container.
        assert containerd.pyrunc_ids() == [cid]
        state = pyrunc_state(containerd, cid)
        assert state["status"] == "running"
        assert state["pid"] == pid

        # exec: output, exit status, errors, a terminal
        proc = containerd.ctr("task", "exec", "--fifo-dir",
                              containerd.fifo_dir, "--exec-id", "e1", cid,
                              "sh", "-c", "echo in exec; id -u; exit 5")
        assert proc.returncode == 5, (proc.stderr, failed_calls(containerd))
        assert proc.stdout.splitlines() == ["in exec", "0"]
        proc = containerd.ctr("task", "exec", "--fifo-dir",
                              containerd.fifo_dir, "--exec-id", "e2", cid,
                              "nosuchcmd")
        assert proc.returncode != 0
        assert "executable file not found" in proc.stderr
        status, out = enginekit.run_in_pty(containerd.ctr_argv(
            "task", "exec", "-t", "--fifo-dir", containerd.fifo_dir,
            "--exec-id", "e3", cid, "sh", "-c", "tty; exit 6"),
            env=containerd.env)
        assert status == 6, (out, failed_calls(containerd))
        assert "/dev/pts/" in out

        # pause and resume
        assert containerd.ctr("task", "pause", cid).returncode == 0
        assert task_status(containerd, cid)[1] == "PAUSED"
        assert pyrunc_state(containerd, cid)["status"] == "paused"
        assert containerd.ctr("task", "resume", cid).returncode == 0
        assert task_status(containerd, cid)[1] == "RUNNING"
        assert pyrunc_state(containerd, cid)["status"] == "running"

        # metrics (the shim reads the cgroup that pyrunc made) and ps
        proc = containerd.ctr("task", "metrics", "--format", "json", cid)
        assert proc.returncode == 0, proc.stderr
        metrics = json.loads(proc.stdout)
        assert metrics["pids"]["current"] >= 1
        assert memory_metrics(metrics)[0] > 0
        proc = containerd.ctr("task", "ps", cid)
        assert proc.returncode == 0, proc.stderr
        assert str(pid) in proc.stdout.split()

        # kill and delete
        assert containerd.ctr("task", "kill", "-s", "SIGKILL",
                              cid).returncode == 0
        enginekit.wait_for(
            lambda: task_status(containerd, cid)[1] == "STOPPED",
            what="the task to stop")
        proc = containerd.ctr("task", "delete", cid)
        assert proc.returncode == 0, proc.stderr
    finally:
        containerd.ctr("task", "delete", "--force", cid)
        containerd.ctr("container", "delete", cid)
    called = containerd.recorder.commands(cid)
    for sub in ("create", "start", "exec", "pause", "resume", "ps", "kill",
                "delete"):
        assert sub in called, (sub, called)
    assert_only_pyrunc(containerd)
    assert containerd.pyrunc_ids() == []
    assert shims_gone(containerd)


def test_stats_match_events(containerd, request, engine_pyrunc):
    """ctr's metrics and `pyrunc events --stats` read the same cgroup."""
    cid = helpers.unique_id("ctr")
    limit = 8 * 1024 * 1024
    proc = ctr_run(containerd, request, cid, "sleep", "1000",
                   extra=["-d", "--memory-limit", str(limit)])
    assert proc.returncode == 0, (proc.stderr, failed_calls(containerd))
    try:
        proc = containerd.ctr("task", "metrics", "--format", "json", cid)
        assert proc.returncode == 0, proc.stderr
        metrics = json.loads(proc.stdout)
        assert memory_metrics(metrics)[1] == limit
        proc = enginekit.run([engine_pyrunc, "--root",
                              containerd.pyrunc_root / "default", "events",
                              "--stats", cid])
        assert proc.returncode == 0, proc.stderr
        event = json.loads(proc.stdout)
        assert event["type"] == "stats" and event["id"] == cid
        data = event["data"]
        assert data["memory"]["usage"]["limit"] == limit
        assert data["pids"]["current"] == metrics["pids"]["current"]
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", cid)
        enginekit.wait_for(
            lambda: (task_status(containerd, cid) or (0, "STOPPED"))[1]
            == "STOPPED", what="the task to stop")
        containerd.ctr("task", "delete", "--force", cid)
        containerd.ctr("container", "delete", cid)
    assert containerd.pyrunc_ids() == []
    assert shims_gone(containerd)


def test_kill_all(containerd, request):
    """`ctr task kill --all` reaches every process of the container."""
    cid = helpers.unique_id("ctr")
    proc = ctr_run(containerd, request, cid, "sh", "-c",
                   "sleep 1000 & sleep 1000 & wait", extra=["-d"])
    assert proc.returncode == 0, (proc.stderr, failed_calls(containerd))
    try:
        pid, _ = task_status(containerd, cid)
        enginekit.wait_for(
            lambda: len(containerd.ctr("task", "ps", cid)
                        .stdout.splitlines()) >= 4,
            what="both sleeps to start")
        proc = containerd.ctr("task", "kill", "--all", "-s", "SIGKILL", cid)
        assert proc.returncode == 0, proc.stderr
        enginekit.wait_for(
            lambda: task_status(containerd, cid)[1] == "STOPPED",
            what="the task to stop")
        kills = [argv for _, argv in containerd.recorder.calls()
                 if enginekit.split_global(argv)[0] == "kill"
                 and argv[-2] == cid]
        assert any("--all" in argv for argv in kills), kills
        proc = containerd.ctr("task", "delete", cid)
        assert proc.returncode == 0, proc.stderr
    finally:
        containerd.ctr("task", "delete", "--force", cid)
        containerd.ctr("container", "delete", cid)
    assert shims_gone(containerd)


def test_delete_a_stopped_task(containerd, request):
    cid = helpers.unique_id("ctr")
    proc = ctr_run(containerd, request, cid, "sh", "-c", "exit 7",
                   extra=["-d"])
    assert proc.returncode == 0, (proc.stderr, failed_calls(containerd))
    try:
        enginekit.wait_for(
            lambda: task_status(containerd, cid)[1] == "STOPPED",
            what="the task to stop")
        assert pyrunc_state(containerd, cid)["status"] == "stopped"
        proc = containerd.ctr("task", "delete", cid)
        assert proc.returncode == 0, proc.stderr
        assert "exit code 7" in proc.stderr
        assert containerd.pyrunc_ids() == []
    finally:
        containerd.ctr("task", "delete", "--force", cid)
        containerd.ctr("container", "delete", cid)
    assert shims_gone(containerd)


def test_create_error_reaches_ctr(containerd, request):
    """The shim reads pyrunc's json log and reports its last error."""
    cid = helpers.unique_id("ctr")
    proc = ctr_run(containerd, request, cid, "/nonexistent/binary",
                   extra=["--rm"])
    assert proc.returncode != 0
    # containerd: "OCI runtime create failed: <pyrunc's msg>: unknown"
    assert "OCI runtime create failed" in proc.stderr, proc.stderr
    # runc's wording, Go's lowercase errno text included.
    assert 'exec: "/nonexistent/binary": stat /nonexistent/binary: ' \
        "no such file or directory" in proc.stderr, proc.stderr
    containerd.ctr("container", "delete", cid)
    assert containerd.pyrunc_ids() == []
    assert shims_gone(containerd)


# --- the CRI plugin, as kubelet uses it


@pytest.fixture
def cri(containerd):
    pytest.importorskip(
        "cri_api", reason=f"the CRI client is missing: "
                          f"{enginekit.SETUP_HINT}")
    client = enginekit.Cri(containerd.socket)
    yield client
    client.close()


def test_cri_pod_with_runtime_handler(containerd, cri, request):
    pb = cri.pb
    name = helpers.unique_id("pod")
    log_dir = containerd.cri_logs / name
    log_dir.mkdir()
    pod_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace="default",
                                       uid=name, attempt=0),
        hostname="pyrunc-pod",
        log_directory=str(log_dir),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=helpers.cgroup_name(request.node.name)))
    ready = cri.call("Status", pb.StatusRequest()).status
    assert {c.type: c.status for c in ready.conditions} == {
        "RuntimeReady": True, "NetworkReady": True}

    pod = cri.call("RunPodSandbox", pb.RunPodSandboxRequest(
        config=pod_config, runtime_handler="pyrunc")).pod_sandbox_id
    cid = None
    try:
        status = cri.call("PodSandboxStatus", pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod)).status
        assert status.state == pb.SANDBOX_READY
        assert status.runtime_handler == "pyrunc"
        # CNI: a bridge with no uplink in containerd's own netns.
        assert status.network.ip.startswith("10.213.0.")
        assert pyrunc_state(containerd, pod, "k8s.io")["status"] == \
            "running"

        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="main"),
            image=pb.ImageSpec(image=IMAGE),
            command=["/bin/sh", "-c",
                     "trap 'echo stopping; exit 0' TERM; "
                     "echo hello from the pod; "
                     "while :; do sleep 0.1; done"],
            log_path="main.log")
        cid = cri.call("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=config,
            sandbox_config=pod_config)).container_id
        cri.call("StartContainer", pb.StartContainerRequest(
            container_id=cid))
        assert sorted(containerd.pyrunc_ids("k8s.io")) == sorted([pod, cid])
        assert pyrunc_state(containerd, cid, "k8s.io")["status"] == \
            "running"

        # ExecSync: output, stderr and exit status, in the pod's UTS ns
        res = cri.call("ExecSync", pb.ExecSyncRequest(
            container_id=cid, timeout=30,
            cmd=["sh", "-c", "echo out; echo err >&2; hostname; exit 3"]))
        assert (res.stdout, res.stderr, res.exit_code) == (
            b"out\npyrunc-pod\n", b"err\n", 3)
        with pytest.raises(Exception) as err:
            cri.call("ExecSync", pb.ExecSyncRequest(
                container_id=cid, timeout=30, cmd=["nosuchcmd"]))
        assert "executable file not found" in str(err.value)

        stats = cri.call("ContainerStats", pb.ContainerStatsRequest(
            container_id=cid)).stats
        assert stats.memory.working_set_bytes.value > 0

        log_file = log_dir / "main.log"
        enginekit.wait_for(
            lambda: log_file.exists() and "hello from the pod"
            in log_file.read_text(), what="the container's log")

        cri.call("StopContainer", pb.StopContainerRequest(
            container_id=cid, timeout=20))
        status = cri.call("ContainerStatus", pb.ContainerStatusRequest(
            container_id=cid)).status
        assert status.state == pb.CONTAINER_EXITED
        assert status.exit_code == 0
        lines = log_file.read_text().splitlines()
        # CRI's format: time, stream, P(artial)/F(ull), text.
        texts = [line.split(" ", 3)[1:] for line in lines]
        assert ["stdout", "F", "hello from the pod"] in texts
        assert ["stdout", "F", "stopping"] in texts

        cri.call("RemoveContainer", pb.RemoveContainerRequest(
            container_id=cid))
        cid = None
        cri.call("StopPodSandbox", pb.StopPodSandboxRequest(
            pod_sandbox_id=pod))
        cri.call("RemovePodSandbox", pb.RemovePodSandboxRequest(
            pod_sandbox_id=pod))
        pod = None
    finally:
        if cid is not None:
            cri.call("RemoveContainer", pb.RemoveContainerRequest(
                container_id=cid))
        if pod is not None:
            cri.call("StopPodSandbox", pb.StopPodSandboxRequest(
                pod_sandbox_id=pod))
            cri.call("RemovePodSandbox", pb.RemovePodSandboxRequest(
                pod_sandbox_id=pod))

    # Nothing left behind: no pod, no container, no pyrunc state, no
    # shim, no mount (netns, shm, rootfs) under containerd's directories.
    pods = cri.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert list(pods) == []
    ctrs = cri.call("ListContainers", pb.ListContainersRequest()).containers
    assert list(ctrs) == []
    assert containerd.pyrunc_ids("k8s.io") == []
    assert shims_gone(containerd)
    assert enginekit.mounts_under(containerd.base) == []
    assert_only_pyrunc(containerd, "k8s.io")
    called = containerd.recorder.commands()
    for sub in ("create", "start", "exec", "kill", "delete"):
        assert sub in called, (sub, called)
