"""What a process sees inside the container: pyrunc against runc.

Each test runs the same probe on the same bundle through both runtimes
and compares the output, so any difference from runc shows up as a diff.
"""

import os
import re
import subprocess

import pytest

from helpers import unique_id

pytestmark = [pytest.mark.root, pytest.mark.runc]

PROBE = r"""
echo "ids: $(id)"
echo "hostname: $(hostname)"
echo "cwd: $(pwd)"
echo "umask: $(umask)"
grep -E '^(Cap|NoNewPrivs|Groups|Seccomp:)' /proc/self/status
set -- $(cat /proc/self/stat)
echo "sid-is-pid: $([ "$6" = "$1" ] && echo yes || echo no)"
echo "pgrp-is-pid: $([ "$5" = "$1" ] && echo yes || echo no)"
echo "pid: $$"
ls /proc/self/fd | sort -n | tr '\n' ' '; echo
ulimit -a
env | grep -v '^PWD=' | grep -v '^SHLVL=' | sort
ls -ln /dev | awk '{print $1, $3, $4, $5, $6, $NF}' | sed 1d
"""

MOUNT_PROBE = "cat /proc/self/mountinfo"


def run_both(bundle, pyrunc_cmd, runc_cmd, *args):
    """Run args in the bundle with each runtime; return both results."""
    bundle.set_args(*args)
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        proc = rt.run(bundle, unique_id())
        results[rt.name] = proc
    return results["pyrunc"], results["runc"]


def normalize_mounts(text):
    """mountinfo without ids and device numbers, which differ per run."""
    lines = []
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        root, point, opts = fields[3], fields[4], fields[5]
        fstype, source, sopts = fields[sep + 1], fields[sep + 2], \
            fields[sep + 3]
        lines.append(" ".join([root, point, opts, fstype, source, sopts]))
    return lines


class TestInside:
    def test_probe_matches_runc(self, bundle, pyrunc_cmd, runc_cmd):
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", PROBE)
        assert theirs.returncode == 0, theirs.stderr
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout.splitlines() == theirs.stdout.splitlines()

    def test_mountinfo_matches_runc(self, bundle, pyrunc_cmd, runc_cmd):
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", MOUNT_PROBE)
        assert mine.returncode == 0, mine.stderr
        assert normalize_mounts(mine.stdout) == \
            normalize_mounts(theirs.stdout)

    def test_user_groups_rlimits_match_runc(self, bundle, pyrunc_cmd,
                                            runc_cmd):
        process = bundle.config["process"]
        process["user"] = {"uid": 1000, "gid": 1000,
                           "additionalGids": [10, 20], "umask": 0o027}
        process["cwd"] = "/tmp/work/dir"
        process["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
        ]
        process["env"].append("FOO=bar baz")
        bundle.config["hostname"] = "probe-host"
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", PROBE)
        assert theirs.returncode == 0, theirs.stderr
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout.splitlines() == theirs.stdout.splitlines()

    def test_capabilities_match_runc(self, bundle, pyrunc_cmd, runc_cmd):
        caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_KILL"]
        bundle.config["process"]["capabilities"] = {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": caps[:2], "ambient": caps[:1]}
        bundle.config["process"]["noNewPrivileges"] = False
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "grep", "-E", "^(Cap|NoNewPrivs)",
                                "/proc/self/status")
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == theirs.stdout
        assert re.search(r"CapAmb:\s+0*1\b", mine.stdout)

    def test_exit_status_is_mirrored(self, bundle, pyrunc_cmd, runc_cmd):
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", "exit 42")
        assert theirs.returncode == 42
        assert mine.returncode == 42

    def test_init_ignores_its_own_sigkill(self, bundle, pyrunc_cmd,
                                          runc_cmd):
        """The container's pid 1 cannot be killed from inside."""
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", "kill -9 $$; echo alive")
        assert theirs.stdout == "alive\n"
        assert (mine.returncode, mine.stdout) == \
            (theirs.returncode, theirs.stdout)

    def test_readonly_rootfs(self, bundle, pyrunc_cmd, runc_cmd):
        bundle.config["root"]["readonly"] = True
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", "touch /x 2>&1; echo $?")
        assert mine.stdout == theirs.stdout
        assert mine.stdout.strip().endswith("1")

    def test_masked_and_readonly_paths(self, bundle, pyrunc_cmd, runc_cmd):
        probe = ("cat /proc/kcore 2>&1 | wc -c; ls /sys/firmware | wc -l;"
                 " echo 1 > /proc/sys/kernel/ns_last_pid 2>&1; echo $?")
        mine, theirs = run_both(bundle, pyrunc_cmd, runc_cmd,
                                "sh", "-c", probe)
        assert mine.stdout == theirs.stdout


