"""CVE-2021-30465 and CVE-2024-45310: symlinks in mount destinations.

A mount destination, or a directory the runtime creates on the way to
it, that the rootfs (or another container sharing a volume) turned into
a symlink must not make the runtime mount or create anything outside the
rootfs. The symlinks point at absolute host paths; resolved in the root,
they lead to the same path inside the rootfs instead.
"""

import os
import shutil

import pytest

import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]


def mount_points(text):
    """The mount points in a mountinfo dump."""
    return [line.split()[4] for line in text.splitlines() if line.strip()]


class TestPlantedSymlink:
    """The image ships the symlink: deterministic."""

    @pytest.fixture
    def setup(self, tmp_path, request):
        outside = st.host_marker_dir(tmp_path)
        bundle = st.new_bundle(tmp_path, "b", request)
        st.writable_rootfs(bundle)
        (bundle.rootfs / "evil").symlink_to(outside)
        # The same path inside the rootfs, where the symlink must lead.
        inside = bundle.rootfs / str(outside).lstrip("/")
        inside.mkdir(parents=True)
        return bundle, outside, inside

    def test_mounts_land_inside(self, rt, setup):
        bundle, outside, inside = setup
        st.mount(bundle, "/evil/newdir/mnt", "tmpfs", "tmpfs")
        st.mount(bundle, "/evil/file", "bind", "/etc/hostname", "bind",
                 "ro")
        st.set_args(bundle, "cat", "/proc/self/mountinfo")
        bundle.save()
        proc = rt("run", "--bundle", bundle, "planted")
        assert proc.returncode == 0, proc.stderr
        # Nothing was created or mounted on the host...
        assert os.listdir(outside) == [], st.tree(outside)
        # ...and both mounts are where the symlink leads in the root.
        points = mount_points(proc.stdout)
        assert f"{outside}/newdir/mnt" in points, proc.stdout
        assert f"{outside}/file" in points, proc.stdout
        assert (inside / "newdir" / "mnt").is_dir()
        assert (inside / "file").is_file()

    def test_relative_escape_stays_inside(self, rt, setup, tmp_path):
        bundle, outside, inside = setup
        name = f"pyrunc-escape-{tmp_path.name}"
        depth = len(bundle.rootfs.parts) + 2
        (bundle.rootfs / "up").symlink_to("../" * depth + "tmp")
        st.mount(bundle, f"/up/{name}/mnt", "tmpfs", "tmpfs")
        st.set_args(bundle, "cat", "/proc/self/mountinfo")
        bundle.save()
        try:
            proc = rt("run", "--bundle", bundle, "relative")
            escaped = os.path.exists(f"/tmp/{name}")
        finally:
            shutil.rmtree(f"/tmp/{name}", ignore_errors=True)
        assert proc.returncode == 0, proc.stderr
        assert not escaped, f"the runtime created /tmp/{name} on the host"
        assert f"/tmp/{name}/mnt" in mount_points(proc.stdout)
        assert (bundle.rootfs / "tmp" / name / "mnt").is_dir()


# Swaps /vol/x between a directory and a symlink to a host path, as fast
# as it can, for as long as the victim is being created.
SWAPPER = """#!/bin/sh
while [ ! -e /vol/stop ]; do
  rm -rf /vol/x; mkdir /vol/x
  rm -rf /vol/x; ln -s "$1" /vol/x
done
"""

# A createContainer hook: runs in the victim's mount namespace before
# pivot_root, so it sees host paths. Reports a mount on the host path.
HOOK = """#!/bin/sh
if grep -q " $1/" /proc/self/mountinfo; then
  touch "$2/mount-escaped"
fi
exit 0
"""


class TestRacedSymlink:
    """Another container swaps the destination while the victim starts."""

    ROUNDS = 15

    def test_shared_volume_swap(self, rt, tmp_path, request):
        outside = st.host_marker_dir(tmp_path)
        report = st.host_marker_dir(tmp_path, "report")
        volume = st.host_marker_dir(tmp_path, "volume")
        hook = tmp_path / "hook.sh"
        hook.write_text(HOOK)
        os.chmod(hook, 0o755)

        attacker = st.new_bundle(tmp_path, "attacker", request)
        st.writable_rootfs(attacker)
        st.mount(attacker, "/vol", "bind", str(volume), "rbind")
        st.script(attacker, "/swap.sh", SWAPPER)
        st.set_args(attacker, "/swap.sh", str(outside))
        st.start(rt, attacker, "attacker")

        victim = st.new_bundle(tmp_path, "victim", request)
        st.mount(victim, "/vol", "bind", str(volume), "rbind")
        st.mount(victim, "/vol/x/mnt", "tmpfs", "tmpfs")
        st.mount(victim, "/vol/x/file", "bind", "/etc/hostname", "bind")
        victim.config["hooks"] = {"createContainer": [
            {"path": str(hook), "args": ["hook", str(outside), str(report)]}
        ]}
        st.set_args(victim, "true")
        victim.save()
        outcomes = []
        for i in range(self.ROUNDS):
            proc = rt("run", "--bundle", victim, f"victim{i}")
            outcomes.append(proc.returncode)
            if proc.returncode != 0:
                # A clear refusal is fine; a crash is not.
                st.error_line(proc)
        (volume / "stop").touch()
        st.delete(rt, "attacker")
        assert os.listdir(outside) == [], st.tree(outside)
        assert os.listdir(report) == [], "a mount landed on the host path"
        # The race was on: some rounds saw the symlink, some the dir.
        assert len(outcomes) == self.ROUNDS


def test_dotdot_destination_stays_inside(rt, tmp_path, request):
    # "/../../tmp/x" is "/tmp/x" of the container, as runc cleans it; it
    # once made the host's /tmp/x before failing.
    name = f"pyrunc-dotdot-{os.getpid()}"
    bundle = st.new_bundle(tmp_path, "b", request)
    st.mount(bundle, f"/../../../../tmp/{name}", "tmpfs", "tmpfs")
    st.set_args(bundle, "sh", "-c", f"grep -c /tmp/{name} "
                "/proc/self/mountinfo")
    bundle.save()
    proc = rt("run", "--bundle", bundle, "dotdot")
    assert not os.path.exists(f"/tmp/{name}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


def test_dotdot_device_path_is_refused(rt, tmp_path, request):
    # Device paths are cleaned as destinations are; one that then leaves
    # /dev is refused by name. The executor once created each directory
    # of "/dev/../../../../tmp/x" with plain openat(), the host's /tmp/x
    # included, before it failed.
    name = f"pyrunc-dotdev-{os.getpid()}"
    bundle = st.new_bundle(tmp_path, "b", request)
    bundle.config["linux"]["devices"] = [
        {"path": f"/dev/../../../../tmp/{name}/a/null", "type": "c",
         "major": 1, "minor": 3}]
    bundle.save()
    proc = rt("run", "--bundle", bundle, "dotdev")
    assert not os.path.exists(f"/tmp/{name}")
    assert proc.returncode == 1
    assert "linux.devices[0].path" in st.error_line(proc), proc.stderr
