"""exec: pyrunc against runc 1.1.5 on the same bundle.

Each runtime runs its own copy of the bundle (its own cgroup), with
`sleep` as the init; the same exec command line goes to both, and the
exit statuses, outputs and error messages are compared.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import helpers

pytestmark = [pytest.mark.root, pytest.mark.runc]

_MSG = re.compile(r'level=error msg="((?:[^"\\]|\\.)*)"')


def message(proc):
    """The one error message a runtime logged on stderr."""
    found = [json.loads(f'"{m.group(1)}"') for m in _MSG.finditer(proc.stderr)]
    assert len(found) == 1, proc.stderr
    return found[0]


class Pair:
    """One running container per runtime, each from its own bundle."""

    def __init__(self, runtimes, bundles):
        self.runtimes = runtimes
        self.bundles = bundles
        self.ids = {}
        self.adopted = []

    def start(self, *args):
        for rt in self.runtimes:
            bundle = self.bundles[rt.name]
            if args:
                bundle.set_args(*args)
            cid = helpers.unique_id(rt.name[:1])
            proc = rt.run(bundle, cid, "--detach")
            assert proc.returncode == 0, proc.stderr
            self.ids[rt.name] = cid
        return self

    def both(self, *args, cid=None, **kwargs):
        """Run `<rt> args...`; "{id}" in args is each container's id."""
        results = {}
        for rt in self.runtimes:
            words = [str(a).format(id=cid or self.ids.get(rt.name, ""))
                     for a in args]
            results[rt.name] = rt(*words, **kwargs)
        return results["pyrunc"], results["runc"]

    def exec_both(self, *args, **kwargs):
        """`exec [args before "{id}"] {id} [command]` on both."""
        return self.both("exec", *args, **kwargs)

    def adopt(self, pid):
        """Kill and reap pid, a detached exec's process, at stop().

        Detached, it outlives the runtime and comes to us, the
        subreaper. Left unreaped, its zombie stays in the container's pid
        namespace, whose dying init then waits for it forever, and
        `delete --force` gives up ("container init still running").
        """
        self.adopted.append(pid)

    def stop(self):
        for pid in self.adopted:
            reap(pid)
        for rt in self.runtimes:
            cid = self.ids.get(rt.name)
            if cid is not None:
                rt("delete", "--force", cid)


@pytest.fixture
def pair(tmp_path, bundle, pyrunc_cmd, runc_cmd, request):
    bundles = {"pyrunc": bundle,
               "runc": helpers.make_bundle(
                   tmp_path / "runc-bundle", source=bundle.path,
                   cgroups_path=helpers.cgroup_name(request.node.name))}
    result = Pair([pyrunc_cmd, runc_cmd], bundles)
    yield result
    result.stop()


@pytest.fixture
def running(pair):
    return pair.start("sleep", "1000")


def same_output(pyrunc, runc):
    assert runc.returncode == pyrunc.returncode, (pyrunc, runc)
    assert pyrunc.stdout == runc.stdout
    assert pyrunc.stderr == runc.stderr


def same_error(pyrunc, runc, status=255):
    assert (pyrunc.returncode, runc.returncode) == (status, status), \
        (pyrunc, runc)
    assert pyrunc.stdout == runc.stdout == ""
    theirs = message(runc)
    assert message(pyrunc) == theirs
    return theirs


class TestOutputAndStatus:
    def test_status_and_output(self, running):
        same_output(*running.exec_both(
            "{id}", "sh", "-c", "echo out; echo err >&2; exit 3"))

    def test_options_stop_at_the_container_id(self, running):
        # "-c" and "-e" after the id belong to sh, not to exec.
        pyrunc, runc = running.exec_both(
            "-e", "A=1", "{id}", "sh", "-c", 'echo "$A" "$0" "$1"', "-e",
            "x")
        same_output(pyrunc, runc)
        assert pyrunc.stdout == "1 -e x\n"

    def test_double_dash_before_the_id(self, running):
        pyrunc, runc = running.exec_both("--", "{id}", "echo", "-n", "hi")
        same_output(pyrunc, runc)
        assert pyrunc.stdout == "hi"

    def test_double_dash_after_the_id_is_the_command(self, running):
        text = same_error(*running.exec_both("{id}", "--", "true"))
        assert 'exec: "--": executable file not found in $PATH' in text

    def test_process_own_signal_status(self, running):
        same_output(*running.exec_both("{id}", "sh", "-c", "kill -9 $$"))


