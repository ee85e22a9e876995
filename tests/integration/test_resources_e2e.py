"""Resource limits of real containers, on whatever hierarchy the host has.

The same tests run on the v1 hybrid host and, through scripts/vm-run.sh,
on a pure cgroup v2 kernel in a VM: a container with memory 32 MiB, cpu
quota 50000/100000, pids 20 and /dev/null denied reads its limits back
(from inside and from the cgroup files) and is refused /dev/null;
update changes the limits and events --stats reflects them; pause,
resume, ps, kill --all and delete --force of a paused container work.

The library calls (pyrunc.container.*) are tested directly; the CLI
forms are tested too once the CLI has the command. There is no runc
comparison here: runc 1.1.5 opens /dev/null itself during container
init and so cannot start a container that is denied /dev/null.
"""

import json
import os
import threading
import time

import pytest

import helpers
from pyrunc.cgroups import detect_mode
from pyrunc.state.store import Store

MIB = 1024 * 1024

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not os.path.isdir("/sys/fs/cgroup"), reason="needs cgroupfs"
    ),
]

MODE = detect_mode() if os.path.isdir("/sys/fs/cgroup") else None
V2 = MODE == "v2"

# The VM runs TCG: everything is about ten times slower there.
SLOW = 10 if os.environ.get("PYRUNC_VM") else 1


def limited(bundle, args=("sleep", "1000"), deny_null=True, **extra):
    """Configure bundle with the issue's limits and /dev/null denied."""
    cfg = bundle.config
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = False
    linux = cfg.setdefault("linux", {})
    if deny_null:
        # Listing /dev/null among the spec's devices drops runc's
        # default allow rule for it, so that the deny rules apply.
        linux["devices"] = [
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
             "fileMode": 0o666, "uid": 0, "gid": 0},
        ]
    resources = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3,
             "access": "rwm"},
        ],
        "memory": {"limit": 32 * MIB},
        "cpu": {"quota": 50000, "period": 100000},
        "pids": {"limit": 20},
    }
    resources.update(extra)
    linux["resources"] = resources
    bundle.save()
    return bundle


def start(rt, bundle, cid=None):
    cid = cid or helpers.unique_id()
    proc = rt("run", "-d", "--bundle", bundle, cid, timeout=60 * SLOW)
    assert proc.returncode == 0, proc.stderr
    return cid


def cgroup_dirs(rt, cid):
    """controller -> cgroup dir, from pyrunc's state.json."""
    with open(rt.root / cid / "state.json") as f:
        return json.load(f)["cgroup"]["paths"]


def read(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


def host_limits(rt, cid):
    """Return (memory, pids, quota, period) from the cgroup files."""
    dirs = cgroup_dirs(rt, cid)
    if V2:
        path = dirs[""]
        quota, period = read(path, "cpu.max").split()
        return (read(path, "memory.max"), read(path, "pids.max"), quota,
                period)
    return (
        read(dirs["memory"], "memory.limit_in_bytes"),
        read(dirs["pids"], "pids.max"),
        read(dirs["cpu"], "cpu.cfs_quota_us"),
        read(dirs["cpu"], "cpu.cfs_period_us"),
    )


# What the container reads from /sys/fs/cgroup, as (memory, pids,
# quota, period), in each hierarchy's files.
if V2:
    PROBE = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
             "/sys/fs/cgroup/cpu.max")
else:
    PROBE = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
             "/sys/fs/cgroup/pids/pids.max "
             "/sys/fs/cgroup/cpu/cpu.cfs_quota_us "
             "/sys/fs/cgroup/cpu/cpu.cfs_period_us")

# The init of a probing container: it records whether it may read
# /dev/null, then keeps writing the limits it sees to /tmp/limits (in the
# bundle's rootfs, where the test reads them) until it is killed. Nothing
# needs `exec`, so these tests do not depend on it.
PROBE_INIT = (
    "cat /dev/null 2>/tmp/null.err; echo $? >/tmp/null.status; "
    f"while :; do {PROBE} >/tmp/limits.new 2>&1; "
    "mv /tmp/limits.new /tmp/limits; sleep 0.2; done"
)


def probing(bundle, **extra):
    """limited() with PROBE_INIT as the container's process."""
    bundle.config.setdefault("root", {})["readonly"] = False
    return limited(bundle, args=("sh", "-c", PROBE_INIT), **extra)


def wait_file(path, timeout=30):
    deadline = time.monotonic() + timeout * SLOW
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def inside_limits(bundle, want=None):
    """The limits the probing container sees; waits for want if given."""
    path = bundle.rootfs / "tmp" / "limits"
    deadline = time.monotonic() + 30 * SLOW
    while True:
        seen = tuple(wait_file(path).split())
        if want is None or seen == want:
            return seen
        if time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def has_command(rt, name):
    """Tell whether the CLI under test has a subcommand yet."""
    proc = rt(name, "--help")
    return proc.returncode == 0


def status(rt, cid):
    state = rt.state(cid)
    return state and state["status"]


