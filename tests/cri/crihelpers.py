"""A pyrunc-cri server under test and a CRI client for it.

The client is the runtime.v1 stubs of container-runtime-interface-api,
the same API kubelet and crictl speak.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from cri_api.v1 import api_pb2 as pb
from cri_api.v1 import api_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30

CONFIG = """\
listen = "{base}/cri.sock"
state_root = "{base}/state"
log_level = "debug"
log_file = "{base}/server.log"
cgroup_parent = "{cgroup_parent}"
default_runtime = "pyrunc"
{extra_keys}

[runtimes.pyrunc]
path = "{pyrunc}"
root = "{base}/rt"

[cni]
conf_dir = "{base}/net.d"
bin_dirs = ["/usr/lib/cni"]
{extra_tables}
"""


def free_subnet():
    """Return a /24 in 10.253.0.0/16 that no host address uses."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True,
                          text=True).stdout
    for _ in range(100):
        third = random.randint(1, 254)
        prefix = f"10.253.{third}."
        if prefix not in used:
            return f"{prefix}0/24"
    raise RuntimeError("no free test subnet in 10.253.0.0/16")


def conmons_under(base):
    """Return the conmon processes whose bundle is below base."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] != "conmon":
                continue
            if any(str(base) in arg for arg in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class CriServer:
    """One pyrunc-cri process with its own state, socket and network."""

    def __init__(self, base, bridge, subnet, cgroup_parent, pyrunc,
                 extra_keys="", extra_tables=""):
        self.base = Path(base)
        self.bridge = bridge
        self.subnet = subnet
        self.cgroup_parent = cgroup_parent
        self.socket = self.base / "cri.sock"
        self.runtime_root = self.base / "rt"
        self.log_dir = self.base / "logs"
        self.proc = None
        self.channel = None
        self.rt = None
        self.im = None
        self.config_path = self.base / "cri.toml"
        self.config_path.write_text(CONFIG.format(
            base=self.base, cgroup_parent=cgroup_parent, pyrunc=pyrunc,
            extra_keys=extra_keys, extra_tables=extra_tables))
        netd = self.base / "net.d"
        netd.mkdir()
        (netd / "10-test.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "pcri-test",
            "plugins": [{
                "type": "bridge", "bridge": bridge, "isGateway": True,
                "ipMasq": False,
                "ipam": {"type": "host-local",
                         "dataDir": str(self.base / "ipam"),
                         "ranges": [[{"subnet": subnet}]]},
            }],
        }))

    # --- the process

    def start(self):
        argv = [sys.executable, "-m", "pyrunc.cri.server",
                "--config", str(self.config_path)]
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.base / "server.stderr", "ab"))
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"pyrunc-cri exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pyrunc-cri did not listen: "
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.rt = pb_grpc.RuntimeServiceStub(self.channel)
        self.im = pb_grpc.ImageServiceStub(self.channel)

    def stop(self):
        """SIGTERM the server and wait; pods keep running."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        """SIGKILL the server, as a crash would."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def log_tail(self, size=4000):
        text = ""
        for name in ("server.log", "server.stderr"):
            path = self.base / name
            if path.exists():
                text += path.read_text(errors="replace")[-size:]
        return text

    # --- CRI helpers

    def pull(self, ref):
        return self.im.PullImage(pb.PullImageRequest(
            image=pb.ImageSpec(image=ref))).image_ref

    def pod_config(self, name, **kw):
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=name, namespace="test", uid=f"uid-{name}"),
            hostname=kw.pop("hostname", name),
            log_directory=str(self.log_dir / name))
        cfg.linux.cgroup_parent = f"{self.cgroup_parent}-{name}"
        ns = cfg.linux.security_context.namespace_options
        ns.pid = kw.pop("pid_mode", pb.CONTAINER)
        ns.network = kw.pop("network_mode", pb.POD)
        for key, value in kw.pop("labels", {}).items():
            cfg.labels[key] = value
        assert not kw, kw
        return cfg

    def run_pod(self, config):
        return self.rt.RunPodSandbox(
            pb.RunPodSandboxRequest(config=config)).pod_sandbox_id

    def container_config(self, name, command, **kw):
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=kw.pop("image", "busybox")),
            command=command, log_path=f"{name}.log")
        cfg.linux.security_context.namespace_options.pid = kw.pop(
            "pid_mode", pb.CONTAINER)
        for key, value in kw.pop("labels", {}).items():
            cfg.labels[key] = value
        return cfg, kw

    def create(self, sid, pod_config, name, command, start=True, **kw):
        cfg, rest = self.container_config(name, command, **kw)
        for key, value in rest.items():
            _set_path(cfg, key, value)
        cid = self.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=sid, config=cfg,
            sandbox_config=pod_config)).container_id
        if start:
            self.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
        return cid

    def status(self, cid):
        return self.rt.ContainerStatus(
            pb.ContainerStatusRequest(container_id=cid)).status

    def pod_status(self, sid):
        return self.rt.PodSandboxStatus(
            pb.PodSandboxStatusRequest(pod_sandbox_id=sid)).status

    def exec(self, cid, *cmd, timeout=10):
        return self.rt.ExecSync(pb.ExecSyncRequest(
            container_id=cid, cmd=list(cmd), timeout=timeout))

    def wait_state(self, cid, state, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(cid)
            if status.state == state:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"container {cid} is {status.state}, not {state}")
            time.sleep(0.05)

    def remove_everything(self):
        """Stop and remove every pod (and so every container)."""
        if self.rt is None:
            return
        pods = self.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
        for pod in pods:
            self.rt.StopPodSandbox(
                pb.StopPodSandboxRequest(pod_sandbox_id=pod.id))
            self.rt.RemovePodSandbox(
                pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))


def _set_path(msg, path, value):
    """Set a nested field given as "linux__security_context__privileged"."""
    parts = path.split("__")
    for part in parts[:-1]:
        msg = getattr(msg, part)
    field = getattr(msg, parts[-1])
    if hasattr(field, "extend") and isinstance(value, (list, tuple)):
        field.extend(value)
    elif hasattr(field, "CopyFrom"):
        field.CopyFrom(value)
    else:
        setattr(msg, parts[-1], value)


def read_log(path, timeout=5, want=None):
    """Return the CRI log lines at path as (stream, text) pairs.

    Waits until want (a text) appears when given.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    stamp, stream, tag, text = line.rstrip("\n").split(
                        " ", 3)
                    lines.append((stream, text))
        if want is None or any(want in t for _, t in lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{want!r} not in {path}: {lines}")
        time.sleep(0.05)
