"""The error contract engines rely on, pinned against runc 1.1.5.

Engines read a runtime's failures in two ways, and match on words:

- containerd's runc shim passes ``--log FILE --log-format json`` and, on a
  failure, decodes FILE as a stream of JSON objects into one
  ``{Level, Msg, Time}`` record, keeping the ``msg`` of the last line
  whose level is ``error`` (``shim_last_error`` below does the same, and
  fails where Go's decoder would: a line that is not JSON, a time that is
  not RFC 3339). It then matches ``container not running`` (kill: the
  process already finished) and ``does not exist`` (no such container).
- podman (through conmon) reads stderr and maps ``executable file not
  found`` and ``no such file or directory`` to exit status 127,
  ``permission denied`` to 126; CRI clients see the same text.

Each scenario runs on pyrunc and on runc (the ``runtime`` fixture) with a
json log file; both must print the pinned words, to stderr and as the
log's last error, with the same exit status.
"""

import json
import re
import time

import pytest

import helpers

pytestmark = [pytest.mark.root, pytest.mark.runc, pytest.mark.no_residue,
              pytest.mark.timeout(120)]

NOT_EXIST = "container does not exist"
NOT_RUNNING = "container not running"
NOT_FOUND = 'exec: "nosuchcmd": executable file not found in $PATH'
NO_FILE = ('exec: "/nonexistent": stat /nonexistent: '
           "no such file or directory")

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")


class ShimDecodeError(Exception):
    """Where containerd's decoder would give up on the log file."""


def shim_last_error(text):
    """Return the last error message, read as containerd's shim reads it.

    Go's json.Decoder reads one value after another into the same struct
    (keys match case-insensitively; a key missing from a line keeps the
    previous line's value), and every "time" must parse as RFC 3339.
    """
    decoder = json.JSONDecoder()
    record = {"level": "", "msg": ""}
    last = ""
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return last
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ShimDecodeError(f"not json at {pos}: {err}") from None
        if not isinstance(obj, dict):
            raise ShimDecodeError(f"not an object: {obj!r}")
        for key, value in obj.items():
            name = key.lower()
            if name == "time":
                if not isinstance(value, str) or not _RFC3339.match(value):
                    raise ShimDecodeError(f"bad time {value!r}")
            elif name in record:
                if not isinstance(value, str):
                    raise ShimDecodeError(f"{key} is not a string")
                record[name] = value
        if record["level"] == "error":
            last = record["msg"].strip()


def test_shim_reader_follows_go():
    good = ('{"level":"info","msg":"a","time":"2024-01-02T03:04:05Z"}\n'
            '{"level":"error","msg":"b ","time":"2024-01-02T03:04:05.5Z"}\n'
            '{"level":"warning","msg":"c","time":"2024-01-02T03:04:05Z"}\n')
    assert shim_last_error(good) == "b"
    assert shim_last_error("") == ""
    with pytest.raises(ShimDecodeError):
        shim_last_error(good + "Traceback (most recent call last):\n")
    with pytest.raises(ShimDecodeError):
        shim_last_error('{"level":"error","msg":"x","time":"yesterday"}')


@pytest.fixture
def sleeper(bundle):
    bundle.set_args("sleep", "1000")
    return bundle


def with_log(rt, tmp_path, *args):
    """Run rt with a json --log file; return (proc, log text)."""
    path = tmp_path / f"{rt.name}-{helpers.unique_id('log')}.json"
    proc = rt("--log", path, "--log-format", "json", *args)
    text = path.read_text() if path.exists() else ""
    return proc, text


def assert_reported(proc, log_text, words, status):
    """The words reach stderr and the shim's reading of the log."""
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert words in proc.stderr, proc.stderr
    last = shim_last_error(log_text)
    assert words in last, log_text
    # With --log, stderr carries the bare message as well.
    assert proc.stderr.strip().splitlines()[-1] == last


