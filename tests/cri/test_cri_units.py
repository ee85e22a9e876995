"""Pure-Python parts of pyrunc-cri: config, image refs, OCI specs, layers.

No server runs here; only the layer tests need root (whiteouts are
device nodes and trusted.* xattrs).
"""

import json
import os
import stat
import tarfile

import pytest

pb = pytest.importorskip("cri_api.v1.api_pb2")

from pyrunc.cri import config, images, layers, pull, seccomp  # noqa: E402
from pyrunc.cri import spec  # noqa: E402
from pyrunc.cri.errors import InvalidArgument  # noqa: E402
from pyrunc.errors import ConfigError  # noqa: E402


class TestConfig:
    def test_defaults(self):
        cfg = config.load(None)
        assert cfg.listen == "/run/pyrunc/cri.sock"
        assert cfg.image_root == "/var/lib/pyrunc-cri/images"
        assert cfg.handler("").name == "pyrunc"
        assert cfg.streaming_address == "127.0.0.1"

    def test_file(self, tmp_path):
        path = tmp_path / "cri.toml"
        path.write_text(
            'listen = "/x/cri.sock"\nstate_root = "/x/state"\n'
            'default_runtime = "runc"\nlog_format = "json"\n'
            '[runtimes.runc]\npath = "/usr/sbin/runc"\n'
            '[runtimes.pyrunc]\npath = "/usr/local/bin/pyrunc"\n'
            'root = "/run/p"\n'
            '[cni]\nconf_dir = "/x/net.d"\nbin_dirs = "/x/bin"\n')
        cfg = config.load(path, {"listen": "/y.sock"})
        assert cfg.listen == "/y.sock"
        assert cfg.image_root == "/x/state/images"
        assert cfg.handler("").path == "/usr/sbin/runc"
        assert cfg.handler("runc").root == "/run/pyrunc-cri/runc"
        assert cfg.handler("pyrunc").root == "/run/p"
        assert cfg.cni.bin_dirs == ["/x/bin"]
        with pytest.raises(ConfigError, match="no runtime handler `kata`"):
            cfg.handler("kata")

    @pytest.mark.parametrize("text, message", [
        ("nosuch = 1", "unknown configuration key `nosuch`"),
        ("workers = true", "workers: expected an integer"),
        ('log_level = "loud"', "unknown level"),
        ('default_runtime = "x"', "is not a runtime"),
        ("[runtimes.x]\nroot = '/r'", "runtimes.x: needs a path"),
        ("[cni]\nbogus = 1", "cni: unknown key `bogus`"),
        ("listen = ", "cri.toml"),
        ("insecure_registries = 'x'", "expected list"),
        ("insecure_registries = [1]", "list of non-empty strings"),
        ("registry_mirrors = 1", "registry_mirrors: expected a table"),
        ("[registry_mirrors]\n'gcr.io' = 5", "gcr.io: expected a list"),
        ("[registry_mirrors]\n'gcr.io' = ['']", "non-empty strings"),
    ])
    def test_errors(self, tmp_path, text, message):
        path = tmp_path / "cri.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            config.load(path)


    def test_registry_keys(self, tmp_path):
        path = tmp_path / "cri.toml"
        path.write_text(
            'insecure_registries = ["127.0.0.1:5000"]\n'
            'skopeo = "/opt/skopeo"\n'
            'pause_binary = "/opt/pause"\n'
            '[registry_mirrors]\n'
            '"registry.k8s.io" = "http://127.0.0.1:5000"\n'
            '"gcr.io" = ["m1.example", "https://m2.example/"]\n')
        cfg = config.load(path)
        assert cfg.insecure_registries == ["127.0.0.1:5000"]
        assert cfg.skopeo == "/opt/skopeo"
        assert cfg.pause_binary == "/opt/pause"
        assert cfg.registry_mirrors == {
            "registry.k8s.io": ["http://127.0.0.1:5000"],
            "gcr.io": ["m1.example", "https://m2.example/"]}
        default = config.load(None)
        assert default.insecure_registries == []
        assert default.registry_mirrors == {}
        assert default.pause_binary == ""
        assert default.busybox == "/bin/busybox"

    def test_pull_endpoints(self, tmp_path):
        cfg = config.from_dict({
            "insecure_registries": ["gcr.io", "m1.example"],
            "registry_mirrors": {
                "gcr.io": ["m1.example", "https://m2.example/"],
                "docker.io": ["http://127.0.0.1:5000"]}})
        store = images.ImageStore(tmp_path)
        puller = pull.Puller(cfg, store)
        got = [(e.host, e.insecure) for e in puller.endpoints("gcr.io")]
        assert got == [("m1.example", True), ("m2.example", False),
                       ("gcr.io", True)]
        got = [(e.host, e.insecure) for e in puller.endpoints("docker.io")]
        assert got == [("127.0.0.1:5000", True), ("docker.io", False)]
        got = [(e.host, e.insecure) for e in puller.endpoints("quay.io")]
        assert got == [("quay.io", False)]

    def test_pull_auth_args(self, tmp_path):
        auth = pb.AuthConfig(username="u", password="p:w")
        args = pull._auth_args(auth, "reg.example:5000", str(tmp_path))
        assert args == ["--src-authfile", str(tmp_path / "auth.json")]
        data = json.loads((tmp_path / "auth.json").read_text())
        assert data == {"auths": {"reg.example:5000": {
            "auth": "dTpwOnc="}}}
        assert stat.S_IMODE(os.stat(tmp_path / "auth.json").st_mode) == \
            0o600
        other = pb.AuthConfig(username="u", password="p",
                              server_address="https://other.example")
        assert pull._auth_args(other, "reg.example", str(tmp_path)) == []
        token = pb.AuthConfig(registry_token="tok")
        args = pull._auth_args(token, "reg.example", str(tmp_path))
        assert args == ["--src-registry-token", "tok"]
        assert "tok" not in pull._redact(["skopeo"] + args + ["x"])
        assert pull._auth_args(None, "reg.example", str(tmp_path)) == []

    def test_skopeo_message(self):
        err = ('time="2026-12-04T08:46:11Z" level=fatal msg="initializing '
               'source docker://h/x:1: reading manifest 1 in h/x: '
               'manifest unknown: manifest unknown"\n')
        msg = pull._skopeo_message(err)
        assert msg.startswith("initializing source docker://h/x:1")
        assert pull._is_not_found(msg)
        assert not pull._is_not_found("connection refused")


