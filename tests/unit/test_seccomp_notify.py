"""The container process state sent to a seccomp agent (runtime-spec)."""

import json
import os
import socket
import threading

import pytest

import pyrunc
from pyrunc.errors import ConfigError
from pyrunc.seccomp import notify

STATE = {"ociVersion": "1.0.2", "id": "c1", "status": "creating",
         "pid": 42, "bundle": "/b", "annotations": {"k": "v"}}


def test_document_layout():
    doc = notify.process_state(42, STATE, "meta")
    assert list(doc) == ["ociVersion", "fds", "pid", "metadata", "state"]
    assert doc["ociVersion"] == pyrunc.SPEC_VERSION
    assert doc["fds"] == ["seccompFd"]
    assert doc["state"] is STATE
    assert "metadata" not in notify.process_state(42, STATE)


def test_sends_json_and_the_fd(tmp_path):
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = {}

    def agent():
        conn, _ = server.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            while True:
                more = conn.recv(65536)
                if not more:
                    break
                data += more
        got["doc"] = json.loads(data)
        got["fds"] = fds

    thread = threading.Thread(target=agent)
    thread.start()
    read_end, write_end = os.pipe()
    try:
        notify.send_state(path, write_end, 42, STATE, "meta")
        thread.join(10)
        [passed] = got["fds"]
        # The agent holds the same open file: what it writes, we read.
        os.write(passed, b"x")
        os.close(passed)
        assert os.read(read_end, 1) == b"x"
    finally:
        os.close(read_end)
        os.close(write_end)
        server.close()
    assert got["doc"] == notify.process_state(42, STATE, "meta")


def test_unreachable_agent(tmp_path):
    path = str(tmp_path / "nobody.sock")
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ConfigError) as info:
            notify.send_state(path, write_end, 42, STATE)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert str(info.value) == (f"linux.seccomp.listenerPath: send seccomp "
                               f"fd to {path}: No such file or directory")


def test_no_fd_from_the_child():
    with pytest.raises(ConfigError, match="sent no seccomp listener fd"):
        notify.forward({"listenerPath": "/x"}, -1, 42, STATE)
