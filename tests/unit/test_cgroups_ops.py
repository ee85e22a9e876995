"""pause/resume, update, events and ps against a fake cgroup manager.

The container is a plain `sleep` child recorded in a real state store;
the cgroup manager is replaced by a recorder, so these tests need no
root and no cgroupfs.
"""

import json
import os
import select
import subprocess
import threading
import time

import pytest

import pyrunc.cgroups
from pyrunc.container import events, pause, ps, update
from pyrunc.errors import (
    CgroupError,
    ContainerNotFound,
    ContainerNotRunning,
    InvalidState,
    SpecError,
)
from pyrunc.state import proc
from pyrunc.state.store import Record, Store


# The state of the one fake cgroup; state.json only keeps its name.
STATE = {}


class Manager:
    """Records what the operations ask of a cgroup manager."""

    def __init__(self, data):
        self.data = data
        self.state = STATE

    def is_frozen(self):
        return self.state["frozen"]

    def freeze(self):
        self.state["calls"].append("freeze")
        self.state["frozen"] = True

    def thaw(self):
        self.state["calls"].append("thaw")
        self.state["frozen"] = False

    def set(self, resources, linux_devices=None, skip_devices=False):
        self.state["calls"].append(("set", resources, skip_devices))
        fail = self.state.get("fail_set")
        if fail:
            self.state["fail_set"] = fail - 1
            raise CgroupError("linux.resources.memory.limit: refused")

    def exists(self):
        return self.state.get("exists", True)

    def pids(self):
        return list(self.state.get("pids", []))

    def stats(self):
        self.state["calls"].append("stats")
        return {"pids": {"current": 1}}

    def oom_watcher(self):
        return self.state.get("watcher")


@pytest.fixture
def cgroup_state(monkeypatch):
    STATE.clear()
    STATE.update({"frozen": False, "calls": []})
    monkeypatch.setattr(pyrunc.cgroups, "manager_from_dict", Manager)
    return STATE


@pytest.fixture
def container(tmp_path, cgroup_state):
    """A running "container": a sleep child recorded in a store."""
    store = Store(tmp_path / "root")
    child = subprocess.Popen(["sleep", "60"])
    for _ in range(100):
        start = proc.start_time(child.pid)
        if start is not None:
            break
        time.sleep(0.01)
    store.new("c1")
    store.save(Record(
        id="c1", pid=child.pid, pid_start=start, bundle=str(tmp_path),
        config={"linux": {"resources": {
            "devices": [{"allow": False, "access": "rwm"}],
            "memory": {"limit": 32 << 20, "swappiness": 10},
            "cpu": {"quota": 50000, "period": 100000},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
        }}},
        cgroup={"mode": "v2", "fake": True}))
    yield store, child
    child.kill()
    child.wait()


def stop(child):
    child.kill()
    child.wait()


class TestPause:
    def test_pause_resume(self, container, cgroup_state):
        store, _child = container
        pause.pause(store, "c1")
        assert store.load("c1").status(store) == "paused"
        pause.resume(store, "c1")
        assert cgroup_state["calls"] == ["freeze", "thaw"]

    def test_wrong_states_use_runc_words(self, container, cgroup_state):
        store, child = container
        with pytest.raises(InvalidState) as exc:
            pause.resume(store, "c1")
        assert str(exc.value) == "container not paused"
        pause.pause(store, "c1")
        with pytest.raises(ContainerNotRunning) as exc:
            pause.pause(store, "c1")
        assert str(exc.value) == "container not running"
        pause.resume(store, "c1")
        stop(child)
        with pytest.raises(ContainerNotRunning):
            pause.pause(store, "c1")

    def test_created_can_be_paused(self, container):
        store, _child = container
        os.mkfifo(store.fifo_path("c1"))
        assert store.load("c1").status(store) == "created"
        pause.pause(store, "c1")

    def test_unknown(self, tmp_path):
        with pytest.raises(ContainerNotFound):
            pause.pause(Store(tmp_path), "nope")


class TestPs:
    def test_pids(self, container, cgroup_state):
        store, child = container
        cgroup_state["pids"] = [child.pid, 7]
        assert ps.pids(store, "c1") == [child.pid, 7]

    def test_stopped_without_cgroup(self, container, cgroup_state):
        store, child = container
        stop(child)
        cgroup_state["pids"] = [9]
        cgroup_state["exists"] = False
        assert ps.pids(store, "c1") == []
        cgroup_state["exists"] = True
        assert ps.pids(store, "c1") == [9]


