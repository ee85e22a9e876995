"""CVE-2019-5736: the container cannot reach the runtime's own binary.

Until it execs, the container's process is a clone of pyrunc, a Python
process: /proc/self/exe in it is the host's interpreter. The original
attack replaces a binary of the container with ``#!/proc/self/exe``, so
that the runtime's execve runs the runtime's binary inside the
container; the container keeps a handle on it and writes through that
handle once the runtime exits.

pyrunc execs every container program from pyrunc-dmz, a sealed memfd:
while the kernel loads the program, /proc/self/exe is that memfd, which
refuses to run as an interpreter. So the attack finds no interpreter at
all. These tests run the runtime on a private copy of the interpreter
and fail if that copy is ever run inside the container or written;
without the trampoline the first three do (the copy runs the script).

A second door is /proc/<pid> of the runtime's child, seen by the
processes of a pid namespace it joins: until it execs, it holds the
runtime's environment, fds and binary.
"""

import os
import shutil

import pytest

import helpers
import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]

# A Python program, run by whatever /proc/self/exe is. It keeps an fd on
# its interpreter, then lets a shell try to write through it for a while:
# the runtime that ran it has exited by then, so nothing keeps the file
# busy (ETXTBSY) any more.
EVIL = """#!/proc/self/exe
import os
fd = os.open("/proc/self/exe", os.O_RDONLY)
os.set_inheritable(fd, True)
with open("/tmp/evil.log", "a") as log:
    log.write("interpreter " + os.readlink(f"/proc/self/fd/{fd}") + "\\n")
os.execv("/bin/sh", ["sh", "-c", f'''
for i in $(seq 20); do
    if echo PWNED > /proc/self/fd/{fd}; then
        echo wrote >> /tmp/evil.log; break
    fi
    sleep 0.05
done 2>> /tmp/evil.log
echo done >> /tmp/evil.log
'''])
"""


@pytest.fixture
def interpreter(tmp_path):
    """A private copy of the interpreter, and its checksum."""
    path = st.copy_interpreter(tmp_path / "python-copy")
    return path, st.sha256(path)


@pytest.fixture
def rt_on_copy(rt, interpreter, tmp_path):
    """The runtime under attack, running on the interpreter copy."""
    path, _ = interpreter
    launcher = str(helpers.pyrunc_script(rt.argv[-1]))
    other = helpers.Runtime("pyrunc", [str(path), "-IS", launcher], rt.root)
    return other


@pytest.fixture
def evil_bundle(tmp_path, request):
    bundle = st.new_bundle(tmp_path, "evil", request)
    st.writable_rootfs(bundle)
    st.host_usr(bundle)
    st.script(bundle, "/bin/evil", EVIL)
    return bundle


def evil_log(bundle):
    path = bundle.rootfs / "tmp" / "evil.log"
    return path.read_text() if path.exists() else ""


def attack_log(rt, bundle, cid):
    """What the attack left, once the container's process has exited."""
    st.wait_stopped(rt, cid, timeout=15.0)
    return evil_log(bundle)


def assert_not_overwritten(interpreter, log):
    path, digest = interpreter
    assert st.sha256(path) == digest, f"the runtime's binary was " \
        f"overwritten from inside the container:\n{log}"
    assert "wrote" not in log, log
    # The copy never ran the script inside the container.
    assert "interpreter " not in log, log


class TestShebangSelfExe:
    """The runtime runs on the copy; cleanup uses the installed one."""

    def test_create_runs_no_host_binary(self, rt, rt_on_copy, evil_bundle,
                                        interpreter):
        st.set_args(evil_bundle, "/bin/evil")
        st.start(rt_on_copy, evil_bundle, "evil")
        log = attack_log(rt, evil_bundle, "evil")
        st.delete(rt, "evil")
        assert_not_overwritten(interpreter, log)

    def test_run_exits_like_a_missing_interpreter(self, rt_on_copy,
                                                  evil_bundle,
                                                  interpreter):
        # /proc/self/exe was pyrunc-dmz, which runs nothing without its
        # own arguments and exits 127.
        st.set_args(evil_bundle, "/bin/evil")
        evil_bundle.save()
        proc = rt_on_copy("run", "--bundle", evil_bundle, "evil-run")
        assert_not_overwritten(interpreter, evil_log(evil_bundle))
        assert proc.returncode == 127, proc.stderr

    def test_exec_runs_no_host_binary(self, rt, rt_on_copy, evil_bundle,
                                      interpreter):
        st.set_args(evil_bundle, "sleep", "30")
        st.start(rt, evil_bundle, "victim")
        proc = rt_on_copy("exec", "victim", "/bin/evil")
        log = evil_log(evil_bundle)
        st.delete(rt, "victim")
        assert_not_overwritten(interpreter, log)
        assert proc.returncode == 127, proc.stderr

    def test_binary_symlinked_to_self_exe(self, rt, rt_on_copy, evil_bundle,
                                          interpreter):
        # No script at all: the binary is a symlink to /proc/self/exe,
        # which the kernel follows when the runtime execs it.
        st.set_args(evil_bundle, "sleep", "30")
        evil = evil_bundle.rootfs / "bin" / "evil"
        evil.rename(evil_bundle.rootfs / "bin" / "evil.py")
        (evil_bundle.rootfs / "bin" / "python").symlink_to(
            "/proc/self/exe")
        st.start(rt, evil_bundle, "victim")
        proc = rt_on_copy("exec", "victim", "/bin/python", "/bin/evil.py")
        log = evil_log(evil_bundle)
        st.delete(rt, "victim")
        assert_not_overwritten(interpreter, log)
        assert proc.returncode == 127, proc.stderr

    def test_seccomp_denying_execveat(self, rt, rt_on_copy, evil_bundle,
                                      interpreter):
        # The memfd is then reached by its /proc/self/fd path.
        evil_bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"],
                          "action": "SCMP_ACT_ERRNO"}],
        }
        st.set_args(evil_bundle, "/bin/evil")
        evil_bundle.save()
        proc = rt_on_copy("run", "--bundle", evil_bundle, "evil-sc")
        assert_not_overwritten(interpreter, evil_log(evil_bundle))
        assert proc.returncode == 127, proc.stderr


