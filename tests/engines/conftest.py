"""Fixtures of the engine tests: images, containerd and podman.

Each engine is started once per module, on directories of its own under
one session directory; every test is checked for residue (mounts,
cgroups, processes, pyrunc state) like the integration tests, with that
directory counted as the test's own.
"""

import os
from pathlib import Path

import pytest

import enginekit
import helpers


@pytest.fixture(scope="session")
def engine_pyrunc():
    """Absolute path of the installed pyrunc CLI."""
    path = enginekit.pyrunc_path()
    if path is None:
        pytest.fail("pyrunc is not installed: run scripts/setup.sh")
    return path


@pytest.fixture(scope="session")
def engine_base(tmp_path_factory):
    """The session directory that holds every engine's private files.

    Short, so that unix socket paths below it stay under 108 bytes.
    """
    return tmp_path_factory.mktemp("eng")


@pytest.fixture(scope="session")
def images(engine_base, default_bundle):
    """The busybox and pause images as OCI archives: {ref: path}."""
    if enginekit.missing("umoci"):
        pytest.skip(f"umoci is not installed: {enginekit.SETUP_HINT}")
    out = engine_base / "images"
    return {
        enginekit.BUSYBOX_REF: enginekit.build_image(
            out / "busybox.tar", enginekit.BUSYBOX_REF),
        enginekit.PAUSE_REF: enginekit.build_image(
            out / "pause.tar", enginekit.PAUSE_REF, enginekit.PAUSE_CMD),
    }


@pytest.fixture(scope="session")
def global_dirs_before():
    """The engines' global directories that existed before the session."""
    before = enginekit.existing_global_dirs()
    yield before
    enginekit.remove_new_global_dirs(before)


@pytest.fixture(scope="module")
def containerd(engine_base, engine_pyrunc, images, global_dirs_before):
    """A private containerd whose runc shim runs pyrunc (recorded)."""
    absent = enginekit.missing("containerd", "ctr",
                               "containerd-shim-runc-v2", "unshare", "ip")
    if absent:
        pytest.skip(f"{', '.join(absent)} not installed: "
                    f"{enginekit.SETUP_HINT}")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = Path(os.path.join(engine_base, "ctrd"))
    base.mkdir()
    recorder = enginekit.Recorder(base / "rec", engine_pyrunc)
    daemon = enginekit.Containerd(
        base, runtime=recorder.path, pyrunc=engine_pyrunc,
        pyrunc_root=base / "pyrunc", env=recorder.env())
    daemon.recorder = recorder
    try:
        daemon.start()
        for ns in ("default", daemon.NAMESPACE_CRI):
            for path in images.values():
                proc = daemon.ctr("images", "import", path, namespace=ns,
                                  timeout=120)
                assert proc.returncode == 0, proc.stderr
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def podman(engine_base, engine_pyrunc, images, global_dirs_before):
    """A private podman whose runtime is pyrunc (recorded)."""
    absent = enginekit.missing("podman", "conmon")
    if absent:
        pytest.skip(f"{', '.join(absent)} not installed: "
                    f"{enginekit.SETUP_HINT}")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = Path(os.path.join(engine_base, "pod"))
    base.mkdir()
    # podman 4.3 leaves --runtime-flag out of conmon's exit command, so
    # `podman container cleanup` would call `delete` without our --root:
    # the recorded wrapper supplies it to calls that name none.
    recorder = enginekit.Recorder(base / "rec", engine_pyrunc,
                                  root=base / "pyrunc")
    # podman's blob info cache ignores --root in 4.3: note whether it was
    # there, so that a run that made it removes it.
    cache = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
    cache_dirs = [cache.parent, cache.parent.parent]
    made = [p for p in [cache, *cache_dirs] if not p.exists()]
    engine = enginekit.Podman(base, runtime=recorder.path,
                              pyrunc=engine_pyrunc,
                              pyrunc_root=base / "pyrunc",
                              env=recorder.env())
    engine.recorder = recorder
    engine.write_config()
    try:
        proc = engine("load", "-i", images[enginekit.BUSYBOX_REF],
                      timeout=120)
        assert proc.returncode == 0, proc.stderr
        yield engine
    finally:
        leftovers = engine("ps", "-aq").stdout.split()
        if leftovers:
            engine("rm", "-f", "-t", "0", *leftovers, timeout=120)
        enginekit.wait_for(lambda: not engine.helpers_alive(), timeout=20,
                           what="conmon to exit")
        enginekit.umount_all_under(base)
        for path in made:
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError:
                    pass
            else:
                path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _engine_residue(request, residue_watch, engine_base):
    """Count the engines' directories and pyrunc roots as the test's."""
    residue_watch.prefixes.append(Path(engine_base))
    for name in ("containerd", "podman"):
        if name not in request.fixturenames:
            continue
        engine = request.getfixturevalue(name)
        roots = [engine.pyrunc_root]
        if name == "containerd":
            roots = [engine.pyrunc_root / "default",
                     engine.pyrunc_root / engine.NAMESPACE_CRI]
        for root in roots:
            residue_watch.add_runtime(
                helpers.Runtime("pyrunc", [engine.pyrunc], root))
    yield
