"""The launch plan a config produces: pure Python, no root needed."""

import pytest

from pyrunc._native import launcher as L
from pyrunc.errors import ConfigError, PyruncError  # noqa: F401
from pyrunc.process import plan as P
from pyrunc.spec.load import parse_spec


def make_spec(tmp_path, **changes):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0,
                                                          "gid": 0}},
        "hostname": "box",
        "mounts": [{"destination": "/proc", "type": "proc",
                    "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                 {"type": "uts"}]},
    }
    for key, value in changes.items():
        config[key] = value
    return parse_spec(config)


def build(tmp_path, **changes):
    spec = make_spec(tmp_path, **changes)
    opts = P.Options(cid="c1", bundle=str(tmp_path), fifo_fd=7)
    return P.build(spec, opts)


def ops(plan):
    return [step[0] for step in plan.steps]


class TestNamespaces:
    def test_new_namespaces_are_clone_flags(self, tmp_path):
        plan = build(tmp_path)
        assert plan.clone_flags == (P.CLONE_NEWPID | P.CLONE_NEWNS |
                                    P.CLONE_NEWUTS)

    def test_joined_pid_namespace_forks(self, tmp_path):
        linux = {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"},
                                {"type": "mount"}]}
        plan = build(tmp_path, linux=linux, hostname=None)
        assert plan.steps[0] == (L.OP_SETNS, b"/proc/1/ns/pid",
                                 P.CLONE_NEWPID)
        assert plan.steps[1] == (L.OP_FORK, 0)
        assert not plan.clone_flags & P.CLONE_NEWPID

    def test_cgroup_namespace_is_unshared_after_joining(self, tmp_path):
        linux = {"namespaces": [{"type": "mount"}, {"type": "cgroup"}]}
        plan = build(tmp_path, linux=linux, hostname=None)
        sync = plan.steps.index((L.OP_SYNC, P.SYNC_CGROUP))
        unshare = plan.steps.index((L.OP_UNSHARE, P.CLONE_NEWCGROUP))
        assert sync < unshare
        assert not plan.clone_flags & P.CLONE_NEWCGROUP

    def test_user_namespace_maps_and_binds_devices(self, tmp_path):
        linux = {"namespaces": [{"type": "user"}, {"type": "mount"}],
                 "uidMappings": [{"containerID": 0, "hostID": 1000,
                                  "size": 10}],
                 "gidMappings": [{"containerID": 0, "hostID": 1000,
                                  "size": 10}]}
        plan = build(tmp_path, linux=linux, hostname=None)
        assert plan.clone_flags & P.CLONE_NEWUSER
        assert plan.uid_map == "0 1000 10\n"
        sync = plan.steps.index((L.OP_SYNC, P.SYNC_CGROUP))
        assert plan.steps[sync + 1] == (L.OP_SET_USER, 0, 0, b"", 0)
        seq = ops(plan)
        assert L.OP_BIND_DEV in seq and L.OP_MKNOD not in seq

    def test_no_mount_namespace_chroots(self, tmp_path):
        linux = {"namespaces": [{"type": "pid"}]}
        seq = ops(build(tmp_path, linux=linux, hostname=None))
        assert L.OP_CHROOT in seq and L.OP_PIVOT_ROOT not in seq


