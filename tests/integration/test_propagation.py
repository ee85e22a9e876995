"""linux.rootfsPropagation: rshared carries a container's mounts out.

A bidirectional volume (Kubernetes' Bidirectional mount propagation,
CRI's PROPAGATION_BIDIRECTIONAL) is a bind of a shared host mount with
rootfsPropagation "rshared": a mount made inside it in the container
shows on the host. The container's own mounts (proc, dev, ...) must not.
Compared with runc on the same bundle.
"""

import os
import subprocess

import pytest

import helpers

pytestmark = [pytest.mark.root, pytest.mark.runc]


@pytest.fixture
def shared_dir(tmp_path):
    """A tmpfs on tmp_path/shared, made a shared mount."""
    path = tmp_path / "shared"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "shared-vol", str(path)],
                   check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)
    yield path
    subprocess.run(["umount", "-R", "-l", str(path)], check=False)


def host_mounts_under(path):
    return [m.point for m in helpers.read_mounts()
            if m.point.startswith(str(path) + "/")]


def test_rshared_volume_reaches_host(runtime, bundle, shared_dir,
                                     tmp_path):
    bundle.config["linux"]["rootfsPropagation"] = "rshared"
    bundle.config["mounts"].append({
        "destination": "/vol", "type": "bind", "source": str(shared_dir),
        "options": ["rbind", "rshared"]})
    caps = bundle.config["process"]["capabilities"]
    for name in caps:
        caps[name] = sorted(set(caps[name]) | {"CAP_SYS_ADMIN"})
    bundle.set_args("sh", "-c", "mkdir -p /vol/sub && "
                    "mount -t tmpfs inner /vol/sub && sleep 30")
    cid = helpers.unique_id("prop")
    runtime("run", "-d", "--bundle", bundle, cid, check=True)
    try:
        inner = shared_dir / "sub"
        seen = []
        for _ in range(100):
            seen = host_mounts_under(shared_dir)
            if str(inner) in seen:
                break
            subprocess.run(["sleep", "0.05"])
        assert str(inner) in seen, seen
        # Only the volume's own mount came out: not proc, dev or the
        # rootfs bind.
        leaked = [m.point for m in helpers.read_mounts()
                  if m.point.startswith(str(bundle.rootfs) + "/")]
        assert leaked == [], leaked
    finally:
        runtime("delete", "--force", cid)
        subprocess.run(["umount", "-l", str(shared_dir / "sub")],
                       check=False)