class TestRefs:
    @pytest.mark.parametrize("ref, full", [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("me/app", "docker.io/me/app:latest"),
        ("quay.io/a/b:c", "quay.io/a/b:c"),
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x:1", "localhost:5000/x:1"),
        ("busybox@sha256:" + "a" * 64,
         "docker.io/library/busybox@sha256:" + "a" * 64),
    ])
    def test_normalize(self, ref, full):
        assert images.normalize(ref) == full

    def test_empty(self):
        with pytest.raises(InvalidArgument):
            images.normalize(" ")


def _pod(**kw):
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="p", namespace="n", uid="u"),
        hostname="host")
    ns = cfg.linux.security_context.namespace_options
    ns.network = kw.get("network", pb.POD)
    ns.pid = kw.get("pid", pb.CONTAINER)
    ns.ipc = kw.get("ipc", pb.POD)
    return cfg


FILES = {"hostname": "/s/hostname", "hosts": "/s/hosts",
         "resolv.conf": "/s/resolv.conf", "shm": "/s/shm"}


def _ctr(**kw):
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                             image=pb.ImageSpec(image="busybox"))
    cfg.command.extend(kw.pop("command", []))
    cfg.args.extend(kw.pop("args", []))
    return cfg


def _container_spec(cfg, pod=None, image=None, root=None, **kw):
    return spec.container_spec(
        cfg, pod or _pod(), image or {"config": {"Cmd": ["sh"]}}, "/r",
        "cid", "parent", FILES, 42, passwd_root=root, **kw)