class TestMemoryFloor:
    def test_512k_memory_limit_runs(self, bundle, pyrunc_cmd):
        """The launcher charges the container almost nothing: crun runs
        with 512 KiB, runc fails; pyrunc must run."""
        bundle.config["linux"]["resources"] = {
            "memory": {"limit": 524288}}
        bundle.set_args("echo", "it works")
        proc = pyrunc_cmd.run(bundle, unique_id())
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "it works\n"


TMPFS_PROBE = r"""
stat -c '%n %a' /covered /covered/sub /fresh /ro /via-link /sys/fs/cgroup
grep -E ' /(covered|fresh|ro|real)' /proc/self/mountinfo | cut -d' ' -f5,6
touch /ro/x 2>&1 | sed 's/^touch: //'
"""


def test_tmpfs_modes_and_read_only_tmpfs_match_runc(bundle, pyrunc_cmd,
                                                     runc_cmd):
    # runc gives a tmpfs the mode of the directory it covers (over a
    # mode= option too), mounts a read-only tmpfs writable and makes it
    # read-only only once every mount is in place.
    rootfs = bundle.path / "rootfs"
    for name, mode in (("covered", 0o750), ("ro", 0o711),
                       ("real", 0o705)):
        (rootfs / name).mkdir()
        (rootfs / name).chmod(mode)
    (rootfs / "via-link").symlink_to("/real")
    bundle.config["mounts"] += [
        {"destination": "/covered", "type": "tmpfs", "source": "tmpfs",
         "options": ["mode=1777"]},
        {"destination": "/covered/sub", "type": "tmpfs",
         "source": "tmpfs"},
        {"destination": "/ro", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "nosuid"]},
        {"destination": "/ro/inner", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/via-link", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro"]},
    ]
    bundle.config["mounts"].append(
        {"destination": "/fresh", "type": "tmpfs", "source": "tmpfs"})
    bundle.set_args("sh", "-c", TMPFS_PROBE)
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        # Each runtime makes the missing directories itself.
        for name in ("covered/sub", "ro/inner", "fresh"):
            if (rootfs / name).exists():
                (rootfs / name).rmdir()
        results[rt.name] = rt.run(bundle, unique_id())
    mine, theirs = results["pyrunc"], results["runc"]
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.splitlines() == theirs.stdout.splitlines()
    assert "/covered 750" in mine.stdout
    assert "/sys/fs/cgroup 555" in mine.stdout
    assert "Read-only file system" in mine.stdout


def test_foreground_terminal_needs_a_terminal(bundle, pyrunc_cmd,
                                              runc_cmd):
    # process.terminal in the foreground, no terminal anywhere: the same
    # error as runc, before anything is created.
    bundle.config["process"]["terminal"] = True
    bundle.set_args("true")
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        proc = rt("run", "--bundle", bundle, unique_id(),
                  start_new_session=True, timeout=20)
        text = proc.stderr.replace(rt.name, "RUNTIME")
        results[rt.name] = (proc.returncode, text.split("msg=", 1)[-1])
        assert rt.container_ids() == []
    assert results["pyrunc"] == results["runc"]
    assert results["pyrunc"] == (
        1, '"RUNTIME run failed: open /dev/tty: no such device or '
        'address"\n')