class TestMerge:
    def test_quota_keeps_period_and_reverse(self):
        old = {"cpu": {"quota": 50000, "period": 100000}}
        assert update.merge(old, {"cpu": {"quota": 20000}})["cpu"] == {
            "quota": 20000, "period": 100000}
        assert update.merge(old, {"cpu": {"period": 50000}})["cpu"] == {
            "quota": 50000, "period": 50000}

    def test_objects_maps_and_lists(self):
        old = {
            "memory": {"limit": 1, "swap": 2},
            "unified": {"a.b": "1"},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1},
                               {"pageSize": "1GB", "limit": 2}],
            "devices": [{"allow": False, "access": "rwm"}],
            "blockIO": {"weight": 10, "throttleReadBpsDevice": [
                {"major": 8, "minor": 0, "rate": 1}]},
        }
        new = {
            "memory": {"limit": 3},
            "unified": {"c.d": "2"},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 5}],
            "devices": [{"allow": True, "access": "rwm"}],
            "blockIO": {"throttleReadBpsDevice": []},
            "pids": {"limit": 4},
        }
        out = update.merge(old, new)
        assert out["memory"] == {"limit": 3, "swap": 2}
        assert out["unified"] == {"a.b": "1", "c.d": "2"}
        assert out["hugepageLimits"] == [{"pageSize": "2MB", "limit": 5},
                                         {"pageSize": "1GB", "limit": 2}]
        # update never changes device rules (runc's SkipDevices).
        assert out["devices"] == old["devices"]
        assert out["blockIO"] == {"weight": 10,
                                  "throttleReadBpsDevice": []}
        assert out["pids"] == {"limit": 4}
        assert old["memory"] == {"limit": 1, "swap": 2}


class TestUpdate:
    def test_applies_merged_and_saves(self, container, cgroup_state):
        store, _child = container
        update.update(store, "c1", {"cpu": {"quota": 20000},
                                    "pids": {"limit": 30}})
        [(_op, applied, skip)] = [c for c in cgroup_state["calls"]
                                  if c[0] == "set"]
        assert skip is True
        assert (applied.cpu.quota, applied.cpu.period) == (20000, 100000)
        assert applied.memory.limit == 32 << 20
        assert applied.memory.swappiness == 10
        assert applied.pids.limit == 30
        saved = store.load("c1").config["linux"]["resources"]
        assert saved["cpu"] == {"quota": 20000, "period": 100000}
        assert saved["pids"] == {"limit": 30}
        assert saved["hugepageLimits"] == [{"pageSize": "2MB", "limit": 1}]

    def test_bad_field_named(self, container, cgroup_state):
        store, _child = container
        with pytest.raises(SpecError) as exc:
            update.update(store, "c1", {"pids": {"limit": "x"}})
        assert str(exc.value).startswith("linux.resources.pids.limit:")
        assert cgroup_state["calls"] == []

    def test_stopped(self, container, cgroup_state):
        store, child = container
        stop(child)
        with pytest.raises(ContainerNotRunning) as exc:
            update.update(store, "c1", {"pids": {"limit": 3}})
        assert str(exc.value) == "container not running"

    def test_refused_rolls_back(self, container, cgroup_state):
        store, _child = container
        cgroup_state["fail_set"] = 1
        with pytest.raises(CgroupError, match="refused"):
            update.update(store, "c1", {"memory": {"limit": 1}})
        sets = [c for c in cgroup_state["calls"] if c[0] == "set"]
        assert len(sets) == 2
        assert sets[1][1].memory.limit == 32 << 20
        saved = store.load("c1").config["linux"]["resources"]
        assert saved["memory"]["limit"] == 32 << 20

    def test_unknown(self, tmp_path):
        with pytest.raises(ContainerNotFound):
            update.update(Store(tmp_path), "nope", {})


class Watcher:
    """An OOM watcher whose fd the test makes readable."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.closed = False

    def fileno(self):
        return self.r

    def poll_events(self):
        return select.POLLIN

    def read(self):
        # Never blocks, like the real watchers.
        try:
            return len(os.read(self.r, 16))
        except BlockingIOError:
            return 0

    def close(self):
        self.closed = True
        os.close(self.r)
        os.close(self.w)


class TestEvents:
    def test_stats_once(self, container):
        store, _child = container
        lines = []
        events.events(store, "c1", stats=True, interval=5,
                      write=lines.append)
        assert lines == ['{"type":"stats","id":"c1","data":'
                         '{"pids":{"current":1}}}']

    def test_errors(self, container):
        store, child = container
        with pytest.raises(Exception, match="must be greater than 0"):
            events.events(store, "c1", stats=True, interval=0,
                          write=print)
        stop(child)
        with pytest.raises(ContainerNotRunning,
                           match="container with id c1 is not running"):
            events.events(store, "c1", stats=True, interval=1,
                          write=print)

    def test_stream_until_exit_with_oom(self, container, cgroup_state):
        store, child = container
        watcher = Watcher()
        cgroup_state["watcher"] = watcher
        lines = []
        thread = threading.Thread(
            target=events.events, args=(store, "c1"),
            kwargs={"stats": False, "interval": 0.1,
                    "write": lines.append})
        thread.start()
        deadline = time.monotonic() + 10
        while len(lines) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.write(watcher.w, b"x")
        while '{"type":"oom","id":"c1"}' not in lines:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stop(child)
        thread.join(10)
        assert not thread.is_alive()
        assert watcher.closed
        assert all(json.loads(x)["id"] == "c1" for x in lines)

    def test_encode_escapes_html_like_go(self):
        assert events.encode({"a": "<&>"}) == '{"a":"\\u003c\\u0026\\u003e"}'
