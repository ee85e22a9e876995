"""pyrunc-cri end to end, as root: pods, containers, images, restarts.

Each test runs its own server (see conftest.py) and is checked for
residue on the host afterwards.
"""

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2 as pb

from crihelpers import read_log

pytestmark = [pytest.mark.root, pytest.mark.no_residue]


def _code(excinfo):
    return excinfo.value.code()


class TestRuntime:
    def test_version_status_config(self, cri):
        version = cri.rt.Version(pb.VersionRequest())
        assert version.runtime_name == "pyrunc-cri"
        assert version.runtime_api_version == "v1"
        status = cri.rt.Status(pb.StatusRequest(verbose=True))
        conds = {c.type: c.status for c in status.status.conditions}
        assert conds == {"RuntimeReady": True, "NetworkReady": True}
        assert "config" in status.info
        config = cri.rt.RuntimeConfig(pb.RuntimeConfigRequest())
        assert config.linux.cgroup_driver == pb.CGROUPFS
        cri.rt.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(
                network_config=pb.NetworkConfig(pod_cidr="10.1.0.0/16"))))

    def test_unknown_ids(self, cri):
        unknown = "0" * 64
        cri.rt.StopContainer(pb.StopContainerRequest(container_id=unknown))
        cri.rt.RemoveContainer(
            pb.RemoveContainerRequest(container_id=unknown))
        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(
            pod_sandbox_id=unknown))
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(
            pod_sandbox_id=unknown))
        with pytest.raises(grpc.RpcError) as exc:
            cri.status(unknown)
        assert _code(exc) == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as exc:
            cri.pod_status(unknown)
        assert _code(exc) == grpc.StatusCode.NOT_FOUND


class TestImages:
    def test_list_status_remove(self, cri, busybox_archive):
        images = cri.im.ListImages(pb.ListImagesRequest()).images
        assert len(images) == 1
        image = images[0]
        assert image.repo_tags == ["docker.io/library/busybox:latest"]
        assert image.repo_digests[0].startswith(
            "docker.io/library/busybox@sha256:")
        for ref in ("busybox", "busybox:latest", image.id, image.id[7:19],
                    image.repo_digests[0]):
            got = cri.im.ImageStatus(pb.ImageStatusRequest(
                image=pb.ImageSpec(image=ref))).image
            assert got.id == image.id, ref
        missing = cri.im.ImageStatus(pb.ImageStatusRequest(
            image=pb.ImageSpec(image="nosuch:tag")))
        assert not missing.HasField("image")
        fs = cri.im.ImageFsInfo(pb.ImageFsInfoRequest())
        assert fs.image_filesystems[0].used_bytes.value > 0
        # A second name for the same image, then removal of all of them.
        cri.pull(f"oci-archive:{busybox_archive}::example.com/bb:v1")
        image = cri.im.ImageStatus(pb.ImageStatusRequest(
            image=pb.ImageSpec(image="example.com/bb:v1"))).image
        assert sorted(image.repo_tags) == [
            "docker.io/library/busybox:latest", "example.com/bb:v1"]
        cri.im.RemoveImage(pb.RemoveImageRequest(
            image=pb.ImageSpec(image="example.com/bb:v1")))
        assert not cri.im.ListImages(pb.ListImagesRequest()).images
        cri.im.RemoveImage(pb.RemoveImageRequest(
            image=pb.ImageSpec(image="busybox")))

    def test_import_command(self, cri, busybox_archive):
        import subprocess
        import sys

        out = subprocess.run(
            [sys.executable, "-m", "pyrunc.cri.server", "--config",
             str(cri.config_path), "import", "--name", "local/tool:1",
             str(busybox_archive)],
            capture_output=True, text=True, check=True).stdout
        image_id, *tags = out.split()
        assert "docker.io/local/tool:1" in tags
        image = cri.im.ImageStatus(pb.ImageStatusRequest(
            image=pb.ImageSpec(image="local/tool:1"))).image
        assert image.id == image_id

    def test_layers_whiteouts(self, cri):
        cfg = cri.pod_config("layers")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        res = cri.exec(cid, "sh", "-c",
                       "ls -A /gone; ls -A /opaque; cat /etc/motd")
        assert res.exit_code == 0
        assert res.stdout.decode().split() == [
            "upper", "hello", "from", "layer", "two"]