class TestFailures:
    def test_missing_binary(self, running):
        text = same_error(*running.exec_both("{id}", "nosuchbin"))
        assert text == ("exec failed: unable to start container process: "
                        'exec: "nosuchbin": executable file not found in '
                        "$PATH")

    @pytest.mark.parametrize("args", [
        ("--cwd", "/bin", "{id}", "./echo", "hi"),
        ("-e", "PATH=bin", "{id}", "echo", "hi"),
        ("-e", "PATH=", "{id}", "echo", "hi"),
        ("-e", "PATH=/etc/passwd:/bin:", "{id}", "nosuchbin"),
        ("{id}", "/etc/passwd"),
        ("{id}", "/etc"),
        ("{id}", "/nonexistent/bin"),
    ], ids=["relative-to-cwd", "relative-path-entry", "empty-path",
            "bad-entries", "not-executable", "directory", "missing"])
    def test_program_lookup(self, running, args):
        # Go's exec.LookPath, after the chdir to the cwd, with the
        # process's PATH.
        pyrunc, runc = running.exec_both(*args)
        assert pyrunc.returncode == runc.returncode, (pyrunc, runc)
        assert pyrunc.stdout == runc.stdout
        if runc.returncode == 255:
            assert message(pyrunc) == message(runc)

    def test_unknown_container(self, pair):
        text = same_error(*pair.exec_both("nosuch", "true"))
        assert text == "exec failed: container does not exist"

    def test_empty_id(self, pair):
        same_error(*pair.exec_both("", "true"))

    def test_no_command(self, running):
        text = same_error(*running.exec_both("{id}"))
        assert text == "exec failed: process args cannot be empty"

    def test_stopped_container(self, pair):
        pair.start("true")
        for rt in pair.runtimes:
            wait_stopped(rt, pair.ids[rt.name])
        text = same_error(*pair.exec_both("{id}", "true"))
        assert text == "exec failed: cannot exec in a stopped container"

    def test_negative_gid(self, running):
        same_error(*running.exec_both("-g", "-5", "{id}", "id"))

    def test_tty_detached_without_socket(self, running):
        same_error(*running.exec_both("-t", "-d", "{id}", "true"))

    def test_bad_cwd_fails_with_255(self, running):
        pyrunc, runc = running.exec_both("--cwd", "/nonexistent", "{id}",
                                         "pwd")
        assert pyrunc.returncode == runc.returncode == 255
        # XXX: the wording of the library's chdir error differs from
        # runc's ("... set in config.json failed: no such file ...").
        assert 'chdir to cwd ("/nonexistent")' in message(pyrunc)

    @pytest.mark.parametrize("args", [
        ("--preserve-fds", "x"), ("-g", "0x10"), ("--bogus",),
    ])
    def test_usage_errors_exit_1(self, running, args):
        pyrunc, runc = running.exec_both(*args, "{id}", "true")
        assert pyrunc.returncode == runc.returncode == 1
        assert pyrunc.stdout.startswith("Incorrect Usage")
        assert runc.stdout.startswith("Incorrect Usage")