def _fake_mountinfo(tmp_path, monkeypatch, mounts):
    """Point spec.MOUNTINFO at a file listing (mount point, tags)."""
    lines = []
    for i, (point, tags) in enumerate(mounts):
        point = point.replace(" ", "\\040")
        lines.append(f"{i + 20} 1 0:{i} / {point} rw {tags} - ext4 x rw"
                     .replace("  ", " "))
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(spec, "MOUNTINFO", str(path))


def _ns(oci):
    return {n["type"]: n.get("path") for n in oci["linux"]["namespaces"]}


class TestSandboxSpec:
    def test_pod_namespaces(self):
        oci = spec.sandbox_spec(_pod(), "sid", "/pause", FILES, "kube/pod")
        assert _ns(oci) == {"mount": None, "pid": None, "ipc": None,
                            "network": None, "uts": None}
        assert oci["hostname"] == "host"
        assert oci["root"] == {"path": "/pause", "readonly": True}
        assert oci["linux"]["cgroupsPath"] == "kube/pod/sid"
        dests = [m["destination"] for m in oci["mounts"]]
        assert "/etc/resolv.conf" in dests and "/dev/shm" in dests

    def test_pause_program(self):
        oci = spec.sandbox_spec(_pod(), "sid", "/pause", FILES, "",
                                pause_binary="/pkg/pyrunc-pause")
        assert oci["process"]["args"] == ["/pause"]
        bind = [m for m in oci["mounts"] if m["destination"] == "/pause"]
        assert bind[0]["source"] == "/pkg/pyrunc-pause"
        assert "ro" in bind[0]["options"]
        # Without the program: busybox's shell, and no sleep child.
        oci = spec.sandbox_spec(_pod(), "sid", "/pause", FILES, "")
        assert oci["process"]["args"][:2] == ["/bin/sh", "-c"]
        assert "sleep" not in oci["process"]["args"][2]
        assert not [m for m in oci["mounts"]
                    if m["destination"] == "/pause"]

    def test_seccomp_and_group(self):
        pod = _pod()
        sec = pod.linux.security_context
        assert "seccomp" not in spec.sandbox_spec(
            pod, "sid", "/p", FILES, "")["linux"]
        sec.seccomp_profile_path = "runtime/default"
        oci = spec.sandbox_spec(pod, "sid", "/p", FILES, "")
        assert oci["linux"]["seccomp"] == seccomp.default_profile()
        sec.seccomp_profile_path = "bogus"
        with pytest.raises(InvalidArgument, match="unknown seccomp"):
            spec.sandbox_spec(pod, "sid", "/p", FILES, "")
        sec.seccomp_profile_path = ""
        sec.run_as_group.value = 7
        with pytest.raises(InvalidArgument,
                           match="specified without user"):
            spec.sandbox_spec(pod, "sid", "/p", FILES, "")
        sec.run_as_user.value = 5
        user = spec.sandbox_spec(pod, "sid", "/p", FILES, "")[
            "process"]["user"]
        assert user == {"uid": 5, "gid": 7}

    def test_host_namespaces_and_sysctls(self):
        pod = _pod(network=pb.NODE, pid=pb.NODE, ipc=pb.NODE)
        pod.linux.sysctls["kernel.shm_rmid_forced"] = "1"
        oci = spec.sandbox_spec(pod, "sid", "/pause", FILES, "")
        assert _ns(oci) == {"mount": None}
        assert "hostname" not in oci
        assert oci["linux"]["sysctl"] == {"kernel.shm_rmid_forced": "1"}
        assert oci["linux"]["cgroupsPath"] == "sid"


