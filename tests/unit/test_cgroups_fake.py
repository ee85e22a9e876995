"""A fake cgroupfs under a temporary directory, shared by the cgroup tests.

FakeCgroupfs builds the mount layout of a v1, hybrid or v2 host out of
plain directories and files, and patches pyrunc.cgroups.fsutil so that a
mkdir fills the new cgroup with its control files (as the kernel does), an
rmdir takes them away, and every write is recorded in order.
"""

import errno
import os

import pytest

from pyrunc.cgroups import fsutil

UNLIMITED = "9223372036854771712"

V1_LAYOUT = (
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "systemd",
)

# Files of a new cgroup per v1 hierarchy, with their initial content.
V1_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "cpu": {
        "cpu.shares": "1024\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.cfs_quota_us": "-1\n",
        "cpu.rt_period_us": "1000000\n",
        "cpu.rt_runtime_us": "0\n",
    },
    "cpuacct": {"cpuacct.usage": "12345\n"},
    "memory": {
        "memory.limit_in_bytes": UNLIMITED + "\n",
        "memory.memsw.limit_in_bytes": UNLIMITED + "\n",
        "memory.soft_limit_in_bytes": UNLIMITED + "\n",
        "memory.swappiness": "60\n",
        "memory.oom_control": "oom_kill_disable 0\n",
        "memory.usage_in_bytes": "4096\n",
        "memory.max_usage_in_bytes": "8192\n",
    },
    "devices": {"devices.allow": "", "devices.deny": ""},
    "freezer": {"freezer.state": "THAWED\n", "freezer.self_freezing": "0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "blkio": {},
    "systemd": {},
    "unified": {"cgroup.type": "domain\n"},
}

V2_CONTROLLERS = "cpuset cpu io memory pids"

V2_FILES = {
    "cgroup.type": "domain\n",
    "cgroup.controllers": V2_CONTROLLERS + "\n",
    "cgroup.subtree_control": "",
    "cgroup.freeze": "0\n",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.kill": "",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.current": "4096\n",
    "cpu.weight": "100\n",
    "cpu.max": "max 100000\n",
    "cpu.stat": "usage_usec 7\nuser_usec 5\n",
    "pids.max": "max\n",
    "pids.current": "1\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
}


