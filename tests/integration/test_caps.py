"""Capabilities and LSM labels, compared with runc 1.1.5 on this host.

The five capability sets go through bounding, setuid with keepcaps,
capset and the ambient raise, in runc's order; what the container's
process ends up with (/proc/self/status) must be what runc gives it.
Names the kernel does not know are skipped with a warning.

This host has neither AppArmor nor SELinux: runc writes an AppArmor
profile anyway (the kernel refuses it), refuses an SELinux process label
and passes a mount label to the mounts (the kernel refuses those). pyrunc
does the same, with a warning that says why it will fail.
"""

import pytest

pytestmark = [pytest.mark.root, pytest.mark.runc]

CAP_LINES = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
SHOW = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"

DEFAULT = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def caps(bounding=DEFAULT, effective=DEFAULT, permitted=DEFAULT,
         inheritable=None, ambient=None):
    out = {"bounding": bounding, "effective": effective,
           "permitted": permitted}
    if inheritable is not None:
        out["inheritable"] = inheritable
    if ambient is not None:
        out["ambient"] = ambient
    return out


CASES = {
    "default bundle": {},
    "inheritable and ambient": {"capabilities": caps(
        inheritable=["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        ambient=["CAP_KILL", "CAP_NET_BIND_SERVICE"])},
    "ambient not inheritable": {"capabilities": caps(
        ambient=["CAP_KILL"])},
    "ambient not permitted": {"capabilities": caps(
        inheritable=["CAP_SYS_ADMIN"], ambient=["CAP_SYS_ADMIN"])},
    "non-root without ambient": {"user": {"uid": 1000, "gid": 1000}},
    "non-root with ambient": {
        "user": {"uid": 1000, "gid": 1000},
        "capabilities": caps(inheritable=DEFAULT, ambient=DEFAULT)},
    "non-root, effective only": {
        "user": {"uid": 1000, "gid": 1000},
        "capabilities": caps(inheritable=["CAP_KILL"],
                             ambient=["CAP_KILL"],
                             effective=["CAP_KILL"])},
    "bounding narrower than permitted": {"capabilities": caps(
        bounding=["CAP_KILL"],
        permitted=["CAP_KILL", "CAP_SYS_ADMIN"],
        effective=["CAP_KILL", "CAP_SYS_ADMIN"])},
    "all sets empty": {"capabilities": caps([], [], [], [], [])},
    "no capabilities object": {"capabilities": None},
    "no new privileges with ambient": {
        "noNewPrivileges": True,
        "capabilities": caps(inheritable=["CAP_KILL"],
                             ambient=["CAP_KILL"])},
    "privileged": {"capabilities": "all"},
}


def apply_case(bundle, case):
    process = bundle.config["process"]
    for key, value in case.items():
        if key == "capabilities" and value is None:
            process.pop("capabilities", None)
        elif key == "capabilities" and value == "all":
            every = available_caps()
            process["capabilities"] = caps(every, every, every, every,
                                           every)
        else:
            process[key] = value
    process["args"] = ["sh", "-c", SHOW]
    bundle.save()


def available_caps():
    """Every capability name this kernel has."""
    from pyrunc.process.caps import NAMES, last_cap

    return list(NAMES[:last_cap() + 1])


def cap_lines(text):
    return [line for line in text.splitlines()
            if line.split(":")[0] in CAP_LINES + ("NoNewPrivs",)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_capability_sets_match_runc(name, bundle, pyrunc_cmd, runc_cmd):
    apply_case(bundle, CASES[name])
    ours = pyrunc_cmd.run(bundle)
    theirs = runc_cmd.run(bundle)
    assert ours.returncode == theirs.returncode, (ours.stderr,
                                                  theirs.stderr)
    assert cap_lines(ours.stdout) == cap_lines(theirs.stdout)
    if theirs.returncode == 0:
        assert len(cap_lines(ours.stdout)) == 6, ours.stdout


def test_unknown_capabilities_warn_and_run(bundle, pyrunc_cmd, runc_cmd):
    capset = caps(DEFAULT + ["CAP_FOO"], DEFAULT + ["CAP_BAR"],
                  DEFAULT + ["CAP_FOO"], ["CAP_BAZ"], ["CAP_BAZ"])
    apply_case(bundle, {"capabilities": capset})
    ours = pyrunc_cmd.run(bundle)
    theirs = runc_cmd.run(bundle)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert cap_lines(ours.stdout) == cap_lines(theirs.stdout)
    assert "level=warning" in ours.stderr, ours.stderr
    for name in ("CAP_FOO", "CAP_BAR", "CAP_BAZ"):
        assert name in ours.stderr
        assert name in theirs.stderr
    assert "Traceback" not in ours.stderr


def test_exec_cap_flag_matches_runc(bundle, pyrunc_cmd, runc_cmd):
    bundle.set_args("sleep", "30")
    for rt in (pyrunc_cmd, runc_cmd):
        rt("run", "-d", "--bundle", bundle, "c", check=True)
    try:
        out = [rt("exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_FOO",
                  "c", "sh", "-c", SHOW) for rt in (pyrunc_cmd, runc_cmd)]
    finally:
        for rt in (pyrunc_cmd, runc_cmd):
            rt("delete", "--force", "c")
    ours, theirs = out
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert cap_lines(ours.stdout) == cap_lines(theirs.stdout)


class TestLsmLabels:
    def both(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.set_args("true")
        return pyrunc_cmd.run(bundle), runc_cmd.run(bundle)

    def test_apparmor_profile(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.config["process"]["apparmorProfile"] = "docker-default"
        ours, theirs = self.both(bundle, pyrunc_cmd, runc_cmd)
        assert ours.returncode == theirs.returncode
        if theirs.returncode != 0:
            assert "/proc/self/attr/" in theirs.stderr
            assert "/proc/self/attr/" in ours.stderr
            assert "level=warning" in ours.stderr
            assert "AppArmor is not enabled" in ours.stderr

    def test_apparmor_profile_on_exec(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.set_args("sleep", "30")
        out = []
        for rt in (pyrunc_cmd, runc_cmd):
            rt("run", "-d", "--bundle", bundle, "c", check=True)
            try:
                out.append(rt("exec", "--apparmor", "docker-default", "c",
                              "true"))
            finally:
                rt("delete", "--force", "c")
        ours, theirs = out
        assert (ours.returncode == 0) == (theirs.returncode == 0)

    def test_selinux_label(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.config["process"]["selinuxLabel"] = \
            "system_u:system_r:container_t:s0"
        ours, theirs = self.both(bundle, pyrunc_cmd, runc_cmd)
        assert ours.returncode == theirs.returncode == 1
        assert "selinux is disabled or not supported" in theirs.stderr
        assert "selinux is disabled or not supported" in ours.stderr

    def test_mount_label(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.config["linux"]["mountLabel"] = \
            "system_u:object_r:container_file_t:s0"
        ours, theirs = self.both(bundle, pyrunc_cmd, runc_cmd)
        assert ours.returncode == theirs.returncode
        if theirs.returncode != 0:
            assert "/dev" in theirs.stderr and "/dev" in ours.stderr
            assert "SELinux is not enabled" in ours.stderr