# Looks at every process that is not its own and tries to get something
# of the runtime out of it: the host's environment, the runtime's fds,
# its binary.
PROBE = """#!/bin/sh
end=$(( $(date +%s) + $1 ))
: > /tmp/seen
while [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    [ "$p" = $$ ] && continue
    read -r tag name < $d/status 2>/dev/null || continue
    case "$name" in sh|sleep|date|head|grep|cat|ls|true) continue;; esac
    grep -q "^saw $p " /tmp/seen || echo "saw $p $name" >> /tmp/seen
    if grep -q PYRUNC_TEST_SECRET "$d/environ" 2>/dev/null; then
      echo "environ of $p read" >> /tmp/seen
    fi
    if ls -l "$d/fd/" 2>/dev/null | grep -q -- "->"; then
      echo "fds of $p resolved" >> /tmp/seen
    fi
    if head -c4 "$d/exe" > /dev/null 2>&1; then
      echo "exe of $p opened" >> /tmp/seen
    fi
  done
done
echo finished >> /tmp/seen
"""


class TestRuntimeChildUnreachable:
    """The runtime's child is non-dumpable until it execs.

    Container B shares container A's pid namespace, as in a pod. Created
    but not started, B's init is still the runtime's child: a clone of
    pyrunc, holding pyrunc's environment and fds, waiting on the exec
    fifo. A's root has B's uid and capabilities, so only the child's
    being non-dumpable keeps A out of its /proc entries.
    """

    def test_created_pod_member_unreachable(self, rt, tmp_path, request):
        a = st.new_bundle(tmp_path, "a", request)
        st.writable_rootfs(a)
        st.script(a, "/probe.sh", PROBE)
        st.set_args(a, "/probe.sh", "2")
        st.start(rt, a, "attacker")
        apid = st.init_pid(rt, "attacker")

        b = st.new_bundle(tmp_path, "b", request)
        for ns in b.config["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{apid}/ns/pid"
        st.set_args(b, "true")
        b.save()
        env = {**os.environ, "PYRUNC_TEST_SECRET": "host-only"}
        proc = rt("create", "--bundle", b, "member", env=env)
        seen_path = a.rootfs / "tmp" / "seen"
        st.wait_for(lambda: "finished" in seen_path.read_text(),
                    timeout=15)
        seen = seen_path.read_text()
        st.delete(rt, "member", "attacker")
        assert proc.returncode == 0, proc.stderr
        # The probe saw B's init...
        assert "saw " in seen, seen
        # ...and got nothing out of it.
        assert "read" not in seen, seen
        assert "resolved" not in seen, seen
        assert "opened" not in seen, seen

    def test_created_init_shows_no_host_paths(self, rt, tmp_path, request):
        # Its command line, which /proc shows whatever the dumpable
        # flag, is the runtime's until execve: --root and the bundle
        # are host paths. It reads "pyrunc init", as runc's "runc init".
        bundle = st.new_bundle(tmp_path, "b", request)
        st.set_args(bundle, "true")
        bundle.save()
        rt("create", "--bundle", bundle, "quiet", check=True)
        pid = st.init_pid(rt, "quiet")
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read()
        finally:
            st.delete(rt, "quiet")
        assert cmdline.rstrip(b"\0") == b"pyrunc init", cmdline
        assert str(tmp_path).encode() not in cmdline
        assert comm == "pyrunc:init\n"


def test_trampoline_leaves_no_trace(rt, tmp_path, request):
    """After pyrunc-dmz, the process is the program, as with runc.

    Its exe is the program's binary, its name and argv are the config's,
    and the memfd is not among its fds.
    """
    bundle = st.new_bundle(tmp_path, "b", request)
    st.set_args(bundle, "sh", "-c", "readlink /proc/$$/exe; "
                "cat /proc/$$/comm; tr '\\0' ' ' < /proc/$$/cmdline; "
                "echo; ls -l /proc/$$/fd/ | grep -c memfd")
    bundle.save()
    proc = rt("run", "--bundle", bundle, "peek")
    assert proc.returncode == 1, proc.stderr  # grep -c found nothing
    exe, comm, cmdline, memfds = proc.stdout.splitlines()
    assert exe.endswith("busybox"), exe
    assert comm == "sh", comm
    assert cmdline.startswith("sh -c readlink"), cmdline
    assert memfds == "0"