class TestLimits:
    def test_limits_read_back_and_devnull_refused(self, pyrunc_cmd, bundle):
        rt = pyrunc_cmd
        cid = start(rt, probing(bundle))
        try:
            want = (str(32 * MIB), "20", "50000", "100000")
            assert host_limits(rt, cid) == want
            assert inside_limits(bundle, want) == want
            tmp = bundle.rootfs / "tmp"
            assert wait_file(tmp / "null.status").strip() == "1"
            assert "Operation not permitted" in (tmp / "null.err").read_text()
        finally:
            rt("delete", "--force", cid)

    def test_default_devices_still_allowed(self, pyrunc_cmd, bundle):
        rt = pyrunc_cmd
        bundle.config["root"]["readonly"] = False
        # The shell creates /tmp/zero before wc writes to it: write
        # elsewhere and rename, or the test may read it empty.
        script = ("head -c 4 /dev/zero | wc -c >/tmp/zero.new; "
                  "mv /tmp/zero.new /tmp/zero; sleep 1000")
        cid = start(rt, limited(bundle, args=("sh", "-c", script)))
        try:
            assert wait_file(bundle.rootfs / "tmp" / "zero").strip() == "4"
        finally:
            rt("delete", "--force", cid)

    def test_pids_limit_enforced(self, pyrunc_cmd, bundle):
        rt = pyrunc_cmd
        bundle.config["root"]["readonly"] = False
        # sh and two sleeps fill a limit of 3: the third fork fails (and
        # busybox sh gives up there).
        script = ("exec 2>/tmp/fork.err; sleep 30 </dev/zero & "
                  "sleep 30 </dev/zero & sleep 30 </dev/zero & sleep 1000")
        cid = start(rt, limited(bundle, args=("sh", "-c", script),
                                pids={"limit": 3}))
        try:
            path = bundle.rootfs / "tmp" / "fork.err"
            deadline = time.monotonic() + 30 * SLOW
            while "can't fork" not in wait_file(path):
                assert time.monotonic() < deadline, path.read_text()
                time.sleep(0.05)
        finally:
            rt("delete", "--force", cid)


class TestUpdateEvents:
    def check_updated(self, rt, cid, bundle):
        want = (str(64 * MIB), "30", "20000", "100000")
        assert host_limits(rt, cid) == want
        assert inside_limits(bundle, want) == want

    def test_update_library_and_stats(self, pyrunc_cmd, bundle):
        from pyrunc.container import events, update

        rt = pyrunc_cmd
        cid = start(rt, probing(bundle))
        store = Store(rt.root)
        try:
            update.update(store, cid, {
                "memory": {"limit": 64 * MIB},
                "cpu": {"quota": 20000},
                "pids": {"limit": 30},
            })
            # The period is kept when only the quota changes.
            self.check_updated(rt, cid, bundle)
            lines = []
            events.events(store, cid, stats=True, interval=1.0,
                          write=lines.append)
            assert len(lines) == 1
            event = json.loads(lines[0])
            assert event["type"] == "stats" and event["id"] == cid
            data = event["data"]
            assert data["memory"]["usage"]["limit"] == 64 * MIB
            assert data["pids"]["limit"] == 30
            assert data["pids"]["current"] >= 1
            assert list(data) == ["cpu", "cpuset", "memory", "pids",
                                  "blkio", "hugetlb", "intel_rdt",
                                  "network_interfaces"]
            saved = json.loads((rt.root / cid / "state.json").read_text())
            res = saved["config"]["linux"]["resources"]
            assert res["cpu"] == {"quota": 20000, "period": 100000}
            assert res["memory"]["limit"] == 64 * MIB
        finally:
            rt("delete", "--force", cid)

    def test_update_cli_and_events_stats(self, pyrunc_cmd, bundle):
        rt = pyrunc_cmd
        if not has_command(rt, "update") or not has_command(rt, "events"):
            pytest.skip("the CLI has no update/events command yet")
        cid = start(rt, probing(bundle))
        try:
            body = json.dumps({
                "memory": {"limit": 64 * MIB},
                "cpu": {"quota": 20000},
                "pids": {"limit": 30},
            })
            proc = rt("update", "--resources", "-", cid, input=body)
            assert proc.returncode == 0, proc.stderr
            self.check_updated(rt, cid, bundle)
            proc = rt("events", "--stats", cid)
            assert proc.returncode == 0, proc.stderr
            event = json.loads(proc.stdout)
            assert event["data"]["memory"]["usage"]["limit"] == 64 * MIB
            assert event["data"]["pids"]["limit"] == 30
        finally:
            rt("delete", "--force", cid)

    def test_update_stopped_container(self, pyrunc_cmd, bundle):
        from pyrunc.container import update
        from pyrunc.errors import ContainerNotRunning

        rt = pyrunc_cmd
        cid = start(rt, limited(bundle, args=("true",)))
        try:
            deadline = time.monotonic() + 30 * SLOW
            while status(rt, cid) != "stopped":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            with pytest.raises(ContainerNotRunning,
                               match="container not running"):
                update.update(Store(rt.root), cid, {"pids": {"limit": 5}})
        finally:
            rt("delete", "--force", cid)

    def test_oom_event(self, pyrunc_cmd, bundle):
        from pyrunc.container import events

        rt = pyrunc_cmd
        # dd's 64 MiB buffer cannot fit in 16 MiB: the kernel kills dd,
        # and the container lives on until the test kills it.
        script = ("sleep 1; dd if=/dev/zero of=/dev/zero bs=64M count=1; "
                  "sleep 1000")
        cid = start(rt, limited(bundle, args=("sh", "-c", script),
                                memory={"limit": 16 * MIB}))
        lines = []
        stream = threading.Thread(
            target=events.events, args=(Store(rt.root), cid),
            kwargs={"stats": False, "interval": 0.5, "write": lines.append},
            daemon=True)
        try:
            stream.start()
            deadline = time.monotonic() + 30 * SLOW
            while not any('"oom"' in line for line in lines):
                assert time.monotonic() < deadline, lines[-1:]
                time.sleep(0.1)
            assert {"type": "oom", "id": cid} in [json.loads(x)
                                                   for x in lines]
            assert any(json.loads(x)["type"] == "stats" for x in lines)
        finally:
            rt("delete", "--force", cid)
        # The stream ends by itself once the container is gone.
        stream.join(10 * SLOW)
        assert not stream.is_alive()


