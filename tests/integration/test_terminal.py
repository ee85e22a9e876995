"""process.terminal: the pty through --console-socket and in `run`."""

import os
import socket
import subprocess
import threading

import pytest

from helpers import read_all, unique_id

pytestmark = pytest.mark.root


def receive_pty(server, box):
    conn, _ = server.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 64, 1)
        box["name"] = msg
        box["fds"] = fds



class TestConsoleSocket:
    def test_master_arrives_and_carries_output(self, tmp_path, bundle,
                                               pyrunc_cmd):
        bundle.config["process"]["terminal"] = True
        bundle.config["process"]["consoleSize"] = {"height": 33,
                                                   "width": 101}
        bundle.set_args("sh", "-c", "tty; stty size")
        path = str(tmp_path / "console.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        box = {}
        thread = threading.Thread(target=receive_pty, args=(server, box))
        thread.start()
        cid = unique_id()
        proc = pyrunc_cmd("create", "--bundle", bundle, "--console-socket",
                          path, cid)
        thread.join(10)
        server.close()
        assert proc.returncode == 0, proc.stderr
        [master] = box["fds"]
        try:
            pyrunc_cmd("start", cid, check=True)
            output = read_all(master)
        finally:
            os.close(master)
            pyrunc_cmd("delete", "--force", cid)
        assert b"/dev/pts/0" in output
        assert b"33 101" in output

    def test_terminal_without_socket_is_refused(self, bundle, pyrunc_cmd,
                                                runc_cmd):
        bundle.config["process"]["terminal"] = True
        bundle.save()
        for rt in (pyrunc_cmd, runc_cmd):
            proc = rt("create", "--bundle", bundle, unique_id())
            assert proc.returncode == 1
            assert "cannot allocate tty if runc will detach without " \
                   "setting console socket" in proc.stderr
        assert pyrunc_cmd.container_ids() == []

    def test_socket_without_terminal_is_refused(self, tmp_path, bundle,
                                                pyrunc_cmd, runc_cmd):
        path = str(tmp_path / "unused.sock")
        for rt in (pyrunc_cmd, runc_cmd):
            proc = rt("create", "--bundle", bundle, "--console-socket",
                      path, unique_id())
            assert proc.returncode == 1
            assert "cannot use console socket if runc will not detach " \
                   "or allocate tty" in proc.stderr


class TestForegroundRun:
    def test_run_relays_the_pty(self, bundle, pyrunc_cmd):
        bundle.config["process"]["terminal"] = True
        bundle.set_args("sh", "-c", "tty; exit 3")
        argv = pyrunc_cmd.cmdline("run", "--bundle", bundle, unique_id())
        proc = subprocess.run(["script", "-qec", " ".join(argv),
                               "/dev/null"], capture_output=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        assert b"/dev/pts/0" in proc.stdout
        assert proc.returncode == 3


@pytest.mark.runc
def test_foreground_run_refuses_console_socket(tmp_path, bundle, runtime):
    # runc hands the pty to a console socket only when it detaches.
    bundle.config["process"]["terminal"] = True
    bundle.save()
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        proc = runtime("run", "--console-socket", path, "--bundle",
                       bundle, unique_id())
    assert proc.returncode == 1, proc.stderr
    assert "cannot use console socket if runc will not detach or " \
        "allocate tty" in proc.stderr
