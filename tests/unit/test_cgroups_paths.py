"""Where the container cgroup goes: mode detection and runc's path rules."""

import json
import os

import pytest

from pyrunc.cgroups import detect, manager_from_dict, new_manager
from pyrunc.errors import CgroupError, ConfigError

from test_cgroups_fake import FakeCgroupfs, put


class TestDetectMode:
    def test_v1(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1")
        assert detect.detect_mode(fake.root) == "v1"

    def test_hybrid(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "hybrid")
        assert detect.detect_mode(fake.root) == "hybrid"

    def test_v2(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v2")
        assert detect.detect_mode(fake.root) == "v2"

    def test_cached_per_root(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v2")
        assert detect.detect_mode(fake.root) == "v2"
        os.unlink(fake.path("cgroup.controllers"))
        assert detect.detect_mode(fake.root) == "v2"

    def test_new_manager_detects(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "hybrid")
        m = new_manager(
            None,
            "c1",
            root=fake.root,
            proc_self_cgroup=fake.proc_self_cgroup,
            mountinfo=fake.mountinfo,
        )
        assert m.mode == "hybrid"
        assert "" in m.paths()


class TestCleanPath:
    @pytest.mark.parametrize(
        "raw, clean",
        [
            ("", ""),
            ("a", "a"),
            ("a/b/", "a/b"),
            ("a/../../b", "b"),
            ("../../etc", "etc"),
            ("/a/../..", "/"),
            ("//x//y", "/x/y"),
            ("/x/./y/../z", "/x/z"),
        ],
    )
    def test_like_runc(self, raw, clean):
        assert detect.clean_path(raw) == clean

    def test_default_is_container_id(self):
        assert detect.inner_path(None, "abc") == "abc"
        assert detect.inner_path("", "abc") == "abc"

    def test_systemd_form_refused(self):
        with pytest.raises(ConfigError) as exc:
            detect.inner_path("system.slice:docker:abc", "abc")
        assert str(exc.value) == (
            "linux.cgroupsPath: systemd cgroup paths need --systemd-cgroup, "
            "which is not supported"
        )

    @pytest.mark.parametrize("path", ["..", "/", "/..", "."])
    def test_own_or_root_cgroup_refused(self, path):
        with pytest.raises(ConfigError):
            detect.inner_path(path, "abc")


class TestParse:
    def test_proc_cgroup(self):
        text = (
            "4:memory:/a/b\n"
            "2:cpu,cpuacct:/c\n"
            "1:name=systemd:/user.slice\n"
            "0::/unified/x\n"
        )
        got = detect.parse_proc_cgroup(text)
        assert got == {
            "memory": "/a/b",
            "cpu": "/c",
            "cpuacct": "/c",
            "name=systemd": "/user.slice",
            "": "/unified/x",
        }

    def test_proc_cgroup_invalid(self):
        with pytest.raises(CgroupError, match="invalid cgroup entry"):
            detect.parse_proc_cgroup("garbage\n")

    def test_mount_roots(self):
        text = (
            "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - "
            "cgroup cgroup rw,memory\n"
            "36 31 0:33 / /sys/fs/cgroup/my\\040dir rw shared:1 - cgroup "
            "cgroup rw,devices\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        )
        assert detect.parse_mount_roots(text) == {
            "/sys/fs/cgroup/memory": "/docker/abc",
            "/sys/fs/cgroup/my dir": "/",
            "/sys/fs/cgroup/unified": "/",
        }


class TestV1Paths:
    def test_relative_joins_own_cgroup_per_controller(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1", own={"memory": "/process_api/x"})
        m = fake.new_manager("pyrunc-t")
        paths = m.paths()
        assert paths["memory"] == fake.path(
            "memory", "process_api", "x", "pyrunc-t"
        )
        assert paths["cpu"] == fake.path("cpu", "pyrunc-t")
        assert paths["name=systemd"] == fake.path("systemd", "pyrunc-t")
        assert "" not in paths
        # Not mounted on the fake host, so left out.
        assert "hugetlb" not in paths and "net_cls" not in paths

    def test_default_path_is_id(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1", own={"pids": "/p"})
        m = fake.new_manager(None, cid="myid")
        assert m.paths()["pids"] == fake.path("pids", "p", "myid")

    def test_absolute_ignores_own_cgroup(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1", own={"memory": "/process_api/x"})
        m = fake.new_manager("/a/b")
        assert m.paths()["memory"] == fake.path("memory", "a", "b")
        assert m.paths()["devices"] == fake.path("devices", "a", "b")

    def test_dotdot_cannot_escape(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1", own={"memory": "/own"})
        m = fake.new_manager("../../x")
        assert m.paths()["memory"] == fake.path("memory", "own", "x")

    def test_controller_missing_from_proc_self_is_skipped(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1")
        put(fake.proc_self_cgroup, "5:devices:/\n4:memory:/m\n")
        m = fake.new_manager("c")
        assert sorted(m.paths()) == ["devices", "memory"]

    def test_devices_missing_is_fatal(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1")
        put(fake.proc_self_cgroup, "4:memory:/m\n")
        with pytest.raises(
            CgroupError, match="mountpoint for devices not found"
        ):
            fake.new_manager("c")

    def test_comounted_with_symlinks(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1")
        for name in ("cpu", "cpuacct"):
            os.rename(fake.path(name), fake.path(name + ".old"))
        os.mkdir(fake.path("cpu,cpuacct"))
        put(fake.path("cpu,cpuacct", "cgroup.procs"), "")
        os.symlink("cpu,cpuacct", fake.path("cpu"))
        os.symlink("cpu,cpuacct", fake.path("cpuacct"))
        m = fake.new_manager("/x")
        assert m.paths()["cpu"] == fake.path("cpu,cpuacct", "x")
        assert m.paths()["cpuacct"] == fake.path("cpu,cpuacct", "x")

    def test_comounted_without_symlink(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v1")
        os.rename(fake.path("cpu"), fake.path("cpu,cpuacct"))
        m = fake.new_manager("/x")
        assert m.paths()["cpu"] == fake.path("cpu,cpuacct", "x")

    def test_mount_root_of_nested_container(self, tmp_path):
        fake = FakeCgroupfs(
            tmp_path, "v1", own={"memory": "/docker/abc/inner"}
        )
        put(
            fake.mountinfo,
            f"35 31 0:32 /docker/abc {fake.path('memory')} rw - cgroup "
            "cgroup rw,memory\n",
        )
        m = fake.new_manager("c")
        assert m.paths()["memory"] == fake.path("memory", "inner", "c")

    def test_hybrid_unified_ignores_own_unified_cgroup(self, tmp_path):
        # runc 1.1.5 puts the container at <unified>/<path> even when it
        # runs in a cgroup2 sub-cgroup itself.
        fake = FakeCgroupfs(tmp_path, "hybrid", own={"": "/sub"})
        m = fake.new_manager("c")
        assert m.paths()[""] == fake.path("unified", "c")
        m = fake.new_manager("/abs/c")
        assert m.paths()[""] == fake.path("unified", "abs", "c")


class TestV2Paths:
    def test_relative_goes_next_to_own_cgroup(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v2", own={"": "/user.slice/me"})
        m = fake.new_manager("c")
        assert m.paths() == {"": fake.path("user.slice", "c")}

    def test_relative_from_root(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v2", own={"": "/"})
        m = fake.new_manager(None, cid="id1")
        assert m.paths() == {"": fake.path("id1")}

    def test_absolute(self, tmp_path):
        fake = FakeCgroupfs(tmp_path, "v2", own={"": "/x/y"})
        m = fake.new_manager("/a/b")
        assert m.paths() == {"": fake.path("a", "b")}


class TestFromDict:
    @pytest.mark.parametrize("mode", ["v1", "hybrid", "v2"])
    def test_round_trip(self, tmp_path, mode):
        fake = FakeCgroupfs(tmp_path, mode)
        m = fake.new_manager("c")
        d = json.loads(json.dumps(m.to_dict()))
        m2 = manager_from_dict(d)
        assert m2.mode == mode
        assert m2.paths() == m.paths()
        assert m2.to_dict() == m.to_dict()
        assert type(m2) is type(m)

    def test_invalid(self):
        with pytest.raises(CgroupError, match="invalid cgroup state"):
            manager_from_dict({"mode": "v1"})
        with pytest.raises(CgroupError, match="unknown mode"):
            manager_from_dict({"mode": "v3", "paths": {}})
