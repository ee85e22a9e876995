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

from pyrunc.cri import config, images, layers, spec  # noqa: E402
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
    ])
    def test_errors(self, tmp_path, text, message):
        path = tmp_path / "cri.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            config.load(path)


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

    def test_mounts(self, tmp_path):
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
        dests = [m["destination"] for m in oci["mounts"]]
        assert dests.index("/dev") < dests.index("/dev/shm")
        cfg.mounts.add(container_path="/x", host_path="/no/such/dir")
        with pytest.raises(InvalidArgument, match="does not exist"):
            _container_spec(cfg)

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
