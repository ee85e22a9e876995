"""cli/update.py: runc's update flags and --resources as LinuxResources."""

import io
import json
import sys
import types

import pytest

from pyrunc import log
from pyrunc.cli import main as cli_main
from pyrunc.cli.update import ram_in_bytes, resources_from_flags
from pyrunc.errors import ContainerNotFound


@pytest.fixture(autouse=True)
def _reset_log():
    yield
    log.reset()


class FakeStore:
    def load(self, cid):
        if cid != "c":
            raise ContainerNotFound(cid)
        return types.SimpleNamespace(id=cid)


@pytest.fixture
def updates(monkeypatch):
    """The LinuxResources dicts passed to the (fake) library."""
    seen = []
    fake = types.ModuleType("pyrunc.container.update")
    fake.update = lambda store, cid, body: seen.append((cid, body))
    monkeypatch.setitem(sys.modules, "pyrunc.container.update", fake)
    monkeypatch.setattr(cli_main.Globals, "store", lambda self: FakeStore())
    return seen


def run(*argv):
    return cli_main.run_argv(["--root", "/nonexistent-root", *argv])


def error_message(stderr):
    """The msg of the one error line in stderr, unquoted."""
    [line] = [x for x in stderr.splitlines() if "level=error" in x]
    return json.loads(line.split(" msg=", 1)[1])


class TestSizes:
    # docker/go-units 0.4.0 RAMInBytes, as vendored by runc 1.1.5.
    @pytest.mark.parametrize("text, size", [
        ("0", 0), ("10", 10), ("1k", 1024), ("1K", 1024), ("1kb", 1024),
        ("1KiB", 1024), ("64m", 64 << 20), ("1g", 1 << 30),
        ("1.5g", 3 << 29), ("2 m", 2 << 20), ("1t", 1 << 40),
        ("1p", 1 << 50), ("10b", 10), ("10i", 10), ("0.5k", 512),
        ("1.9", 1), ("1 ", 1),
    ])
    def test_accepted(self, text, size):
        assert ram_in_bytes(text) == size

    @pytest.mark.parametrize("text, message", [
        ("10x", "invalid size: '10x'"),
        ("", "invalid size: ''"),
        ("-5", "invalid size: '-5'"),
        ("1e3", "invalid size: '1e3'"),
        ("1m\n", "invalid size: '1m\n'"),
        ("1mm", "invalid size: '1mm'"),
        ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ])
    def test_refused(self, text, message):
        with pytest.raises(ValueError) as info:
            ram_in_bytes(text)
        assert str(info.value) == message