class TestContainerSpec:
    def test_joins_pod_namespaces(self):
        cfg = _ctr(command=["true"])
        cfg.linux.security_context.namespace_options.pid = pb.CONTAINER
        oci = _container_spec(cfg)
        assert _ns(oci) == {
            "mount": None, "network": "/proc/42/ns/net",
            "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc",
            "pid": None}
        assert "hostname" not in oci
        assert oci["linux"]["cgroupsPath"] == "parent/cid"

    def test_pid_modes(self):
        cfg = _ctr(command=["true"])
        cfg.linux.security_context.namespace_options.pid = pb.POD
        assert _ns(_container_spec(cfg))["pid"] == "/proc/42/ns/pid"
        cfg.linux.security_context.namespace_options.pid = pb.TARGET
        oci = _container_spec(cfg, target_pid=7)
        assert _ns(oci)["pid"] == "/proc/7/ns/pid"
        cfg.linux.security_context.namespace_options.pid = pb.NODE
        assert "pid" not in _ns(_container_spec(cfg))

    @pytest.mark.parametrize("command, args, image, want", [
        ([], [], {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["/e", "c"]),
        ([], ["a"], {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["/e", "a"]),
        (["x"], [], {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["x"]),
        (["x"], ["y"], {"Cmd": ["c"]}, ["x", "y"]),
        ([], [], {"Cmd": ["c"]}, ["c"]),
    ])
    def test_args(self, command, args, image, want):
        cfg = _ctr(command=command, args=args)
        oci = _container_spec(cfg, image={"config": image})
        assert oci["process"]["args"] == want

    def test_no_command(self):
        with pytest.raises(InvalidArgument, match="no command"):
            _container_spec(_ctr(), image={"config": {}})

    def test_env_and_cwd(self):
        cfg = _ctr(command=["true"])
        cfg.envs.add(key="A", value="request")
        cfg.envs.add(key="PATH", value="/p")
        image = {"config": {"Env": ["A=image", "B=image"],
                            "WorkingDir": "/w"}}
        oci = _container_spec(cfg, image=image)
        assert oci["process"]["env"] == [
            "PATH=/p", "HOSTNAME=host", "A=request", "B=image"]
        assert oci["process"]["cwd"] == "/w"
        cfg.working_dir = "/override"
        assert _container_spec(cfg, image=image)["process"]["cwd"] == \
            "/override"

    def test_capabilities(self):
        cfg = _ctr(command=["true"])
        caps = cfg.linux.security_context.capabilities
        caps.add_capabilities.append("sys_admin")
        caps.drop_capabilities.extend(["CHOWN", "CAP_KILL"])
        got = _container_spec(cfg)["process"]["capabilities"]
        assert "CAP_SYS_ADMIN" in got["bounding"]
        assert "CAP_CHOWN" not in got["effective"]
        assert "CAP_KILL" not in got["permitted"]
        assert "CAP_NET_RAW" in got["bounding"]
        caps.drop_capabilities[:] = ["ALL"]
        caps.add_capabilities[:] = ["NET_BIND_SERVICE"]
        got = _container_spec(cfg)["process"]["capabilities"]
        assert got["bounding"] == ["CAP_NET_BIND_SERVICE"]

    def test_privileged(self):
        cfg = _ctr(command=["true"])
        cfg.linux.security_context.privileged = True
        with pytest.raises(InvalidArgument, match="non-privileged pod"):
            _container_spec(cfg)
        pod = _pod()
        pod.linux.security_context.privileged = True
        oci = _container_spec(cfg, pod=pod)
        assert oci["linux"]["maskedPaths"] == []
        assert oci["linux"]["resources"]["devices"] == [
            {"allow": True, "access": "rwm"}]
        assert "CAP_SYS_ADMIN" in oci["process"]["capabilities"]["bounding"]
        sys_mount = [m for m in oci["mounts"] if m["destination"] == "/sys"]
        assert "rw" in sys_mount[0]["options"]

    def test_security_and_resources(self):
        cfg = _ctr(command=["true"])
        sec = cfg.linux.security_context
        sec.readonly_rootfs = True
        sec.no_new_privs = True
        sec.masked_paths.append("/m")
        sec.readonly_paths.append("/ro")
        res = cfg.linux.resources
        res.cpu_shares = 512
        res.cpu_quota = 50000
        res.cpu_period = 100000
        res.memory_limit_in_bytes = 1 << 26
        res.oom_score_adj = 100
        oci = _container_spec(cfg)
        assert oci["root"]["readonly"] is True
        assert oci["process"]["noNewPrivileges"] is True
        assert oci["process"]["oomScoreAdj"] == 100
        assert oci["linux"]["maskedPaths"] == ["/m"]
        assert oci["linux"]["readonlyPaths"] == ["/ro"]
        assert oci["linux"]["resources"]["cpu"] == {
            "shares": 512, "quota": 50000, "period": 100000}
        assert oci["linux"]["resources"]["memory"] == {"limit": 1 << 26}
        ro = [m for m in oci["mounts"]
              if m["destination"] == "/etc/resolv.conf"]
        assert "ro" in ro[0]["options"]

    def test_seccomp(self, tmp_path):
        cfg = _ctr(command=["true"])
        assert "seccomp" not in _container_spec(cfg)["linux"]
        sec = cfg.linux.security_context
        sec.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        got = _container_spec(cfg)["linux"]["seccomp"]
        assert got["defaultAction"] == "SCMP_ACT_ALLOW"
        profile = tmp_path / "p.json"
        profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO"}))
        sec.seccomp.profile_type = pb.SecurityProfile.Localhost
        sec.seccomp.localhost_ref = str(profile)
        got = _container_spec(cfg)["linux"]["seccomp"]
        assert got == {"defaultAction": "SCMP_ACT_ERRNO"}
        sec.seccomp.profile_type = pb.SecurityProfile.Unconfined
        assert "seccomp" not in _container_spec(cfg)["linux"]

    @pytest.mark.parametrize("path, want", [
        ("", None),
        ("unconfined", None),
        ("runtime/default", "default"),
        ("docker/default", "default"),
        ("localhost/{profile}", "profile"),
    ])
    def test_seccomp_profile_path(self, tmp_path, path, want):
        profile = tmp_path / "p.json"
        profile.write_text(json.dumps({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}))
        cfg = _ctr(command=["true"])
        sec = cfg.linux.security_context
        sec.seccomp_profile_path = path.format(profile=profile)
        got = _container_spec(cfg)["linux"].get("seccomp")
        if want is None:
            assert got is None
        elif want == "default":
            assert got == seccomp.default_profile()
        else:
            assert got["syscalls"][0]["names"] == ["chmod"]
        # Privileged containers get no profile, whatever they ask.
        sec.privileged = True
        pod = _pod()
        pod.linux.security_context.privileged = True
        assert "seccomp" not in _container_spec(cfg, pod=pod)["linux"]

    @pytest.mark.parametrize("path", [
        "/abs/profile.json", "localhost", "runtime/defaultx", "localhost/rel",
        "localhost//no/such/file.json"])
    def test_seccomp_profile_path_errors(self, path):
        cfg = _ctr(command=["true"])
        cfg.linux.security_context.seccomp_profile_path = path
        with pytest.raises(InvalidArgument, match="seccomp profile"):
            _container_spec(cfg)

    def test_seccomp_field_wins(self, tmp_path):
        cfg = _ctr(command=["true"])
        sec = cfg.linux.security_context
        sec.seccomp_profile_path = "runtime/default"
        sec.seccomp.profile_type = pb.SecurityProfile.Unconfined
        assert "seccomp" not in _container_spec(cfg)["linux"]
        sec.seccomp_profile_path = "bogus"
        sec.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        got = _container_spec(cfg)["linux"]["seccomp"]
        assert got == seccomp.default_profile()

    def test_seccomp_docker_profile(self):
        docker = {
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                         "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64",
                         "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"name": "ptrace", "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chmod"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            ],
        }
        got = seccomp.from_docker(docker, ["CAP_CHOWN"], machine="x86_64",
                                  kernel="6.1.0-18-amd64")
        assert got["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
        names = [r["names"] for r in got["syscalls"]]
        assert names == [["read", "write"], ["ptrace"], ["arch_prctl"],
                         ["chmod"]]
        got = seccomp.from_docker(docker, ["CAP_SYS_ADMIN"],
                                  machine="aarch64", kernel="4.4.0")
        assert got["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        names = [r["names"] for r in got["syscalls"]]
        assert names == [["read", "write"], ["mount"]]

    def test_run_as_group_needs_user(self):
        cfg = _ctr(command=["true"])
        sec = cfg.linux.security_context
        sec.run_as_group.value = 10
        with pytest.raises(InvalidArgument,
                           match="group `10` is specified without user"):
            _container_spec(cfg)
        sec.run_as_username = "0"
        assert _container_spec(cfg)["process"]["user"]["gid"] == 10
        sec.run_as_username = ""
        sec.run_as_user.value = 3
        assert _container_spec(cfg)["process"]["user"] == {
            "uid": 3, "gid": 10}

    def test_mounts(self, tmp_path, monkeypatch):
        _fake_mountinfo(tmp_path, monkeypatch, [
            ("/", "shared:1"), (str(tmp_path), "master:2")])
        cfg = _ctr(command=["true"])
        cfg.mounts.add(container_path="/data", host_path=str(tmp_path),
                       readonly=True,
                       propagation=pb.PROPAGATION_HOST_TO_CONTAINER)
        cfg.mounts.add(container_path="/etc/hosts",
                       host_path=str(tmp_path))
        oci = _container_spec(cfg)
        by_dest = {m["destination"]: m for m in oci["mounts"]}
        assert by_dest["/data"]["options"] == ["rbind", "rslave", "ro"]
        assert by_dest["/etc/hosts"]["source"] == str(tmp_path)
        assert by_dest["/etc/hosts"]["options"] == [
            "rbind", "rprivate", "rw"]
        assert oci["linux"]["rootfsPropagation"] == "rslave"
        dests = [m["destination"] for m in oci["mounts"]]
        assert dests.index("/dev") < dests.index("/dev/shm")
        cfg.mounts.add(container_path="/x", host_path="/no/such/dir")
        with pytest.raises(InvalidArgument, match="does not exist"):
            _container_spec(cfg)

    def test_mount_propagation(self, tmp_path, monkeypatch):
        shared = tmp_path / "shared"
        slave = tmp_path / "slave"
        private = tmp_path / "private dir"
        for d in (shared, slave, private):
            d.mkdir()
        (shared / "sub").mkdir()
        _fake_mountinfo(tmp_path, monkeypatch, [
            ("/", ""), (str(shared), "shared:7"),
            (str(slave), "master:3"), (str(private), "")])
        cfg = _ctr(command=["true"])
        cfg.mounts.add(container_path="/s", host_path=str(shared / "sub"),
                       propagation=pb.PROPAGATION_BIDIRECTIONAL)
        cfg.mounts.add(container_path="/l", host_path=str(slave),
                       propagation=pb.PROPAGATION_HOST_TO_CONTAINER)
        oci = _container_spec(cfg)
        by_dest = {m["destination"]: m for m in oci["mounts"]}
        assert by_dest["/s"]["options"] == ["rbind", "rshared", "rw"]
        assert by_dest["/l"]["options"] == ["rbind", "rslave", "rw"]
        # rslave after rshared does not take the root back to rslave.
        assert oci["linux"]["rootfsPropagation"] == "rshared"
        for prop, source, what in (
                (pb.PROPAGATION_BIDIRECTIONAL, slave, "not a shared mount"),
                (pb.PROPAGATION_HOST_TO_CONTAINER, private,
                 "not a shared or slave mount")):
            cfg = _ctr(command=["true"])
            cfg.mounts.add(container_path="/m", host_path=str(source),
                           propagation=prop)
            with pytest.raises(InvalidArgument, match=what):
                _container_spec(cfg)
        cfg = _ctr(command=["true"])
        cfg.mounts.add(container_path="/m", host_path=str(private),
                       propagation=pb.PROPAGATION_PRIVATE)
        oci = _container_spec(cfg)
        assert "rootfsPropagation" not in oci["linux"]


    def test_devices(self):
        cfg = _ctr(command=["true"])
        cfg.devices.add(container_path="/dev/x", host_path="/dev/null",
                        permissions="rw")
        oci = _container_spec(cfg)
        dev = oci["linux"]["devices"][0]
        assert (dev["path"], dev["type"], dev["major"], dev["minor"]) == (
            "/dev/x", "c", 1, 3)
        assert oci["linux"]["resources"]["devices"][-1] == {
            "allow": True, "type": "c", "major": 1, "minor": 3,
            "access": "rw"}

    def test_users(self, tmp_path):
        etc = tmp_path / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/w:/bin/sh\n")
        (etc / "group").write_text(
            "root:x:0:\nwww:x:34:\nextra:x:1234:www,other\n")
        cfg = _ctr(command=["true"])
        user = _container_spec(cfg, root=tmp_path)["process"]["user"]
        assert user == {"uid": 0, "gid": 0}
        image = {"config": {"Cmd": ["x"], "User": "www"}}
        user = _container_spec(cfg, image=image, root=tmp_path)[
            "process"]["user"]
        assert user == {"uid": 33, "gid": 34, "additionalGids": [1234]}
        image["config"]["User"] = "1000:www"
        user = _container_spec(cfg, image=image, root=tmp_path)[
            "process"]["user"]
        assert user == {"uid": 1000, "gid": 34}
        sec = cfg.linux.security_context
        sec.run_as_user.value = 33
        sec.run_as_group.value = 5
        sec.supplemental_groups.append(99)
        user = _container_spec(cfg, image=image, root=tmp_path)[
            "process"]["user"]
        assert user == {"uid": 33, "gid": 5, "additionalGids": [1234, 99]}
        cfg2 = _ctr(command=["true"])
        cfg2.linux.security_context.run_as_username = "nobody"
        with pytest.raises(InvalidArgument, match="no user `nobody`"):
            _container_spec(cfg2, root=tmp_path)

    def test_passwd_symlink_outside_is_ignored(self, tmp_path):
        etc = tmp_path / "etc"
        etc.mkdir()
        (etc / "passwd").symlink_to("/etc/passwd")
        image = {"config": {"Cmd": ["x"], "User": "root"}}
        with pytest.raises(InvalidArgument, match="no user `root`"):
            _container_spec(_ctr(), image=image, root=tmp_path)


def _layer(path, entries):
    with tarfile.open(path, "w") as tf:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tf.addfile(info)
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tf.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o4755
                import io
                tf.addfile(info, io.BytesIO(data))


@pytest.mark.root
class TestLayers:
    def test_whiteouts_and_modes(self, tmp_path):
        blob = tmp_path / "layer.tar"
        _layer(blob, [
            ("a", "dir", None),
            ("a/.wh.gone", "file", b""),
            ("a/.wh..wh..opq", "file", b""),
            ("a/suid", "file", b"x"),
            ("a/hard", "link", "a/suid"),
            ("b/implicit", "file", b"y"),
        ])
        dest = tmp_path / "out"
        digest = layers.unpack(str(blob), str(dest))
        assert digest.startswith("sha256:")
        st = os.lstat(dest / "a" / "gone")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(dest / "a", "trusted.overlay.opaque") == b"y"
        assert stat.S_IMODE(os.stat(dest / "a" / "suid").st_mode) == 0o4755
        assert os.stat(dest / "a" / "hard").st_ino == \
            os.stat(dest / "a" / "suid").st_ino
        assert (dest / "b" / "implicit").read_bytes() == b"y"

    @pytest.mark.parametrize("entries", [
        [("../escape", "file", b"x")],
        [("link", "sym", "/"), ("link/escape", "file", b"x")],
        [("link", "sym", "../.."), ("link/escape", "file", b"x")],
    ])
    def test_escapes_refused(self, tmp_path, entries):
        blob = tmp_path / "layer.tar"
        _layer(blob, entries)
        with pytest.raises(InvalidArgument):
            layers.unpack(str(blob), str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()
        assert not (tmp_path / "escape").exists()

    def test_symlink_replaced_not_followed(self, tmp_path):
        victim = tmp_path / "victim"
        victim.write_text("keep")
        blob = tmp_path / "layer.tar"
        _layer(blob, [("f", "sym", str(victim)), ("f", "file", b"new")])
        layers.unpack(str(blob), str(tmp_path / "out"))
        assert victim.read_text() == "keep"
        assert (tmp_path / "out" / "f").read_bytes() == b"new"