class TestPods:
    def test_pod_two_containers(self, cri):
        """Issue 6, done-when 1: two containers talk over the loopback."""
        cfg = cri.pod_config("talk", hostname="talk-host",
                             labels={"app": "talk"})
        sid = cri.run_pod(cfg)
        status = cri.pod_status(sid)
        assert status.state == pb.SANDBOX_READY
        assert status.network.ip.startswith(cri.subnet.rsplit(".", 1)[0])
        server = cri.create(sid, cfg, "server", [
            "sh", "-c",
            "while :; do echo pong | nc -l -p 8080 127.0.0.1; done"])
        client = cri.create(sid, cfg, "client", [
            "sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do "
            "  out=$(echo ping | nc 127.0.0.1 8080) && break; sleep 0.2; "
            "done; echo got $out; hostname; sleep 1000"])
        log = cri.log_dir / "talk" / "client.log"
        # hostname prints after "got pong": wait for the later line.
        lines = read_log(log, want="talk-host")
        assert ("stdout", "talk-host") in lines
        res = cri.exec(server, "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (res.exit_code, res.stdout, res.stderr) == (
            3, b"out\n", b"err\n")
        # The pod's address is on eth0 in every container of the pod.
        res = cri.exec(client, "ip", "-o", "-4", "addr", "show", "eth0")
        assert status.network.ip in res.stdout.decode()
        listed = cri.rt.ListContainers(pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sid))).containers
        assert sorted(c.metadata.name for c in listed) == [
            "client", "server"]
        assert all(c.state == pb.CONTAINER_RUNNING for c in listed)
        stats = cri.rt.ContainerStats(pb.ContainerStatsRequest(
            container_id=server)).stats
        assert stats.cpu.usage_core_nano_seconds.value > 0
        assert stats.memory.working_set_bytes.value > 0
        pod_stats = cri.rt.PodSandboxStats(pb.PodSandboxStatsRequest(
            pod_sandbox_id=sid)).stats
        assert len(pod_stats.linux.containers) == 2
        assert pod_stats.linux.network.default_interface.name == "eth0"
        all_stats = cri.rt.ListPodSandboxStats(
            pb.ListPodSandboxStatsRequest()).stats
        assert [s.attributes.id for s in all_stats] == [sid]
        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
        assert cri.pod_status(sid).state == pb.SANDBOX_NOTREADY
        assert not cri.pod_status(sid).network.ip
        for cid in (server, client):
            assert cri.status(cid).state == pb.CONTAINER_EXITED
        cri.rt.RemovePodSandbox(
            pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
        assert not cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
        assert not cri.rt.ListContainers(
            pb.ListContainersRequest()).containers
        # The log stays (kubelet owns it); the IP went back to the pool.
        assert log.exists()
        ipam = cri.base / "ipam" / "pcri-test"
        assert not [n for n in os.listdir(ipam)
                    if n[0].isdigit()], os.listdir(ipam)

    def test_restart_keeps_pods(self, cri):
        """Issue 6, done-when 2: kill -9 and restart the server."""
        cfg = cri.pod_config("survivor")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        ip = cri.pod_status(sid).network.ip
        cri.kill9()
        cri.start()
        pods = cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
        assert [(p.id, p.state) for p in pods] == [
            (sid, pb.SANDBOX_READY)]
        assert cri.pod_status(sid).network.ip == ip
        assert cri.status(cid).state == pb.CONTAINER_RUNNING
        assert cri.exec(cid, "echo", "alive").stdout == b"alive\n"
        # A container that exits while the server is down is seen exited.
        cri.stop()
        os.kill(cri_pid(cri, cid), 9)
        time.sleep(0.3)
        cri.start()
        status = cri.wait_state(cid, pb.CONTAINER_EXITED)
        assert status.exit_code == 137
        assert status.reason == "Error"

    def test_host_network(self, cri):
        cfg = cri.pod_config("hostnet", network_mode=pb.NODE)
        sid = cri.run_pod(cfg)
        assert not cri.pod_status(sid).network.ip
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        res = cri.exec(cid, "hostname")
        assert res.stdout.decode().strip() == os.uname().nodename

    def test_shared_pid_namespace(self, cri):
        cfg = cri.pod_config("sharedpid", pid_mode=pb.POD)
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"],
                         pid_mode=pb.POD)
        out = cri.exec(cid, "ps", "-o", "pid,args").stdout.decode()
        # The pause process is pid 1 of the pod.
        assert "1 /pause" in out

    def test_pause_process(self, cri):
        """The pause program: pid 1, no child of its own, reaps orphans."""
        cfg = cri.pod_config("pause", pid_mode=pb.POD)
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"],
                         pid_mode=pb.POD)
        res = cri.exec(cid, "ps", "-o", "pid,ppid,comm,args")
        rows = [line.split(None, 3) for line in
                res.stdout.decode().splitlines()[1:]]
        assert ["1", "0", "pause", "/pause"] in rows
        # Only the container's own sleep: nothing the pause started.
        sleeps = [r for r in rows if r[2] == "sleep"]
        assert len(sleeps) == 1 and sleeps[0][1] == "0"
        assert not [r for r in rows if r[1] == "1"]
        # An orphan goes to pid 1, which reaps it when it exits.
        cri.exec(cid, "sh", "-c",
                 "(sleep 1 </dev/null >/dev/null 2>&1 &) ; true")
        out = cri.exec(cid, "ps", "-o", "ppid,comm").stdout.decode()
        assert "1 sleep" in " ".join(out.split())
        deadline = time.monotonic() + 5
        while True:
            out = cri.exec(cid, "ps", "-o", "ppid,stat,comm").stdout.decode()
            if "1 sleep" not in " ".join(out.split()):
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.1)
        assert " Z " not in out
        # SIGTERM ends it with status 0 (a pid 1 gets only the signals
        # it handles).
        state = cri.base / "state"
        pause_pid = int((state / "sandboxes" / sid / "pidfile").read_text())
        assert Path(f"/proc/{pause_pid}/comm").read_text() == "pause\n"
        os.kill(pause_pid, signal.SIGTERM)
        exit_file = state / "exits" / sid
        deadline = time.monotonic() + 10
        while not (exit_file.exists() and exit_file.read_text()):
            assert time.monotonic() < deadline, "the pause did not exit"
            time.sleep(0.05)
        assert exit_file.read_text() == "0"
        assert cri.pod_status(sid).state == pb.SANDBOX_NOTREADY

    def test_dns_sysctls_privileged(self, cri):
        cfg = cri.pod_config("tuned")
        cfg.dns_config.servers.append("192.0.2.53")
        cfg.dns_config.searches.append("test.example")
        cfg.dns_config.options.append("ndots:2")
        cfg.linux.sysctls["net.ipv4.ip_unprivileged_port_start"] = "80"
        cfg.linux.security_context.privileged = True
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"],
                         linux__security_context__privileged=True)
        resolv = cri.exec(cid, "cat", "/etc/resolv.conf").stdout.decode()
        assert resolv.split("\n")[:3] == [
            "nameserver 192.0.2.53", "search test.example",
            "options ndots:2"]
        res = cri.exec(cid, "cat",
                       "/proc/sys/net/ipv4/ip_unprivileged_port_start")
        assert res.stdout == b"80\n"
        status = cri.exec(cid, "cat", "/proc/self/status").stdout.decode()
        assert int(_field(status, "CapEff"), 16) & (1 << 21)  # SYS_ADMIN
        res = cri.exec(cid, "sh", "-c",
                       "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && "
                       "umount /mnt/t && echo mounted")
        assert res.stdout == b"mounted\n", res.stderr

    def test_list_filters(self, cri):
        a = cri.pod_config("a", labels={"tier": "front"})
        b = cri.pod_config("b", labels={"tier": "back"})
        sa = cri.run_pod(a)
        sb = cri.run_pod(b)
        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sb))
        flt = pb.PodSandboxFilter(label_selector={"tier": "front"})
        items = cri.rt.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=flt)).items
        assert [p.id for p in items] == [sa]
        flt = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(
            state=pb.SANDBOX_NOTREADY))
        items = cri.rt.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=flt)).items
        assert [p.id for p in items] == [sb]
        flt = pb.PodSandboxFilter(id=sa[:12])
        assert [p.id for p in cri.rt.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=flt)).items] == [sa]
        c1 = cri.create(sa, a, "run", ["sleep", "1000"],
                        labels={"k": "v"})
        c2 = cri.create(sa, a, "made", ["sleep", "1000"], start=False)
        flt = pb.ContainerFilter(state=pb.ContainerStateValue(
            state=pb.CONTAINER_CREATED))
        assert [c.id for c in cri.rt.ListContainers(
            pb.ListContainersRequest(filter=flt)).containers] == [c2]
        flt = pb.ContainerFilter(label_selector={"k": "v"})
        assert [c.id for c in cri.rt.ListContainers(
            pb.ListContainersRequest(filter=flt)).containers] == [c1]
        with pytest.raises(grpc.RpcError) as exc:
            cri.run_pod(a)
        assert _code(exc) == grpc.StatusCode.ALREADY_EXISTS