def put(path, text):
    """Write a fake control file (test side, bypassing the recorder)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def get(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class FakeCgroupfs:
    """A fake /sys/fs/cgroup plus /proc/self/cgroup and mountinfo."""

    def __init__(self, base, mode, own=None, monkeypatch=None):
        self.base = str(base)
        self.mode = mode
        self.root = os.path.join(self.base, "cgroup")
        self.proc_self_cgroup = os.path.join(self.base, "self-cgroup")
        self.mountinfo = os.path.join(self.base, "mountinfo")
        self.writes = []
        self.fail = {}
        os.mkdir(self.root)
        put(self.mountinfo, "")
        if mode == "v2":
            self._seed_v2(self.root)
            put(os.path.join(self.root, "cgroup.procs"), "")
        else:
            for name in V1_LAYOUT:
                os.mkdir(os.path.join(self.root, name))
                self._seed_v1(os.path.join(self.root, name), name, top=True)
            if mode == "hybrid":
                unified = os.path.join(self.root, "unified")
                os.mkdir(unified)
                put(os.path.join(unified, "cgroup.controllers"), "hugetlb\n")
                self._seed_v1(unified, "unified", top=True)
        self.set_own(own or {})
        if monkeypatch is not None:
            self.install(monkeypatch)

    # -- layout ------------------------------------------------------------

    def set_own(self, own):
        """Write the fake /proc/self/cgroup; own maps controller -> path."""
        lines = []
        if self.mode != "v2":
            for i, name in enumerate(V1_LAYOUT, start=1):
                key = "name=systemd" if name == "systemd" else name
                lines.append(f"{i}:{key}:{own.get(key, '/')}")
        if self.mode != "v1":
            lines.append(f"0::{own.get('', '/')}")
        put(self.proc_self_cgroup, "\n".join(lines) + "\n")

    def hierarchy(self, path):
        """Return the v1 hierarchy name a path belongs to."""
        rel = os.path.relpath(path, self.root)
        return rel.split("/")[0]

    def _seed_v1(self, path, name, top=False):
        put(os.path.join(path, "cgroup.procs"), "")
        put(os.path.join(path, "tasks"), "")
        for fname, text in V1_FILES.get(name, {}).items():
            put(os.path.join(path, fname), text)
        if name == "cpuset" and top:
            put(os.path.join(path, "cpuset.cpus"), "0-3\n")
            put(os.path.join(path, "cpuset.mems"), "0\n")
        if name == "devices":
            parent = os.path.join(os.path.dirname(path), "devices.list")
            text = "a *:* rwm\n"
            if not top and os.path.exists(parent):
                text = get(parent)
            put(os.path.join(path, "devices.list"), text)

    def _seed_v2(self, path):
        put(os.path.join(path, "cgroup.procs"), "")
        for fname, text in V2_FILES.items():
            put(os.path.join(path, fname), text)

    def mkdir_cgroup(self, path):
        """Make a cgroup the way the test wants it to exist already."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fake_mkdir(path)

    # -- kernel behaviour --------------------------------------------------

    def _fake_mkdir(self, path):
        os.mkdir(path, 0o755)
        if self.mode == "v2":
            self._seed_v2(path)
            return
        self._seed_v1(path, self.hierarchy(path))

    def _fake_rmdir(self, path):
        subdirs = [
            e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e))
        ]
        if subdirs:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        procs = os.path.join(path, "cgroup.procs")
        if os.path.exists(procs) and get(procs).strip():
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        for entry in os.listdir(path):
            os.unlink(os.path.join(path, entry))
        os.rmdir(path)

    def _recording_write(self, dirpath, name, value):
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, self.root)
        self.writes.append((rel, str(value)))
        err = self.fail.get(rel) or self.fail.get(name)
        if err:
            if callable(err):
                err = err(rel, value)
            if err:
                raise OSError(err, os.strerror(err), path)
        self._real_write(dirpath, name, value)

    def install(self, monkeypatch):
        self._real_write = fsutil.write_file
        monkeypatch.setattr(fsutil, "write_file", self._recording_write)
        monkeypatch.setattr(fsutil, "make_dir", self._fake_mkdir)
        monkeypatch.setattr(fsutil, "remove_dir", self._fake_rmdir)

    # -- helpers for assertions ---------------------------------------------

    def new_manager(self, cgroups_path=None, cid="ctr", **kwargs):
        from pyrunc.cgroups import new_manager

        return new_manager(
            cgroups_path,
            cid,
            root=self.root,
            proc_self_cgroup=self.proc_self_cgroup,
            mode=self.mode,
            mountinfo=self.mountinfo,
            **kwargs,
        )

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def read(self, *parts):
        return get(self.path(*parts))

    def written(self, prefix=""):
        """Return the recorded (relative path, value) writes."""
        return [w for w in self.writes if w[0].startswith(prefix)]

    def names_written(self):
        return [os.path.basename(p) for p, _ in self.writes]


@pytest.fixture
def fake_v1(tmp_path, monkeypatch):
    return FakeCgroupfs(tmp_path, "v1", monkeypatch=monkeypatch)


def test_fake_tree_seeds_new_cgroups(tmp_path, monkeypatch):
    fake = FakeCgroupfs(tmp_path, "hybrid", monkeypatch=monkeypatch)
    fsutil.make_dir(fake.path("memory", "x"))
    assert fake.read("memory", "x", "memory.limit_in_bytes").strip() == (
        UNLIMITED
    )
    fsutil.write_file(fake.path("memory", "x"), "memory.swappiness", 10)
    assert fake.writes == [("memory/x/memory.swappiness", "10")]
    fsutil.remove_dir(fake.path("memory", "x"))
    assert not os.path.exists(fake.path("memory", "x"))
