"""The state store: ids, directories, locking, atomic saves."""

import os
import stat
import subprocess
import sys
import threading

import pytest

from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidId
from pyrunc.errors import PyruncError
from pyrunc.state import store as store_mod
from pyrunc.jsonfast import loads
from pyrunc.state.store import Record, Store, timestamp, validate_id


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "root")


def make_record(cid="web", **kw):
    fields = dict(id=cid, pid=4242, pid_start=99, bundle="/b",
                  rootfs="/b/rootfs", created="2023-01-02T03:04:05.5Z",
                  annotations={"k": "v"}, config={"ociVersion": "1.0.2"},
                  cgroup={"mode": "v1"}, terminal=True)
    fields.update(kw)
    return Record(**fields)


class TestValidateId:
    # runc's rule: ^[\w+-\.]+$ (RE2, ASCII \w), and not "." or "..".
    @pytest.mark.parametrize("cid", [
        "a", "web-1", "A_b.c", "x+y", "a,b", "...", "0", "a..b", "_",
    ])
    def test_accepts(self, cid):
        validate_id(cid)

    @pytest.mark.parametrize("cid", [
        "", ".", "..", "a/b", "/a", "a b", "é", "a\n", "a:b", "a*",
        "a\x00b", "a\\b", "a%b",
    ])
    def test_rejects(self, cid):
        with pytest.raises(InvalidId):
            validate_id(cid)

    def test_store_paths_validate(self, store):
        with pytest.raises(InvalidId):
            store.dir("../escape")
        with pytest.raises(InvalidId):
            store.load("..")


class TestTimestamp:
    def test_nanoseconds_utc(self):
        when = 1_700_000_000_123_456_789
        assert timestamp(when) == "2023-11-14T22:13:20.123456789Z"

    def test_trailing_zeros_trimmed_like_go(self):
        assert timestamp(1_700_000_000_120_000_000) == \
            "2023-11-14T22:13:20.12Z"
        assert timestamp(1_700_000_000_000_000_000) == \
            "2023-11-14T22:13:20Z"

    def test_record_defaults_to_now(self):
        assert Record(id="x").created.endswith("Z")


