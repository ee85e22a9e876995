"""Rootless containers: pyrunc run by an unprivileged user, as runc runs.

The module creates a user (pyrunc-rootless) and removes it afterwards.
Its containers get a user namespace that maps only the user's own uid
and gid, state under $XDG_RUNTIME_DIR/pyrunc, and no cgroups of their own:
this host delegates none, so the container stays in the user's cgroups,
as with runc's rootless cgroup manager.
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers

pytestmark = [pytest.mark.root]

USER = "pyrunc-rootless"
SHOW = ("id; cat /proc/self/uid_map /proc/self/gid_map; "
        "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status")


@pytest.fixture(scope="module")
def user():
    """The unprivileged user, created for this module and removed after."""
    created = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], check=True)
        created = True
    entry = pwd.getpwnam(USER)
    yield entry
    if created:
        subprocess.run(["userdel", USER], check=True)


class AsUser:
    """Runs a runtime CLI as the user, with its own XDG_RUNTIME_DIR."""

    def __init__(self, entry, argv, home, name):
        self.entry = entry
        self.argv = list(argv)
        self.runtime_dir = home / f"run-{name}"
        self.runtime_dir.mkdir(mode=0o700)
        os.chown(self.runtime_dir, entry.pw_uid, entry.pw_gid)

    def env(self):
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(self.runtime_dir),
                "XDG_RUNTIME_DIR": str(self.runtime_dir)}

    def __call__(self, *args, cwd=None, timeout=60):
        with tempfile.TemporaryFile() as out, \
                tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                [*self.argv, *map(os.fspath, args)], cwd=cwd,
                user=self.entry.pw_uid, group=self.entry.pw_gid,
                extra_groups=[], env=self.env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                proc.args, proc.returncode, out.read().decode(),
                err.read().decode())


@pytest.fixture
def home(tmp_path_factory, residue_watch):
    """A directory the user can reach: pytest's tmp_path is 0700 root."""
    path = Path(tempfile.mkdtemp(prefix="pyrunc-rootless-", dir="/tmp"))
    os.chmod(path, 0o755)
    residue_watch.prefixes.append(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pyrunc_user(user, home):
    return AsUser(user, helpers.pyrunc_argv(), home, "pyrunc")


@pytest.fixture
def runc_user(user, home):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    return AsUser(user, [runc], home, "runc")


@pytest.fixture
def bundle(user, home, default_bundle, pyrunc_user):
    """A busybox bundle owned by the user, from `pyrunc spec --rootless`."""
    path = home / "bundle"
    path.mkdir()
    subprocess.run(["cp", "-a", str(default_bundle / "rootfs"), str(path)],
                   check=True)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}",
                    str(path)], check=True)
    proc = pyrunc_user("spec", "--rootless", cwd=path)
    assert proc.returncode == 0, proc.stderr
    b = helpers.Bundle(path)
    b.config["process"]["terminal"] = False
    b.config["process"]["args"] = ["sh", "-c", SHOW]
    b.save()
    return b


def states(runner):
    root = runner.runtime_dir / "pyrunc"
    return sorted(os.listdir(root)) if root.is_dir() else []


def test_spec_matches_runc(pyrunc_user, runc_user, home):
    ours = home / "ours"
    theirs = home / "theirs"
    for path in (ours, theirs):
        path.mkdir()
        os.chown(path, pyrunc_user.entry.pw_uid, pyrunc_user.entry.pw_gid)
    assert pyrunc_user("spec", "--rootless", cwd=ours).returncode == 0
    assert runc_user("spec", "--rootless", cwd=theirs).returncode == 0
    a = json.loads((ours / "config.json").read_text())
    b = json.loads((theirs / "config.json").read_text())
    assert a == b
    uid = pyrunc_user.entry.pw_uid
    assert a["linux"]["uidMappings"] == [
        {"containerID": 0, "hostID": uid, "size": 1}]


def test_run_as_user(pyrunc_user, bundle):
    proc = pyrunc_user("run", "c", cwd=bundle.path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    uid = pyrunc_user.entry.pw_uid
    gid = pyrunc_user.entry.pw_gid
    assert lines[1].split() == ["0", str(uid), "1"]
    assert lines[2].split() == ["0", str(gid), "1"]
    assert states(pyrunc_user) == []


def test_same_as_runc(pyrunc_user, runc_user, bundle):
    ours = pyrunc_user("run", "c", cwd=bundle.path)
    theirs = runc_user("run", "c", cwd=bundle.path)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_mounts_same_as_runc(pyrunc_user, runc_user, bundle):
    bundle.config["process"]["args"] = [
        "sh", "-c", "cut -d' ' -f5,9 /proc/self/mountinfo"]
    bundle.save()
    ours = pyrunc_user("run", "c", cwd=bundle.path)
    theirs = runc_user("run", "c", cwd=bundle.path)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_lifecycle_state_owned_by_user(pyrunc_user, bundle):
    bundle.config["process"]["args"] = ["sleep", "30"]
    bundle.save()
    uid = pyrunc_user.entry.pw_uid
    proc = pyrunc_user("create", "c", cwd=bundle.path)
    assert proc.returncode == 0, proc.stderr
    try:
        cdir = pyrunc_user.runtime_dir / "pyrunc" / "c"
        for path in (cdir, cdir / "exec.fifo", cdir / "state.json"):
            assert path.stat().st_uid == uid, path
        assert pyrunc_user("start", "c").returncode == 0
        state = json.loads(pyrunc_user("state", "c").stdout)
        assert state["status"] == "running"
        proc = pyrunc_user("exec", "c", "sh", "-c", SHOW)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("uid=0(root)")
        assert pyrunc_user("kill", "c", "KILL").returncode == 0
    finally:
        proc = pyrunc_user("delete", "--force", "c")
    assert proc.returncode == 0, proc.stderr
    assert states(pyrunc_user) == []


def test_no_cgroup_of_its_own(pyrunc_user, bundle):
    bundle.config["process"]["args"] = ["cat", "/proc/self/cgroup"]
    bundle.save()
    proc = pyrunc_user("run", "c", cwd=bundle.path)
    assert proc.returncode == 0, proc.stderr
    with open("/proc/self/cgroup") as f:
        ours = f.read()
    # The container shares the cgroups it was started in.
    assert proc.stdout == ours


def test_limits_without_cgroups_fail_clearly(pyrunc_user, bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 1 << 26}}
    bundle.save()
    proc = pyrunc_user("run", "c", cwd=bundle.path)
    assert proc.returncode == 1
    assert "memory" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert states(pyrunc_user) == []


def test_sysfs_falls_back_to_bind(pyrunc_user, bundle):
    # A spec made for root mounts sysfs, which a user namespace without
    # a network namespace of its own may not do: /sys is bound instead.
    mounts = bundle.config["mounts"]
    for index, m in enumerate(mounts):
        if m["destination"] == "/sys":
            mounts[index] = {"destination": "/sys", "type": "sysfs",
                             "source": "sysfs",
                             "options": ["nosuid", "noexec", "nodev", "ro"]}
    bundle.config["process"]["args"] = [
        "sh", "-c", "grep ' /sys ' /proc/self/mountinfo; touch /sys/x"]
    bundle.save()
    proc = pyrunc_user("run", "c", cwd=bundle.path)
    assert " /sys ro," in proc.stdout, proc.stderr
    assert "Read-only file system" in proc.stderr
