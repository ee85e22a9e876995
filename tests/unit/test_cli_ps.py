"""cli/ps.py: runc's json and table output over a fake pid list."""

import sys
import types

import pytest

from pyrunc import log
from pyrunc.cli import main as cli_main
from pyrunc.cli import ps as cli_ps
from pyrunc.errors import ContainerNotFound, PyruncError


@pytest.fixture(autouse=True)
def _reset_log():
    yield
    log.reset()


@pytest.fixture
def pids(monkeypatch):
    """The pids the (fake) library reports; [] means none."""
    found = []

    def container_pids(store, cid):
        if cid != "c":
            raise ContainerNotFound(cid)
        return list(found)

    fake = types.ModuleType("pyrunc.container.ps")
    fake.pids = container_pids
    monkeypatch.setitem(sys.modules, "pyrunc.container.ps", fake)
    return found


def run(*argv):
    return cli_main.run_argv(["--root", "/nonexistent-root", *argv])


class TestJson:
    def test_list_of_pids(self, pids, capfd):
        pids += [12, 345]
        assert run("ps", "--format", "json", "c") == 0
        assert capfd.readouterr().out == "[12,345]\n"

    def test_none_is_null_like_go(self, pids, capfd):
        assert run("ps", "-f", "json", "c") == 0
        assert capfd.readouterr().out == "null\n"

    def test_unknown_container_first(self, pids, capfd):
        assert run("ps", "-f", "xml", "nosuch") == 1
        assert "container does not exist" in capfd.readouterr().err

    def test_invalid_format(self, pids, capfd):
        assert run("ps", "-f", "xml", "c") == 1
        assert 'msg="invalid format option"' in capfd.readouterr().err


PS_OUTPUT = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root          42       1  0 10:00 ?        00:00:00 sleep 1000
root         420      42  0 10:00 ?        00:00:00 sh -c echo 42
"""


class TestTable:
    def test_keeps_header_and_container_rows(self):
        assert cli_ps.filter_table(PS_OUTPUT, {42}) == (
            "UID          PID    PPID  C STIME TTY          TIME CMD\n"
            "root          42       1  0 10:00 ?        00:00:00 sleep 1000\n")

    def test_pid_column_found_by_title(self):
        text = "  PID COMMAND\n    7 a\n    8 b\n"
        assert cli_ps.filter_table(text, {8}) == "  PID COMMAND\n    8 b\n"

    def test_no_pid_column(self):
        with pytest.raises(PyruncError,
                           match="couldn't find PID field in ps output"):
            cli_ps.filter_table("COMMAND\nsleep\n", {1})

    def test_unparsable_pid(self):
        with pytest.raises(PyruncError, match="unable to parse pid"):
            cli_ps.filter_table("PID CMD\nx y\n", {1})

    def test_runs_host_ps_with_default_options(self, pids, monkeypatch,
                                                capfd):
        pids.append(42)
        seen = []

        def fake_ps(args):
            seen.append(args)
            return PS_OUTPUT

        monkeypatch.setattr(cli_ps, "run_ps", fake_ps)
        assert run("ps", "c") == 0
        assert seen == [("-ef",)]
        assert "sleep 1000" in capfd.readouterr().out
        assert run("ps", "c", "-o", "pid,cmd") == 0
        assert seen[-1] == ("-o", "pid,cmd")

    def test_real_ps_of_ourselves(self):
        import os

        out = cli_ps.filter_table(cli_ps.run_ps(("-o", "pid,comm")),
                                  {os.getpid()})
        lines = out.splitlines()
        assert lines[0].split() == ["PID", "COMMAND"]
        assert [int(line.split()[0]) for line in lines[1:]] == [os.getpid()]

    def test_ps_failure_reported_like_go(self):
        with pytest.raises(PyruncError, match=r"^exit status 1: .*option"):
            cli_ps.run_ps(("--no-such-option",))
