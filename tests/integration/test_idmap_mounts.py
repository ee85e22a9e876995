"""Idmapped bind mounts: a mount's uidMappings/gidMappings, idmap, ridmap.

The maps read as the kernel's mount idmapping (and runc 1.2) reads them:
an id stored on the source filesystem is a `containerID`, and the mount
shows it as the `hostID`, which the container's user namespace (if any)
then maps as usual. So {containerID: 1000, hostID: 0} shows the host
user 1000's files as root's in a container without a user namespace,
and root's new files land on the host as 1000's; with the usual user
namespace (container root is host 100000), {containerID: 1000, hostID:
100000} does the same. runc's own test reads {containerID: 0, hostID:
100000} the same way: a file root owns on the host shows as 100000.

ext4 and tmpfs take idmapped mounts since Linux 5.12 and 6.3; the test
directory must be on such a filesystem (it is below /tmp).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers

pytestmark = [pytest.mark.root]

HOST_USER = 1000
USERNS_BASE = 100000
USERNS = [{"containerID": 0, "hostID": USERNS_BASE, "size": 65536}]


def one(container_id, host_id):
    return [{"containerID": container_id, "hostID": host_id, "size": 1}]


@pytest.fixture
def top():
    """A directory the container's root can reach (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pyrunc-idmap-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def volume(top):
    """A host directory owned by HOST_USER, with one file of theirs and
    one of root's."""
    path = top / "vol"
    path.mkdir()
    (path / "theirs").write_text("x")
    (path / "roots").write_text("x")
    for p in (path, path / "theirs"):
        os.chown(p, HOST_USER, HOST_USER)
    return path


@pytest.fixture
def bundle(top, default_bundle, request):
    return helpers.make_bundle(
        top / "bundle", source=default_bundle,
        cgroups_path=helpers.cgroup_name(request.node.name))


def supports_idmap(path):
    """Whether path is on a filesystem known to take idmapped mounts
    (a kernel of 6.3 or later is assumed for tmpfs)."""
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(path)],
                            capture_output=True, text=True).stdout.strip()
    return fstype in ("ext2/ext3", "tmpfs", "xfs", "btrfs")


@pytest.fixture(autouse=True)
def _needs_idmap_fs():
    if not supports_idmap("/tmp"):
        pytest.skip("/tmp's filesystem does not support idmapped mounts")


def add_volume(bundle, volume, uid=None, gid=None, options=("bind",),
               destination="/vol"):
    mount = {"destination": destination, "type": "bind",
             "source": str(volume), "options": list(options)}
    if uid is not None:
        mount["uidMappings"] = uid
    if gid is not None:
        mount["gidMappings"] = gid
    bundle.config["mounts"].append(mount)
    # The container's root may not be allowed to create it.
    (bundle.rootfs / destination.lstrip("/")).mkdir(exist_ok=True)
    return len(bundle.config["mounts"]) - 1


def use_userns(bundle):
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = USERNS
    linux["gidMappings"] = USERNS


def run_ok(pyrunc_cmd, bundle, script):
    bundle.set_args("sh", "-c", script)
    proc = pyrunc_cmd.run(bundle)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("userns", [False, True], ids=["host", "userns"])
def test_host_user_shows_as_root(pyrunc_cmd, bundle, volume, userns):
    if userns:
        use_userns(bundle)
        maps = one(HOST_USER, USERNS_BASE)
    else:
        maps = one(HOST_USER, 0)
    add_volume(bundle, volume, uid=maps, gid=maps)
    out = run_ok(pyrunc_cmd, bundle,
                 "stat -c %u:%g /vol/theirs /vol; id -u; "
                 "echo new > /vol/made-inside; "
                 "grep -c ' /vol .*idmapped' /proc/self/mountinfo")
    theirs, vol, uid, idmapped = out.split()
    assert theirs == vol == "0:0"
    assert uid == "0"
    assert idmapped == "1"
    made = os.stat(volume / "made-inside")
    assert (made.st_uid, made.st_gid) == (HOST_USER, HOST_USER)


@pytest.mark.parametrize("userns", [False, True], ids=["host", "userns"])
def test_unmapped_ids_show_as_overflow(pyrunc_cmd, bundle, volume, userns):
    if userns:
        use_userns(bundle)
        maps = one(HOST_USER, USERNS_BASE)
    else:
        maps = one(HOST_USER, 0)
    add_volume(bundle, volume, uid=maps, gid=maps)
    out = run_ok(pyrunc_cmd, bundle, "stat -c %u /vol/roots")
    with open("/proc/sys/kernel/overflowuid") as f:
        assert out.strip() == f.read().strip()


def test_mapping_of_root_to_a_host_id(pyrunc_cmd, bundle, volume):
    # The spec's direction, as runc's "simple idmap mount [no userns]":
    # an id on disk is a containerID, shown as the hostID.
    maps = one(0, HOST_USER)
    os.chown(volume, 0, 0)
    add_volume(bundle, volume, uid=maps, gid=maps)
    out = run_ok(pyrunc_cmd, bundle, "stat -c %u:%g /vol/roots")
    assert out.strip() == f"{HOST_USER}:{HOST_USER}"


def test_idmap_option_takes_the_container_maps(pyrunc_cmd, bundle, volume):
    use_userns(bundle)
    # The container's root has no CAP_DAC_OVERRIDE here: it needs to
    # own the directory to write to it.
    os.chown(volume, 0, 0)
    add_volume(bundle, volume, options=["rbind", "idmap"])
    out = run_ok(pyrunc_cmd, bundle,
                 "stat -c %u /vol/roots /vol/theirs; "
                 "touch /vol/made-inside")
    assert out.split() == ["0", str(HOST_USER)]
    # Without the idmap, the container's root would own nothing here and
    # could not create files (host root is not mapped).
    assert os.stat(volume / "made-inside").st_uid == 0


