"""systemd socket activation passed through to the container
(pyrunc.container.create.listen_fds), as runc does."""

import os

import pytest

from pyrunc.container.create import listen_fds


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    return monkeypatch


def test_fds_meant_for_us_are_passed_on(env):
    env.setenv("LISTEN_PID", str(os.getpid()))
    env.setenv("LISTEN_FDS", "2")
    assert listen_fds(1) == (["LISTEN_FDS=2", "LISTEN_PID=1"], 3)


@pytest.mark.parametrize("pid, count", [
    (None, "2"),            # no LISTEN_PID: not for us
    ("1", "2"),             # for another process
    ("self", "0"),
    ("self", "-1"),
    ("self", "x"),
    ("self", None),
    ("nope", "2"),
])
def test_anything_else_is_ignored(env, pid, count):
    if pid is not None:
        env.setenv("LISTEN_PID",
                   str(os.getpid()) if pid == "self" else pid)
    if count is not None:
        env.setenv("LISTEN_FDS", count)
    assert listen_fds(4) == ([], 4)
