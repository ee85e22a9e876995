"""CVE-2024-21626: no runtime fd reaches the container, nor a cwd outside.

runc leaked an fd of the host's cgroup directory into the container; a
process.cwd of /proc/self/fd/7 then started the container with its cwd
on the host, and ../../.. was the host's root. Here the container's
processes are inspected from the host: the fds they hold and where their
cwd is.
"""

import os
import signal

import pytest

import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]

# Candidate fds of the runtime: the state dir and its lock, the exec fifo,
# the sync socket, the log file, cgroup dirs, the bundle. A few past
# what pyrunc opens today, in case that changes.
FDS = range(3, 13)


def fds_of(pid):
    """{fd: target} of a process, read from the host."""
    out = {}
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(f"{base}/{name}")
        except FileNotFoundError:
            continue
    return out


def identity(path):
    info = os.stat(path)
    return (info.st_dev, info.st_ino)


def assert_cwd_inside(pid):
    """Walk up from the process's cwd: it must reach the container's root.

    Seen from the host, a pivoted container's cwd reads "/", so paths do
    not tell; identities do. Above the container's root there is nothing
    in its mount namespace, so ".." stops there; a cwd on the host walks
    up to the host's root instead.
    """
    root = identity(f"/proc/{pid}/root")
    host_root = identity("/")
    fd = os.open(f"/proc/{pid}/cwd", os.O_PATH | os.O_DIRECTORY)
    try:
        for _ in range(256):
            info = os.fstat(fd)
            here = (info.st_dev, info.st_ino)
            if here == root:
                return
            assert here != host_root, \
                f"the cwd of {pid} is outside the container's root"
            up = os.open("..", os.O_PATH | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = up
    finally:
        os.close(fd)
    pytest.fail(f"the cwd of {pid} leads nowhere")


def kill(pid):
    """SIGKILL a container process we may have adopted, and reap it.

    A process still holding a runtime fd may hold the state lock with it;
    killing it first keeps a failing test from hanging the next command.
    """
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    st.wait_for(lambda: st.reap_zombies() or not os.path.exists(
        f"/proc/{pid}") or proc_state(pid) == "Z", timeout=5)


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.fixture
def sleeper(rt, tmp_path, request):
    """A running container whose init sleeps."""
    bundle = st.new_bundle(tmp_path, "b", request)
    st.set_args(bundle, "sleep", "30")
    st.start(rt, bundle, "sleeper")
    yield bundle
    st.delete(rt, "sleeper")


class TestNoLeakedFd:
    def test_init_holds_only_stdio(self, rt, sleeper):
        fds = fds_of(st.init_pid(rt, "sleeper"))
        assert sorted(fds) == [0, 1, 2], fds

    def test_exec_holds_only_stdio(self, rt, sleeper, tmp_path):
        log = tmp_path / "exec.log"
        pid_file = tmp_path / "exec.pid"
        proc = rt("--log", log, "exec", "-d", "--pid-file", pid_file,
                  "sleeper", "sleep", "30")
        assert proc.returncode == 0, proc.stderr
        pid = int(pid_file.read_text())
        fds = fds_of(pid)
        kill(pid)
        assert sorted(fds) == [0, 1, 2], fds

    def test_init_sees_no_runtime_fd(self, rt, tmp_path, request):
        bundle = st.new_bundle(tmp_path, "b", request)
        # The trailing builtin keeps sh from exec'ing ls as pid 1.
        st.set_args(bundle, "sh", "-c", "ls /proc/1/fd; true")
        bundle.save()
        proc = rt("--log", tmp_path / "run.log", "run", "--bundle", bundle,
                  "look")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["0", "1", "2"], proc.stdout


class TestCwdOutside:
    """A cwd through /proc/self/fd/N is refused or stays inside.

    The created container is inspected: its init made its chdir before
    it waits on the exec fifo, and has not exec'd yet.
    """

    @pytest.mark.parametrize("form", ["/proc/self/fd/{}",
                                      "/proc/self/fd/{}/..",
                                      "/proc/self/fd/{}/../../.."])
    def test_config_cwd_through_fd(self, rt, tmp_path, request, form):
        bundle = st.new_bundle(tmp_path, "b", request)
        st.set_args(bundle, "sleep", "30")
        for fd in FDS:
            bundle.config["process"]["cwd"] = form.format(fd)
            bundle.save()
            cid = f"cwd{fd}"
            proc = rt("create", "--bundle", bundle, cid)
            if proc.returncode != 0:
                st.error_line(proc)
                continue
            pid = st.init_pid(rt, cid)
            try:
                assert_cwd_inside(pid)
            finally:
                kill(pid)
                st.delete(rt, cid)

    def test_exec_cwd_through_fd(self, rt, sleeper, tmp_path):
        for fd in FDS:
            for form in ("/proc/self/fd/{}", "/proc/self/fd/{}/.."):
                pid_file = tmp_path / f"exec{fd}.pid"
                proc = rt("exec", "-d", "--cwd", form.format(fd),
                          "--pid-file", pid_file, "sleeper", "sleep", "30")
                if proc.returncode != 0:
                    st.error_line(proc)
                    continue
                pid = int(pid_file.read_text())
                try:
                    assert_cwd_inside(pid)
                finally:
                    kill(pid)
