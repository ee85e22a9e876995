"""The cgroup-attach prewarm helper (pyrunc/process/prewarm.py,
pyrunc/_native/prewarm.h) and the entry program that starts it
(pyrunc/_native/entry.c)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyrunc.process import prewarm

NATIVE = Path(prewarm.__file__).resolve().parent.parent / "_native"


def test_the_helper_is_built_and_exits_zero():
    assert os.access(prewarm.PATH, os.X_OK), "run scripts/setup.sh"
    # Root or not, cgroup mounts or not: it never fails its caller. With
    # stdin at end of file it stops after one write.
    done = subprocess.run([prewarm.PATH], capture_output=True, timeout=10,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0
    assert done.stdout == done.stderr == b""


def test_the_helper_runs_until_its_pipe_closes():
    helper = subprocess.Popen([prewarm.PATH], stdin=subprocess.PIPE)
    try:
        time.sleep(0.05)
        # Still keeping the lock warm, 12 rounds later.
        assert helper.poll() is None
        helper.stdin.close()
        assert helper.wait(timeout=5) == 0
    finally:
        helper.kill()
        helper.wait()


def test_start_spawns_and_finish_reaps():
    prewarm.start()
    pid = prewarm._helper
    assert pid > 0
    # A second start while one runs does nothing.
    prewarm.start()
    assert prewarm._helper == pid
    prewarm.finish()
    assert prewarm._helper == 0
    assert prewarm._stop == -1
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    # Finishing twice is harmless.
    prewarm.finish()


def test_a_missing_helper_changes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(prewarm, "PATH", str(tmp_path / "nothing"))
    before = set(os.listdir("/proc/self/fd"))
    prewarm.start()
    assert prewarm._helper == 0
    prewarm.finish()
    assert set(os.listdir("/proc/self/fd")) == before


def test_adopt_takes_over_a_forked_helper():
    read_end, write_end = os.pipe()
    pid = os.posix_spawn(prewarm.PATH, [prewarm.PATH], {},
                         file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)])
    os.close(read_end)
    prewarm.adopt(f"{pid},{write_end}")
    # Never inherited by the container's process.
    assert not os.get_inheritable(write_end)
    prewarm.finish()
    with pytest.raises(OSError):
        os.fstat(write_end)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("value", ["", "12", "a,b", "1,2,3", "5,999999"])
def test_adopt_ignores_a_malformed_value(value):
    prewarm.adopt(value)
    assert prewarm._helper == 0
    assert prewarm._stop == -1


def test_adopt_takes_only_a_child_and_a_pipe(tmp_path):
    # The launcher script run directly, with a PYRUNC_PREWARM of the
    # caller's: neither someone else's process nor a file of ours.
    read_end, write_end = os.pipe()
    other = subprocess.Popen(["sleep", "5"])
    try:
        with open(tmp_path / "file", "w") as f:
            for value in (f"1,{write_end}", f"{other.pid},{f.fileno()}"):
                prewarm.adopt(value)
                assert prewarm._helper == 0
                assert prewarm._stop == -1
            os.fstat(write_end)
        # A child, but not the helper's kind of descriptor: untouched.
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
        os.close(read_end)
        os.close(write_end)


# --- the entry program

SHOW = """#!/bin/sh
# Stands in for the interpreter: what would Python have been given?
echo "args: $*"
echo "env: ${PYRUNC_PREWARM-none}"
echo "stdio: $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/2)"
if [ -n "$PYRUNC_PREWARM" ]; then
    pid=${PYRUNC_PREWARM%,*}
    fd=${PYRUNC_PREWARM#*,}
    echo "ppid: $(cut -d' ' -f4 /proc/$pid/stat) self: $$"
    echo "fd: $(readlink /proc/$$/fd/$fd)"
fi
"""


def compile_entry(program, python):
    """Build entry.c as setup.sh does, with python for the interpreter."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = (NATIVE / "freestanding.flags").read_text().splitlines()
    flags = [line for line in lines if line and not line.startswith("#")]
    subprocess.run(
        [cc, *flags, "-Werror", f'-DPYRUNC_PYTHON="{python}"',
         '-DPYRUNC_SCRIPT="/the/script"', "-o", str(program),
         str(NATIVE / "entry.c")],
        check=True)
    return program


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    """entry.c compiled with a shell script for the interpreter."""
    where = tmp_path_factory.mktemp("entry")
    show = where / "show"
    show.write_text(SHOW)
    show.chmod(0o755)
    return compile_entry(where / "pyrunc", show)


def run_entry(entry, *args, env=None):
    done = subprocess.run([str(entry), *args], capture_output=True,
                          text=True, timeout=10, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, **(env or {})))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    return lines


@pytest.mark.parametrize("args", [
    ["run", "-b", "b", "id"],
    ["--root", "/r", "create", "id"],
    ["--log=x", "--debug", "exec", "id", "sh"],
    ["-root", "/r", "--log-format", "json", "run", "id"],
])
def test_entry_starts_the_helper_for_commands_that_attach(entry, args):
    lines = run_entry(entry, *args)
    assert lines["args"] == " ".join(["-IS", "/the/script", *args])
    ppid, shell = lines["ppid"].split(" self: ")
    # The helper is a child of the process that becomes the interpreter.
    assert ppid == shell
    assert lines["fd"].startswith("pipe:")


@pytest.mark.parametrize("args", [
    ["state", "id"],
    ["--root", "run", "state", "id"],
    ["list"],
    [],
])
def test_entry_starts_no_helper_for_other_commands(entry, args):
    lines = run_entry(entry, *args, env={"PYRUNC_PREWARM": "1,2"})
    assert lines["args"] == " ".join(["-IS", "/the/script", *args])
    # Nor passes on a value of the caller's.
    assert lines["env"] == "none"


def test_the_helper_holds_none_of_the_callers_descriptors(entry):
    # The caller reads the output to its end: a helper that kept the
    # pipe open would hold that up until it stopped.
    started = time.monotonic()
    lines = run_entry(entry, "run", "id")
    assert lines["fd"].startswith("pipe:")
    assert time.monotonic() - started < 0.8


def test_the_stop_pipe_never_takes_the_place_of_stdio(entry):
    # A caller that closed stdin and stderr: the interpreter must not
    # find the pipe as either.
    done = subprocess.run(
        ["sh", "-c", 'exec <&- 2>&- "$0" run id', str(entry)],
        capture_output=True, text=True, timeout=10)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    fd = int(lines["env"].split(",")[1])
    assert fd > 2
    assert lines["fd"].startswith("pipe:")
    # /dev/null where the caller had closed them, as runc's Go runtime
    # does: else the runtime's first files would become the container's
    # stdio.
    assert lines["stdio"] == "/dev/null /dev/null"


def test_the_entry_says_why_the_interpreter_did_not_start(tmp_path):
    program = compile_entry(tmp_path / "pyrunc", "/nonexistent/python")
    done = subprocess.run([str(program), "state", "x"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 127
    assert done.stderr == ("pyrunc: cannot execute /nonexistent/python: "
                           "no such file or directory\n")


def test_the_installed_cli_is_the_entry_program():
    cli = Path(sys.executable).parent / "pyrunc"
    if not cli.exists():
        pytest.skip("no installed CLI")
    with open(cli, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    script = cli.resolve().parent.parent / "lib" / "pyrunc-launcher.py"
    assert script.read_text().startswith("#!")
