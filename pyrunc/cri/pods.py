"""Pod sandboxes: a pause container per pod, its files and its network.

Choice: a pause container, not namespace files pinned by bind mounts.
The pause process (pyrunc-pause, a static program built with the
package, run through conmon and the runtime like any container) holds
the pod's network, IPC, UTS and, when the pod shares one, PID
namespace; the pod's containers join them as /proc/<pause pid>/ns/*.
A PID namespace cannot be pinned by a file (it dies with its init), so
a process is needed for pod-wide PID sharing anyway; with it, the pod
needs no helper that unshares and no bind mounts on the host, its
sysctls and hostname are applied by the runtime, and recovery after a
restart is the same as for any container (conmon still runs, the exit
file tells).

The pause rootfs is the same read-only directory for every pod:
``<state root>/pause/rootfs`` with empty mount targets, where the pause
program is bound at ``/pause``. When the program was not built, the
host's static busybox in that rootfs runs a shell loop instead.
"""

import logging
import os
import shutil
import signal
import time

from cri_api.v1 import api_pb2 as pb

from pyrunc.cri import images as images_mod
from pyrunc.cri import records, spec
from pyrunc.cri.errors import (FailedPrecondition, InvalidArgument,
                               NotFound)
from pyrunc.errors import ConfigError

log = logging.getLogger(__name__)

READY = "ready"
NOTREADY = "notready"
STOP_WAIT = 10

DEFAULT_HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
SHM_OPTIONS = "mode=1777,size=67108864"
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PROTOCOLS = {pb.TCP: "tcp", pb.UDP: "udp", pb.SCTP: "sctp"}
# Built by setup.py from pause.c, next to this module.
PAUSE_PROGRAM = "pyrunc-pause"
PAUSE_DIRS = ("bin", "dev", "proc", "sys", "etc", "tmp")


def pod_name(meta):
    """Return the reserved name of a pod, from its metadata."""
    return f"{meta.name}_{meta.namespace}_{meta.uid}_{meta.attempt}"


