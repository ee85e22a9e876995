"""Fixtures for the pyrunc-cri tests: a server on a tmp socket, a client.

``cri`` starts ``python -m pyrunc.cri.server`` with a tmp config: its
state under a short tmp dir (conmon's attach socket paths are limited),
pyrunc as the runtime, and a CNI network on a host-only bridge this test
creates (no uplink, no masquerade, a private test range), torn down at
the end. The busybox test image is imported with PullImage from an OCI
archive built from the host's busybox. Every test that runs the server
is checked for residue (mounts, cgroups, processes, state dirs).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import helpers

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import crihelpers  # noqa: E402
import image  # noqa: E402

REPO = HERE.parents[1]
SETUP = REPO / "scripts" / "cri-setup.sh"


def _missing():
    """Return what the server needs and this machine lacks, or ''."""
    try:
        import grpc  # noqa: F401
        import cri_api.v1.api_pb2_grpc  # noqa: F401
    except ImportError:
        return "grpcio / container-runtime-interface-api"
    for path in ("/usr/bin/conmon", "/usr/lib/cni/bridge",
                 "/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
                 "/bin/busybox"):
        if not os.access(path, os.X_OK):
            return path
    if helpers.pyrunc_argv() is None:
        return "pyrunc"
    return ""


@pytest.fixture(scope="session")
def cri_ready():
    """Make sure conmon, the CNI plugins and the stubs are installed.

    As root, a missing piece is installed with scripts/cri-setup.sh (the
    same step a developer runs); otherwise the test is skipped.
    """
    if os.geteuid() != 0:
        pytest.skip("pyrunc-cri tests need root")
    if _missing() and SETUP.exists():
        subprocess.run(["bash", str(SETUP)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, check=False)
    missing = _missing()
    if missing:
        pytest.skip(f"pyrunc-cri needs {missing}: run scripts/cri-setup.sh")


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory):
    """An OCI archive of the busybox test image."""
    path = tmp_path_factory.mktemp("cri-image") / "busybox.tar"
    image.build_busybox(path)
    return path


@pytest.fixture
def cri_config():
    """Extra configuration of the ``cri`` server: (top-level keys, tables).

    A test module or class overrides this fixture to add keys.
    """
    return "", ""


@pytest.fixture
def cri(request, cri_ready, busybox_archive, residue_watch, cri_config):
    """A running pyrunc-cri with the busybox image imported."""
    base = Path(tempfile.mkdtemp(prefix="cri-", dir="/tmp"))
    residue_watch.prefixes.append(base)
    bridge = f"pcri{uuid.uuid4().hex[:8]}"
    server = crihelpers.CriServer(
        base, bridge=bridge, subnet=crihelpers.free_subnet(),
        cgroup_parent=helpers.cgroup_name(request.node.name),
        pyrunc=helpers.pyrunc_argv()[0], extra_keys=cri_config[0],
        extra_tables=cri_config[1])
    rt = helpers.Runtime("pyrunc", helpers.pyrunc_argv(), server.runtime_root)
    residue_watch.add_runtime(rt)
    try:
        server.start()
        server.pull(f"oci-archive:{busybox_archive}")
        yield server
    finally:
        try:
            server.remove_everything()
        finally:
            server.stop()
            subprocess.run(["ip", "link", "del", bridge],
                           stderr=subprocess.DEVNULL, check=False)
            _wait_no_conmon(base)
            shutil.rmtree(base, ignore_errors=True)


def _wait_no_conmon(base, timeout=10):
    """Wait for the conmons of this test to exit (they outlive the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not crihelpers.conmons_under(base):
            return
        time.sleep(0.1)
