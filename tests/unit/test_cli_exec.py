"""cli/exec.py: flags to a Process, exit statuses, runc's error wording.

The library (pyrunc.container.exec) is replaced by recording fakes; the
real thing is exercised in tests/compat/test_exec.py.
"""

import os
import types

import pytest

from pyrunc import log
from pyrunc.cli import main as cli_main
from pyrunc.container import exec as execution
from pyrunc.errors import ContainerNotFound, InvalidState


@pytest.fixture(autouse=True)
def _reset_log():
    yield
    log.reset()


class FakeStore:
    def __init__(self, ids=("c",)):
        self.ids = ids

    def load(self, cid):
        if cid not in self.ids:
            raise ContainerNotFound(cid)
        return types.SimpleNamespace(id=cid, pid=1, config={})


@pytest.fixture
def calls(monkeypatch):
    """Record what cli/exec.py asks of the library."""
    seen = {}
    store = FakeStore()
    monkeypatch.setattr(cli_main.Globals, "store", lambda self: store)

    def from_args(record, args, **kwargs):
        seen["from_args"] = (record.id, tuple(args), kwargs)
        return "PROCESS"

    def from_file(path):
        seen["from_file"] = path
        return "FILE PROCESS"

    def exec_process(store, cid, process, **kwargs):
        seen["exec"] = (cid, process, kwargs)
        return seen.get("status", 0)

    monkeypatch.setattr(execution, "process_from_args", from_args)
    monkeypatch.setattr(execution, "process_from_file", from_file)
    monkeypatch.setattr(execution, "exec_process", exec_process)
    return seen


def run(*argv):
    return cli_main.run_argv(["--root", "/nonexistent-root", *argv])


def test_flags_reach_the_library(calls, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    status = run("exec", "-e", "A=1", "-e", "B=2", "-u", "1000:1000",
                 "-g", "10", "-g", "20", "--cwd", "/tmp", "-c",
                 "CAP_SYS_ADMIN", "-c", "CAP_KILL", "--no-new-privs",
                 "--apparmor", "prof", "--process-label", "lab", "-t",
                 "-d", "--console-socket", "/s", "--pid-file", "p.pid",
                 "--preserve-fds", "2", "--ignore-paused", "c", "sh", "-c",
                 "echo hi")
    assert status == 0
    cid, args, kwargs = calls["from_args"]
    assert (cid, args) == ("c", ("sh", "-c", "echo hi"))
    assert kwargs == {
        "tty": True, "cwd": "/tmp", "env": ("A=1", "B=2"),
        "user": "1000:1000", "additional_gids": (10, 20),
        "caps": ("CAP_SYS_ADMIN", "CAP_KILL"), "no_new_privs": True,
        "apparmor": "prof", "label": "lab"}
    assert calls["exec"] == ("c", "PROCESS", {
        "detach": True, "pid_file": str(tmp_path / "p.pid"),
        "console_socket": "/s", "preserve_fds": 2, "ignore_paused": True})


def test_defaults_are_none(calls):
    assert run("exec", "c", "true") == 0
    _, _, kwargs = calls["from_args"]
    assert kwargs["cwd"] is None and kwargs["user"] is None
    assert kwargs["apparmor"] is None and kwargs["label"] is None
    assert calls["exec"][2] == {
        "detach": False, "pid_file": None, "console_socket": None,
        "preserve_fds": 0, "ignore_paused": False}


def test_exit_status_is_the_process_own(calls):
    calls["status"] = 42
    assert run("exec", "c", "false") == 42


def test_process_file_takes_precedence(calls, capfd):
    # runc ignores the arguments after the id when -p gives the process.
    assert run("--debug", "exec", "-p", "/p.json", "c", "ignored") == 0
    assert calls["from_file"] == "/p.json"
    assert "from_args" not in calls
    assert calls["exec"][1] == "FILE PROCESS"
    assert "ignoring the arguments" in capfd.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["exec", "c"], "exec failed: process args cannot be empty"),
    (["exec", "nosuch", "true"], "exec failed: container does not exist"),
    (["exec", "", "true"], "exec failed: container id cannot be empty"),
    (["exec", "-g", "-5", "c", "id"],
     "exec failed: additional-gids must be a positive number -5"),
    (["exec", "--cgroup", "cpu:sub", "c", "id"],
     "exec failed: --cgroup (exec in a sub-cgroup) is not supported"),
])
def test_failures_exit_255(calls, capfd, argv, message):
    assert run(*argv) == 255
    err = capfd.readouterr().err
    assert f"level=error msg={log.go_quote(message)}" in err
    assert "exec" not in calls


def test_library_errors_exit_255(calls, monkeypatch, capfd):
    def stopped(*args, **kwargs):
        raise InvalidState("cannot exec in a stopped container")

    monkeypatch.setattr(execution, "exec_process", stopped)
    assert run("exec", "c", "true") == 255
    assert ('msg="exec failed: cannot exec in a stopped container"'
            in capfd.readouterr().err)


def test_unexpected_errors_exit_255(calls, monkeypatch, capfd):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(execution, "exec_process", broken)
    assert run("exec", "c", "true") == 255
    assert ("exec failed: unexpected error: RuntimeError: boom"
            in capfd.readouterr().err)


def test_usage_errors_exit_1_like_runc(capfd):
    # A flag runc's parser refuses never reaches exec: status 1.
    assert run("exec", "--preserve-fds", "x", "c", "true") == 1
    assert run("exec") == 1


def test_pid_file_relative_to_caller(calls, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    run("exec", "--pid-file", "sub/p", "c", "true")
    assert calls["exec"][2]["pid_file"] == os.path.join(tmp_path, "sub/p")


@pytest.mark.parametrize("text, uid, gid", [
    ("1000", 1000, 7),        # a number alone keeps config.json's gid
    ("1000:20", 1000, 20),
    ("alice", 1000, 100),     # a name alone takes its passwd group
    ("alice:staff", 1000, 50),
    ("4242", 4242, 7),        # not in passwd: still a valid uid
])
def test_exec_user_parsing(tmp_path, text, uid, gid):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("alice:x:1000:100::/home/alice:/bin/sh\n")
    (etc / "group").write_text("staff:x:50:\n")
    current = {"uid": 0, "gid": 7, "additionalGids": [1, 2]}
    user = execution.parse_user(text, current, str(tmp_path))
    assert (user["uid"], user["gid"]) == (uid, gid)
    assert "additionalGids" not in user
