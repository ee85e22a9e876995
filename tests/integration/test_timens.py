"""A time namespace with linux.timeOffsets (runc 1.2 semantics).

The offsets must be written to /proc/self/timens_offsets after the
namespace is made and before any process enters it; the container's
/proc/uptime (CLOCK_BOOTTIME) and CLOCK_MONOTONIC then read shifted by
them, while the host's do not move.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers

pytestmark = [pytest.mark.root]

DAY = 86400
SHOW = ("cat /proc/uptime; cat /proc/self/timens_offsets; "
        "readlink /proc/self/ns/time")

needs_timens = pytest.mark.skipif(not os.path.exists("/proc/self/ns/time"),
                                  reason="the kernel has no time namespaces")


def host_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def with_time(bundle, offsets=None, args=SHOW):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    if offsets is not None:
        bundle.config["linux"]["timeOffsets"] = offsets
    bundle.set_args("sh", "-c", args)


def parse(stdout):
    lines = stdout.splitlines()
    uptime = float(lines[0].split()[0])
    offsets = {}
    for line in lines[1:3]:
        clock, secs, nsecs = line.split()
        offsets[clock] = (int(secs), int(nsecs))
    return uptime, offsets, lines[3]


@needs_timens
class TestTimeNamespace:
    def test_boottime_offset_shifts_uptime(self, bundle, pyrunc_cmd):
        with_time(bundle, {"boottime": {"secs": 10 * DAY, "nanosecs": 7},
                           "monotonic": {"secs": DAY}})
        before = host_uptime()
        proc = pyrunc_cmd.run(bundle)
        after = host_uptime()
        assert proc.returncode == 0, proc.stderr
        uptime, offsets, ns = parse(proc.stdout)
        assert before + 10 * DAY <= uptime <= after + 10 * DAY + 1
        assert offsets == {"monotonic": (DAY, 0),
                           "boottime": (10 * DAY, 7)}
        assert ns != os.readlink("/proc/self/ns/time")
        # The host's clock did not move.
        assert after - before < 60

    def test_without_offsets(self, bundle, pyrunc_cmd):
        with_time(bundle)
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        uptime, offsets, ns = parse(proc.stdout)
        assert offsets == {"monotonic": (0, 0), "boottime": (0, 0)}
        assert abs(uptime - host_uptime()) < 60
        assert ns != os.readlink("/proc/self/ns/time")

    def test_hooks_and_children_see_the_offsets(self, bundle, pyrunc_cmd):
        # A startContainer hook is the first process to enter the time
        # namespace: the offsets must already be there.
        bundle.config["hooks"] = {"startContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "cat /proc/uptime > /hook-uptime"]}]}
        bundle.config["root"]["readonly"] = False
        with_time(bundle, {"boottime": {"secs": 5 * DAY}},
                  args="cat /hook-uptime; sh -c 'cat /proc/uptime'")
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        hook, child = (float(line.split()[0])
                       for line in proc.stdout.splitlines())
        assert hook > 5 * DAY and child > 5 * DAY

    def test_with_a_user_namespace(self, bundle, pyrunc_cmd):
        # The namespace's root must reach the bundle: pytest's tmp_path
        # is private to the host's root, so use a copy below /tmp.
        top = Path(tempfile.mkdtemp(prefix="pyrunc-timens-", dir="/tmp"))
        try:
            os.chmod(top, 0o755)
            userns = helpers.make_bundle(
                top / "bundle", source=bundle.path,
                cgroups_path=bundle.config["linux"]["cgroupsPath"])
            linux = userns.config["linux"]
            linux["namespaces"].append({"type": "user"})
            mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            linux["uidMappings"] = mapping
            linux["gidMappings"] = mapping
            subprocess.run(["chown", "-R", "-h", "100000:100000",
                            str(userns.path)], check=True)
            with_time(userns, {"boottime": {"secs": DAY}})
            proc = pyrunc_cmd.run(userns)
        finally:
            shutil.rmtree(top)
        assert proc.returncode == 0, proc.stderr
        uptime, offsets, _ = parse(proc.stdout)
        assert offsets["boottime"] == (DAY, 0)
        assert uptime > DAY

    def test_offset_the_kernel_refuses(self, bundle, pyrunc_cmd):
        # A boottime before the boot is refused by the kernel (EINVAL).
        with_time(bundle, {"boottime": {"secs": -100 * 365 * DAY}})
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 1
        assert "timens_offsets" in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_offsets_need_a_time_namespace(self, bundle, pyrunc_cmd):
        bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1}}
        bundle.save()
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 1
        assert "linux.timeOffsets" in proc.stderr

    def test_joining_a_time_namespace_by_path(self, bundle, pyrunc_cmd,
                                              tmp_path):
        # Join the namespace of a first container, by its ns file.
        first = tmp_path / "first"
        other = helpers.make_bundle(first, source=bundle.path,
                                    cgroups_path=helpers.cgroup_name("tns"))
        with_time(other, {"boottime": {"secs": 3 * DAY}}, args="sleep 30")
        pyrunc_cmd("run", "-d", "--bundle", other, "first", check=True)
        try:
            pid = pyrunc_cmd.state("first")["pid"]
            path = f"/proc/{pid}/ns/time"
            bundle.config["linux"]["namespaces"].append(
                {"type": "time", "path": path})
            bundle.set_args("sh", "-c", SHOW)
            proc = pyrunc_cmd.run(bundle)
            assert proc.returncode == 0, proc.stderr
            uptime, offsets, ns = parse(proc.stdout)
            assert offsets["boottime"] == (3 * DAY, 0)
            assert ns == os.readlink(path)
        finally:
            pyrunc_cmd("delete", "--force", "first")

    def test_exec_joins_the_time_namespace(self, bundle, pyrunc_cmd):
        with_time(bundle, {"boottime": {"secs": 2 * DAY}}, args="sleep 30")
        pyrunc_cmd("run", "-d", "--bundle", bundle, "c", check=True)
        try:
            proc = pyrunc_cmd("exec", "c", "cat", "/proc/uptime")
        finally:
            pyrunc_cmd("delete", "--force", "c")
        assert proc.returncode == 0, proc.stderr
        assert float(proc.stdout.split()[0]) > 2 * DAY