def test_ridmap_maps_the_submounts(pyrunc_cmd, bundle, volume):
    sub = volume / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755",
                    "idmap-sub", str(sub)], check=True)
    try:
        (sub / "f").write_text("x")
        os.chown(sub / "f", HOST_USER, HOST_USER)
        maps = one(HOST_USER, 0)
        add_volume(bundle, volume, uid=maps, gid=maps,
                   options=["rbind", "ridmap"], destination="/r")
        add_volume(bundle, volume, uid=maps, gid=maps,
                   options=["rbind", "idmap"], destination="/i")
        out = run_ok(pyrunc_cmd, bundle,
                     "stat -c %u /r/theirs /r/sub/f /i/theirs /i/sub/f")
        # idmap maps the top mount of an rbind only, as with runc.
        assert out.split() == ["0", "0", "0", str(HOST_USER)]
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=False)


def test_no_tree_fd_reaches_the_container(pyrunc_cmd, bundle, volume):
    maps = one(HOST_USER, 0)
    for i in range(10):
        add_volume(bundle, volume, uid=maps, gid=maps,
                   destination=f"/vol{i}")
    out = run_ok(pyrunc_cmd, bundle, "ls /proc/self/fd | wc -l; "
                 "stat -c %u /vol9/theirs")
    count, uid = out.split()
    # 0, 1, 2 and the fd of ls's own listing.
    assert int(count) == 4
    assert uid == "0"


def refused(pyrunc_cmd, bundle, field):
    cid = helpers.unique_id("idmap")
    proc = pyrunc_cmd.run(bundle, cid)
    assert proc.returncode == 1
    assert field in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # Nothing left behind: no state (the residue check looks for
    # mounts, cgroups and processes).
    assert pyrunc_cmd.container_ids() == []
    return proc.stderr


def test_mappings_on_a_tmpfs_refused(pyrunc_cmd, bundle):
    maps = one(HOST_USER, 0)
    bundle.config["mounts"].append({
        "destination": "/t", "type": "tmpfs", "source": "tmpfs",
        "uidMappings": maps, "gidMappings": maps})
    bundle.save()
    index = len(bundle.config["mounts"]) - 1
    err = refused(pyrunc_cmd, bundle, f"mounts[{index}].uidMappings")
    assert "bind mounts" in err


def test_uid_maps_alone_refused(pyrunc_cmd, bundle, volume):
    index = add_volume(bundle, volume, uid=one(HOST_USER, 0))
    bundle.save()
    refused(pyrunc_cmd, bundle, f"mounts[{index}].gidMappings")


def test_idmap_without_a_user_namespace_refused(pyrunc_cmd, bundle,
                                                 volume):
    index = add_volume(bundle, volume, options=["bind", "idmap"])
    bundle.save()
    refused(pyrunc_cmd, bundle, f"mounts[{index}].options")


def test_maps_the_kernel_refuses(pyrunc_cmd, bundle, volume):
    # Overlapping ranges: only the kernel says no, when the runtime
    # writes the maps of the mount's user namespace.
    overlap = [{"containerID": 0, "hostID": 1000, "size": 10},
               {"containerID": 5, "hostID": 2000, "size": 10}]
    index = add_volume(bundle, volume, uid=overlap, gid=one(0, 1000))
    bundle.save()
    err = refused(pyrunc_cmd, bundle, f"mounts[{index}].uidMappings")
    assert "uid_map" in err


def test_missing_source_refused(pyrunc_cmd, bundle, top):
    index = add_volume(bundle, top / "nope", uid=one(0, 1), gid=one(0, 1))
    bundle.save()
    refused(pyrunc_cmd, bundle, f"mounts[{index}].source")


@pytest.fixture
def shared_volume(top):
    """A shared tmpfs owned by HOST_USER: a bidirectional volume."""
    path = top / "shared"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755",
                    "idmap-shared", str(path)], check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)
    os.chown(path, HOST_USER, HOST_USER)
    yield path
    subprocess.run(["umount", "-R", "-l", str(path)], check=False)


def host_mounts_under(path):
    return [m.point for m in helpers.read_mounts()
            if m.point.startswith(str(path) + "/")]


@pytest.mark.parametrize("propagation", ["rslave", "rshared"])
def test_container_mounts_reach_the_host_only_when_shared(
        pyrunc_cmd, bundle, shared_volume, propagation):
    # The tree is cloned in the host's mount namespace: it must get the
    # propagation a bind made in the container's would have.
    bundle.config["linux"]["rootfsPropagation"] = propagation
    maps = one(HOST_USER, 0)
    add_volume(bundle, shared_volume, uid=maps, gid=maps,
               options=["rbind", "idmap"])
    caps = bundle.config["process"]["capabilities"]
    for name in caps:
        caps[name] = sorted(set(caps[name]) | {"CAP_SYS_ADMIN"})
    bundle.set_args("sh", "-c", "mkdir /vol/sub && "
                    "mount -t tmpfs inner /vol/sub && touch /vol/mounted && "
                    "sleep 30")
    cid = helpers.unique_id("idmap")
    pyrunc_cmd("run", "-d", "--bundle", bundle, cid, check=True)
    inner = str(shared_volume / "sub")
    try:
        for _ in range(100):
            if (shared_volume / "mounted").exists():
                break
            subprocess.run(["sleep", "0.05"])
        assert (shared_volume / "mounted").exists()
        seen = host_mounts_under(shared_volume)
        if propagation == "rshared":
            assert seen == [inner]
        else:
            assert seen == []
    finally:
        pyrunc_cmd("delete", "--force", cid)
        subprocess.run(["umount", "-l", inner], check=False)
