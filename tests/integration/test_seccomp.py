"""linux.seccomp in real containers, with pyrunc and with runc.

Most tests run on both runtimes (the ``runtime`` fixture) and expect the
same output from each; the notify tests run a small agent that receives
the listener fd over a unix socket and answers the container's mkdir.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import unique_id

pytestmark = [pytest.mark.root]

# Enough for busybox's sh and applets, and for runc's own init after it
# loads the filter (Go runtime, exec fifo): runc needs more than pyrunc.
ALLOW_LIST = """
accept4 access alarm arch_prctl bind brk capget capset chdir chmod chown
clock_getres clock_gettime clock_nanosleep clone clone3 close close_range
connect dup dup2 dup3 epoll_create1 epoll_ctl epoll_pwait epoll_wait
eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fchdir fchmod fchmodat fchown fchownat fcntl fdatasync flock fork fstat
fstatfs fsync ftruncate futex getcwd getdents64 getegid geteuid getgid
getgroups getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresuid getrlimit getrusage getsid getsockname getsockopt gettid
gettimeofday getuid ioctl kill lseek lstat madvise membarrier mmap
mprotect mremap munmap nanosleep newfstatat open openat openat2 pipe
pipe2 poll ppoll prctl pread64 prlimit64 pselect6 pwrite64 read readlink
readlinkat readv recvfrom recvmsg rename renameat renameat2
restart_syscall rseq rt_sigaction rt_sigprocmask rt_sigreturn
rt_sigsuspend rt_sigtimedwait sched_getaffinity sched_yield select
sendmsg sendto set_robust_list set_tid_address setgid setgroups
setitimer setpgid setresgid setresuid setsid setuid sigaltstack socket
stat statfs statx symlink symlinkat sysinfo tgkill time tkill umask uname
unlink unlinkat vfork wait4 waitid write writev
""".split()


def setup(bundle, seccomp, *args, nnp=True, user=None):
    """A writable rootfs, the profile, and `sh -c` args."""
    config = bundle.config
    config["root"]["readonly"] = False
    config["linux"]["seccomp"] = seccomp
    config["process"]["noNewPrivileges"] = nnp
    if user is not None:
        config["process"]["user"] = user
    bundle.set_args("sh", "-c", *args)


def deny(names, action="SCMP_ACT_ERRNO", **extra):
    entry = {"names": list(names), "action": action}
    entry.update(extra)
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [entry]}


def allow_list(default="SCMP_ACT_ERRNO"):
    return {"defaultAction": default, "syscalls": [
        {"names": ALLOW_LIST, "action": "SCMP_ACT_ALLOW"},
        # Docker's way: one rule per allowed argument value.
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
    ]}


def run(runtime, bundle):
    proc = runtime.run(bundle, unique_id("sc"))
    return proc


class TestProfiles:
    def test_deny_mkdir_with_eperm(self, runtime, bundle):
        setup(bundle, deny(["mkdir", "mkdirat"]),
              "mkdir /tmp/x 2>&1; echo rc=$?; echo still here")
        proc = run(runtime, bundle)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            "mkdir: can't create directory '/tmp/x': Operation not "
            "permitted", "rc=1", "still here"]

    def test_errno_ret(self, runtime, bundle):
        setup(bundle, deny(["mkdir", "mkdirat"], errnoRet=38),
              "mkdir /tmp/x 2>&1; echo rc=$?")
        proc = run(runtime, bundle)
        assert proc.stdout.splitlines() == [
            "mkdir: can't create directory '/tmp/x': Function not "
            "implemented", "rc=1"]

    def test_default_deny_with_allow_list(self, runtime, bundle):
        setup(bundle, allow_list(),
              "echo hello > /tmp/f; cat /tmp/f; linux64 true; echo l64=$?; "
              "linux32 true 2>&1; echo l32=$?; mkdir /tmp/d 2>&1; "
              "echo mkdir=$?; grep -E '^Seccomp:' /proc/self/status")
        proc = run(runtime, bundle)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            "hello", "l64=0",
            "linux32: personality(0x8): Operation not permitted", "l32=1",
            "mkdir: can't create directory '/tmp/d': Operation not "
            "permitted", "mkdir=1", "Seccomp:\t2"]

    def test_argument_filter(self, runtime, bundle):
        # Only personality(PER_LINUX32) is refused.
        setup(bundle, deny(["personality"], errnoRet=22, args=[
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]),
            "linux64 true; echo l64=$?; linux32 true 2>&1; echo l32=$?")
        proc = run(runtime, bundle)
        assert proc.stdout.splitlines() == [
            "l64=0", "linux32: personality(0x8): Invalid argument", "l32=1"]

    def test_kill_action(self, runtime, bundle):
        setup(bundle, deny(["mkdir", "mkdirat"], "SCMP_ACT_KILL"),
              "mkdir /tmp/x; echo rc=$?")
        proc = run(runtime, bundle)
        assert proc.returncode == 0
        # The shell reports its child's SIGSYS: 128 + 31.
        assert proc.stdout.splitlines() == ["rc=159"]

    def test_kill_process_of_the_container(self, runtime, bundle):
        setup(bundle, deny(["mkdir", "mkdirat"], "SCMP_ACT_KILL_PROCESS"),
              "echo before; exec mkdir /tmp/x")
        proc = run(runtime, bundle)
        assert proc.stdout.splitlines() == ["before"]
        assert proc.returncode == 128 + 31

    def test_without_no_new_privs_as_a_user(self, runtime, bundle):
        # Loaded before the user switch, while CAP_SYS_ADMIN is there.
        setup(bundle, allow_list("SCMP_ACT_KILL_PROCESS"),
              "id; mkdir /tmp/x; echo rc=$?; "
              "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
              nnp=False, user={"uid": 1000, "gid": 1000})
        proc = run(runtime, bundle)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            "uid=1000(test) gid=1000(test)", "rc=159", "NoNewPrivs:\t0",
            "Seccomp:\t2"]

    def test_exec_applies_the_filter(self, runtime, bundle):
        setup(bundle, deny(["mkdir", "mkdirat"]), "sleep 30")
        cid = unique_id("sc")
        runtime("run", "-d", "--bundle", bundle, cid, check=True)
        try:
            proc = runtime("exec", cid, "sh", "-c",
                           "mkdir /tmp/e 2>&1; echo rc=$?")
            assert proc.stdout.splitlines() == [
                "mkdir: can't create directory '/tmp/e': Operation not "
                "permitted", "rc=1"]
        finally:
            runtime("delete", "--force", cid)


class TestPyruncOnly:
    def test_unknown_syscall_is_skipped_with_a_warning(self, pyrunc_cmd,
                                                       bundle):
        setup(bundle, deny(["mkdir", "no_such_syscall"]),
              "mkdir /tmp/x 2>&1; echo rc=$?")
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        assert "rc=1" in proc.stdout
        assert "unknown seccomp syscall 'no_such_syscall' ignored" in \
            proc.stderr

    def test_invalid_action_names_the_field(self, pyrunc_cmd, bundle):
        setup(bundle, deny(["mkdir"], "SCMP_ACT_FROB"), "true")
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode != 0
        assert "linux.seccomp.syscalls[0].action: unknown action " \
               "'SCMP_ACT_FROB'" in proc.stderr

    def test_denied_sendto_without_nnp_fails_cleanly(self, pyrunc_cmd,
                                                     bundle):
        # Our READY message goes out with sendto after the filter is
        # loaded: refusing it must be an error, never a hang.
        profile = allow_list()
        profile["syscalls"][0]["names"] = [
            n for n in ALLOW_LIST if n != "sendto"]
        setup(bundle, profile, "true", nnp=False)
        proc = pyrunc_cmd.run(bundle, timeout=30)
        assert proc.returncode != 0
        assert "denies sendto" in proc.stderr


AGENT = r'''
"""A seccomp agent: takes listener fds, answers mkdir by its path."""
import errno, fcntl, json, os, select, socket, struct, sys

RECV = 0xC0502100        # SECCOMP_IOCTL_NOTIF_RECV
SEND = 0xC0182101        # SECCOMP_IOCTL_NOTIF_SEND
CONTINUE = 1             # SECCOMP_USER_NOTIF_FLAG_CONTINUE
MKDIR, MKDIRAT = 83, 258

def read_path(pid, addr):
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(addr)
        return mem.read(256).split(b"\0", 1)[0].decode()

def answer(fd, nid, val=0, err=0, flags=0):
    resp = bytearray(struct.pack("=QqiI", nid, val, err, flags))
    fcntl.ioctl(fd, SEND, resp, True)

def main():
    path, out = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    log = open(out, "a", buffering=1)
    note = lambda **kw: log.write(json.dumps(kw) + "\n")
    poll = select.poll()
    poll.register(srv, select.POLLIN)
    open(path + ".ready", "w").close()
    while True:
        events = poll.poll(120000)
        if not events:
            note(event="timeout")
            return 1
        for fd, ev in events:
            if fd == srv.fileno():
                conn, _ = srv.accept()
                data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                # One document per connection; runc 1.1.5 does not close.
                while True:
                    try:
                        state = json.loads(data)
                        break
                    except ValueError:
                        more = conn.recv(65536)
                        if not more:
                            state = None
                            break
                        data += more
                conn.close()
                note(event="state", state=state, nfds=len(fds),
                     kinds=[os.readlink(f"/proc/self/fd/{f}") for f in fds])
                for f in fds:
                    poll.register(f, select.POLLIN)
            elif ev & select.POLLIN:
                buf = bytearray(80)
                try:
                    fcntl.ioctl(fd, RECV, buf, True)
                except OSError as err:
                    note(event="recv-error", errno=err.errno)
                    continue
                nid, pid, _, nr, _ = struct.unpack_from("=QIIiI", buf)
                args = struct.unpack_from("=6Q", buf, 32)
                where = read_path(pid, args[0] if nr == MKDIR else args[1])
                if "deny" in where:
                    answer(fd, nid, err=-errno.EACCES)
                    how = "deny"
                elif "fake" in where:
                    answer(fd, nid)
                    how = "fake"
                else:
                    answer(fd, nid, flags=CONTINUE)
                    how = "continue"
                note(event="notif", nr=nr, path=where, answer=how)
            else:
                poll.unregister(fd)
                os.close(fd)
                note(event="hup")

sys.exit(main())
'''


class Agent:
    def __init__(self, directory):
        self.socket = str(directory / "agent.sock")
        self.log = directory / "agent.log"
        script = directory / "agent.py"
        script.write_text(AGENT)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), self.socket, str(self.log)],
            stdin=subprocess.DEVNULL)
        ready = directory / "agent.sock.ready"
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert self.proc.poll() is None, "the agent died"
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.01)

    def events(self, kind=None):
        if not self.log.exists():
            return []
        items = [json.loads(line) for line in
                 self.log.read_text().splitlines()]
        return [e for e in items if kind is None or e["event"] == kind]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def agent(tmp_path):
    directory = tmp_path / "agent"
    directory.mkdir()
    running = Agent(directory)
    yield running
    running.stop()


def notify_profile(agent_socket):
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent_socket,
            "listenerMetadata": "answer-by-path",
            "syscalls": [{"names": ["mkdir", "mkdirat"],
                          "action": "SCMP_ACT_NOTIFY"}]}


NOTIFY_PROBE = ("mkdir /tmp/deny-a 2>&1; echo a=$?; mkdir /tmp/fake-b; "
                "echo b=$?; mkdir /tmp/ok-c; echo c=$?; ls /tmp")


class TestNotify:
    def check_state(self, doc, cid, bundle, status):
        assert doc["fds"] == ["seccompFd"]
        assert doc["metadata"] == "answer-by-path"
        state = doc["state"]
        assert state["id"] == cid
        assert state["status"] == status
        assert state["bundle"] == str(bundle)
        assert isinstance(doc["pid"], int) and doc["pid"] > 0
        assert doc["ociVersion"]

    def test_agent_answers_the_container(self, runtime, bundle, agent):
        setup(bundle, notify_profile(agent.socket), NOTIFY_PROBE)
        cid = unique_id("sc")
        proc = runtime.run(bundle, cid)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            "mkdir: can't create directory '/tmp/deny-a': Permission "
            "denied", "a=1", "b=0", "c=0", "ok-c"]
        [state] = agent.events("state")
        assert state["nfds"] == 1
        assert state["kinds"] == ["anon_inode:seccomp notify"]
        self.check_state(state["state"], cid, bundle, "creating")
        assert state["state"]["pid"] == state["state"]["state"]["pid"]
        answers = [(e["path"], e["answer"]) for e in agent.events("notif")]
        assert answers == [("/tmp/deny-a", "deny"), ("/tmp/fake-b", "fake"),
                           ("/tmp/ok-c", "continue")]

    def test_agent_answers_exec(self, runtime, bundle, agent):
        setup(bundle, notify_profile(agent.socket), "sleep 30")
        cid = unique_id("sc")
        runtime("run", "-d", "--bundle", bundle, cid, check=True)
        try:
            proc = runtime("exec", cid, "sh", "-c", NOTIFY_PROBE)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.splitlines()[-1] == "ok-c"
            init, execd = agent.events("state")
            self.check_state(init["state"], cid, bundle, "creating")
            self.check_state(execd["state"], cid, bundle, "running")
            # The state's pid is the container's, the document's the
            # exec'd process.
            assert execd["state"]["state"]["pid"] == init["state"]["pid"]
            assert execd["state"]["pid"] != init["state"]["pid"]
        finally:
            runtime("delete", "--force", cid)

    def test_unreachable_listener_is_an_error(self, pyrunc_cmd, bundle,
                                              tmp_path):
        missing = str(tmp_path / "nobody.sock")
        setup(bundle, notify_profile(missing), "true")
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode != 0
        assert f"linux.seccomp.listenerPath: send seccomp fd to {missing}" \
            in proc.stderr

    def test_notify_without_no_new_privs(self, pyrunc_cmd, bundle, agent):
        setup(bundle, notify_profile(agent.socket), NOTIFY_PROBE, nnp=False,
              user={"uid": 1000, "gid": 1000})
        bundle.config["process"]["cwd"] = "/tmp"
        bundle.save()
        os.chmod(bundle.rootfs / "tmp", 0o1777)
        proc = pyrunc_cmd.run(bundle)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[1:] == ["a=1", "b=0", "c=0", "ok-c"]
