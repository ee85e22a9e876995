"""Record.status and the OCI state, against real (fake-container) processes.

A "container" here is a plain child process standing in for the init:
it blocks opening the exec fifo for writing, writes one byte and then
execs sleep, the same protocol the compiled executor follows.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import pyrunc.cgroups
from pyrunc import SPEC_VERSION
from pyrunc.state import proc
from pyrunc.state.store import Record, Store


class FakeInit:
    """A child process that waits on the exec fifo like a container init."""

    def __init__(self, store, cid, fifo=True):
        self.store = store
        self.cid = cid
        store.new(cid)
        path = store.fifo_path(cid)
        if fifo:
            os.mkfifo(path, 0o622)
            script = (f"exec 3>'{path}'; printf 0 >&3; exec 3>&-; "
                      "exec sleep 60")
        else:
            script = "exec sleep 60"
        self.popen = subprocess.Popen(["sh", "-c", script])
        self.pid = self.popen.pid
        self.start = wait_start_time(self.pid)

    def record(self, **kw):
        fields = dict(id=self.cid, pid=self.pid, pid_start=self.start,
                      bundle="/bundle", rootfs="/bundle/rootfs",
                      config={"ociVersion": "1.0.2-dev"})
        fields.update(kw)
        return Record(**fields)

    def save(self, **kw):
        record = self.record(**kw)
        self.store.save(record)
        return record

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()

    def reap(self):
        self.kill()
        self.popen.wait(5)


def wait_start_time(pid):
    for _ in range(100):
        start = proc.start_time(pid)
        if start is not None:
            return start
        time.sleep(0.01)
    raise AssertionError(f"no /proc/{pid}/stat")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "root")


@pytest.fixture
def fake(store):
    inits = []

    def make(cid="web", fifo=True):
        init = FakeInit(store, cid, fifo)
        inits.append(init)
        return init

    yield make
    for init in inits:
        init.reap()


class FakeManager:
    frozen = False
    thawed = 0
    killed = []
    destroyed = 0

    def __init__(self, data):
        self.data = data

    def is_frozen(self):
        return FakeManager.frozen

    def thaw(self):
        FakeManager.thawed += 1

    def kill_all(self, sig):
        FakeManager.killed.append(sig)

    def destroy(self):
        FakeManager.destroyed += 1


@pytest.fixture
def fake_cgroups(monkeypatch):
    FakeManager.frozen = False
    FakeManager.thawed = 0
    FakeManager.killed = []
    FakeManager.destroyed = 0
    monkeypatch.setattr(pyrunc.cgroups, "manager_from_dict", FakeManager,
                        raising=False)
    return FakeManager


class TestProc:
    def test_read_stat_self(self):
        state, start = proc.read_stat(os.getpid())
        assert state in "RS" and start > 0

    def test_read_stat_comm_with_parens(self, tmp_path):
        # comm may hold ") (" and spaces; parsing splits after the last ")".
        exe = tmp_path / "a) (b c"
        os.symlink("/bin/sleep", exe)
        child = subprocess.Popen([str(exe), "60"])
        try:
            comm = f"/proc/{child.pid}/comm"
            for _ in range(200):
                with open(comm) as f:
                    if f.read().startswith("a) (b c"):
                        break
                time.sleep(0.01)
            state, start = proc.read_stat(child.pid)
            assert state in "RSD"
            assert start == wait_start_time(child.pid)
        finally:
            child.kill()
            child.wait()

    def test_gone(self):
        assert proc.read_stat(0) is None
        assert proc.read_stat(2 ** 22 + 1) is None
        assert proc.is_alive(2 ** 22 + 1, 1) is False

    def test_zombie_is_dead(self):
        child = subprocess.Popen(["true"])
        start = wait_start_time(child.pid)
        for _ in range(200):
            if proc.read_stat(child.pid)[0] == "Z":
                break
            time.sleep(0.01)
        assert proc.is_alive(child.pid, start) is False
        assert proc.send_signal(child.pid, start, signal.SIGTERM) is False
        assert proc.wait_exit(child.pid, start, 0.1) is True
        child.wait()

    def test_recycled_pid_is_not_signalled(self):
        child = subprocess.Popen(["sleep", "60"])
        try:
            start = wait_start_time(child.pid)
            assert proc.send_signal(child.pid, start + 1, 0) is False
            assert proc.is_alive(child.pid, start + 1) is False
            assert proc.send_signal(child.pid, start, 0) is True
        finally:
            child.kill()
            child.wait()

    def test_wait_exit(self):
        child = subprocess.Popen(["sleep", "60"])
        start = wait_start_time(child.pid)
        assert proc.wait_exit(child.pid, start, 0.05) is False
        child.kill()
        assert proc.wait_exit(child.pid, start, 5) is True
        child.wait()

    def test_bad_signal(self):
        child = subprocess.Popen(["sleep", "60"])
        try:
            start = wait_start_time(child.pid)
            with pytest.raises(OSError):
                proc.send_signal(child.pid, start, 99)
        finally:
            child.kill()
            child.wait()


class TestStatus:
    def test_created_running_stopped(self, store, fake):
        init = fake()
        record = init.save()
        assert record.status(store) == "created"
        os.unlink(store.fifo_path("web"))
        assert record.status(store) == "running"
        init.kill()
        init.popen.wait()
        assert record.status(store) == "stopped"

    def test_zombie_is_stopped(self, store, fake):
        init = fake(fifo=False)
        record = init.save()
        init.kill()
        for _ in range(200):
            if proc.read_stat(init.pid)[0] == "Z":
                break
            time.sleep(0.01)
        assert record.status(store) == "stopped"

    def test_recycled_pid_is_stopped(self, store, fake):
        init = fake(fifo=False)
        record = init.save(pid_start=init.start + 1)
        assert record.status(store) == "stopped"

    def test_no_pid(self, store):
        assert Record(id="x").status(store) == "stopped"

    def test_paused(self, store, fake, fake_cgroups):
        init = fake(fifo=False)
        record = init.save(cgroup={"mode": "v1"})
        assert record.status(store) == "running"
        fake_cgroups.frozen = True
        assert record.status(store) == "paused"

    def test_no_cgroup_code_without_cgroup(self, store, fake, monkeypatch):
        def boom(data):
            raise AssertionError("cgroup code used")

        monkeypatch.setattr(pyrunc.cgroups, "manager_from_dict", boom,
                            raising=False)
        init = fake(fifo=False)
        assert init.save().status(store) == "running"


class TestOciState:
    def test_running(self, store, fake):
        init = fake(fifo=False)
        record = init.save(annotations={"z": "1", "a": "2"})
        state = record.oci_state(store)
        assert list(state) == ["ociVersion", "id", "status", "pid",
                               "bundle", "annotations"]
        assert state["ociVersion"] == SPEC_VERSION
        assert state["status"] == "running"
        assert state["pid"] == init.pid
        assert list(state["annotations"]) == ["a", "z"]

    def test_stopped_has_no_pid(self, store):
        record = Record(id="x", pid=5, bundle="/b")
        assert record.oci_state(store) == {
            "ociVersion": SPEC_VERSION, "id": "x", "status": "stopped",
            "bundle": "/b"}

    def test_status_override(self, store, fake):
        init = fake()
        record = init.save()
        assert record.oci_state(store, status="stopped")["status"] == \
            "stopped"


def test_no_dataclasses_import():
    # Record must stay cheap to import; see the store's docstring.
    code = ("import sys; import pyrunc.state.store; "
            "print('dataclasses' in sys.modules, 'json' in sys.modules)")
    out = subprocess.run([sys.executable, "-S", "-c", code], text=True,
                         capture_output=True, env=_pythonpath_env())
    assert out.stdout.split() == ["False", "False"], out.stderr


def _pythonpath_env():
    import pyrunc

    # -S drops site-packages, so point at the package explicitly; works
    # for editable and regular installs alike.
    parent = os.path.dirname(os.path.dirname(pyrunc.__file__))
    return dict(os.environ, PYTHONPATH=parent)