@pytest.mark.parametrize("args, status", [
    (("state", "nosuch"), 1),
    (("kill", "nosuch", "KILL"), 1),
    (("delete", "nosuch"), 1),
    (("pause", "nosuch"), 1),
    (("resume", "nosuch"), 1),
    (("ps", "nosuch"), 1),
    (("events", "--stats", "nosuch"), 1),
    (("exec", "nosuch", "true"), 255),
])
def test_no_such_container(runtime, tmp_path, args, status):
    proc, text = with_log(runtime, tmp_path, *args)
    assert_reported(proc, text, NOT_EXIST, status)


def start(rt, bundle, cid):
    proc = rt("run", "--detach", "--bundle", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    return cid


def wait_stopped(rt, cid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = rt.state(cid)
        if state and state["status"] == "stopped":
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} did not stop")


@pytest.mark.parametrize("args, words", [
    (("exec", "{id}", "nosuchcmd"), NOT_FOUND),
    (("exec", "{id}", "/nonexistent"), NO_FILE),
])
def test_exec_of_a_missing_executable(runtime, sleeper, tmp_path, args,
                                      words):
    cid = start(runtime, sleeper, helpers.unique_id())
    try:
        argv = [a.format(id=cid) for a in args]
        proc, text = with_log(runtime, tmp_path, *argv)
        assert_reported(proc, text, words, 255)
        # A failed exec leaves the container running.
        assert runtime.state(cid)["status"] == "running"
    finally:
        runtime("delete", "--force", cid)


def test_exec_in_a_paused_container(runtime, sleeper, tmp_path):
    cid = start(runtime, sleeper, helpers.unique_id())
    try:
        assert runtime("pause", cid).returncode == 0
        proc, text = with_log(runtime, tmp_path, "exec", cid, "true")
        assert_reported(proc, text, "cannot exec in a paused container",
                        255)
        proc, text = with_log(runtime, tmp_path, "resume", cid)
        assert proc.returncode == 0, proc.stderr
        proc, text = with_log(runtime, tmp_path, "resume", cid)
        assert_reported(proc, text, "container not paused", 1)
    finally:
        runtime("resume", cid)
        runtime("delete", "--force", cid)


@pytest.mark.parametrize("args, words, status", [
    (("kill", "{id}", "KILL"), NOT_RUNNING, 1),
    (("kill", "{id}"), NOT_RUNNING, 1),
    (("pause", "{id}"), NOT_RUNNING, 1),
    (("exec", "{id}", "true"), "cannot exec in a stopped container", 255),
    (("events", "--stats", "{id}"), "is not running", 1),
])
def test_stopped_container(runtime, sleeper, tmp_path, args, words, status):
    cid = start(runtime, sleeper, helpers.unique_id())
    try:
        assert runtime("kill", cid, "KILL").returncode == 0
        wait_stopped(runtime, cid)
        argv = [a.format(id=cid) for a in args]
        proc, text = with_log(runtime, tmp_path, *argv)
        assert_reported(proc, text, words, status)
        # delete of a stopped container needs no --force.
        assert runtime("delete", cid).returncode == 0
    finally:
        runtime("delete", "--force", cid)


@pytest.mark.parametrize("command, words", [
    ("nosuchcmd", NOT_FOUND),
    ("/nonexistent", NO_FILE),
])
def test_create_of_a_missing_executable(runtime, bundle, tmp_path, command,
                                        words):
    bundle.set_args(command)
    cid = helpers.unique_id()
    proc, text = with_log(runtime, tmp_path, "create", "--bundle", bundle,
                          cid)
    assert_reported(proc, text, words, 1)
    assert runtime.state(cid) is None
    runtime("delete", "--force", cid)


def test_debug_log_still_decodes(pyrunc_cmd, bundle, tmp_path):
    """--debug fills the json log; the shim's reader still gets the error."""
    bundle.set_args("nosuchcmd")
    path = tmp_path / "debug.json"
    proc = pyrunc_cmd("--debug", "--log", path, "--log-format", "json",
                      "create", "--bundle", bundle, helpers.unique_id())
    assert proc.returncode == 1
    text = path.read_text()
    levels = {json.loads(line)["level"] for line in text.splitlines()}
    assert "debug" in levels
    assert NOT_FOUND in shim_last_error(text)