class TestRootfs:
    def test_order_of_the_rootfs_setup(self, tmp_path):
        seq = ops(build(tmp_path))
        assert seq.index(L.OP_MAKE_PARENT_PRIVATE) < seq.index(L.OP_SET_ROOT)
        assert seq.index(L.OP_SET_ROOT) < seq.index(L.OP_PIVOT_ROOT)
        assert seq.index(L.OP_PIVOT_ROOT) < seq.index(L.OP_READY)
        assert seq.index(L.OP_READY) < seq.index(L.OP_WAIT_FIFO)
        assert seq[-1] == L.OP_EXEC

    def test_no_pivot_moves_the_root(self, tmp_path):
        spec = make_spec(tmp_path)
        opts = P.Options(cid="c1", bundle=str(tmp_path), no_pivot=True)
        seq = ops(P.build(spec, opts))
        assert L.OP_MOVE_ROOT in seq and L.OP_PIVOT_ROOT not in seq

    def test_proc_mount(self, tmp_path):
        plan = build(tmp_path)
        mounts = [s for s in plan.steps if s[0] == L.OP_MOUNT
                  and s[2] == b"/proc"]
        assert mounts[0][3] == b"proc"
        assert mounts[0][6] & L.MNT_MKDIR

    def test_bind_source_is_bundle_relative(self, tmp_path):
        (tmp_path / "data").mkdir()
        mounts = [{"destination": "/data", "type": "bind",
                   "source": "data", "options": ["rbind", "ro"]}]
        plan = build(tmp_path, mounts=mounts)
        step = [s for s in plan.steps if s[0] == L.OP_MOUNT
                and s[2] == b"/data"][0]
        assert step[1] == str(tmp_path / "data").encode()
        assert step[6] & L.MNT_BIND and step[6] & L.MNT_MKDIR

    def test_missing_bind_source_names_the_field(self, tmp_path):
        mounts = [{"destination": "/x", "type": "bind", "source": "/nope",
                   "options": ["bind"]}]
        with pytest.raises(ConfigError, match=r"mounts\[0\]\.source"):
            build(tmp_path, mounts=mounts)

    def test_default_devices_and_links(self, tmp_path):
        plan = build(tmp_path)
        nodes = {s[1] for s in plan.steps if s[0] == L.OP_MKNOD}
        assert {b"/dev/null", b"/dev/zero", b"/dev/tty"} <= nodes
        links = {s[2]: s[1] for s in plan.steps if s[0] == L.OP_SYMLINK}
        assert links[b"/dev/ptmx"] == b"pts/ptmx"
        assert links[b"/dev/fd"] == b"/proc/self/fd"

    @pytest.mark.parametrize("field, value, message", [
        ("major", -1, "wildcard"),
        ("minor", -1, "wildcard"),
        ("minor", -3, "-3 is not a device number"),
        ("major", 1 << 32, "is not a device number"),
    ])
    def test_device_numbers_name_the_field(self, tmp_path, field, value,
                                           message):
        device = {"path": "/dev/foo", "type": "c", "major": 1, "minor": 3}
        device[field] = value
        linux = {"namespaces": [{"type": "mount"}, {"type": "uts"}],
                 "devices": [device]}
        with pytest.raises(PyruncError,
                           match=rf"linux\.devices\[0\]\.{field}: .*"
                           rf"{message}"):
            build(tmp_path, linux=linux)


    @pytest.mark.parametrize("path, made", [
        ("/dev//foo/./bar", b"/dev/foo/bar"),
        ("/dev/x/../foo", b"/dev/foo"),
        ("/dev/../../../tmp/foo", None),
        ("/dev/..", None),
        ("dev/foo", None),
    ])
    def test_device_paths_are_cleaned(self, tmp_path, path, made):
        device = {"path": path, "type": "c", "major": 1, "minor": 3}
        linux = {"namespaces": [{"type": "mount"}, {"type": "uts"}],
                 "devices": [device]}
        if made is None:
            with pytest.raises(PyruncError,
                               match=r"linux\.devices\[0\]\.path: must "
                               r"be below /dev"):
                build(tmp_path, linux=linux)
            return
        plan = build(tmp_path, linux=linux)
        nodes = {s[1] for s in plan.steps if s[0] == L.OP_MKNOD}
        assert made in nodes


class TestProcess:
    def test_unknown_rlimit_names_the_field(self, tmp_path):
        process = {"args": ["sh"], "cwd": "/",
                   "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1,
                                "hard": 1}]}
        with pytest.raises(PyruncError, match=r"process\.rlimits\[0\]"):
            build(tmp_path, process=process)

    def test_credentials_then_capabilities(self, tmp_path):
        process = {"args": ["sh"], "cwd": "/",
                   "user": {"uid": 1000, "gid": 100,
                            "additionalGids": [5, 6]},
                   "capabilities": {"bounding": ["CAP_KILL"],
                                    "effective": ["CAP_KILL"],
                                    "permitted": ["CAP_KILL"]}}
        plan = build(tmp_path, process=process)
        seq = ops(plan)
        assert seq.index(L.OP_CAPS_BOUNDING) < seq.index(L.OP_SET_USER)
        assert seq.index(L.OP_SET_USER) < seq.index(L.OP_CAPS_APPLY)
        user = [s for s in plan.steps if s[0] == L.OP_SET_USER][0]
        assert user[:3] == (L.OP_SET_USER, 1000, 100)
        caps = [s for s in plan.steps if s[0] == L.OP_CAPS_APPLY][0]
        assert caps[1] == 1 << 5

    def test_unknown_capability_is_skipped(self, tmp_path, pyrunc_logs):
        process = {"args": ["sh"], "cwd": "/",
                   "capabilities": {"bounding": ["CAP_NOPE", "CAP_KILL"]}}
        plan = build(tmp_path, process=process)
        bounding = [s for s in plan.steps if s[0] == L.OP_CAPS_BOUNDING][0]
        assert bounding[1] == 1 << 5
        assert "CAP_NOPE" in pyrunc_logs.text

    def test_home_comes_from_passwd(self, tmp_path):
        etc = tmp_path / "rootfs" / "etc"
        etc.mkdir(parents=True)
        (etc / "passwd").write_text("app:x:1000:1000::/home/app:/bin/sh\n")
        process = {"args": ["sh"], "cwd": "/", "user": {"uid": 1000,
                                                          "gid": 1000}}
        plan = build(tmp_path, process=process)
        exec_step = plan.steps[-1]
        assert b"HOME=/home/app" in exec_step[2]

    def test_preserved_fds_stay_open(self, tmp_path):
        spec = make_spec(tmp_path)
        opts = P.Options(cid="c1", bundle=str(tmp_path), preserve_fds=2)
        plan = P.build(spec, opts)
        assert (L.OP_CLOSE_FDS, 5, -1, -1) in plan.steps