class TestFlags:
    def test_env_appended(self, running):
        pyrunc, runc = running.exec_both(
            "-e", "A=1", "-e", "B=two words", "-e", "PATH=/bin", "{id}",
            "env")
        same_output(pyrunc, runc)
        assert "B=two words\n" in pyrunc.stdout

    def test_cwd(self, running):
        pyrunc, runc = running.exec_both("--cwd", "/tmp", "{id}", "pwd")
        same_output(pyrunc, runc)
        assert pyrunc.stdout == "/tmp\n"

    def test_user_and_group(self, running):
        pyrunc, runc = running.exec_both(
            "--user", "1000:1000", "{id}", "sh", "-c",
            "id; grep -E '^(Uid|Gid|Groups|Cap)' /proc/self/status")
        same_output(pyrunc, runc)
        assert pyrunc.stdout.startswith("uid=1000(test) gid=1000(test)")

    def test_uid_only_keeps_the_config_gid(self, running):
        same_output(*running.exec_both("-u", "1000", "{id}", "id"))

    def test_additional_gids(self, running):
        pyrunc, runc = running.exec_both("-g", "10", "-g", "20", "{id}",
                                         "id")
        same_output(pyrunc, runc)
        assert "groups=10,20" in pyrunc.stdout

    @pytest.mark.parametrize("name", ["--cap", "-c"])
    def test_cap_masks(self, running, name):
        pyrunc, runc = running.exec_both(
            name, "CAP_SYS_ADMIN", name, "CAP_NET_RAW", "{id}", "grep",
            "Cap", "/proc/self/status")
        same_output(pyrunc, runc)
        masks = dict(line.split(":\t") for line in
                     pyrunc.stdout.splitlines())
        cap_sys_admin = 1 << 21
        assert int(masks["CapBnd"], 16) & cap_sys_admin

    def test_one_flag_under_two_names(self, running):
        # urfave/cli refuses "--cap" and "-c" together, as a usage error.
        pyrunc, runc = running.exec_both(
            "--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_RAW", "{id}", "true")
        assert pyrunc.returncode == runc.returncode == 1
        assert pyrunc.stdout.startswith("Incorrect Usage: ")
        assert runc.stdout.startswith("Incorrect Usage: ")
        assert message(pyrunc) == message(runc) == \
            "Cannot use two forms of the same flag: c cap"

    def test_no_new_privs(self, running):
        pyrunc, runc = running.exec_both(
            "--no-new-privs", "{id}", "grep", "NoNewPrivs",
            "/proc/self/status")
        same_output(pyrunc, runc)
        assert pyrunc.stdout == "NoNewPrivs:\t1\n"

    def test_process_file(self, running, tmp_path):
        process = {
            "terminal": False, "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "id; pwd; echo $X"],
            "env": ["PATH=/bin", "X=from-file"], "cwd": "/tmp",
        }
        path = tmp_path / "process.json"
        path.write_text(json.dumps(process))
        pyrunc, runc = running.exec_both("-p", path, "{id}")
        same_output(pyrunc, runc)
        assert pyrunc.stdout.endswith("/tmp\nfrom-file\n")

    def test_process_file_ignores_arguments(self, running, tmp_path):
        path = tmp_path / "process.json"
        path.write_text(json.dumps({"args": ["echo", "file"], "cwd": "/",
                                    "env": ["PATH=/bin"]}))
        pyrunc, runc = running.exec_both("--process", path, "{id}", "echo",
                                         "args")
        same_output(pyrunc, runc)
        assert pyrunc.stdout == "file\n"

    def test_process_file_without_path(self, running, tmp_path):
        # The program is looked up with the process's own PATH only:
        # runc has no default for a process.json without one.
        path = tmp_path / "process.json"
        path.write_text(json.dumps({"args": ["echo", "file"], "cwd": "/"}))
        text = same_error(*running.exec_both("--process", path, "{id}"))
        assert text == ("exec failed: unable to start container process: "
                        'exec: "echo": executable file not found in '
                        "$PATH")


class TestDetach:
    def test_detach_and_pid_file(self, running, tmp_path):
        for rt in running.runtimes:
            cid = running.ids[rt.name]
            pid_file = tmp_path / f"{rt.name}.pid"
            proc = rt("exec", "--detach", "--pid-file", pid_file, cid,
                      "sleep", "1000")
            assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
            text = pid_file.read_text()
            # runc writes the bare number, without a newline.
            assert text.isdigit(), repr(text)
            pid = int(text)
            running.adopt(pid)
            init = rt.state(cid)["pid"]
            listed = rt("ps", "--format", "json", cid)
            assert listed.returncode == 0, listed.stderr
            assert sorted(json.loads(listed.stdout)) == sorted([init, pid])
            assert read_cgroup(pid) == read_cgroup(init)

    def test_relative_pid_file(self, running, tmp_path):
        os.mkdir(tmp_path / "here")
        for rt in running.runtimes:
            proc = rt("exec", "-d", "--pid-file", f"{rt.name}.pid",
                      running.ids[rt.name], "true", cwd=tmp_path / "here")
            assert proc.returncode == 0, proc.stderr
            pid_file = tmp_path / "here" / f"{rt.name}.pid"
            running.adopt(int(pid_file.read_text()))


