"""The default bundle is sound on its own: built right, and runc runs it."""

import json
import os
import shutil
import stat
import struct
import subprocess
import time

import pytest

import helpers

PT_INTERP = 3


def build(dest, **env):
    """Run build-bundle.sh into dest and return the CompletedProcess."""
    return subprocess.run(
        ["bash", str(helpers.BUILD_SCRIPT), str(dest)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, **env}, timeout=120)


def has_pt_interp(path):
    """Return whether the ELF at path asks for a dynamic loader."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    assert data[:4] == b"\x7fELF"
    end = "<" if data[5] == 1 else ">"
    assert data[4] == 2, "expected a 64-bit ELF"
    phoff, = struct.unpack_from(end + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            return True
    return False


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A bundle built from scratch by the script, shared by this module."""
    dest = tmp_path_factory.mktemp("built") / "busybox"
    proc = build(dest)
    assert proc.returncode == 0, proc.stderr
    return dest


class TestBuild:
    def test_rootfs_layout(self, built):
        rootfs = built / "rootfs"
        for name in ("bin", "dev", "etc", "proc", "sys", "tmp", "root",
                     "run", "var"):
            assert (rootfs / name).is_dir(), name
        assert stat.S_IMODE(os.stat(rootfs / "tmp").st_mode) == 0o1777

    def test_every_applet_is_linked(self, built):
        bb = built / "rootfs" / "bin" / "busybox"
        applets = subprocess.run(
            [str(bb), "--list"], capture_output=True, text=True,
            check=True).stdout.split()
        assert "sh" in applets and "grep" in applets
        for name in applets:
            if name == "busybox":
                continue
            link = built / "rootfs" / "bin" / name
            assert os.readlink(link) == "busybox", name

    def test_users_and_groups(self, built):
        etc = built / "rootfs" / "etc"
        passwd = {line.split(":")[2]: line.split(":")[0]
                  for line in (etc / "passwd").read_text().splitlines()}
        assert passwd == {"0": "root", "1000": "test", "65534": "nobody"}
        groups = {line.split(":")[2]
                  for line in (etc / "group").read_text().splitlines()}
        assert groups == {"0", "1000", "65534"}
        assert (etc / "hostname").read_text() == "pyrunc\n"

    def test_config(self, built):
        config = json.loads((built / "config.json").read_text())
        assert config["process"]["terminal"] is False
        assert config["hostname"] == "pyrunc"
        assert config["root"]["path"] == "rootfs"
        args = config["process"]["args"]
        assert args[:2] == ["sh", "-c"]
        assert "hostname" in args[2] and "mountinfo" in args[2]

    def test_busybox_is_static(self, built):
        bb = built / "rootfs" / "bin" / "busybox"
        assert not has_pt_interp(bb)
        if shutil.which("file"):
            out = subprocess.run(["file", "-L", str(bb)],
                                 capture_output=True, text=True).stdout
            assert "statically linked" in out

    def test_second_run_is_a_fast_no_op(self, built):
        before = os.stat(built / "rootfs").st_ino
        start = time.monotonic()
        proc = build(built)
        elapsed = time.monotonic() - start
        assert proc.returncode == 0, proc.stderr
        assert "up to date" in proc.stderr
        assert os.stat(built / "rootfs").st_ino == before
        assert elapsed < 5

    def test_config_is_refreshed(self, built):
        cfg = built / "config.json"
        original = cfg.read_text()
        cfg.write_text("{}")
        proc = build(built)
        assert proc.returncode == 0, proc.stderr
        assert cfg.read_text() == original

    def test_refuses_dynamic_busybox(self, tmp_path):
        proc = build(tmp_path / "b", BUSYBOX="/bin/ls")
        assert proc.returncode != 0
        assert "dynamically linked" in proc.stderr
        assert not (tmp_path / "b").exists()


@pytest.mark.root
@pytest.mark.runc
class TestRunc:
    def test_runc_runs_the_bundle(self, bundle, runc_cmd):
        proc = runc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[:3] == helpers.EXPECTED_HEAD
        assert len(lines) == 4
        assert int(lines[3]) > 5

    def test_cgroup_is_relative_to_ours(self, bundle, runc_cmd):
        name = bundle.config["linux"]["cgroupsPath"]
        assert not name.startswith("/")
        bundle.set_args("cat", "/proc/self/cgroup")
        proc = runc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        mine = open("/proc/self/cgroup").read().splitlines()
        theirs = proc.stdout.splitlines()
        assert len(theirs) == len(mine)
        for own, child in zip(sorted(mine), sorted(theirs)):
            base = own.split(":", 2)[2].rstrip("/")
            assert child.split(":", 2)[2] == f"{base}/{name}"
