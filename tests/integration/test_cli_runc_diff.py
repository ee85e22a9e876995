"""Differential tests: pyrunc and runc 1.1.5 answer misuse the same way.

Each scenario runs on both runtimes (the ``runtime`` fixture, each with
its own --root) or on both side by side, and compares the exit status and
the logged error message. Messages are compared case-insensitively on
runc's text: pyrunc may add detail (the id), never say something else.
"""

import json
import re
import subprocess
import tempfile

import pytest

import helpers

pytestmark = [pytest.mark.root, pytest.mark.runc]

_MSG = re.compile(r'level=error msg="((?:[^"\\]|\\.)*)"')


def messages(proc):
    """Return the error messages of a runtime's text-format stderr."""
    found = []
    for match in _MSG.finditer(proc.stderr):
        found.append(json.loads(f'"{match.group(1)}"'))
    return found


def message(proc):
    got = messages(proc)
    assert len(got) == 1, proc.stderr
    return got[0]


def assert_same(pyrunc, runc, *, contains=None):
    """Same status; pyrunc's message holds runc's (or `contains`)."""
    assert pyrunc.returncode == runc.returncode, (pyrunc, runc)
    if runc.returncode == 0 and not runc.stderr:
        assert pyrunc.stderr == ""
        return
    # runc names itself by argv[0] ("/usr/sbin/runc: ..."), pyrunc by
    # its name.
    theirs = re.sub(r"^\S*runc:", "pyrunc:", message(runc))
    ours = message(pyrunc)
    expected = contains or theirs
    assert expected.lower() in ours.lower(), (ours, theirs)


def both(pyrunc_cmd, runc_cmd, *args):
    return pyrunc_cmd(*args), runc_cmd(*args)


# -- no container needed -----------------------------------------------------


@pytest.mark.parametrize("args", [
    ("state", "nosuch"),
    ("start", "nosuch"),
    ("kill", "nosuch"),
    ("kill", "nosuch", "FOO"),
    ("kill", "--all", "nosuch"),
    ("delete", "nosuch"),
    ("delete", "--force", "nosuch"),
    ("delete", "-f", "nosuch"),
    ("state", ""),
    ("state", "a/b"),
    ("state", ".."),
    ("delete", "-f", "a/b"),
    ("kill", "../x", "KILL"),
    ("state",),
    ("state", "a", "b"),
    ("kill",),
    ("kill", "a", "b", "c"),
    ("delete",),
    ("start",),
    ("list", "extra"),
    ("state", "--bogus", "x"),
    ("--bogus", "state", "x"),
    ("--log-format", "xml", "state", "x"),
    ("list", "--format", "xml"),
])
def test_misuse_without_container(pyrunc_cmd, runc_cmd, args):
    pyrunc, runc = both(pyrunc_cmd, runc_cmd, *args)
    assert_same(pyrunc, runc)


def test_unknown_command_exits_3(pyrunc_cmd, runc_cmd):
    pyrunc, runc = both(pyrunc_cmd, runc_cmd, "nosuchcmd")
    assert pyrunc.returncode == runc.returncode == 3
    assert "No help topic for 'nosuchcmd'" in message(pyrunc)


@pytest.mark.parametrize("args", [
    ("help",), ("h",), ("help", "state"), ("help", "nosuchcmd"),
])
def test_help_command(pyrunc_cmd, runc_cmd, args):
    pyrunc, runc = both(pyrunc_cmd, runc_cmd, *args)
    assert pyrunc.returncode == runc.returncode, (pyrunc, runc)
    if runc.returncode == 0:
        assert pyrunc.stdout.startswith("Usage:")
        if len(args) > 1:
            assert f"pyrunc {args[1]}" in pyrunc.stdout


