"""PullImage from a registry, as root: a loopback registry, skopeo.

A registry (Debian's docker-registry, on a free port of 127.0.0.1,
storage in a tmp dir) gets the project's busybox image, built by
scripts/make-image.sh and pushed with skopeo. The server under test
lists that registry as insecure (plain HTTP) and as the mirror of a
registry name that does not exist, as critest's fixed image names need.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2 as pb

pytestmark = [pytest.mark.root, pytest.mark.no_residue]

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
MIRRORED = "registry.pyrunc.invalid"
REPO_PATH = "pyrunc/busybox"

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A loopback registry holding the project's busybox image.

    Returns (host:port, manifest digest of the pushed image).
    """
    for tool, package in ((REGISTRY, "docker-registry"),
                          (SKOPEO, "skopeo")):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"registry pulls need {tool}: install the "
                        f"{package} package (scripts/cri-setup.sh)")
    if os.geteuid() != 0:
        pytest.skip("pyrunc-cri tests need root")
    base = tmp_path_factory.mktemp("registry")
    archive = base / "image.tar"
    made = subprocess.run(
        ["bash", str(REPO / "scripts" / "make-image.sh"), str(archive),
         "localhost/pyrunc-busybox:latest", "--", "/bin/sh"],
        capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"scripts/make-image.sh failed: {made.stderr[-500:]}")
    port = _free_port()
    config = base / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=base / "data", port=port))
    log = open(base / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY, "serve", str(config)],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log)
    try:
        if not _wait_port(port, proc):
            pytest.fail("docker-registry did not listen: "
                        + (base / "registry.log").read_text()[-1000:])
        host = f"127.0.0.1:{port}"
        digest_file = base / "digest"
        subprocess.run(
            [SKOPEO, "copy", "--quiet", "--dest-tls-verify=false",
             "--digestfile", str(digest_file), f"oci-archive:{archive}",
             f"docker://{host}/{REPO_PATH}:1"],
            check=True, capture_output=True)
        yield host, digest_file.read_text().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cri_config(registry):
    host, _ = registry
    keys = f'insecure_registries = ["{host}"]'
    tables = f'[registry_mirrors]\n"{MIRRORED}" = ["http://{host}"]\n'
    return keys, tables


def _status(cri, ref):
    return cri.im.ImageStatus(pb.ImageStatusRequest(
        image=pb.ImageSpec(image=ref))).image


class TestPull:
    def test_pull_tag_and_run(self, cri, registry):
        host, _ = registry
        ref = f"{host}/{REPO_PATH}:1"
        image_id = cri.pull(ref)
        image = _status(cri, ref)
        assert image.id == image_id
        assert image.repo_tags == [ref]
        assert image.repo_digests[0].startswith(f"{host}/{REPO_PATH}@")
        # No layout is left behind under the image root.
        tmp = cri.base / "state" / "images" / "tmp"
        assert not tmp.exists() or not os.listdir(tmp)
        cfg = cri.pod_config("pulled")
        sid = cri.run_pod(cfg)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"], image=ref)
        res = cri.exec(cid, "echo", "pulled")
        assert res.stdout == b"pulled\n"

    def test_pull_through_mirror(self, cri, registry):
        ref = f"{MIRRORED}/{REPO_PATH}:1"
        image_id = cri.pull(ref)
        assert _status(cri, ref).id == image_id
        # The image keeps the name it was asked for, not the mirror's.
        assert _status(cri, ref).repo_tags == [ref]

    def test_pull_by_digest(self, cri, registry):
        host, digest = registry
        ref = f"{host}/{REPO_PATH}@{digest}"
        image_id = cri.pull(ref)
        image = _status(cri, ref)
        assert image.id == image_id
        assert ref in image.repo_digests
        assert not image.repo_tags

    def test_pull_errors_name_the_image(self, cri, registry):
        host, _ = registry
        missing = f"{host}/{REPO_PATH}:nosuchtag"
        with pytest.raises(grpc.RpcError) as exc:
            cri.pull(missing)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        assert f"`{missing}`" in exc.value.details()
        # The same registry under a name not listed as insecure: skopeo
        # insists on TLS, which the registry does not speak.
        port = host.rsplit(":", 1)[1]
        secure = f"localhost:{port}/{REPO_PATH}:1"
        with pytest.raises(grpc.RpcError) as exc:
            cri.pull(secure)
        assert exc.value.code() == grpc.StatusCode.UNKNOWN
        assert f"`{secure}`" in exc.value.details()
        assert "localhost" in exc.value.details()
        assert not cri.im.ListImages(pb.ListImagesRequest(
            filter=pb.ImageFilter(image=pb.ImageSpec(image=secure)))).images
