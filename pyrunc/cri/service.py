"""RuntimeService and ImageService: gRPC requests to the managers.

Each handler translates a request into calls on Pods, Containers or the
ImageStore and the result back into a response message. Errors are
reported once, here: a CriError becomes its gRPC status, any other
PyruncError UNKNOWN with its message, and anything else INTERNAL with
the traceback in the server log.
"""

import functools
import json
import logging
import os
import queue

import grpc
from cri_api.v1 import api_pb2 as pb
from cri_api.v1 import api_pb2_grpc as pb_grpc

import pyrunc
from pyrunc.cri import containers as containers_mod
from pyrunc.cri import records, stats
from pyrunc.cri.errors import CriError, Unimplemented
from pyrunc.errors import PyruncError

log = logging.getLogger(__name__)

RUNTIME_NAME = "pyrunc-cri"
API_VERSION = "v1"
# The Kubernetes API version the CRI Version call reports, as
# containerd does ("0.1.0").
KUBE_API_VERSION = "0.1.0"
ARCHIVE_PREFIXES = ("oci-archive:", "oci:", "docker-archive:")


def _handler(fn):
    """Map the errors of one RPC handler to gRPC statuses."""

    @functools.wraps(fn)
    def wrapper(self, request, context):
        name = fn.__name__
        log.debug("%s %s", name, _short(request))
        try:
            return fn(self, request, context)
        except CriError as err:
            log.info("%s: %s", name, err)
            context.abort(getattr(grpc.StatusCode, err.code), str(err))
        except PyruncError as err:
            log.info("%s: %s", name, err)
            context.abort(grpc.StatusCode.UNKNOWN, str(err))
        except Exception as err:  # noqa: BLE001 - reported to the client
            if isinstance(err, grpc.RpcError) or \
                    type(err).__name__ == "_AbortError":
                raise
            log.exception("%s failed", name)
            context.abort(grpc.StatusCode.INTERNAL, f"{name}: {err!r}")
    return wrapper


def _short(request):
    text = str(request).replace("\n", " ")
    return text[:300]


