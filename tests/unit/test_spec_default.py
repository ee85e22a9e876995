"""default_spec() against the output of Debian's `runc spec`."""

import json
import os
import shutil
import subprocess

import pytest

from pyrunc.spec.default import default_spec

RUNC = shutil.which("runc")


def runc_spec(tmp_path, *args):
    subprocess.run(
        [RUNC, "spec", *args],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return (tmp_path / "config.json").read_text()


@pytest.mark.runc
@pytest.mark.skipif(RUNC is None, reason="runc is not installed")
class TestAgainstRunc:
    @pytest.mark.parametrize("rootless", [False, True])
    def test_same_json(self, tmp_path, rootless):
        args = ["--rootless"] if rootless else []
        theirs = json.loads(runc_spec(tmp_path, *args))
        assert default_spec(rootless=rootless) == theirs

    @pytest.mark.parametrize("rootless", [False, True])
    def test_same_bytes(self, tmp_path, rootless):
        # runc writes json.MarshalIndent with a tab and no final newline.
        args = ["--rootless"] if rootless else []
        theirs = runc_spec(tmp_path, *args)
        ours = json.dumps(default_spec(rootless=rootless), indent="\t")
        assert ours == theirs


class TestShape:
    def test_terminal_sh(self):
        spec = default_spec(cgroup2=False)
        assert spec["process"]["terminal"] is True
        assert spec["process"]["args"] == ["sh"]

    def test_cgroup_ns_on_v2(self):
        types = [
            ns["type"]
            for ns in default_spec(cgroup2=True)["linux"]["namespaces"]
        ]
        assert types[-1] == "cgroup"
        types = [
            ns["type"]
            for ns in default_spec(cgroup2=False)["linux"]["namespaces"]
        ]
        assert "cgroup" not in types

    def test_rootless(self):
        spec = default_spec(rootless=True, cgroup2=False)
        linux = spec["linux"]
        assert "resources" not in linux
        assert linux["uidMappings"] == [
            {"containerID": 0, "hostID": os.geteuid(), "size": 1}
        ]
        assert linux["gidMappings"][0]["hostID"] == os.getegid()
        types = [ns["type"] for ns in linux["namespaces"]]
        assert "network" not in types
        assert types[-1] == "user"
        sys_mount = [m for m in spec["mounts"] if m["destination"] == "/sys"]
        assert sys_mount[0]["options"][0] == "rbind"
        pts = [m for m in spec["mounts"] if m["destination"] == "/dev/pts"]
        assert "gid=5" not in pts[0]["options"]

    def test_fresh_objects(self):
        one = default_spec()
        one["process"]["capabilities"]["bounding"].append("X")
        one["linux"]["maskedPaths"].append("/x")
        two = default_spec()
        assert "X" not in two["process"]["capabilities"]["bounding"]
        assert "X" not in two["process"]["capabilities"]["ambient"]
        assert "/x" not in two["linux"]["maskedPaths"]