class TestNew:
    def test_creates_root_0700_and_dir_0711(self, store):
        # runc's modes.
        old = os.umask(0o077)
        try:
            path = store.new("web")
        finally:
            os.umask(old)
        assert path == os.path.join(store.root, "web")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o711
        assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700

    def test_duplicate(self, store):
        store.new("web")
        with pytest.raises(ContainerExists) as info:
            store.new("web")
        assert info.value.exit_code == 1

    def test_invalid(self, store):
        with pytest.raises(InvalidId):
            store.new("a/b")
        assert not os.path.exists(store.root)

    def test_root_is_made_absolute(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert Store("rel").root == str(tmp_path / "rel")


class TestSaveLoad:
    def test_round_trip(self, store):
        store.new("web")
        record = make_record()
        store.save(record)
        assert store.load("web") == record
        assert os.listdir(store.dir("web")) == ["state.json"]
        mode = os.stat(os.path.join(store.dir("web"), "state.json")).st_mode
        assert stat.S_IMODE(mode) == 0o600

    def test_load_missing(self, store):
        with pytest.raises(ContainerNotFound):
            store.load("web")
        store.new("web")
        with pytest.raises(ContainerNotFound):
            store.load("web")

    def test_unknown_keys_ignored(self, store):
        store.new("web")
        path = os.path.join(store.dir("web"), "state.json")
        with open(path, "w") as f:
            f.write('{"id": "web", "pid": 1, "future_field": [1]}')
        record = store.load("web")
        assert record.pid == 1 and record.bundle == ""

    @pytest.mark.parametrize("text", ["{", "[1]", "", "\xff", "{} x"])
    def test_corrupt(self, store, text):
        store.new("web")
        path = os.path.join(store.dir("web"), "state.json")
        with open(path, "w", encoding="latin-1") as f:
            f.write(text)
        with pytest.raises(PyruncError, match="corrupt state file"):
            store.load("web")

    def test_partial(self, store):
        store.new("web")
        assert store.load_partial("web") is None
        with open(store.partial_path("web"), "w") as f:
            f.write('{"pid": 5, "pid_start": 6, "cgroup": {}}')
        assert store.load_partial("web") == {"pid": 5, "pid_start": 6,
                                             "cgroup": {}}


class TestLoads:
    @pytest.mark.parametrize("text", [
        '{"a": [1, 2.5, null, true, false, "x\\u00e9\\n"]}',
        '  {"nested": {"k": {}}, "e": []}\n',
        '{"n": -0, "big": 123456789012345678901234567890}',
        '"just a string"', "[]", "NaN",
    ])
    def test_same_as_json(self, text):
        import json

        expected = json.loads(text)
        got = loads(text)
        if text == "NaN":
            assert got != got
            return
        assert got == expected and type(got) is type(expected)

    @pytest.mark.parametrize("text", ["{", '{"a":1} x', "", "[1,]"])
    def test_errors_are_json_errors(self, text):
        with pytest.raises(ValueError):
            loads(text)


class TestDestroyIds:
    def test_destroy(self, store):
        store.new("web")
        os.mkfifo(store.fifo_path("web"))
        os.mkdir(os.path.join(store.dir("web"), "sub"))
        os.symlink("/etc", os.path.join(store.dir("web"), "sub", "link"))
        store.destroy("web")
        assert not os.path.exists(store.dir("web"))
        assert os.path.isdir("/etc")
        store.destroy("web")  # missing is fine

    def test_ids(self, store):
        assert store.ids() == []
        for cid in ("b", "a", "half"):
            store.new(cid)
        for cid in ("b", "a"):
            store.save(make_record(cid))
        with open(os.path.join(store.root, "stray-file"), "w"):
            pass
        assert store.ids() == ["a", "b"]


class TestLock:
    def test_missing_container(self, store):
        with pytest.raises(ContainerNotFound):
            with store.lock("web"):
                pass

    def test_excludes_other_holders(self, store):
        store.new("web")
        order = []
        with store.lock("web"):
            def other():
                with store.lock("web"):
                    order.append("other")
            thread = threading.Thread(target=other)
            thread.start()
            thread.join(0.2)
            order.append("first")
        thread.join(5)
        assert order == ["first", "other"]

    def test_lock_held_by_another_process(self, store):
        store.new("web")
        code = (
            "import fcntl, os, sys;"
            f"fd = os.open({store.dir('web')!r}, os.O_RDONLY);"
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB);"
        )
        with store.lock("web"):
            done = subprocess.run([sys.executable, "-c", code],
                                  capture_output=True, text=True)
        assert done.returncode != 0
        assert "BlockingIOError" in done.stderr

    def test_directory_removed_while_waiting(self, store):
        store.new("web")
        errors = []
        with store.lock("web"):
            def other():
                try:
                    with store.lock("web"):
                        pass
                except ContainerNotFound as err:
                    errors.append(err)
            thread = threading.Thread(target=other)
            thread.start()
            thread.join(0.2)
            store.destroy("web")
        thread.join(5)
        assert len(errors) == 1

    def test_fd_closed_after(self, store):
        store.new("web")
        before = set(os.listdir("/proc/self/fd"))
        with store.lock("web"):
            pass
        assert set(os.listdir("/proc/self/fd")) <= before


def test_write_atomic_leaves_no_tmp(tmp_path):
    path = tmp_path / "f"
    store_mod.write_atomic(str(path), b"x" * 100000)
    assert path.read_bytes() == b"x" * 100000
    assert os.listdir(tmp_path) == ["f"]


class TestDumps:
    @pytest.mark.parametrize("obj", [
        {"a": [1, 2.5, None, True, False, "x\u00e9\n"]}, [], "s", 7,
        {"nested": {"k": {}}, "e": []},
    ])
    def test_same_as_json(self, obj):
        import json

        from pyrunc.jsonfast import dumps

        assert dumps(obj) == json.dumps(obj)
        assert dumps(obj, compact=True) == json.dumps(
            obj, separators=(",", ":"))

    def test_unknown_type(self):
        from pyrunc.jsonfast import dumps

        with pytest.raises(TypeError):
            dumps({"a": object()})


def test_loads_unquoted_key_is_a_value_error():
    from pyrunc.jsonfast import loads

    with pytest.raises(ValueError):
        loads("{ not json")
