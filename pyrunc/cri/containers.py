"""Containers in pods: create, start, stop, remove, exec, status, stats.

A container's state is derived from disk, never kept only in memory:
``created`` until it is started, ``running`` while its init lives,
``exited`` once conmon wrote ``<state root>/exits/<id>`` (or the init
and its conmon are both gone). A watcher thread turns exits into
CONTAINER_STOPPED events.
"""

import logging
import os
import signal
import threading
import time

from cri_api.v1 import api_pb2 as pb

from pyrunc.cri import monitor, records, spec, stats
from pyrunc.cri.errors import (FailedPrecondition, InvalidArgument,
                               NotFound)

log = logging.getLogger(__name__)

CREATED = "created"
RUNNING = "running"
EXITED = "exited"
STATES = {CREATED: pb.CONTAINER_CREATED, RUNNING: pb.CONTAINER_RUNNING,
          EXITED: pb.CONTAINER_EXITED}
UNKNOWN_EXIT = 255
KILL_WAIT = 10
WATCH_INTERVAL = 0.5


def container_name(pod_rec, meta):
    """Return the reserved name of a container in a pod."""
    return f"{meta.name}_{pod_rec['name']}_{meta.attempt}"


class Containers:
    """Lifecycle, status and stats of containers."""

    def __init__(self, cfg, registry, runtimes, images, pods, events):
        self.cfg = cfg
        self.reg = registry
        self.runtimes = runtimes
        self.images = images
        self.pods = pods
        self.events = events
        self._stop_watch = threading.Event()
        self._watcher = None
        # Ids between runtime start and the STARTED event: an exit seen
        # then is recorded after it, so events keep their order.
        self._starting = set()

    # --- lookups

    def get(self, cid):
        """Return the container record for an id (or prefix); NotFound."""
        rec = self.reg.find_container(cid)
        if rec is None:
            raise NotFound(f"container {cid} not found")
        return rec

    def config(self, rec):
        cfg = pb.ContainerConfig()
        path = os.path.join(self.reg.container_dir(rec["id"]), "config.pb")
        with open(path, "rb") as f:
            cfg.ParseFromString(f.read())
        return cfg

    def state(self, rec):
        """Return created, running or exited, recording an exit it finds."""
        if rec.get("finished_at"):
            return EXITED
        code = self._exit_code(rec)
        if code is not None:
            if not self._record_exit(rec, code):
                return RUNNING
            return EXITED
        alive = records.pid_alive(rec.get("pid"), rec.get("pid_start"))
        if alive:
            return RUNNING if rec.get("started_at") else CREATED
        if self._conmon_alive(rec):
            # The init is gone but conmon has not written its status
            # yet: it will in a moment.
            return RUNNING if rec.get("started_at") else CREATED
        if not self._record_exit(rec, UNKNOWN_EXIT, "conmon exited "
                                 "without recording the exit status"):
            return RUNNING
        return EXITED

    def _exit_code(self, rec):
        text = records.read_text(self.reg.exit_file(rec["id"]))
        if text is None or text == "":
            return None
        try:
            return int(text)
        except ValueError:
            return UNKNOWN_EXIT

    def _conmon_alive(self, rec):
        path = os.path.join(self.reg.container_dir(rec["id"]), "conmon.pid")
        pid = records.read_text(path)
        return bool(pid) and records.pid_alive(int(pid))

    def _oom_killed(self, rec):
        """Whether the kernel OOM-killed a task of the container.

        Read from the memory cgroup, which stays until the runtime
        deletes the container; only pyrunc's state says where it is.
        """
        from pyrunc.cgroups import manager_from_dict
        from pyrunc.errors import PyruncError
        from pyrunc.state.store import Store

        runtime = self.runtimes.get(rec.get("handler"))
        if runtime is None:
            return False
        try:
            record = Store(runtime.root).load(rec["id"])
            if not record.cgroup:
                return False
            kills = manager_from_dict(record.cgroup).oom_kills()
        except (PyruncError, OSError):
            return False
        return bool(kills)

    def _record_exit(self, rec, code, message=""):
        oom = code != 0 and not rec.get("finished_at") and \
            self._oom_killed(rec)
        with self.reg.lock:
            if rec["id"] in self._starting:
                return False
            if rec.get("finished_at"):
                return True
            if oom:
                rec["oom"] = True
            try:
                mtime = os.stat(self.reg.exit_file(rec["id"])).st_mtime_ns
            except FileNotFoundError:
                mtime = records.now_ns()
            rec["finished_at"] = mtime
            rec["exit_code"] = code
            if rec.get("oom"):
                rec["reason"] = "OOMKilled"
            else:
                rec["reason"] = "Completed" if code == 0 else "Error"
            rec["message"] = message
            self.reg.save_container(rec)
        self._publish(rec, pb.CONTAINER_STOPPED_EVENT)
        return True

    # --- create

    def create(self, sandbox_id, config, sandbox_config):
        """Create a container in a ready pod; return its id."""
        pod = self.pods.get(sandbox_id)
        if not self.pods.is_ready(pod):
            raise FailedPrecondition(f"pod sandbox {pod['id']} is not ready")
        if not config.metadata.name:
            raise InvalidArgument("container metadata needs a name")
        ref = config.image.image
        image = self.images.get(ref)
        if image is None:
            raise NotFound(f"image `{ref}` not found")
        pod_config = self.pods.config(pod)
        cid = records.new_id()
        name = container_name(pod, config.metadata)
        self.reg.reserve("container", name, cid)
        cdir = self.reg.container_dir(cid)
        rec = {
            "id": cid, "sandbox_id": pod["id"], "name": name,
            "handler": pod["handler"], "image_id": image["id"],
            "image_ref": ref, "created_at": records.now_ns(),
            "started_at": 0, "finished_at": 0, "exit_code": 0,
            "pid": 0, "pid_start": None, "log_path": "",
        }
        try:
            with self.reg.pod_lock(pod["id"]):
                os.makedirs(cdir, mode=0o700)
                with open(os.path.join(cdir, "config.pb"), "wb") as f:
                    f.write(config.SerializeToString())
                self._create(rec, pod, pod_config, config, image)
        except BaseException:
            self._undo_create(rec)
            raise
        self._publish(rec, pb.CONTAINER_CREATED_EVENT)
        return cid

    def _create(self, rec, pod, pod_config, config, image):
        cid = rec["id"]
        cdir = self.reg.container_dir(cid)
        rootfs = self.images.mount_rootfs(cid, image, cdir)
        rec["rootfs_mounted"] = True
        target_pid = None
        ns = config.linux.security_context.namespace_options
        if ns.pid == spec.TARGET:
            target_pid = self.get(ns.target_id).get("pid")
        oci = spec.container_spec(
            config, pod_config, self.images.config(image), rootfs, cid,
            pod["cgroup_parent"], pod.get("files", {}), pod["pid"],
            target_pid=target_pid, passwd_root=rootfs)
        rec["user"] = oci["process"]["user"]
        rec["stop_signal"] = _stop_signal(config, self.images.config(image))
        bundle = os.path.join(cdir, "bundle")
        os.makedirs(bundle, exist_ok=True)
        records.write_json(os.path.join(bundle, "config.json"), oci)
        rec["log_path"] = self._log_path(pod_config, config, cdir)
        self.reg.save_container(rec)
        runtime = self.runtimes[rec["handler"]]
        pid = runtime.create(
            cid, bundle, cdir, rec["log_path"], self.reg.exit_dir,
            self.reg.socket_dir, name=rec["name"], stdin=config.stdin,
            tty=config.tty, stdin_once=config.stdin_once)
        rec["pid"] = pid
        rec["pid_start"] = records.pid_start(pid)
        self.reg.save_container(rec)
        log.info("container %s (%s) created, pid %d", cid, rec["name"], pid)

    def _log_path(self, pod_config, config, cdir):
        if pod_config.log_directory and config.log_path:
            path = os.path.join(pod_config.log_directory, config.log_path)
        else:
            path = os.path.join(cdir, "console.log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _undo_create(self, rec):
        cid = rec["id"]
        log.debug("container %s failed to create: cleaning up", cid)
        runtime = self.runtimes[rec["handler"]]
        try:
            runtime.delete(cid, force=True)
        except Exception as err:  # noqa: BLE001 - best effort cleanup
            log.warning("container %s: delete: %s", cid, err)
        self._wait_gone(rec, KILL_WAIT)
        if os.path.isdir(self.reg.container_dir(cid)):
            self.images.unmount_rootfs(cid, self.reg.container_dir(cid))
        self.reg.release("container", rec["name"], cid)
        self.reg.drop_container(cid)

    # --- start, stop, remove

    def start(self, cid):
        rec = self.get(cid)
        with self.reg.pod_lock(rec["sandbox_id"]):
            state = self.state(rec)
            if state != CREATED:
                raise FailedPrecondition(
                    f"container {rec['id']} is {state}, not created")
            with self.reg.lock:
                self._starting.add(rec["id"])
            try:
                self.runtimes[rec["handler"]].start(rec["id"])
                rec["started_at"] = records.now_ns()
                self.reg.save_container(rec)
                self._publish(rec, pb.CONTAINER_STARTED_EVENT)
            finally:
                with self.reg.lock:
                    self._starting.discard(rec["id"])

    def stop(self, cid, timeout):
        """Signal the container, then SIGKILL it after timeout seconds.

        An unknown or already exited container is not an error.
        """
        rec = self.reg.find_container(cid)
        if rec is None:
            return
        with self.reg.pod_lock(rec["sandbox_id"]):
            if self.state(rec) == EXITED:
                return
            runtime = self.runtimes[rec["handler"]]
            if timeout > 0 and rec.get("started_at"):
                sig = rec.get("stop_signal") or int(signal.SIGTERM)
                runtime.kill(rec["id"], sig)
                if self._wait_gone(rec, timeout):
                    self.state(rec)
                    return
            runtime.kill(rec["id"], signal.SIGKILL, all_processes=True)
            if not self._wait_gone(rec, KILL_WAIT):
                alive = records.pid_alive(rec.get("pid"),
                                          rec.get("pid_start"))
                raise FailedPrecondition(
                    f"container {rec['id']} did not die after SIGKILL "
                    f"(init {rec.get('pid')} alive: {alive}, conmon alive: "
                    f"{self._conmon_alive(rec)})")
            self.state(rec)

    def _wait_gone(self, rec, timeout):
        """Wait until the init is dead and conmon recorded its status."""
        deadline = time.monotonic() + timeout
        while True:
            dead = not records.pid_alive(rec.get("pid"), rec.get("pid_start"))
            if dead and (os.path.exists(self.reg.exit_file(rec["id"]))
                         or not self._conmon_alive(rec)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def remove(self, cid):
        """Remove a container (killing it first); unknown ids are fine."""
        rec = self.reg.find_container(cid)
        if rec is None:
            return
        cid = rec["id"]
        with self.reg.pod_lock(rec["sandbox_id"]):
            self.stop(cid, 0)
            self.runtimes[rec["handler"]].delete(cid, force=True)
            self.images.unmount_rootfs(cid, self.reg.container_dir(cid))
            self.reg.drop_container(cid)
        self._publish(rec, pb.CONTAINER_DELETED_EVENT)
        log.info("container %s removed", cid)

    # --- exec, update, logs

    def exec_sync(self, cid, cmd, timeout):
        rec = self.get(cid)
        if self.state(rec) != RUNNING:
            raise FailedPrecondition(f"container {rec['id']} is not running")
        if not cmd:
            raise InvalidArgument("exec needs a command")
        runtime = self.runtimes[rec["handler"]]
        return runtime.exec_sync(rec["id"], list(cmd), timeout,
                                 workdir=self.reg.container_dir(rec["id"]))

    def update_resources(self, cid, res):
        rec = self.get(cid)
        if self.state(rec) == EXITED:
            raise FailedPrecondition(f"container {rec['id']} has exited")
        oci = spec.resources(res)
        self.runtimes[rec["handler"]].update(rec["id"], oci)
        rec["resources"] = res.SerializeToString().hex()
        self.reg.save_container(rec)

    def reopen_log(self, cid):
        rec = self.get(cid)
        if self.state(rec) != RUNNING:
            raise FailedPrecondition(f"container {rec['id']} is not running")
        bundle = os.path.join(self.reg.container_dir(rec["id"]), "bundle")
        monitor.reopen_log(bundle, rec.get("log_path", ""))

    # --- status and listing

    def status_proto(self, rec):
        config = self.config(rec)
        state = self.state(rec)
        status = pb.ContainerStatus(
            id=rec["id"], metadata=config.metadata, state=STATES[state],
            created_at=rec["created_at"],
            started_at=rec.get("started_at") or 0,
            finished_at=rec.get("finished_at") or 0,
            exit_code=rec.get("exit_code", 0) if state == EXITED else 0,
            image=config.image, image_ref=self._image_ref(rec),
            image_id=rec["image_id"], reason=rec.get("reason", "")
            if state == EXITED else "",
            message=rec.get("message", ""), log_path=rec["log_path"])
        status.labels.update(config.labels)
        status.annotations.update(config.annotations)
        status.mounts.extend(config.mounts)
        res = config.linux.resources
        if rec.get("resources"):
            res = pb.LinuxContainerResources.FromString(
                bytes.fromhex(rec["resources"]))
        status.resources.linux.CopyFrom(res)
        user = rec.get("user") or {}
        status.user.linux.uid = user.get("uid", 0)
        status.user.linux.gid = user.get("gid", 0)
        status.user.linux.supplemental_groups.extend(
            user.get("additionalGids", []))
        return status

    def _image_ref(self, rec):
        image = self.images.get(rec["image_id"])
        if image and image.get("repo_digests"):
            return image["repo_digests"][0]
        return rec["image_id"]

    def list_proto(self, flt):
        with self.reg.lock:
            recs = list(self.reg.containers.values())
        out = []
        for rec in recs:
            if flt.id and not rec["id"].startswith(flt.id):
                continue
            if flt.pod_sandbox_id and \
                    not rec["sandbox_id"].startswith(flt.pod_sandbox_id):
                continue
            if not rec.get("pid"):
                continue
            state = STATES[self.state(rec)]
            if flt.HasField("state") and flt.state.state != state:
                continue
            config = self.config(rec)
            if any(config.labels.get(k) != v
                   for k, v in flt.label_selector.items()):
                continue
            ctr = pb.Container(
                id=rec["id"], pod_sandbox_id=rec["sandbox_id"],
                metadata=config.metadata, image=config.image,
                image_ref=self._image_ref(rec), image_id=rec["image_id"],
                state=state, created_at=rec["created_at"])
            ctr.labels.update(config.labels)
            ctr.annotations.update(config.annotations)
            out.append(ctr)
        return out

    # --- stats

    def stats_proto(self, rec):
        config = self.config(rec)
        out = pb.ContainerStats()
        out.attributes.id = rec["id"]
        out.attributes.metadata.CopyFrom(config.metadata)
        out.attributes.labels.update(config.labels)
        out.attributes.annotations.update(config.annotations)
        now = records.now_ns()
        usage = {}
        if self.state(rec) == RUNNING:
            usage = stats.usage(rec["pid"])
        fill_cpu_memory(out.cpu, out.memory, usage, now)
        upper = os.path.join(self.reg.container_dir(rec["id"]), "upper")
        used, inodes = _du(upper)
        out.writable_layer.timestamp = now
        out.writable_layer.fs_id.mountpoint = self.reg.root
        out.writable_layer.used_bytes.value = used
        out.writable_layer.inodes_used.value = inodes
        return out

    def list_stats(self, flt):
        with self.reg.lock:
            recs = list(self.reg.containers.values())
        out = []
        for rec in recs:
            if flt.id and not rec["id"].startswith(flt.id):
                continue
            if flt.pod_sandbox_id and \
                    not rec["sandbox_id"].startswith(flt.pod_sandbox_id):
                continue
            if not rec.get("pid"):
                continue
            if flt.label_selector:
                labels = self.config(rec).labels
                if any(labels.get(k) != v
                       for k, v in flt.label_selector.items()):
                    continue
            out.append(self.stats_proto(rec))
        return out

    def recover(self):
        """After a restart: drop containers left half-created."""
        with self.reg.lock:
            recs = [r for r in self.reg.containers.values()
                    if not r.get("pid")]
        for rec in recs:
            log.warning("container %s was being created at the last stop: "
                        "removing it", rec["id"])
            self._undo_create(rec)

    # --- events and the exit watcher

    def _publish(self, rec, kind):
        try:
            event = pb.ContainerEventResponse(
                container_id=rec["id"], container_event_type=kind,
                created_at=records.now_ns())
            pod = self.reg.find_sandbox(rec["sandbox_id"])
            if pod is not None:
                event.pod_sandbox_status.CopyFrom(self.pods.status_proto(pod))
            if kind != pb.CONTAINER_DELETED_EVENT:
                event.containers_statuses.append(self.status_proto(rec))
        except (OSError, ValueError) as err:
            log.debug("event for %s: %s", rec["id"], err)
            return
        self.events.publish(event)

    def start_watcher(self):
        """Watch running containers for exits (for the event stream)."""
        self._watcher = threading.Thread(
            target=self._watch, name="exit-watcher", daemon=True)
        self._watcher.start()

    def stop_watcher(self):
        self._stop_watch.set()

    def _watch(self):
        while not self._stop_watch.wait(WATCH_INTERVAL):
            with self.reg.lock:
                recs = [r for r in self.reg.containers.values()
                        if r.get("pid") and not r.get("finished_at")]
            for rec in recs:
                try:
                    self.state(rec)
                except Exception as err:  # noqa: BLE001 - keep watching
                    log.warning("watching %s: %s", rec["id"], err)


def fill_cpu_memory(cpu, memory, usage, now):
    """Fill CpuUsage and MemoryUsage messages from stats.usage()."""
    cpu.timestamp = usage.get("timestamp", now)
    memory.timestamp = usage.get("timestamp", now)
    if usage.get("cpu_ns") is not None:
        cpu.usage_core_nano_seconds.value = usage["cpu_ns"]
    if usage.get("working_set") is not None:
        memory.working_set_bytes.value = usage["working_set"]
        memory.usage_bytes.value = usage["memory_usage"]
    for key, field in (("rss", "rss_bytes"), ("page_faults", "page_faults"),
                       ("major_page_faults", "major_page_faults")):
        if usage.get(key) is not None:
            getattr(memory, field).value = usage[key]


def _stop_signal(config, image_config):
    """Return the signal number that stops the container gracefully."""
    if config.stop_signal:
        name = pb.Signal.Name(config.stop_signal)
        return int(getattr(signal, name, signal.SIGTERM))
    name = ((image_config or {}).get("config") or {}).get("StopSignal", "")
    if not name:
        return int(signal.SIGTERM)
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = f"SIG{name}"
    return int(getattr(signal, name.upper(), signal.SIGTERM))


def _du(path):
    used = 0
    inodes = 0
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            used += st.st_blocks * 512
            inodes += 1
    return used, inodes