class TestPauseResumePs:
    def test_library(self, pyrunc_cmd, bundle):
        from pyrunc.container import pause, ps
        from pyrunc.errors import ContainerNotRunning, InvalidState

        rt = pyrunc_cmd
        cid = start(rt, limited(bundle))
        store = Store(rt.root)
        try:
            pids = ps.pids(store, cid)
            assert pids == [rt.state(cid)["pid"]]
            with pytest.raises(InvalidState, match="container not paused"):
                pause.resume(store, cid)
            pause.pause(store, cid)
            assert status(rt, cid) == "paused"
            with pytest.raises(ContainerNotRunning,
                               match="container not running"):
                pause.pause(store, cid)
            assert ps.pids(store, cid) == pids
            pause.resume(store, cid)
            assert status(rt, cid) == "running"
        finally:
            rt("delete", "--force", cid)

    def test_cli(self, pyrunc_cmd, bundle):
        rt = pyrunc_cmd
        for name in ("pause", "resume", "ps"):
            if not has_command(rt, name):
                pytest.skip(f"the CLI has no {name} command yet")
        cid = start(rt, limited(bundle))
        try:
            proc = rt("ps", "--format", "json", cid)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout) == [rt.state(cid)["pid"]]
            assert rt("pause", cid).returncode == 0
            assert status(rt, cid) == "paused"
            proc = rt("pause", cid)
            assert proc.returncode == 1
            assert "container not running" in proc.stderr
            assert rt("resume", cid).returncode == 0
            assert status(rt, cid) == "running"
            proc = rt("resume", cid)
            assert proc.returncode == 1
            assert "container not paused" in proc.stderr
        finally:
            rt("delete", "--force", cid)

    def test_delete_force_paused(self, pyrunc_cmd, bundle):
        from pyrunc.container import pause

        rt = pyrunc_cmd
        cid = start(rt, limited(bundle))
        pause.pause(Store(rt.root), cid)
        assert status(rt, cid) == "paused"
        proc = rt("delete", "--force", cid, timeout=60 * SLOW)
        assert proc.returncode == 0, proc.stderr
        assert rt.state(cid) is None

    def test_kill_paused(self, pyrunc_cmd, bundle):
        from pyrunc.container import pause

        rt = pyrunc_cmd
        cid = start(rt, limited(bundle))
        try:
            pause.pause(Store(rt.root), cid)
            assert rt("kill", cid, "KILL").returncode == 0
            deadline = time.monotonic() + 30 * SLOW
            while status(rt, cid) != "stopped":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            rt("delete", "--force", cid)


class TestKillAll:
    @pytest.mark.parametrize("signal", ["KILL", "TERM"])
    def test_every_process_signalled(self, pyrunc_cmd, bundle, signal):
        from pyrunc.container import ps

        rt = pyrunc_cmd
        # Without a pid namespace the init's death would not take the
        # other processes along: only kill --all reaches them.
        ns = bundle.config["linux"]["namespaces"]
        bundle.config["linux"]["namespaces"] = [
            n for n in ns if n["type"] != "pid"]
        script = "sleep 1000 & sleep 1000 & exec sleep 1000"
        # sh starts background jobs with stdin from /dev/null.
        cid = start(rt, limited(bundle, args=("sh", "-c", script),
                                deny_null=False))
        store = Store(rt.root)
        try:
            deadline = time.monotonic() + 30 * SLOW
            while len(ps.pids(store, cid)) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            pids = ps.pids(store, cid)
            proc = rt("kill", "--all", cid, signal)
            assert proc.returncode == 0, proc.stderr
            deadline = time.monotonic() + 30 * SLOW
            while any(helpers.psutil.pid_exists(p)
                      and helpers.psutil.Process(p).status() != "zombie"
                      for p in pids):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            rt("delete", "--force", cid)
