"""CVE-2024-21626: no runtime fd reaches the container, nor a cwd outside.

runc leaked an fd of the host's cgroup directory into the container; a
process.cwd of /proc/self/fd/7 then started the container with its cwd
on the host, and ../../.. was the host's root. Here the container's
processes are inspected from the host: the fds they hold and where their
cwd is.
"""

import os
import signal
import subprocess

import pytest

import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]

# Candidate fds of the runtime: the state dir and its lock, the exec fifo,
# the sync socket, the log file, cgroup dirs, the bundle. A few past
# what pyrunc opens today, in case that changes.
FDS = range(3, 13)

# Seconds a command may take here before it counts as hung.
QUICK = 10

# Why a cwd through /proc/self/fd/N may be refused: getcwd found it
# outside the root, the lookup in the root met a magic link, or fd N was
# closed or no directory by the time of the chdir.
CWD_REFUSALS = ("outside the container", "too many levels of symbolic links",
                "no such file or directory", "not a directory")


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
    """The process's cwd must lead up to the container's root.

    Seen from the host, a pivoted container's cwd reads "/", so paths do
    not tell; identities do (see leads_to_root).
    """
    assert leads_to_root(pid, f"/proc/{pid}/cwd"), \
        f"the cwd of {pid} is outside the container's root"


def is_own_fd(pid, fd, target, fifo):
    """Whether fd of a created init is one the runtime means it to hold.

    Those are the exec fifo, the pyrunc-dmz memfd it execs through, and
    whatever lies inside the container's root (its root directory).
    """
    path = f"/proc/{pid}/fd/{fd}"
    try:
        here = identity(path)
    except FileNotFoundError:
        return True
    if here == fifo or target.startswith("/memfd:pyrunc-dmz"):
        return True
    if os.path.isdir(path):
        return leads_to_root(pid, path)
    # A file: the same one must be found at its path under the root.
    try:
        return identity(f"/proc/{pid}/root/{target.lstrip('/')}") == here
    except OSError:
        return False


