"""cli/events.py, cli/pause.py and cli/resume.py over fake libraries."""

import sys
import types

import pytest

from pyrunc import log
from pyrunc.cli import events as cli_events
from pyrunc.cli import main as cli_main
from pyrunc.errors import ContainerNotFound, InvalidState


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
def library(monkeypatch):
    """Fake pyrunc.container.{events,pause}; records the calls."""
    seen = []

    def events(store, cid, *, stats, interval, write):
        store.load(cid)
        seen.append(("events", cid, stats, interval))
        write('{"type":"stats","id":"c"}')
        write('{"type":"oom","id":"c"}\n')

    def pause(store, cid):
        store.load(cid)
        seen.append(("pause", cid))

    def resume(store, cid):
        store.load(cid)
        raise InvalidState("container not paused")

    fake_events = types.ModuleType("pyrunc.container.events")
    fake_events.events = events
    fake_pause = types.ModuleType("pyrunc.container.pause")
    fake_pause.pause = pause
    fake_pause.resume = resume
    monkeypatch.setitem(sys.modules, "pyrunc.container.events", fake_events)
    monkeypatch.setitem(sys.modules, "pyrunc.container.pause", fake_pause)
    monkeypatch.setattr(cli_main.Globals, "store", lambda self: FakeStore())
    return seen


def run(*argv):
    return cli_main.run_argv(["--root", "/nonexistent-root", *argv])


class TestEvents:
    def test_one_json_object_per_line(self, library, capfd):
        assert run("events", "--stats", "c") == 0
        assert library == [("events", "c", True, 5.0)]
        assert capfd.readouterr().out == (
            '{"type":"stats","id":"c"}\n{"type":"oom","id":"c"}\n')

    def test_interval_in_seconds(self, library):
        assert run("events", "--interval", "1m30s", "c") == 0
        assert library == [("events", "c", False, 90.0)]

    def test_zero_interval_reaches_the_library(self, library):
        # The library checks it (after looking the container up).
        assert run("events", "--interval=0s", "c") == 0
        assert library == [("events", "c", False, 0.0)]

    def test_reader_gone_is_not_an_error(self, library, monkeypatch):
        def broken(text):
            raise BrokenPipeError

        silenced = []
        monkeypatch.setattr(cli_events, "write_out", broken)
        monkeypatch.setattr(cli_events, "_silence_stdout",
                            lambda: silenced.append(True))
        assert run("events", "--stats", "c") == 0
        assert silenced == [True]


class TestPauseResume:
    def test_pause(self, library):
        assert run("pause", "c") == 0
        assert library == [("pause", "c")]

    def test_errors_reported_once(self, library, capfd):
        assert run("resume", "c") == 1
        err = capfd.readouterr().err
        assert err.count("level=error") == 1
        assert 'msg="container not paused"' in err
        assert run("pause", "nosuch") == 1
        assert 'msg="container does not exist"' in capfd.readouterr().err
