"""LSM labels on this host, as runc 1.1.5 handles them, seen in --log.

Which LSMs are active decides what runc does with the labels:

- process.apparmorProfile: written to /proc/self/attr/[apparmor/]exec
  whether or not AppArmor is enabled; without it the kernel refuses the
  write and the container fails to start.
- process.selinuxLabel: refused by the validator when SELinux is
  disabled ("selinux label is specified in config, but selinux is
  disabled or not supported"), for create and for exec.
- linux.mountLabel: added as context="..." to the mounts whatever the
  host; without SELinux the kernel refuses the first labelled mount.

pyrunc does the same and, where it goes ahead knowing the kernel will
refuse, says so with a warning line in the --log file before the error.
The tests that need a host without an LSM skip where it is enabled
(the unit tests in tests/unit/test_plan_lsm.py cover that side).
"""

import json
import os

import pytest

from pyrunc.process import plan as P

pytestmark = [pytest.mark.root]

LABEL = "system_u:system_r:container_t:s0"
FILE_LABEL = "system_u:object_r:container_file_t:s0"

no_apparmor = pytest.mark.skipif(P.apparmor_enabled(),
                                 reason="AppArmor is enabled here")
no_selinux = pytest.mark.skipif(P.selinux_enabled(),
                                reason="SELinux is enabled here")


def active_lsms():
    """The LSMs the kernel runs, or None without securityfs."""
    try:
        with open("/sys/kernel/security/lsm") as f:
            return f.read().strip().split(",")
    except OSError:
        return None


def run_logged(rt, bundle, tmp_path, fmt="text"):
    log = tmp_path / f"{rt.name}.log"
    proc = rt("--log", log, "--log-format", fmt, "run", "--bundle", bundle,
              "lsm")
    text = log.read_text() if log.exists() else ""
    return proc, text.splitlines()


def levels(lines, fmt="text"):
    if fmt == "json":
        return [json.loads(line)["level"] for line in lines]
    return [line.split("level=", 1)[1].split()[0] for line in lines]


def test_host_lsms_agree_with_the_probes():
    lsms = active_lsms()
    if lsms is not None:
        assert P.apparmor_enabled() == ("apparmor" in lsms)
        assert P.selinux_enabled() <= ("selinux" in lsms)
    if not os.path.isdir("/sys/kernel/security/apparmor"):
        assert not P.apparmor_enabled()
    if not os.path.exists("/sys/fs/selinux/enforce"):
        assert not P.selinux_enabled()


@no_apparmor
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_apparmor_profile_without_apparmor(bundle, pyrunc_cmd, tmp_path,
                                           fmt):
    bundle.config["process"]["apparmorProfile"] = "docker-default"
    bundle.set_args("true")
    proc, lines = run_logged(pyrunc_cmd, bundle, tmp_path, fmt)
    assert proc.returncode == 1
    assert levels(lines, fmt) == ["warning", "error"]
    assert "AppArmor is not enabled" in lines[0]
    assert "/proc/self/attr/" in lines[1]
    assert "Traceback" not in proc.stderr


@no_apparmor
@pytest.mark.runc
def test_apparmor_profile_like_runc(bundle, pyrunc_cmd, runc_cmd, tmp_path):
    bundle.config["process"]["apparmorProfile"] = "docker-default"
    bundle.set_args("true")
    ours, _ = run_logged(pyrunc_cmd, bundle, tmp_path)
    theirs, lines = run_logged(runc_cmd, bundle, tmp_path)
    assert ours.returncode == theirs.returncode == 1
    assert "apparmor" in lines[-1] and "/proc/self/attr/exec" in lines[-1]


@no_selinux
def test_selinux_label_without_selinux(bundle, pyrunc_cmd, tmp_path):
    bundle.config["process"]["selinuxLabel"] = LABEL
    bundle.set_args("true")
    proc, lines = run_logged(pyrunc_cmd, bundle, tmp_path)
    assert proc.returncode == 1
    # Refused before anything runs: no warning, one error naming the field.
    assert levels(lines) == ["error"]
    assert "process.selinuxLabel" in lines[0]
    assert "selinux is disabled or not supported" in lines[0]


@no_selinux
@pytest.mark.runc
def test_exec_process_label_without_selinux(bundle, runtime):
    bundle.set_args("sleep", "30")
    runtime("run", "-d", "--bundle", bundle, "lsm", check=True)
    try:
        proc = runtime("exec", "--process-label", LABEL, "lsm", "true")
    finally:
        runtime("delete", "--force", "lsm")
    assert proc.returncode == 255
    assert "selinux is disabled or not supported" in proc.stderr


@no_selinux
def test_mount_label_without_selinux(bundle, pyrunc_cmd, tmp_path):
    bundle.config["linux"]["mountLabel"] = FILE_LABEL
    bundle.set_args("true")
    proc, lines = run_logged(pyrunc_cmd, bundle, tmp_path)
    assert proc.returncode == 1
    assert levels(lines) == ["warning", "error"]
    assert "SELinux is not enabled" in lines[0]
    # The first mount that takes a label is the /dev tmpfs.
    assert "/dev" in lines[1]
