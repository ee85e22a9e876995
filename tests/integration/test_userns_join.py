"""Joining an existing user namespace by path, with and without mappings.

containerd and CRI-O put a pod's containers in the pod's user namespace:
they give its path and, often, the same mappings again. Mappings that
disagree with the namespace's own are an error (runc 1.2), as is a path
that is no user namespace.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers

pytestmark = [pytest.mark.root]

HOST_ID = 100000
MAPPING = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]
SHOW = "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user"


@pytest.fixture
def pod(tmp_path, default_bundle, pyrunc_cmd):
    """A running container in a new user namespace, and a second bundle.

    Both live below a directory the namespace's root can reach (pytest's
    tmp_path is private to the host's root).
    """
    top = Path(tempfile.mkdtemp(prefix="pyrunc-userns-", dir="/tmp"))
    os.chmod(top, 0o755)
    bundles = []
    for name in ("pod", "member"):
        bundle = helpers.make_bundle(top / name, source=default_bundle,
                                     cgroups_path=helpers.cgroup_name(name))
        bundles.append(bundle)
    first, second = bundles
    linux = first.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = MAPPING
    linux["gidMappings"] = MAPPING
    first.set_args("sleep", "60")
    subprocess.run(["chown", "-R", "-h", f"{HOST_ID}:{HOST_ID}", str(top)],
                   check=True)
    try:
        pyrunc_cmd("run", "-d", "--bundle", first, "pod", check=True)
        pid = pyrunc_cmd.state("pod")["pid"]
        second.set_args("sh", "-c", SHOW)
        yield second, f"/proc/{pid}/ns/user"
    finally:
        pyrunc_cmd("delete", "--force", "pod")
        shutil.rmtree(top)


def join(bundle, path, uid=None, gid=None):
    linux = bundle.config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"]
                           if ns["type"] != "user"]
    linux["namespaces"].append({"type": "user", "path": path})
    if uid is not None:
        linux["uidMappings"] = uid
    if gid is not None:
        linux["gidMappings"] = gid
    bundle.save()


def check_inside(proc, path):
    assert proc.returncode == 0, proc.stderr
    uid, uid_map, ns = proc.stdout.splitlines()
    assert uid == "0"
    assert uid_map.split() == ["0", str(HOST_ID), "65536"]
    assert ns == os.readlink(path)


def test_join_without_mappings(pod, pyrunc_cmd):
    bundle, path = pod
    join(bundle, path)
    check_inside(pyrunc_cmd.run(bundle), path)


def test_join_with_matching_mappings(pod, pyrunc_cmd):
    bundle, path = pod
    join(bundle, path, uid=MAPPING, gid=MAPPING)
    check_inside(pyrunc_cmd.run(bundle), path)


def test_join_through_a_bind_mounted_ns_file(pod, pyrunc_cmd, tmp_path):
    # Engines pin namespaces by bind-mounting the nsfs file: its maps are
    # read by entering it, not through a pid.
    bundle, path = pod
    pinned = tmp_path / "userns"
    pinned.touch()
    subprocess.run(["mount", "--bind", path, str(pinned)], check=True)
    try:
        join(bundle, str(pinned), uid=MAPPING, gid=MAPPING)
        check_inside(pyrunc_cmd.run(bundle), path)
        other = [{"containerID": 0, "hostID": HOST_ID, "size": 1000}]
        join(bundle, str(pinned), uid=other)
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 1
        assert "incompatible mapping" in proc.stderr
    finally:
        subprocess.run(["umount", str(pinned)], check=True)


@pytest.mark.parametrize("field", ["uid", "gid"])
def test_join_with_mismatched_mappings(pod, pyrunc_cmd, field):
    bundle, path = pod
    other = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    maps = {"uid": MAPPING, "gid": MAPPING, field: other}
    join(bundle, path, **maps)
    proc = pyrunc_cmd.run(bundle)
    assert proc.returncode == 1
    assert f"linux.{field}Mappings" in proc.stderr
    assert "incompatible mapping" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_join_a_path_that_is_no_user_namespace(pod, pyrunc_cmd):
    bundle, path = pod
    join(bundle, path.replace("/user", "/net"), uid=MAPPING, gid=MAPPING)
    proc = pyrunc_cmd.run(bundle)
    assert proc.returncode == 1
    assert "linux.namespaces" in proc.stderr
    assert "Traceback" not in proc.stderr