def cri_pid(cri, cid):
    """The pid of a container's init, from the runtime's state."""
    import json
    import subprocess

    import helpers

    out = subprocess.run(
        helpers.pyrunc_argv() + ["--root", str(cri.runtime_root),
                                 "state", cid],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)["pid"]


class TestContainers:
    def test_stop_timeout_then_kill(self, cri):
        cfg = cri.pod_config("stopper")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "stubborn", [
            "sh", "-c", "trap '' TERM; echo ready; "
            "while :; do sleep 1; done"])
        read_log(cri.log_dir / "stopper" / "stubborn.log", want="ready")
        start = time.monotonic()
        cri.rt.StopContainer(pb.StopContainerRequest(
            container_id=cid, timeout=1))
        took = time.monotonic() - start
        status = cri.status(cid)
        assert status.state == pb.CONTAINER_EXITED
        assert status.exit_code == 137
        assert 1 <= took < 8
        assert status.finished_at >= status.started_at > 0
        # Stopping again is fine; starting an exited one is not.
        cri.rt.StopContainer(pb.StopContainerRequest(container_id=cid))
        with pytest.raises(grpc.RpcError) as exc:
            cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION

    def test_exit_code_and_graceful_stop(self, cri):
        cfg = cri.pod_config("exits")
        sid = cri.run_pod(cfg)
        done = cri.create(sid, cfg, "done", ["sh", "-c", "exit 7"])
        status = cri.wait_state(done, pb.CONTAINER_EXITED)
        assert (status.exit_code, status.reason) == (7, "Error")
        ok = cri.create(sid, cfg, "ok", ["true"])
        status = cri.wait_state(ok, pb.CONTAINER_EXITED)
        assert (status.exit_code, status.reason) == (0, "Completed")
        polite = cri.create(sid, cfg, "polite", [
            "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
        cri.rt.StopContainer(pb.StopContainerRequest(
            container_id=polite, timeout=10))
        assert cri.status(polite).exit_code == 0

    def test_oom_killed_reason(self, cri):
        # tail buffers a line of /dev/zero that never ends.
        cfg = cri.pod_config("oom")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "hog", ["tail", "/dev/zero"],
                         linux__resources=pb.LinuxContainerResources(
                             memory_limit_in_bytes=16 << 20))
        status = cri.wait_state(cid, pb.CONTAINER_EXITED, timeout=30)
        assert (status.exit_code, status.reason) == (137, "OOMKilled")

    def test_exec_sync_timeout(self, cri):
        cfg = cri.pod_config("slow")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as exc:
            cri.exec(cid, "sleep", "30", timeout=1)
        assert _code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - start < 10
        out = cri.exec(cid, "ps", "-o", "args").stdout.decode()
        assert "sleep 30" not in out

    def test_security_context(self, cri):
        cfg = cri.pod_config("secure")
        sid = cri.run_pod(cfg)
        cid = cri.create(
            sid, cfg, "c", ["sleep", "1000"],
            linux__security_context__run_as_user=pb.Int64Value(value=33),
            linux__security_context__run_as_group=pb.Int64Value(value=33),
            linux__security_context__supplemental_groups=[4242],
            linux__security_context__readonly_rootfs=True,
            linux__security_context__no_new_privs=True,
            linux__security_context__masked_paths=["/etc/motd"],
            linux__security_context__readonly_paths=["/proc/sys"])
        out = cri.exec(cid, "id").stdout.decode()
        assert out.startswith("uid=33(www) gid=33(www)")
        assert "1234(extra)" in out and "4242" in out
        res = cri.exec(cid, "sh", "-c", "touch /newfile")
        assert res.exit_code != 0
        assert b"Read-only" in res.stderr
        assert cri.exec(cid, "touch", "/tmp/x").exit_code != 0
        status = cri.exec(cid, "cat", "/proc/self/status").stdout.decode()
        assert "NoNewPrivs:\t1" in status
        assert cri.exec(cid, "cat", "/etc/motd").stdout == b""
        user = cri.status(cid).user.linux
        assert (user.uid, user.gid) == (33, 33)

    def test_capabilities(self, cri):
        cfg = cri.pod_config("caps")
        sid = cri.run_pod(cfg)
        cid = cri.create(
            sid, cfg, "c", ["sleep", "1000"],
            linux__security_context__capabilities=pb.Capability(
                add_capabilities=["NET_ADMIN"],
                drop_capabilities=["CHOWN", "NET_RAW"]))
        status = cri.exec(cid, "cat", "/proc/self/status").stdout.decode()
        eff = int(_field(status, "CapEff"), 16)
        assert eff & (1 << 12)  # CAP_NET_ADMIN
        assert not eff & (1 << 0)  # CAP_CHOWN
        assert not eff & (1 << 13)  # CAP_NET_RAW
        assert eff & (1 << 5)  # CAP_KILL, a default

    def test_image_config_and_env(self, cri):
        cfg = cri.pod_config("envs")
        sid = cri.run_pod(cfg)
        cid = cri.create(
            sid, cfg, "c", [], envs=[pb.KeyValue(key="MINE", value="1")],
            args=["sh", "-c", "env; pwd; sleep 1000"],
            working_dir="/var")
        lines = read_log(cri.log_dir / "envs" / "c.log", want="/var")
        texts = [t for _, t in lines]
        assert "IMAGE_VAR=from-image" in texts
        assert "MINE=1" in texts
        assert "HOSTNAME=envs" in texts
        assert cri.status(cid).state == pb.CONTAINER_RUNNING

    def test_mounts_and_devices(self, cri, tmp_path):
        host_dir = cri.base / "vol"
        host_dir.mkdir()
        (host_dir / "data").write_text("from the host\n")
        cfg = cri.pod_config("mounts")
        sid = cri.run_pod(cfg)
        cid = cri.create(
            sid, cfg, "c", ["sleep", "1000"],
            mounts=[pb.Mount(container_path="/vol",
                             host_path=str(host_dir), readonly=True)],
            devices=[pb.Device(container_path="/dev/mynull",
                               host_path="/dev/null", permissions="rwm")])
        assert cri.exec(cid, "cat", "/vol/data").stdout == b"from the host\n"
        assert cri.exec(cid, "touch", "/vol/new").exit_code != 0
        res = cri.exec(cid, "sh", "-c", "echo x > /dev/mynull && echo ok")
        assert res.stdout == b"ok\n"

    def test_update_resources_and_reopen_log(self, cri):
        cfg = cri.pod_config("res")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", [
            "sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); "
            "sleep 0.1; done"],
            linux__resources=pb.LinuxContainerResources(
                memory_limit_in_bytes=64 << 20, cpu_shares=512))
        pid = cri_pid(cri, cid)
        assert _cgroup_value(pid, "memory", "memory.limit_in_bytes") == \
            64 << 20
        assert _cgroup_value(pid, "cpu", "cpu.shares") == 512
        cri.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(
                memory_limit_in_bytes=96 << 20)))
        assert _cgroup_value(pid, "memory", "memory.limit_in_bytes") == \
            96 << 20
        assert cri.status(cid).resources.linux.memory_limit_in_bytes == \
            96 << 20
        log = cri.log_dir / "res" / "c.log"
        read_log(log, want="line 1")
        os.rename(log, f"{log}.1")
        cri.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(
            container_id=cid))
        lines = read_log(log, want="line")
        assert lines and all(s == "stdout" for s, _ in lines)

    def test_reopen_log_creates_file_at_once(self, cri):
        """ReopenContainerLog returns once the new file exists."""
        cfg = cri.pod_config("reopen")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", [
            "sh", "-c", "while :; do echo tick; sleep 0.2; done"])
        log = cri.log_dir / "reopen" / "c.log"
        read_log(log, want="tick")
        for i in range(5):
            os.rename(log, f"{log}.{i}")
            cri.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(
                container_id=cid))
            assert log.exists()
        read_log(log, want="tick")
        cri.rt.StopContainer(pb.StopContainerRequest(
            container_id=cid, timeout=0))
        with pytest.raises(grpc.RpcError) as exc:
            cri.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(
                container_id=cid))
        assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION

    def test_events(self, cri):
        events = []
        stream = cri.rt.GetContainerEvents(pb.GetEventsRequest())

        def collect():
            try:
                for event in stream:
                    events.append(event)
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        time.sleep(0.3)
        cfg = cri.pod_config("events")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sh", "-c", "exit 0"])
        cri.wait_state(cid, pb.CONTAINER_EXITED)
        cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
        deadline = time.monotonic() + 5
        want = [pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT,
                pb.CONTAINER_STOPPED_EVENT, pb.CONTAINER_DELETED_EVENT]
        while time.monotonic() < deadline:
            kinds = [e.container_event_type for e in events
                     if e.container_id == cid]
            if kinds == want:
                break
            time.sleep(0.05)
        stream.cancel()
        kinds = [e.container_event_type for e in events
                 if e.container_id == cid]
        assert kinds == want
        assert events[0].pod_sandbox_status.id == sid


def _field(status, name):
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/self/status")


def _cgroup_value(pid, controller, name):
    from pyrunc.cri import stats

    dirs = stats.cgroup_dirs(pid)
    with open(os.path.join(dirs[controller], name)) as f:
        return int(f.read())
