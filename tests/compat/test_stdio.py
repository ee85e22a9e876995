"""The stdio of a foreground process without a terminal, as runc.

runc's foreground `run` and `exec` give the process three pipes and
copy between them and their own stdio; only detached processes get the
caller's descriptors. Each test runs once per runtime.
"""

import os
import stat
import time

import pytest

from helpers import unique_id

pytestmark = [pytest.mark.root, pytest.mark.runc]

FD_KINDS = ("for n in 0 1 2; do "
            "readlink /proc/self/fd/$n | cut -d: -f1; done")


def test_foreground_stdio_are_pipes(runtime, bundle, tmp_path):
    # The caller's files stay out of reach: reopened through
    # /proc/self/fd, the pipes are all the container finds.
    given = tmp_path / "stdin.txt"
    given.write_text("input\n")
    os.chmod(given, 0o644)
    bundle.set_args("sh", "-c", FD_KINDS + "; echo PWNED > /proc/self/fd/0;"
                    " chmod 4777 /proc/self/fd/0 2>/dev/null; exit 0")
    with open(given, "rb") as stdin:
        proc = runtime.run(bundle, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pipe", "pipe", "pipe"]
    assert given.read_text() == "input\n"
    assert stat.S_IMODE(given.stat().st_mode) == 0o644


def test_stdin_and_output_are_relayed(runtime, bundle):
    bundle.set_args("sh", "-c", "cat; echo to-stderr >&2; exit 7")
    proc = runtime.run(bundle, input="hello\nworld\n")
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "hello\nworld\n"
    assert "to-stderr" in proc.stderr


def test_large_output_arrives_whole(runtime, bundle):
    size = 3 * 1024 * 1024
    bundle.set_args("sh", "-c", f"head -c {size} /dev/zero | tr '\\0' a")
    proc = runtime.run(bundle)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a" * size


def test_unread_stdin_does_not_block(runtime, bundle):
    # More than a pipe holds, for a process that never reads it.
    bundle.set_args("true")
    proc = runtime.run(bundle, input="x" * (1024 * 1024), timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_detached_keeps_the_callers_stdio(runtime, bundle, tmp_path):
    # create (and run -d) pass the caller's descriptors through: the
    # caller set them up for the container.
    out = tmp_path / "out.txt"
    bundle.set_args("sh", "-c", "readlink /proc/self/fd/1")
    cid = unique_id()
    with open(out, "wb") as stdout:
        proc = runtime("run", "-d", "--bundle", bundle, cid, stdout=stdout)
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 10
    while not out.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    runtime("delete", "--force", cid)
    assert out.read_text().strip() == str(out)


def test_exec_stdio_are_pipes(runtime, bundle, tmp_path):
    bundle.set_args("sleep", "30")
    cid = unique_id()
    runtime("run", "-d", "--bundle", bundle, cid, check=True)
    given = tmp_path / "stdin.txt"
    given.write_text("input\n")
    try:
        with open(given, "rb") as stdin:
            proc = runtime("exec", cid, "sh", "-c",
                           FD_KINDS + "; cat; echo PWNED > /proc/self/fd/0;"
                           " exit 5", stdin=stdin)
    finally:
        runtime("delete", "--force", cid)
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout.split() == ["pipe", "pipe", "pipe", "input"]
    assert given.read_text() == "input\n"