class TestFlags:
    def test_everything(self):
        body = resources_from_flags({
            "blkio_weight": 500, "cpu_period": "100000",
            "cpu_quota": "-1", "cpu_share": "512", "cpu_rt_period": "1000",
            "cpu_rt_runtime": "500", "cpuset_cpus": "0-1",
            "cpuset_mems": "0", "memory": "1g", "memory_swap": "-1",
            "memory_reservation": "512m", "kernel_memory": "",
            "kernel_memory_tcp": "", "pids_limit": 100})
        assert body == {
            "blockIO": {"weight": 500},
            "cpu": {"cpus": "0-1", "mems": "0", "period": 100000,
                    "realtimePeriod": 1000, "shares": 512, "quota": -1,
                    "realtimeRuntime": 500},
            "memory": {"limit": 1 << 30, "swap": -1,
                       "reservation": 512 << 20},
            "pids": {"limit": 100},
        }

    def test_zero_means_unchanged(self):
        # runc starts from zeros, so a 0 flag cannot be told from none.
        assert resources_from_flags({
            "memory": "0", "cpu_share": "0", "pids_limit": 0,
            "blkio_weight": 0, "cpuset_cpus": ""}) == {}

    @pytest.mark.parametrize("argv, message", [
        (["--memory", "10x"], "invalid value for memory: invalid size: "
         "'10x'"),
        (["--cpu-share", "x"], 'invalid value for cpu-share: '
         'strconv.ParseUint: parsing "x": invalid syntax'),
        (["--cpu-period", "-1"], 'invalid value for cpu-period: '
         'strconv.ParseUint: parsing "-1": invalid syntax'),
        (["--cpu-quota", "1.5"], 'invalid value for cpu-quota: '
         'strconv.ParseInt: parsing "1.5": invalid syntax'),
        (["--memory-swap", "1.2.3"], 'invalid value for memory-swap: '
         'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
        (["--l3-cache-schema", "L3:0=f"],
         "Intel RDT/CAT: l3 cache schema is not enabled"),
        (["--mem-bw-schema", "MB:0=70"],
         "Intel RDT/MBA: memory bandwidth schema is not enabled"),
    ])
    def test_errors_worded_like_runc(self, updates, capfd, argv, message):
        assert run("update", *argv, "c") == 1
        assert error_message(capfd.readouterr().err).startswith(message)
        assert updates == []

    def test_unknown_container_first(self, updates, capfd):
        assert run("update", "--memory", "10x", "nosuch") == 1
        assert 'msg="container does not exist"' in capfd.readouterr().err

    def test_flags_to_library(self, updates):
        assert run("update", "--memory", "64m", "--cpu-shares", "2",
                   "--pids-limit", "-1", "c") == 0
        assert updates == [("c", {"memory": {"limit": 64 << 20},
                                  "cpu": {"shares": 2},
                                  "pids": {"limit": -1}})]

    def test_kernel_memory_warned_and_dropped(self, updates, capfd):
        assert run("update", "--kernel-memory", "1m", "--memory", "2m",
                   "c") == 0
        assert updates == [("c", {"memory": {"limit": 2 << 20}})]
        err = capfd.readouterr().err
        assert ('level=warning msg="Kernel memory settings are ignored and '
                'will be removed"' in err)


class TestResourcesFile:
    BODY = {"memory": {"limit": 1048576, "swap": 2097152},
            "cpu": {"shares": 512, "cpus": "0"}, "pids": {"limit": 10},
            "unified": {"memory.high": "max"}}

    def test_file_passed_as_is(self, updates, tmp_path):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(self.BODY))
        assert run("update", "-r", str(path), "c") == 0
        assert updates == [("c", self.BODY)]

    def test_stdin(self, updates, monkeypatch):
        # containerd writes the resources to `update -r -`'s stdin.
        data = io.BytesIO(json.dumps(self.BODY).encode())
        monkeypatch.setattr(sys, "stdin",
                            types.SimpleNamespace(buffer=data))
        assert run("update", "--resources", "-", "c") == 0
        assert updates == [("c", self.BODY)]

    def test_other_flags_ignored(self, updates, tmp_path):
        # runc: "if data is to be read from a file or the standard input,
        # all other options are ignored".
        path = tmp_path / "r.json"
        path.write_text(json.dumps({"memory": {"limit": 1048576}}))
        assert run("update", "-r", str(path), "--memory", "5m",
                   "--pids-limit", "3", "c") == 0
        assert updates == [("c", {"memory": {"limit": 1048576}})]

    def test_kernel_fields_dropped(self, updates, tmp_path, capfd):
        path = tmp_path / "r.json"
        path.write_text(json.dumps({"memory": {"kernel": 5}}))
        assert run("update", "-r", str(path), "c") == 0
        assert updates == [("c", {})]
        assert "Kernel memory settings" in capfd.readouterr().err

    @pytest.mark.parametrize("content, message", [
        (None, "open {path}: no such file or directory"),
        ("{", "invalid resources JSON"),
        ("[1]", "invalid resources JSON: not an object"),
    ])
    def test_bad_file(self, updates, tmp_path, capfd, content, message):
        path = tmp_path / "r.json"
        if content is not None:
            path.write_text(content)
        assert run("update", "-r", str(path), "c") == 1
        assert message.format(path=path) in capfd.readouterr().err
        assert updates == []