def test_tmpfs_on_dangling_symlinks_matches_runc(bundle, pyrunc_cmd,
                                                 runc_cmd):
    # runc resolves a destination's symlinks inside the rootfs and makes
    # what a dangling one points to; ".." in a link stops at the root.
    rootfs = bundle.path / "rootfs"
    escape = unique_id("escape")
    (rootfs / "dangle").symlink_to("/nonexistent/dir")
    (rootfs / "reldangle").symlink_to("../../made/here")
    (rootfs / "escdangle").symlink_to(f"/../../../../{escape}")
    for destination in ("/dangle", "/reldangle/sub", "/escdangle"):
        bundle.config["mounts"].append(
            {"destination": destination, "type": "tmpfs",
             "source": "tmpfs"})
    bundle.set_args("sh", "-c", "grep -E 'nonexistent|made|escape' "
                    "/proc/self/mountinfo | cut -d' ' -f5")
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        for made in ("nonexistent", "made", escape):
            if (rootfs / made).exists():
                subprocess.run(["rm", "-rf", str(rootfs / made)],
                               check=True)
        results[rt.name] = rt.run(bundle, unique_id())
        assert not os.path.exists(f"/{escape}")
    mine, theirs = results["pyrunc"], results["runc"]
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.splitlines() == theirs.stdout.splitlines()
    assert mine.stdout.splitlines() == [
        "/nonexistent/dir", "/made/here/sub", f"/{escape}"]
    assert (rootfs / escape).is_dir()


def test_links_through_resolved_parents_match_runc(bundle, pyrunc_cmd,
                                                   runc_cmd):
    # A relative link is read from the directory it really sits in, not
    # from the path that led to it; a file bind onto a dangling link
    # makes the file where the link points.
    rootfs = bundle.path / "rootfs"
    (rootfs / "x" / "y").mkdir(parents=True)
    (rootfs / "a").symlink_to("x/y")
    (rootfs / "x" / "y" / "l").symlink_to("../q/r")
    (rootfs / "fl").symlink_to("/madefile/f")
    bundle.config["mounts"] += [
        {"destination": "/a/l/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/fl", "type": "bind", "source": "/etc/hostname",
         "options": ["bind", "ro"]},
    ]
    bundle.set_args("sh", "-c", "grep -E '/x/|/madefile' "
                    "/proc/self/mountinfo | cut -d' ' -f5")
    results = {}
    for rt in (runc_cmd, pyrunc_cmd):
        for made in ("q", "x/q", "madefile"):
            subprocess.run(["rm", "-rf", str(rootfs / made)], check=True)
        results[rt.name] = rt.run(bundle, unique_id())
        assert not (rootfs / "q").exists()
    mine, theirs = results["pyrunc"], results["runc"]
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.splitlines() == theirs.stdout.splitlines()
    assert mine.stdout.splitlines() == ["/x/q/r/sub", "/madefile/f"]


def test_masked_and_readonly_links_match_runc(bundle, pyrunc_cmd,
                                              runc_cmd):
    # runc mounts over a masked or read-only path with mount(2), which
    # follows a symlink: it is the link's target that gets hidden or
    # write-protected. A link that leads nowhere is skipped.
    rootfs = bundle.path / "rootfs"
    (rootfs / "etc" / "secret").write_text("secret\n")
    (rootfs / "rodir").mkdir()
    (rootfs / "mk").symlink_to("/etc/secret")
    (rootfs / "rol").symlink_to("/rodir")
    (rootfs / "gone").symlink_to("/nowhere")
    linux = bundle.config["linux"]
    linux["maskedPaths"] = linux.get("maskedPaths", []) + ["/mk", "/gone"]
    linux["readonlyPaths"] = linux.get("readonlyPaths", []) + [
        "/rol", "/gone"]
    bundle.config["root"]["readonly"] = False
    mine, theirs = run_both(
        bundle, pyrunc_cmd, runc_cmd, "sh", "-c",
        "echo secret: $(cat /etc/secret); "
        "touch /rodir/x 2>/dev/null && echo rodir writable; "
        "ls /nowhere 2>&1 | wc -l")
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout
    assert mine.stdout.splitlines() == ["secret:", "1"]