def leads_to_root(pid, path):
    """Whether walking up from directory path reaches pid's root.

    Above the container's root there is nothing in its mount namespace,
    so ".." stops there; a directory on the host walks up to the host's
    root instead.
    """
    root = identity(f"/proc/{pid}/root")
    host_root = identity("/")
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    try:
        for _ in range(256):
            info = os.fstat(fd)
            here = (info.st_dev, info.st_ino)
            if here == root:
                return True
            if here == host_root:
                return False
            up = os.open("..", os.O_PATH | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = up
    finally:
        os.close(fd)
    return False


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

    def test_created_init_holds_no_runtime_fd(self, rt, tmp_path, request):
        # Between create and start the init is still the runtime's clone,
        # waiting on the exec fifo: what it holds then, the container's
        # program inherits. A leaked state lock would also hang `start`,
        # so every command here has a short timeout.
        bundle = st.new_bundle(tmp_path, "b", request)
        st.set_args(bundle, "true")
        bundle.save()
        pid_file = tmp_path / "init.pid"
        proc = rt("create", "--bundle", bundle, "--pid-file", pid_file,
                  "early", timeout=QUICK)
        assert proc.returncode == 0, proc.stderr
        pid = int(pid_file.read_text())
        fifo = identity(rt.root / "early" / "exec.fifo")
        try:
            strays = {fd: target for fd, target in fds_of(pid).items()
                      if fd >= 3 and not is_own_fd(pid, fd, target, fifo)}
            assert strays == {}, "the created init holds runtime fds"
            try:
                started = rt("start", "early", timeout=QUICK)
            except subprocess.TimeoutExpired:
                pytest.fail("`start` hung: a runtime fd holds its lock")
            assert started.returncode == 0, started.stderr
        finally:
            kill(pid)
            st.delete(rt, "early")

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
        refusals = []
        for fd in FDS:
            cwd = form.format(fd)
            bundle.config["process"]["cwd"] = cwd
            bundle.save()
            cid = f"cwd{fd}"
            proc = rt("create", "--bundle", bundle, cid, timeout=QUICK)
            if proc.returncode != 0:
                refusals.append((cwd, st.error_line(proc)))
                continue
            pid = st.init_pid(rt, cid)
            try:
                assert_cwd_inside(pid)
            finally:
                kill(pid)
                st.delete(rt, cid)
        assert_refusals_name_cwd(refusals)

    def test_exec_cwd_through_fd(self, rt, sleeper, tmp_path):
        refusals = []
        for fd in FDS:
            for form in ("/proc/self/fd/{}", "/proc/self/fd/{}/.."):
                cwd = form.format(fd)
                pid_file = tmp_path / f"exec{fd}.pid"
                proc = rt("exec", "-d", "--cwd", cwd, "--pid-file",
                          pid_file, "sleeper", "sleep", "30", timeout=QUICK)
                if proc.returncode != 0:
                    refusals.append((cwd, st.error_line(proc)))
                    continue
                pid = int(pid_file.read_text())
                try:
                    assert_cwd_inside(pid)
                finally:
                    kill(pid)
        assert_refusals_name_cwd(refusals)

    def test_exec_cwd_on_preserved_host_dir(self, rt, sleeper, tmp_path):
        # The getcwd check alone: fd 3 is a host directory handed to
        # exec on purpose, so the chdir through it succeeds and only
        # getcwd() tells that the cwd lies outside the root.
        host = st.host_marker_dir(tmp_path, "host-dir")
        (host / "host-secret").write_text("host only\n")
        dirfd = os.open(host, os.O_RDONLY | os.O_DIRECTORY)
        try:
            proc = rt("exec", "--preserve-fds", "1", "--cwd",
                      "/proc/self/fd/3", "sleeper", "sh", "-c", "pwd; ls",
                      pass_fds=(3,), timeout=QUICK,
                      preexec_fn=lambda: os.dup2(dirfd, 3))
        finally:
            os.close(dirfd)
        assert "host-secret" not in proc.stdout, \
            f"the exec'd process listed the host directory:\n{proc.stdout}"
        assert proc.returncode != 0, proc.stdout
        line = st.error_line(proc)
        assert "outside the container" in line, line

    def test_cwd_check_without_getcwd(self, rt, tmp_path, request):
        # A profile that denies getcwd (runtime-tools' linux_seccomp
        # does) must not switch the check off: the executor walks ".."
        # up to the root instead. Without noNewPrivileges the filter is
        # already loaded at the chdir.
        bundle = st.new_bundle(tmp_path, "b", request)
        bundle.config["process"]["noNewPrivileges"] = False
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}],
        }
        st.set_args(bundle, "sleep", "30")
        st.start(rt, bundle, "nogetcwd")
        host = st.host_marker_dir(tmp_path, "host-dir")
        (host / "host-secret").write_text("host only\n")
        dirfd = os.open(host, os.O_RDONLY | os.O_DIRECTORY)
        try:
            inside = rt("exec", "--cwd", "/tmp", "nogetcwd", "ls", "/",
                        timeout=QUICK)
            outside = rt("exec", "--preserve-fds", "1", "--cwd",
                         "/proc/self/fd/3", "nogetcwd", "sh", "-c", "ls",
                         pass_fds=(3,), timeout=QUICK,
                         preexec_fn=lambda: os.dup2(dirfd, 3))
        finally:
            os.close(dirfd)
            st.delete(rt, "nogetcwd")
        assert inside.returncode == 0, inside.stderr
        assert "host-secret" not in outside.stdout, outside.stdout
        assert outside.returncode != 0, outside.stdout
        line = st.error_line(outside)
        assert "outside the container" in line, line


def assert_refusals_name_cwd(refusals):
    """Each refusal names the cwd and a reason of CWD_REFUSALS."""
    for cwd, line in refusals:
        assert cwd in line, line
        assert any(why in line for why in CWD_REFUSALS), line