class RuntimeService(pb_grpc.RuntimeServiceServicer):
    """The CRI RuntimeService over Pods and Containers."""

    def __init__(self, cfg, pods, containers, cni, events, streaming=None):
        self.cfg = cfg
        self.streaming = streaming
        self.pods = pods
        self.containers = containers
        self.cni = cni
        self.events = events
        self.pod_cidr = ""

    # --- runtime

    @_handler
    def Version(self, request, context):
        return pb.VersionResponse(
            version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
            runtime_version=getattr(pyrunc, "__version__", "0.1.0"),
            runtime_api_version=API_VERSION)

    @_handler
    def Status(self, request, context):
        net_ready, net_msg = self.cni.status()
        status = pb.RuntimeStatus()
        status.conditions.add(type="RuntimeReady", status=True)
        cond = status.conditions.add(type="NetworkReady", status=net_ready)
        if not net_ready:
            cond.reason = "NetworkPluginNotReady"
            cond.message = net_msg
        resp = pb.StatusResponse(status=status)
        for name in self.cfg.runtimes:
            handler = resp.runtime_handlers.add(
                name="" if name == self.cfg.default_runtime else name)
            handler.features.recursive_read_only_mounts = False
            handler.features.user_namespaces = False
        if request.verbose:
            resp.info["config"] = json.dumps({
                "state_root": self.cfg.state_root,
                "image_root": self.cfg.image_root,
                "cni_conf_dir": self.cfg.cni.conf_dir,
                "runtimes": {k: {"path": v.path, "root": v.root}
                             for k, v in self.cfg.runtimes.items()},
            })
        return resp

    @_handler
    def RuntimeConfig(self, request, context):
        resp = pb.RuntimeConfigResponse()
        resp.linux.cgroup_driver = pb.CGROUPFS
        return resp

    @_handler
    def UpdateRuntimeConfig(self, request, context):
        cidr = request.runtime_config.network_config.pod_cidr
        if cidr:
            # The CNI configuration decides the pod range here; kubelet's
            # pod CIDR is kept only to be reported.
            self.pod_cidr = cidr
            log.info("pod CIDR is %s", cidr)
        return pb.UpdateRuntimeConfigResponse()

    # --- pods

    @_handler
    def RunPodSandbox(self, request, context):
        sid = self.pods.run(request.config, request.runtime_handler)
        return pb.RunPodSandboxResponse(pod_sandbox_id=sid)

    @_handler
    def StopPodSandbox(self, request, context):
        self.pods.stop(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    @_handler
    def RemovePodSandbox(self, request, context):
        self.pods.remove(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    @_handler
    def PodSandboxStatus(self, request, context):
        rec = self.pods.get(request.pod_sandbox_id)
        resp = pb.PodSandboxStatusResponse(
            status=self.pods.status_proto(rec),
            timestamp=records.now_ns())
        if request.verbose:
            resp.info["info"] = json.dumps({
                "pid": rec.get("pid"), "cgroup_parent":
                rec.get("cgroup_parent"), "handler": rec.get("handler")})
        for ctr in self.containers.reg.containers_of(rec["id"]):
            resp.containers_statuses.append(
                self.containers.status_proto(ctr))
        return resp

    @_handler
    def ListPodSandbox(self, request, context):
        return pb.ListPodSandboxResponse(
            items=self.pods.list_proto(request.filter))

    # --- containers

    @_handler
    def CreateContainer(self, request, context):
        cid = self.containers.create(request.pod_sandbox_id,
                                     request.config, request.sandbox_config)
        return pb.CreateContainerResponse(container_id=cid)

    @_handler
    def StartContainer(self, request, context):
        self.containers.start(request.container_id)
        return pb.StartContainerResponse()

    @_handler
    def StopContainer(self, request, context):
        self.containers.stop(request.container_id, request.timeout)
        return pb.StopContainerResponse()

    @_handler
    def RemoveContainer(self, request, context):
        self.containers.remove(request.container_id)
        return pb.RemoveContainerResponse()

    @_handler
    def ListContainers(self, request, context):
        return pb.ListContainersResponse(
            containers=self.containers.list_proto(request.filter))

    @_handler
    def ContainerStatus(self, request, context):
        rec = self.containers.get(request.container_id)
        resp = pb.ContainerStatusResponse(
            status=self.containers.status_proto(rec))
        if request.verbose:
            resp.info["info"] = json.dumps({
                "pid": rec.get("pid"), "sandboxID": rec["sandbox_id"],
                "handler": rec["handler"]})
        return resp

    @_handler
    def UpdateContainerResources(self, request, context):
        self.containers.update_resources(request.container_id,
                                         request.linux)
        return pb.UpdateContainerResourcesResponse()

    @_handler
    def ReopenContainerLog(self, request, context):
        self.containers.reopen_log(request.container_id)
        return pb.ReopenContainerLogResponse()

    @_handler
    def ExecSync(self, request, context):
        code, out, err = self.containers.exec_sync(
            request.container_id, request.cmd, request.timeout)
        return pb.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    @_handler
    def Exec(self, request, context):
        return pb.ExecResponse(url=self._streaming().exec_url(request))

    @_handler
    def Attach(self, request, context):
        return pb.AttachResponse(url=self._streaming().attach_url(request))

    @_handler
    def PortForward(self, request, context):
        return pb.PortForwardResponse(
            url=self._streaming().port_forward_url(request))

    def _streaming(self):
        if self.streaming is None:
            raise Unimplemented("the streaming server is not running")
        return self.streaming

    @_handler
    def CheckpointContainer(self, request, context):
        raise Unimplemented("checkpoint is not supported")

    @_handler
    def UpdatePodSandboxResources(self, request, context):
        raise Unimplemented("pod-level resource updates are not supported")

    # --- stats

    @_handler
    def ContainerStats(self, request, context):
        rec = self.containers.get(request.container_id)
        return pb.ContainerStatsResponse(
            stats=self.containers.stats_proto(rec))

    @_handler
    def ListContainerStats(self, request, context):
        return pb.ListContainerStatsResponse(
            stats=self.containers.list_stats(request.filter))

    @_handler
    def PodSandboxStats(self, request, context):
        rec = self.pods.get(request.pod_sandbox_id)
        return pb.PodSandboxStatsResponse(stats=self._pod_stats(rec))

    @_handler
    def ListPodSandboxStats(self, request, context):
        flt = request.filter
        out = []
        with self.pods.reg.lock:
            recs = list(self.pods.reg.sandboxes.values())
        for rec in recs:
            if rec.get("state") == "creating":
                continue
            if flt.id and not rec["id"].startswith(flt.id):
                continue
            if flt.label_selector:
                labels = self.pods.config(rec).labels
                if any(labels.get(k) != v
                       for k, v in flt.label_selector.items()):
                    continue
            out.append(self._pod_stats(rec))
        return pb.ListPodSandboxStatsResponse(stats=out)

    def _pod_stats(self, rec):
        config = self.pods.config(rec)
        out = pb.PodSandboxStats()
        out.attributes.id = rec["id"]
        out.attributes.metadata.CopyFrom(config.metadata)
        out.attributes.labels.update(config.labels)
        out.attributes.annotations.update(config.annotations)
        now = records.now_ns()
        linux = out.linux
        ready = self.pods.is_ready(rec)
        usage = {}
        if ready:
            usage = _pod_usage(rec["pid"])
        containers_mod.fill_cpu_memory(linux.cpu, linux.memory, usage, now)
        linux.process.timestamp = now
        if usage.get("processes") is not None:
            linux.process.process_count.value = usage["processes"]
        if ready and not rec.get("host_network"):
            _fill_network(linux.network, rec["pid"], now)
        for ctr in self.containers.reg.containers_of(rec["id"]):
            if ctr.get("pid"):
                linux.containers.append(self.containers.stats_proto(ctr))
        return out

    @_handler
    def ListMetricDescriptors(self, request, context):
        return pb.ListMetricDescriptorsResponse()

    @_handler
    def ListPodSandboxMetrics(self, request, context):
        return pb.ListPodSandboxMetricsResponse()

    # --- events

    def GetContainerEvents(self, request, context):
        q = self.events.subscribe()
        try:
            while context.is_active():
                try:
                    event = q.get(timeout=0.5)
                except queue.Empty:
                    continue
                yield event
        finally:
            self.events.unsubscribe(q)


def _pod_usage(pause_pid):
    """Usage of the pod's cgroup parent: the pause cgroup's parent."""
    dirs = stats.cgroup_dirs(pause_pid)
    return stats.usage_of({k: os.path.dirname(v) for k, v in dirs.items()})


def _fill_network(net, pid, now):
    net.timestamp = now
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo":
            continue
        v = [int(x) for x in rest.split()]
        iface = pb.NetworkInterfaceUsage(name=name)
        iface.rx_bytes.value = v[0]
        iface.rx_errors.value = v[2]
        iface.tx_bytes.value = v[8]
        iface.tx_errors.value = v[10]
        if name == "eth0":
            net.default_interface.CopyFrom(iface)
        net.interfaces.append(iface)


class ImageService(pb_grpc.ImageServiceServicer):
    """The CRI ImageService over the content store."""

    def __init__(self, images, puller):
        self.images = images
        self.puller = puller

    def _image_proto(self, image):
        out = pb.Image(id=image["id"], repo_tags=image["repo_tags"],
                       repo_digests=image["repo_digests"],
                       size=image["size"])
        out.spec.image = image["id"]
        user = ((self.images.config(image).get("config") or {})
                .get("User") or "")
        name = user.split(":", 1)[0]
        if name.isdigit():
            out.uid.value = int(name)
        elif name:
            out.username = name
        return out

    @_handler
    def ListImages(self, request, context):
        ref = request.filter.image.image
        if ref:
            image = self.images.get(ref)
            found = [image] if image else []
        else:
            found = self.images.list()
        return pb.ListImagesResponse(
            images=[self._image_proto(i) for i in found])

    @_handler
    def ImageStatus(self, request, context):
        image = self.images.get(request.image.image)
        resp = pb.ImageStatusResponse()
        if image is None:
            return resp
        resp.image.CopyFrom(self._image_proto(image))
        if request.verbose:
            resp.info["info"] = json.dumps({
                "manifest": image["manifest"], "layers": image["layers"],
                "config": self.images.config(image)})
        return resp

    @_handler
    def PullImage(self, request, context):
        ref = request.image.image
        for prefix in ARCHIVE_PREFIXES:
            if ref.startswith(prefix):
                path, _, name = ref[len(prefix):].partition("::")
                found = self.images.import_image(path, name=name or None)
                return pb.PullImageResponse(image_ref=found[0]["id"])
        auth = request.auth if request.HasField("auth") else None
        image = self.puller.pull(ref, auth)
        return pb.PullImageResponse(image_ref=image["id"])

    @_handler
    def RemoveImage(self, request, context):
        self.images.remove(request.image.image)
        return pb.RemoveImageResponse()

    @_handler
    def ImageFsInfo(self, request, context):
        used, inodes = self.images.fs_usage()
        usage = pb.FilesystemUsage(timestamp=records.now_ns())
        usage.fs_id.mountpoint = self.images.root
        usage.used_bytes.value = used
        usage.inodes_used.value = inodes
        return pb.ImageFsInfoResponse(image_filesystems=[usage])
