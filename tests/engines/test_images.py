"""scripts/make-image.sh: a local OCI archive of the busybox rootfs.

The archive is what `ctr images import` and `podman load` read in the
other engine tests; here its layout is checked on its own, and read back
with skopeo, a third reader of OCI archives.
"""

import gzip
import io
import json
import tarfile

import pytest

import enginekit

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def read_archive(path):
    """Return {member name: bytes} of the archive's regular files."""
    found = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.isfile():
                name = member.name.removeprefix("./")
                found[name] = tar.extractfile(member).read()
    return found


def blob(files, digest):
    algo, _, hexdigest = digest.partition(":")
    return files[f"blobs/{algo}/{hexdigest}"]


def test_layout_index_and_layer(images):
    files = read_archive(images[enginekit.BUSYBOX_REF])
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    (desc,) = index["manifests"]
    assert desc["annotations"] == {
        "io.containerd.image.name": enginekit.BUSYBOX_REF,
        "org.opencontainers.image.ref.name": enginekit.BUSYBOX_REF,
    }
    assert desc["platform"]["os"] == "linux"
    manifest = json.loads(blob(files, desc["digest"]))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert config["architecture"] == desc["platform"]["architecture"]
    (layer,) = manifest["layers"]
    data = gzip.decompress(blob(files, layer["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    assert members["bin/busybox"].isfile()
    assert members["bin/sh"].issym()
    assert members["bin/sh"].linkname == "busybox"
    assert members["bin/busybox"].uid == 0


def test_pause_image_command(images):
    files = read_archive(images[enginekit.PAUSE_REF])
    index = json.loads(files["index.json"])
    manifest = json.loads(blob(files, index["manifests"][0]["digest"]))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    assert config["config"]["Cmd"] == list(enginekit.PAUSE_CMD)


def test_skopeo_reads_the_archive(images):
    if enginekit.missing("skopeo"):
        pytest.skip(f"skopeo is not installed: {enginekit.SETUP_HINT}")
    ref = f"oci-archive:{images[enginekit.BUSYBOX_REF]}"
    proc = enginekit.run(["skopeo", "inspect", "--config", ref])
    assert proc.returncode == 0, proc.stderr
    config = json.loads(proc.stdout)
    assert config["os"] == "linux"
    assert config["config"]["WorkingDir"] == "/"
