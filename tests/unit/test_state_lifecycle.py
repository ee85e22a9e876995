"""state, start, kill, delete and list on fake containers (no namespaces).

The init of each container is a plain child process following the exec
fifo protocol (see test_state_status.FakeInit); cgroups are faked.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from pyrunc.container.delete import delete
from pyrunc.container.kill import kill, parse_signal
from pyrunc.container.list import format_table, list_containers
from pyrunc.container.start import start
from pyrunc.container.state import state
from pyrunc.errors import ContainerNotFound, ContainerNotRunning
from pyrunc.errors import InvalidState, PyruncError
from pyrunc.state import proc
from test_state_status import FakeInit, FakeManager


@pytest.fixture
def store(tmp_path):
    from pyrunc.state.store import Store

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


@pytest.fixture
def fake_cgroups(monkeypatch):
    import pyrunc.cgroups

    FakeManager.frozen = False
    FakeManager.thawed = 0
    FakeManager.killed = []
    FakeManager.destroyed = 0
    monkeypatch.setattr(pyrunc.cgroups, "manager_from_dict", FakeManager,
                        raising=False)
    return FakeManager


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def hook(tmp_path, name, status=0):
    """A hook script that appends its stdin (the state) to a file."""
    out = tmp_path / f"{name}.out"
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\ncat >> {out}\necho >> {out}\n"
                      f"exit {status}\n")
    script.chmod(0o755)
    return {"path": str(script)}, out


class TestState:
    def test_shape_and_order(self, store, fake):
        init = fake()
        init.save(annotations={"b": "1", "a": "2"})
        got = state(store, "web")
        assert list(got) == ["ociVersion", "id", "pid", "status", "bundle",
                             "rootfs", "created", "annotations", "owner"]
        assert got["ociVersion"] == "1.0.2-dev"
        assert got["status"] == "created"
        assert got["pid"] == init.pid
        assert list(got["annotations"]) == ["a", "b"]
        assert got["owner"] == ""

    def test_no_annotations_key_when_empty(self, store, fake):
        fake().save()
        assert "annotations" not in state(store, "web")

    def test_stopped_pid_is_zero(self, store, fake):
        init = fake()
        init.save()
        init.reap()
        got = state(store, "web")
        assert (got["status"], got["pid"]) == ("stopped", 0)

    def test_unknown(self, store):
        with pytest.raises(ContainerNotFound):
            state(store, "web")


class TestStart:
    def test_created_to_running(self, store, fake):
        init = fake()
        init.save()
        start(store, "web")
        assert not os.path.exists(store.fifo_path("web"))
        assert state(store, "web")["status"] == "running"
        # The init got its byte and went on to exec sleep.
        assert wait_for(lambda: _comm(init.pid) == "sleep")

    @pytest.mark.parametrize("status, message", [
        ("running", "cannot start an already running container"),
        ("stopped", "cannot start a container that has stopped"),
        ("paused", "cannot start a container in the paused state"),
    ])
    def test_wrong_state(self, store, fake, fake_cgroups, status, message):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"})
        if status == "stopped":
            init.reap()
        if status == "paused":
            fake_cgroups.frozen = True
        with pytest.raises(InvalidState) as info:
            start(store, "web")
        assert str(info.value) == message
        assert info.value.exit_code == 1

    def test_unknown(self, store):
        with pytest.raises(ContainerNotFound):
            start(store, "web")

    def test_init_dies_before_opening_fifo(self, store, fake):
        # A created init that dies while start waits must not hang it.
        init = fake(fifo=False)
        os.mkfifo(store.fifo_path("web"))
        init.save()
        killer = subprocess.Popen(
            ["sh", "-c", f"sleep 0.2; kill -9 {init.pid}"])
        with pytest.raises(PyruncError, match="already dead"):
            start(store, "web")
        killer.wait()

    def test_poststart_hooks(self, store, fake, tmp_path):
        good, good_out = hook(tmp_path, "good")
        bad, _ = hook(tmp_path, "bad", status=3)
        init = fake()
        init.save(config={"hooks": {"poststart": [bad, good]}})
        start(store, "web")
        # A failing poststart hook is a warning; runc goes on, so do we.
        assert state(store, "web")["status"] == "running"

    def test_poststart_state(self, store, fake, tmp_path):
        good, out = hook(tmp_path, "good")
        init = fake()
        init.save(config={"hooks": {"poststart": [good]}})
        start(store, "web")
        seen = json.loads(out.read_text())
        assert seen["status"] == "running"
        assert seen["pid"] == init.pid
        assert seen["id"] == "web"


class TestKill:
    @pytest.mark.parametrize("text, number", [
        ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("sigterm", 15),
        ("HUP", 1), ("SIGUSR1", signal.SIGUSR1), ("WINCH", 28),
        ("0", 0), ("99", 99),
    ])
    def test_parse_signal(self, text, number):
        assert parse_signal(text) == number

    @pytest.mark.parametrize("text", ["FOO", "sigfoo", "", "RTMIN", "-"])
    def test_parse_unknown(self, text):
        with pytest.raises(PyruncError) as info:
            parse_signal(text)
        assert str(info.value) == f'unknown signal "{text}"'

    def test_kill_init(self, store, fake):
        init = fake(fifo=False)
        init.save()
        kill(store, "web", "KILL")
        assert init.popen.wait(5) == -signal.SIGKILL

    def test_default_term(self, store, fake):
        init = fake(fifo=False)
        init.save()
        kill(store, "web")
        assert init.popen.wait(5) == -signal.SIGTERM

    def test_created_container(self, store, fake):
        init = fake()
        init.save()
        kill(store, "web", "9")
        assert init.popen.wait(5) == -signal.SIGKILL

    def test_stopped(self, store, fake):
        init = fake(fifo=False)
        init.save()
        init.reap()
        with pytest.raises(ContainerNotRunning) as info:
            kill(store, "web", "KILL")
        assert str(info.value) == "container not running"

    def test_stopped_all_is_fine(self, store, fake, fake_cgroups):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"})
        init.reap()
        kill(store, "web", "KILL", all=True)
        assert fake_cgroups.killed == [9]

    def test_unknown_container_before_bad_signal(self, store):
        with pytest.raises(ContainerNotFound):
            kill(store, "web", "FOO")

    def test_bad_signal_number(self, store, fake):
        init = fake(fifo=False)
        init.save()
        with pytest.raises(PyruncError) as info:
            kill(store, "web", "99")
        assert str(info.value) == "unable to signal init: invalid argument"
        with pytest.raises(PyruncError, match="invalid argument"):
            kill(store, "web", str(2 ** 70))

    def test_paused_sigkill_thaws(self, store, fake, fake_cgroups):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"})
        fake_cgroups.frozen = True
        kill(store, "web", "TERM")
        assert fake_cgroups.thawed == 0
        init.popen.wait(5)
        init2 = fake("two", fifo=False)
        init2.save(cgroup={"mode": "v1"})
        kill(store, "two", "KILL")
        assert fake_cgroups.thawed == 1

    def test_recycled_pid_untouched(self, store, fake):
        init = fake(fifo=False)
        init.save(pid_start=init.start + 1)
        with pytest.raises(ContainerNotRunning):
            kill(store, "web", "KILL")
        assert init.popen.poll() is None


class TestDelete:
    def test_stopped(self, store, fake, fake_cgroups, tmp_path):
        poststop, out = hook(tmp_path, "poststop")
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"},
                  config={"hooks": {"poststop": [poststop]}})
        init.reap()
        delete(store, "web")
        assert not os.path.exists(store.dir("web"))
        assert fake_cgroups.destroyed == 1
        seen = json.loads(out.read_text())
        assert seen["status"] == "stopped" and "pid" not in seen

    def test_created_is_killed(self, store, fake):
        init = fake()
        init.save()
        delete(store, "web")
        assert init.popen.wait(5) == -signal.SIGKILL
        assert not os.path.exists(store.dir("web"))

    def test_running_needs_force(self, store, fake):
        init = fake(fifo=False)
        init.save()
        with pytest.raises(InvalidState) as info:
            delete(store, "web")
        assert str(info.value) == (
            "cannot delete container web that is not stopped: running")
        assert init.popen.poll() is None
        delete(store, "web", force=True)
        assert init.popen.wait(5) == -signal.SIGKILL
        assert not os.path.exists(store.dir("web"))

    def test_paused_force_thaws(self, store, fake, fake_cgroups):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"})
        fake_cgroups.frozen = True
        with pytest.raises(InvalidState, match="not stopped: paused"):
            delete(store, "web")
        delete(store, "web", force=True)
        assert fake_cgroups.thawed == 1
        assert init.popen.wait(5) == -signal.SIGKILL

    def test_unknown(self, store):
        with pytest.raises(ContainerNotFound):
            delete(store, "web")
        delete(store, "web", force=True)

    def test_shared_pid_namespace_kills_cgroup(self, store, fake,
                                               fake_cgroups):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"},
                  config={"linux": {"namespaces": [{"type": "mount"}]}})
        init.reap()
        delete(store, "web")
        assert fake_cgroups.killed == [9]

    def test_private_pid_namespace_leaves_cgroup_to_kernel(
            self, store, fake, fake_cgroups):
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"},
                  config={"linux": {"namespaces": [{"type": "pid"}]}})
        init.reap()
        delete(store, "web")
        assert fake_cgroups.killed == []

    def test_poststop_failure_is_a_warning(self, store, fake, tmp_path):
        bad, _ = hook(tmp_path, "bad", status=1)
        init = fake(fifo=False)
        init.save(config={"hooks": {"poststop": [bad]}})
        init.reap()
        delete(store, "web")
        assert not os.path.exists(store.dir("web"))

    def test_cgroup_failure_is_reported_after_cleanup(self, store, fake,
                                                      fake_cgroups,
                                                      monkeypatch):
        from pyrunc.errors import CgroupError

        def destroy(self):
            raise CgroupError("rmdir /sys/fs/cgroup/x: busy")

        monkeypatch.setattr(fake_cgroups, "destroy", destroy)
        init = fake(fifo=False)
        init.save(cgroup={"mode": "v1"})
        init.reap()
        with pytest.raises(CgroupError):
            delete(store, "web")
        assert not os.path.exists(store.dir("web"))

    def test_half_created_with_partial(self, store, fake, fake_cgroups):
        # create died after the child existed, before state.json.
        init = fake()
        partial = {"pid": init.pid, "pid_start": init.start,
                   "cgroup": {"mode": "v1"}}
        with open(store.partial_path("web"), "w") as f:
            json.dump(partial, f)
        delete(store, "web", force=True)
        assert init.popen.wait(5) == -signal.SIGKILL
        assert fake_cgroups.destroyed == 1
        assert not os.path.exists(store.dir("web"))

    def test_half_created_without_force(self, store, fake):
        # runc removes the directory but still says it does not exist.
        store.new("web")
        with pytest.raises(ContainerNotFound):
            delete(store, "web")
        assert not os.path.exists(store.dir("web"))

    def test_half_created_recycled_pid_untouched(self, store, fake):
        init = fake(fifo=False)
        with open(store.partial_path("web"), "w") as f:
            json.dump({"pid": init.pid, "pid_start": init.start + 1}, f)
        delete(store, "web", force=True)
        assert init.popen.poll() is None
        assert not os.path.exists(store.dir("web"))

    def test_corrupt_state_needs_force(self, store):
        store.new("web")
        with open(os.path.join(store.dir("web"), "state.json"), "w") as f:
            f.write("{")
        with pytest.raises(PyruncError, match="corrupt"):
            delete(store, "web")
        delete(store, "web", force=True)
        assert not os.path.exists(store.dir("web"))


class TestList:
    def test_items(self, store, fake):
        b = fake("b", fifo=False)
        b.save()
        a = fake("a")
        a.save(annotations={"k": "v"})
        store.new("half")
        items = list_containers(store)
        assert [i["id"] for i in items] == ["a", "b"]
        assert items[0]["status"] == "created"
        assert items[1]["status"] == "running"
        assert items[0]["owner"] == "root" or items[0]["owner"]
        assert items[0]["annotations"] == {"k": "v"}
        assert "annotations" not in items[1]

    def test_empty(self, store):
        assert list_containers(store) == []

    def test_table_empty_like_runc(self):
        # Pinned from `runc list` with no containers.
        assert format_table([]) == (
            "ID          PID         STATUS      BUNDLE      CREATED     "
            "OWNER\n")

    def test_table_alignment_like_runc(self):
        # Pinned from `runc list` with one created container.
        item = {"id": "c1", "pid": 8786, "status": "created",
                "bundle": "/tmp/ex/B",
                "created": "2026-12-03T19:03:14.139847016Z",
                "owner": "root"}
        assert format_table([item]) == (
            "ID          PID         STATUS      BUNDLE      CREATED"
            "                          OWNER\n"
            "c1          8786        created     /tmp/ex/B   "
            "2026-12-03T19:03:14.139847016Z   root\n")


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_proc_helpers_agree_with_status(store, fake):
    init = fake(fifo=False)
    record = init.save()
    assert record.is_alive() == proc.is_alive(init.pid, init.start)


class _OomManager:
    def __init__(self, kills):
        self.kills = kills

    def oom_kills(self):
        return self.kills


@pytest.mark.parametrize("limit, kills, named", [
    (92160, 1, True),
    (92160, 0, False),      # died of something else
    (None, 1, False),       # no limit: not the config's doing
    (-1, 1, False),
])
def test_init_dead_before_start_names_a_low_memory_limit(
        monkeypatch, limit, kills, named):
    import types

    import pyrunc.cgroups
    from pyrunc.container import start as start_mod

    monkeypatch.setattr(pyrunc.cgroups, "manager_from_dict",
                        lambda d: _OomManager(kills))
    memory = {} if limit is None else {"limit": limit}
    record = types.SimpleNamespace(
        config={"linux": {"resources": {"memory": memory}}},
        cgroup={"mode": "v1"})
    reason = start_mod._oom_reason(record)
    if named:
        assert reason.startswith(
            "linux.resources.memory.limit: 92160 bytes is too low")
    else:
        assert reason is None