class Pods:
    """Runs, stops, removes and reports pod sandboxes."""

    def __init__(self, cfg, registry, runtimes, cni):
        self.cfg = cfg
        self.reg = registry
        self.runtimes = runtimes
        self.cni = cni
        # Set by the server once both managers exist.
        self.containers = None
        self.pause_rootfs = os.path.join(registry.pause_dir, "rootfs")
        self.pause_binary = _find_pause_binary(cfg.pause_binary)

    # --- the pause rootfs

    def prepare_pause_rootfs(self):
        """Build the pause containers' rootfs once, complete it after.

        Pods that run keep the rootfs they were started on, so an
        existing one only gets what it lacks, never rebuilt.
        """
        root = self.pause_rootfs
        if not os.path.isdir(root):
            tmp = f"{root}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            for d in PAUSE_DIRS:
                os.makedirs(os.path.join(tmp, d), mode=0o755)
            for name in ("hostname", "hosts", "resolv.conf"):
                open(os.path.join(tmp, "etc", name), "w").close()
            os.rename(tmp, root)
        target = os.path.join(root, "pause")
        if not os.path.exists(target):
            # The mount target of the pause program (read-only root).
            open(target, "w").close()
        if self.pause_binary is None:
            self._prepare_fallback(root)

    def _prepare_fallback(self, root):
        """Put busybox and the fifo its shell loop waits on in root."""
        binary = os.path.join(root, "bin", "busybox")
        if not os.path.exists(binary):
            if not os.access(self.cfg.busybox, os.X_OK):
                raise FailedPrecondition(
                    f"no pause program: pyrunc-pause was not built and "
                    f"{self.cfg.busybox} is missing (install busybox-static"
                    f" or rebuild pyrunc)")
            shutil.copy2(self.cfg.busybox, f"{binary}.tmp")
            os.rename(f"{binary}.tmp", binary)
        sh = os.path.join(root, "bin", "sh")
        if not os.path.lexists(sh):
            os.symlink("busybox", sh)
        fifo = os.path.join(root, "pause.fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
            # Any pod user opens it; nobody writes to it.
            os.chmod(fifo, 0o666)
        log.warning("pyrunc-pause is missing: pods run a busybox shell "
                    "loop as their pause process")

    # --- lookups

    def get(self, sid):
        """Return the pod record for an id (or prefix); NotFound if none."""
        rec = self.reg.find_sandbox(sid)
        if rec is None:
            raise NotFound(f"pod sandbox {sid} not found")
        return rec

    def config(self, rec):
        """Return the PodSandboxConfig the pod was run with."""
        cfg = pb.PodSandboxConfig()
        path = os.path.join(self.reg.sandbox_dir(rec["id"]), "config.pb")
        with open(path, "rb") as f:
            cfg.ParseFromString(f.read())
        return cfg

    def is_ready(self, rec):
        """Return whether the pod is ready: not stopped, pause alive."""
        if rec.get("state") != READY:
            return False
        return records.pid_alive(rec.get("pid"), rec.get("pid_start"))

    def ips(self, rec):
        return self.cni.pod_ips(rec.get("cni"))

    # --- run

    def run(self, config, handler_name):
        """Run a pod sandbox for a PodSandboxConfig; return its id."""
        meta = config.metadata
        if not meta.name or not meta.namespace:
            raise InvalidArgument("pod metadata needs a name and namespace")
        handler = self.cfg.handler(handler_name)
        runtime = self.runtimes[handler.name]
        sid = records.new_id()
        name = pod_name(meta)
        self.reg.reserve("sandbox", name, sid)
        sdir = self.reg.sandbox_dir(sid)
        os.makedirs(sdir, mode=0o700)
        ns_opts = config.linux.security_context.namespace_options
        rec = {
            "id": sid, "name": name, "handler": handler.name,
            "created_at": records.now_ns(), "state": "creating",
            "pid": 0, "pid_start": None,
            "cgroup_parent": config.linux.cgroup_parent
            or self.cfg.cgroup_parent,
            "host_network": ns_opts.network == spec.NODE,
            "host_ipc": ns_opts.ipc == spec.NODE,
            "cni": None,
        }
        try:
            with self.reg.pod_lock(sid):
                with open(os.path.join(sdir, "config.pb"), "wb") as f:
                    f.write(config.SerializeToString())
                self.reg.save_sandbox(rec)
                self._run(rec, config, runtime)
        except BaseException:
            self._undo_run(rec, runtime)
            raise
        return sid

    def _run(self, rec, config, runtime):
        sid = rec["id"]
        sdir = self.reg.sandbox_dir(sid)
        files = self._write_files(rec, config)
        bundle = os.path.join(sdir, "bundle")
        os.makedirs(bundle, exist_ok=True)
        oci = spec.sandbox_spec(config, sid, self.pause_rootfs, files,
                                rec["cgroup_parent"], self.pause_binary)
        records.write_json(os.path.join(bundle, "config.json"), oci)
        pid = runtime.create(
            sid, bundle, sdir, os.path.join(sdir, "pause.log"),
            self.reg.exit_dir, self.reg.socket_dir, name=rec["name"])
        rec["pid"] = pid
        rec["pid_start"] = records.pid_start(pid)
        self.reg.save_sandbox(rec)
        if not rec["host_network"]:
            meta = config.metadata
            ports = [_port_mapping(p) for p in config.port_mappings
                     if p.host_port > 0]
            rec["cni"] = self.cni.setup(
                sid, f"/proc/{pid}/ns/net",
                (meta.name, meta.namespace, meta.uid), ports)
            self.reg.save_sandbox(rec)
        runtime.start(sid)
        rec["state"] = READY
        self.reg.save_sandbox(rec)
        log.info("pod %s (%s) ready, pid %d", sid, rec["name"], pid)

    def _undo_run(self, rec, runtime):
        sid = rec["id"]
        log.debug("pod %s failed to start: cleaning up", sid)
        try:
            self._teardown_network(rec)
        except Exception as err:  # noqa: BLE001 - best effort cleanup
            log.warning("pod %s: network teardown: %s", sid, err)
        try:
            runtime.delete(sid, force=True)
        except Exception as err:  # noqa: BLE001
            log.warning("pod %s: delete: %s", sid, err)
        self._wait_exit(rec, STOP_WAIT)
        self._unmount_shm(sid)
        self.reg.release("sandbox", rec["name"], sid)
        self.reg.drop_sandbox(sid)

    def _write_files(self, rec, config):
        """Write hostname, hosts, resolv.conf; mount the pod's /dev/shm."""
        sid = rec["id"]
        sdir = self.reg.sandbox_dir(sid)
        files = {}
        if rec["host_network"]:
            hostname = os.uname().nodename
        else:
            hostname = config.hostname or config.metadata.name
        files["hostname"] = os.path.join(sdir, "hostname")
        records.write_text(files["hostname"], hostname + "\n")
        files["hosts"] = os.path.join(sdir, "hosts")
        hosts = DEFAULT_HOSTS
        if rec["host_network"]:
            hosts = _read("/etc/hosts", DEFAULT_HOSTS)
        records.write_text(files["hosts"], hosts)
        files["resolv.conf"] = os.path.join(sdir, "resolv.conf")
        records.write_text(files["resolv.conf"],
                           _resolv_conf(config.dns_config))
        if rec["host_ipc"]:
            files["shm"] = "/dev/shm"
        else:
            shm = os.path.join(sdir, "shm")
            os.makedirs(shm, exist_ok=True)
            images_mod.mount("shm", shm, "tmpfs",
                             MS_NOSUID | MS_NODEV | MS_NOEXEC, SHM_OPTIONS)
            files["shm"] = shm
        rec["files"] = files
        return files

    # --- stop and remove

    def stop(self, sid):
        """Stop the pod: its containers, its network, its pause process."""
        rec = self.reg.find_sandbox(sid)
        if rec is None:
            return
        sid = rec["id"]
        with self.reg.pod_lock(sid):
            for ctr in self.reg.containers_of(sid):
                self.containers.stop(ctr["id"], 0)
            self._teardown_network(rec)
            runtime = self.runtimes[rec["handler"]]
            if records.pid_alive(rec.get("pid"), rec.get("pid_start")):
                runtime.kill(sid, signal.SIGKILL)
            self._wait_exit(rec, STOP_WAIT)
            self._unmount_shm(sid)
            if rec["state"] != NOTREADY:
                rec["state"] = NOTREADY
                rec["stopped_at"] = records.now_ns()
                self.reg.save_sandbox(rec)
        log.info("pod %s stopped", sid)

    def _teardown_network(self, rec):
        if not rec.get("cni"):
            return
        config = self.config(rec)
        meta = config.metadata
        netns = ""
        if records.pid_alive(rec.get("pid"), rec.get("pid_start")):
            netns = f"/proc/{rec['pid']}/ns/net"
        self.cni.teardown(rec["id"], netns,
                          (meta.name, meta.namespace, meta.uid), rec["cni"])
        rec["cni"] = None
        self.reg.save_sandbox(rec)

    def _wait_exit(self, rec, timeout):
        """Wait for the pause process to be gone and conmon to record it."""
        deadline = time.monotonic() + timeout
        exit_file = self.reg.exit_file(rec["id"])
        while time.monotonic() < deadline:
            alive = records.pid_alive(rec.get("pid"), rec.get("pid_start"))
            if not alive and (os.path.exists(exit_file)
                              or not _conmon_alive(self.reg, rec["id"])):
                return True
            time.sleep(0.05)
        return False

    def _unmount_shm(self, sid):
        shm = os.path.join(self.reg.sandbox_dir(sid), "shm")
        if os.path.ismount(shm):
            images_mod.umount(shm)

    def remove(self, sid):
        """Remove the pod and its containers; an unknown id is fine."""
        rec = self.reg.find_sandbox(sid)
        if rec is None:
            return
        sid = rec["id"]
        self.stop(sid)
        with self.reg.pod_lock(sid):
            for ctr in self.reg.containers_of(sid):
                self.containers.remove(ctr["id"])
            runtime = self.runtimes[rec["handler"]]
            runtime.delete(sid, force=True)
            self.reg.drop_sandbox(sid)
        log.info("pod %s removed", sid)

    # --- status

    def status_proto(self, rec):
        """Return the PodSandboxStatus message of a pod record."""
        config = self.config(rec)
        state = pb.SANDBOX_READY if self.is_ready(rec) else \
            pb.SANDBOX_NOTREADY
        status = pb.PodSandboxStatus(
            id=rec["id"], metadata=config.metadata, state=state,
            created_at=rec["created_at"],
            runtime_handler=rec["handler"] if rec["handler"] !=
            self.cfg.default_runtime else "")
        ips = self.ips(rec)
        if ips:
            status.network.ip = ips[0]
            for ip in ips[1:]:
                status.network.additional_ips.add(ip=ip)
        status.linux.namespaces.options.CopyFrom(
            config.linux.security_context.namespace_options)
        status.labels.update(config.labels)
        status.annotations.update(config.annotations)
        return status

    def list_proto(self, flt):
        """Return PodSandbox messages matching a PodSandboxFilter."""
        with self.reg.lock:
            recs = list(self.reg.sandboxes.values())
        out = []
        for rec in recs:
            if rec.get("state") == "creating":
                continue
            if flt.id and not rec["id"].startswith(flt.id):
                continue
            ready = self.is_ready(rec)
            state = pb.SANDBOX_READY if ready else pb.SANDBOX_NOTREADY
            if flt.HasField("state") and flt.state.state != state:
                continue
            config = self.config(rec)
            if not _labels_match(config.labels, flt.label_selector):
                continue
            sandbox = pb.PodSandbox(
                id=rec["id"], metadata=config.metadata, state=state,
                created_at=rec["created_at"],
                runtime_handler=rec["handler"] if rec["handler"] !=
                self.cfg.default_runtime else "")
            sandbox.labels.update(config.labels)
            sandbox.annotations.update(config.annotations)
            out.append(sandbox)
        return out

    def recover(self):
        """After a restart: pods left half-created are marked not ready."""
        with self.reg.lock:
            recs = list(self.reg.sandboxes.values())
        for rec in recs:
            if rec.get("state") == "creating":
                log.warning("pod %s was being created at the last stop: "
                            "marking it not ready", rec["id"])
                rec["state"] = NOTREADY
                self.reg.save_sandbox(rec)


def _find_pause_binary(configured):
    """Return the pause program's path, or None to use the fallback."""
    path = configured or os.path.join(os.path.dirname(__file__),
                                      PAUSE_PROGRAM)
    if os.access(path, os.X_OK):
        return os.path.abspath(path)
    if configured:
        raise ConfigError(
            f"pause_binary: {configured} is not an executable file")
    return None


def _conmon_alive(reg, oid):
    pid = records.read_text(os.path.join(reg.sandbox_dir(oid), "conmon.pid"))
    if pid is None:
        pid = records.read_text(
            os.path.join(reg.container_dir(oid), "conmon.pid"))
    return bool(pid) and records.pid_alive(int(pid))


def _labels_match(labels, selector):
    for key, value in selector.items():
        if labels.get(key) != value:
            return False
    return True


def _port_mapping(p):
    out = {"hostPort": p.host_port, "containerPort": p.container_port,
           "protocol": PROTOCOLS.get(p.protocol, "tcp")}
    if p.host_ip:
        out["hostIP"] = p.host_ip
    return out


def _read(path, default):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _resolv_conf(dns):
    """Return resolv.conf text for a DNSConfig (the host's when empty)."""
    if not (dns.servers or dns.searches or dns.options):
        return _read("/etc/resolv.conf", "")
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"