def test_single_dash_flag_names(pyrunc_cmd, runc_cmd):
    # Go's flag package reads -root as --root.
    got = []
    for rt in (pyrunc_cmd, runc_cmd):
        done = subprocess.run(
            [*rt.argv, "-root", str(rt.root), "-debug", "list", "-format",
             "json"], capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        got.append((done.returncode, done.stdout))
    assert got[0] == got[1]


@pytest.mark.parametrize("shell", [
    # Dies of SIGPIPE writing to a pipe nobody reads, as Go does.
    '"$@" list | head -c0; exit "${PIPESTATUS[0]}"',
    '"$@" state nosuch <&- >&- 2>&-',
])
def test_broken_and_closed_stdio(pyrunc_cmd, runc_cmd, shell):
    got = {}
    for rt in (pyrunc_cmd, runc_cmd):
        done = subprocess.run(["bash", "-c", shell, "bash", *rt.cmdline()],
                              capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        got[rt.name] = done.returncode
    assert got["pyrunc"] == got["runc"], got


def test_list_empty(pyrunc_cmd, runc_cmd):
    for args in (("list",), ("list", "-q"), ("list", "--format", "json"),
                 ("list", "-f", "json")):
        pyrunc, runc = both(pyrunc_cmd, runc_cmd, *args)
        assert (pyrunc.returncode, pyrunc.stdout) == \
            (runc.returncode, runc.stdout), args


def test_log_file_formats(pyrunc_cmd, runc_cmd, tmp_path):
    for fmt in ("text", "json"):
        logs = {}
        for rt in (pyrunc_cmd, runc_cmd):
            path = tmp_path / f"{rt.name}.{fmt}"
            proc = rt("--log", path, "--log-format", fmt, "state", "nosuch")
            assert proc.returncode == 1
            # With --log, stderr gets the bare message as well.
            assert proc.stderr == "container does not exist\n"
            logs[rt.name] = path.read_text()
        # Same line but for the time stamp.
        strip = re.compile(r'"?time"?[=:]"[^"]*"')
        assert strip.sub("T", logs["pyrunc"]) == strip.sub("T", logs["runc"])
        if fmt == "json":
            keys = list(json.loads(logs["pyrunc"]))
            assert keys == ["level", "msg", "time"]


def test_log_file_cannot_be_opened(pyrunc_cmd, runc_cmd, tmp_path):
    path = tmp_path / "missing" / "log"
    pyrunc, runc = both(pyrunc_cmd, runc_cmd, "--log", path, "state", "x")
    assert_same(pyrunc, runc)


# -- with a container --------------------------------------------------------


@pytest.fixture
def sleeper(bundle):
    bundle.set_args("sleep", "1000")
    return bundle


@pytest.mark.parametrize("listen_pid", ["self", "other"])
def test_socket_activation(pyrunc_cmd, runc_cmd, bundle, listen_pid):
    # fd 3 reaches the container as LISTEN_FDS=1 only when LISTEN_PID
    # names the runtime itself (exec keeps the shell's pid).
    bundle.set_args("sh", "-c",
                    'echo "$LISTEN_FDS $LISTEN_PID"; [ -e /proc/self/fd/3 ]'
                    ' && echo fd3 || echo none')
    pid = '$$' if listen_pid == "self" else "1"
    outputs = []
    for rt in (pyrunc_cmd, runc_cmd):
        script = (f'export LISTEN_PID={pid} LISTEN_FDS=1; exec 3</dev/null;'
                  ' exec "$@"')
        done = subprocess.run(
            ["bash", "-c", script, "bash",
             *rt.cmdline("run", "--bundle", bundle, f"sa-{listen_pid}")],
            capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    expected = "1 1\nfd3\n" if listen_pid == "self" else " \nnone\n"
    assert outputs[0] == expected


def test_exec_takes_no_socket_activation(pyrunc_cmd, runc_cmd, sleeper):
    # runc passes LISTEN_FDS to a container's init only, never to exec.
    outputs = []
    for rt in (pyrunc_cmd, runc_cmd):
        create(rt, sleeper, "sa-exec")
        assert rt("start", "sa-exec").returncode == 0
        script = ('export LISTEN_PID=$$ LISTEN_FDS=1; exec 3</dev/null;'
                  ' exec "$@"')
        done = subprocess.run(
            ["bash", "-c", script, "bash",
             *rt.cmdline("exec", "sa-exec", "sh", "-c",
                         'echo "[$LISTEN_FDS]"; [ -e /proc/self/fd/3 ]'
                         ' && echo fd3 || echo none')],
            capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        rt("delete", "--force", "sa-exec")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs == ["[]\nnone\n"] * 2


def test_run_detached_with_stdio_closed(runtime, sleeper):
    # pyrunc's first files (its code image, the container's lock) once
    # took fds 0 and 1, so the container's init held the lock and
    # start or delete waited for ever.
    # stderr to a file: the container keeps it open.
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            ["bash", "-c", '"$@" <&- >&-', "bash",
             *runtime.cmdline("run", "-d", "--bundle", sleeper, "closed")],
            timeout=30, stderr=err)
        err.seek(0)
        assert done.returncode == 0, err.read()
    assert state(runtime, "closed")["status"] == "running"
    assert runtime("delete", "--force", "closed", timeout=30).returncode == 0


def create(rt, bundle, cid):
    proc = rt("create", "--bundle", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    return proc


def state(rt, cid):
    proc = rt("state", cid)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_lifecycle_states_and_shape(runtime, sleeper):
    cid = helpers.unique_id()
    create(runtime, sleeper, cid)
    created = state(runtime, cid)
    assert list(created) == ["ociVersion", "id", "pid", "status", "bundle",
                             "rootfs", "created", "owner"]
    assert created["status"] == "created" and created["pid"] > 0
    assert runtime("start", cid).returncode == 0
    assert state(runtime, cid)["status"] == "running"
    assert runtime("kill", cid, "KILL").returncode == 0
    helpers_wait(lambda: state(runtime, cid)["status"] == "stopped")
    assert state(runtime, cid)["pid"] == 0
    assert runtime("delete", cid).returncode == 0
    assert runtime("state", cid).returncode == 1


def helpers_wait(predicate, timeout=10):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_state_output_bytes_match(pyrunc_cmd, runc_cmd, sleeper):
    sleeper.config["annotations"] = {"b.k": "v&<>", "a.k": "é"}
    sleeper.save()
    cid = helpers.unique_id()
    outs = {}
    for rt in (pyrunc_cmd, runc_cmd):
        create(rt, sleeper, cid)
        proc = rt("state", cid)
        assert proc.returncode == 0
        outs[rt.name] = proc.stdout
        listed = rt("list", "--format", "json").stdout
        outs[rt.name + "-list"] = listed
        assert rt("delete", cid).returncode == 0
    # pid and created differ; everything else, byte for byte.
    norm = re.compile(r'("pid": ?)\d+|("created": ?)"[^"]*"')
    def clean(text):
        return norm.sub(lambda m: (m.group(1) or m.group(2)) + "X", text)
    assert clean(outs["pyrunc"]) == clean(outs["runc"])
    assert clean(outs["pyrunc-list"]) == clean(outs["runc-list"])


@pytest.mark.parametrize("scenario", [
    "start_running", "start_stopped", "kill_stopped", "kill_all_stopped",
    "delete_running", "delete_force_running", "delete_created",
    "kill_bad_signal", "kill_signal_number_invalid", "kill_empty_signal",
])
def test_misuse_with_container(pyrunc_cmd, runc_cmd, sleeper, scenario):
    results = {}
    # One id for both, so that messages naming it compare equal; the
    # runtimes run one after the other (the bundle's cgroup is shared).
    cid = helpers.unique_id()
    for rt in (pyrunc_cmd, runc_cmd):
        create(rt, sleeper, cid)
        results[rt.name] = _scenario(rt, cid, scenario)
        rt("delete", "--force", cid)
    pyrunc, runc = results["pyrunc"], results["runc"]
    assert_same(pyrunc, runc)
    for name, proc in results.items():
        assert proc.returncode in (0, 1), (name, proc)


def _scenario(rt, cid, scenario):
    if scenario == "delete_created":
        return rt("delete", cid)
    if scenario == "kill_empty_signal":
        # An empty signal argument is the default one, SIGTERM.
        return rt("kill", cid, "")
    if scenario in ("kill_bad_signal", "kill_signal_number_invalid"):
        return rt("kill", cid, "FOO" if scenario == "kill_bad_signal"
                  else "99")
    assert rt("start", cid).returncode == 0
    if scenario == "start_running":
        return rt("start", cid)
    if scenario == "delete_running":
        return rt("delete", cid)
    if scenario == "delete_force_running":
        return rt("delete", "--force", cid)
    assert rt("kill", cid, "KILL").returncode == 0
    helpers_wait(lambda: json.loads(rt("state", cid).stdout)["status"]
                 == "stopped")
    if scenario == "start_stopped":
        return rt("start", cid)
    if scenario == "kill_stopped":
        return rt("kill", cid)
    if scenario == "kill_all_stopped":
        return rt("kill", "--all", cid)
    raise AssertionError(scenario)


def test_duplicate_id(pyrunc_cmd, runc_cmd, sleeper):
    results = {}
    for rt in (pyrunc_cmd, runc_cmd):
        cid = helpers.unique_id()
        create(rt, sleeper, cid)
        results[rt.name] = rt("create", "--bundle", sleeper, cid)
        rt("delete", "--force", cid)
    pyrunc, runc = results["pyrunc"], results["runc"]
    assert pyrunc.returncode == runc.returncode == 1
    # runc: "runc create failed: container with given ID already exists";
    # the words that matter to a caller must be there.
    assert "exists" in message(pyrunc)


def test_delete_force_removes_half_created(pyrunc_cmd, runc_cmd, sleeper):
    """A state directory without state.json (a crashed create)."""
    for rt in (pyrunc_cmd, runc_cmd):
        cid = helpers.unique_id()
        rt.root.mkdir(parents=True, exist_ok=True)
        (rt.root / cid).mkdir()
        proc = rt("delete", "--force", cid)
        assert proc.returncode == 0, (rt.name, proc.stderr)
        assert not (rt.root / cid).exists(), rt.name


def freezer_dir(pid):
    """Return the v1 freezer cgroup directory of pid, or None."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    path = next((p for _, ctrls, p in lines
                 if "freezer" in ctrls.split(",")), None)
    if path is None:
        return None
    for m in helpers.read_mounts():
        if m.fstype == "cgroup" and "freezer" in m.super_opts.split(","):
            rel = path[len(m.root):] if m.root != "/" else path
            return f"{m.point}/{rel.lstrip('/')}"
    return None


@pytest.mark.parametrize("running", [False, True])
def test_paused_container(pyrunc_cmd, runc_cmd, sleeper, running):
    """No `pause` command yet: freeze the cgroup by hand, on both."""
    cid = helpers.unique_id()
    results = {}
    for rt in (pyrunc_cmd, runc_cmd):
        create(rt, sleeper, cid)
        if running:
            assert rt("start", cid).returncode == 0
        freezer = freezer_dir(state(rt, cid)["pid"])
        if freezer is None:
            rt("delete", "--force", cid)
            pytest.skip("no v1 freezer hierarchy")
        with open(f"{freezer}/freezer.state", "w") as f:
            f.write("FROZEN")
        results[rt.name] = (state(rt, cid)["status"], rt("start", cid),
                            rt("delete", cid))
        # SIGKILL thaws a paused container so that it can die.
        assert rt("kill", cid, "KILL").returncode == 0
        helpers_wait(lambda rt=rt: state(rt, cid)["status"] == "stopped")
        assert rt("delete", cid).returncode == 0
    assert results["pyrunc"][0] == results["runc"][0] == "paused"
    assert_same(results["pyrunc"][1], results["runc"][1])
    assert_same(results["pyrunc"][2], results["runc"][2])


@pytest.mark.parametrize("args", [("list",), ("state", "x"),
                                  ("delete", "x"), ("kill", "x")])
def test_root_that_is_a_file(pyrunc_cmd, runc_cmd, tmp_path, args):
    # runc makes --root on every command: a file there is its error.
    root = tmp_path / "not-a-dir"
    root.write_text("")
    results = {}
    for rt in (pyrunc_cmd, runc_cmd):
        other = helpers.Runtime(rt.name, rt.argv, root)
        results[rt.name] = other(*args)
    assert_same(results["pyrunc"], results["runc"])
    assert results["pyrunc"].returncode == 1
    assert f"mkdir {root}: not a directory" in results["pyrunc"].stderr