class TestTerminal:
    def test_tty_through_console_socket(self, running, tmp_path):
        # runc takes --console-socket with -t and -d only; the detached
        # process's status is then ours, the subreaper's, to collect.
        outputs = {}
        for rt in running.runtimes:
            path = str(tmp_path / f"{rt.name}.sock")
            pid_file = tmp_path / f"{rt.name}.pid"
            box = {}
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
                server.bind(path)
                server.listen(1)
                server.settimeout(10)
                thread = threading.Thread(target=receive_pty,
                                          args=(server, box))
                thread.start()
                proc = rt("exec", "-t", "-d", "--console-socket", path,
                          "--pid-file", pid_file, running.ids[rt.name], "sh",
                          "-c", "tty; echo hi; exit 7")
                thread.join()
            assert "fds" in box, (proc, box)
            [master] = box["fds"]
            try:
                output = helpers.read_all(master)
            finally:
                os.close(master)
            status = reap(int(pid_file.read_text()), kill=False)
            outputs[rt.name] = (proc.returncode, proc.stdout, proc.stderr,
                                output, status)
        assert outputs["pyrunc"] == outputs["runc"]
        assert outputs["pyrunc"][4] == 7
        assert b"hi\r\n" in outputs["pyrunc"][3]

    @pytest.mark.parametrize("flags", [("-t",), ("-d",), ()],
                             ids=["tty", "detach", "neither"])
    def test_console_socket_needs_tty_and_detach(self, running, tmp_path,
                                                 flags):
        # Checked before the socket is used: nobody listens on it.
        path = tmp_path / "unused.sock"
        text = same_error(*running.exec_both(
            *flags, "--console-socket", path, "{id}", "true"))
        assert text == ("exec failed: cannot use console socket if runc "
                        "will not detach or allocate tty")


    @pytest.mark.parametrize("command", [("true",), ("sh",)])
    def test_foreground_tty_needs_a_terminal(self, running, command):
        # Nothing on stdio is a terminal and there is no controlling one
        # (a new session): runc fails before it starts the process.
        text = same_error(*running.exec_both(
            "-t", "{id}", *command, start_new_session=True, timeout=20))
        assert text == ("exec failed: open /dev/tty: no such device or "
                        "address")


class TestPaused:
    def test_exec_refused_when_paused(self, running):
        for rt in running.runtimes:
            assert rt("pause", running.ids[rt.name]).returncode == 0
        try:
            text = same_error(*running.exec_both("{id}", "true"))
        finally:
            for rt in running.runtimes:
                rt("resume", running.ids[rt.name])
        assert text == ("exec failed: cannot exec in a paused container "
                        "(use --ignore-paused to override)")

    def test_ignore_paused_runs_once_resumed(self, running, tmp_path):
        results = {}
        for rt in running.runtimes:
            cid = running.ids[rt.name]
            assert rt("pause", cid).returncode == 0
            proc = rt.popen("exec", "--ignore-paused", cid, "echo", "late")
            time.sleep(1)
            try:
                resumed = rt("resume", cid, timeout=5).returncode
            except subprocess.TimeoutExpired:
                resumed = None
                thaw(rt.state(cid)["pid"])
            out, _ = proc.communicate(timeout=10)
            results[rt.name] = (resumed, proc.returncode, out)
        assert results["pyrunc"] == results["runc"] == (0, 0, "late\n")


# -- helpers ----------------------------------------------------------------


def wait_stopped(rt, cid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = rt.state(cid)
        if state is not None and state["status"] == "stopped":
            return
        time.sleep(0.05)
    raise AssertionError(f"{rt.name}: {cid} did not stop")


def read_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


def thaw(pid):
    """Thaw the v1 freezer cgroup of pid (a test's way out of a hang)."""
    for line in read_cgroup(pid).splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            with open(f"/sys/fs/cgroup/freezer{path}/freezer.state",
                      "w") as f:
                f.write("THAWED")


def reap(pid, kill=True):
    """Wait for pid, a child of ours (killed first if kill); its status.

    None if it was not ours to wait for.
    """
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def receive_pty(server, box):
    try:
        conn, _ = server.accept()
    except OSError as err:  # a timeout: the runtime never connected
        box["error"] = err
        return
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        box["fds"] = fds

