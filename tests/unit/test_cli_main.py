"""cli/main.py: dispatch, error reporting, exit statuses, global options."""

import os
import subprocess
import sys
import types

import pytest

from pyrunc import log
from pyrunc.cli import main as cli_main
from pyrunc.cli.fastpath import parse
from pyrunc.errors import PyruncError


@pytest.fixture(autouse=True)
def _reset_log():
    yield
    log.reset()


def fake_command(monkeypatch, run):
    module = types.SimpleNamespace(run=run)
    monkeypatch.setattr(cli_main, "command_module", lambda name: module)


def dispatch(*argv):
    return cli_main.dispatch(parse(list(argv)))


class TestErrors:
    def test_pyrunc_error_sets_status(self, monkeypatch, capfd, tmp_path):
        class Custom(PyruncError):
            exit_code = 7

        def run(g, container_id):
            raise Custom("it broke")

        fake_command(monkeypatch, run)
        assert dispatch("--root", str(tmp_path), "state", "x") == 7
        _, err = capfd.readouterr()
        assert err.endswith('level=error msg="it broke"\n')
        assert err.count("\n") == 1

    def test_unexpected_error_is_one_line(self, monkeypatch, capfd):
        def run(g, container_id):
            raise RuntimeError("surprise\nsecond line")

        fake_command(monkeypatch, run)
        assert dispatch("state", "x") == 1
        _, err = capfd.readouterr()
        assert err.count("\n") == 1
        assert "unexpected error: RuntimeError: surprise second line" in err
        assert "Traceback" not in err

    def test_traceback_only_with_debug(self, monkeypatch, capfd):
        def run(g, container_id):
            raise RuntimeError("surprise")

        fake_command(monkeypatch, run)
        assert dispatch("--debug", "state", "x") == 1
        _, err = capfd.readouterr()
        assert "Traceback" in err and "RuntimeError: surprise" in err

    def test_interrupt(self, monkeypatch):
        def run(g, container_id):
            raise KeyboardInterrupt

        fake_command(monkeypatch, run)
        assert dispatch("state", "x") == 130

    def test_status_passes_through(self, monkeypatch):
        fake_command(monkeypatch, lambda g, container_id: 42)
        assert dispatch("state", "x") == 42

    def test_empty_id(self, capfd, tmp_path):
        assert dispatch("--root", str(tmp_path), "state", "") == 1
        assert "container id cannot be empty" in capfd.readouterr().err

    @pytest.mark.parametrize("argv, message", [
        (["--systemd-cgroup", "create", "c"],
         "systemd cgroup driver is not supported"),
        (["--systemd-cgroup", "run", "c"],
         "systemd cgroup driver is not supported"),
        (["--rootless", "maybe", "create", "c"],
         'invalid --rootless value \\"maybe\\"'),
    ])
    def test_refused_globals(self, argv, message, capfd, tmp_path):
        assert dispatch("--root", str(tmp_path), *argv) == 1
        assert message in capfd.readouterr().err
        assert not os.path.exists(tmp_path / "c")

    @pytest.mark.parametrize("value", ["auto", "true", "FALSE", "1", "t"])
    def test_rootless_values_accepted(self, value):
        from pyrunc.cli.create import check_globals

        invocation = parse(["--rootless", value, "create", "c"])
        check_globals(cli_main.Globals(invocation.globals))


class TestRoot:
    def test_default(self, monkeypatch):
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
        assert cli_main.resolve_root(None) == "/run/pyrunc"

    def test_unprivileged_uses_xdg(self, monkeypatch):
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
        assert cli_main.resolve_root(None) == "/run/user/1000/pyrunc"

    def test_relative_made_absolute(self, monkeypatch, tmp_path):
        monkeypatch.chdir(tmp_path)
        assert cli_main.resolve_root("r") == str(tmp_path / "r")


def test_version_lines():
    text = cli_main.version_text()
    lines = text.splitlines()
    assert lines[0] == "pyrunc version 0.1.0"
    assert lines[2] == "spec: 1.2.0"
    commit = lines[1].removeprefix("commit: ")
    assert commit == "unknown" or all(c in "0123456789abcdef"
                                      for c in commit)


def test_entry_point_runs(tmp_path):
    """`python -m pyrunc.cli.main`, as a container manager would call it."""
    done = subprocess.run(
        [sys.executable, "-m", "pyrunc.cli.main", "--root", str(tmp_path),
         "list", "--format", "json"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "null\n", "")
