"""Start-up cost: what the hot commands import, pinned.

`state`, `start`, `kill` and `delete` are called by container managers
many times a second; each module they import costs start-up time. These
tests run the CLI in a fresh interpreter and fail if click (or any other
heavy module) creeps back onto their path.
"""

import json
import os
import subprocess
import sys

import pytest

# Modules a hot command must not import: the CLI framework, the heavy
# third-party libraries, and stdlib modules whose import costs more than
# a millisecond (json, re and enum among them; see pyrunc/state/store.py
# and pyrunc/log.py for how they are avoided).
FORBIDDEN = {
    "click", "psutil", "pyroute2", "dataclasses", "logging", "json", "re",
    "enum", "subprocess", "shutil", "typing", "inspect", "signal",
    "pathlib", "argparse", "importlib.util", "traceback",
}

RUNNER = """
import sys
from pyrunc.cli.main import run_argv
status = run_argv(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.exit(status)
"""


def run_cli(*argv):
    """Run the CLI in a fresh interpreter; return (status, modules, out)."""
    import pyrunc
    import pyrunc.cli

    # -S keeps site (and what its .pth files import, such as an editable
    # install's finder) out of the picture: only pyrunc's own imports
    # are seen. pyrunc.cli lives in cli/ (pyproject's package-dir), so
    # the directory holding it joins pyrunc's package path by hand.
    package = os.path.dirname(pyrunc.__file__)
    cli_parent = os.path.dirname(os.path.dirname(pyrunc.cli.__file__))
    prelude = ("import pyrunc\n"
               f"pyrunc.__path__.append({cli_parent!r})\n")
    import click

    # click's directory is on the path (a path entry imports nothing) so
    # that the fallback parser still works.
    paths = [os.path.dirname(package),
             os.path.dirname(os.path.dirname(click.__file__))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    done = subprocess.run(
        [sys.executable, "-S", "-c", prelude + RUNNER, *argv],
        capture_output=True, text=True, env=env)
    marker = done.stderr.rindex("MODULES ")
    modules = set(done.stderr[marker + 8:].split())
    return done.returncode, modules, done.stdout


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "root")


@pytest.fixture
def running(root):
    """A fake running container (no cgroup) under root."""
    from pyrunc.state import proc
    from pyrunc.state.store import Record, Store

    store = Store(root)
    store.new("web")
    child = subprocess.Popen(["sleep", "60"])
    start = None
    while start is None:
        start = proc.start_time(child.pid)
    store.save(Record(id="web", pid=child.pid, pid_start=start,
                      bundle="/b", config={"ociVersion": "1.0.2"}))
    yield child
    child.kill()
    child.wait()


@pytest.mark.parametrize("argv", [
    ["state", "nosuch"],
    ["start", "nosuch"],
    ["kill", "nosuch"],
    ["delete", "nosuch"],
    ["delete", "-f", "nosuch"],
    ["kill", "nosuch", "KILL"],
])
def test_hot_commands_on_unknown_container(root, argv):
    status, modules, _ = run_cli("--root", root, *argv)
    assert status == (0 if "-f" in argv else 1)
    assert not FORBIDDEN & modules, sorted(FORBIDDEN & modules)


def test_state_of_running_container(root, running):
    status, modules, out = run_cli("--root", root, "state", "web")
    assert status == 0
    assert json.loads(out)["status"] == "running"
    assert not FORBIDDEN & modules, sorted(FORBIDDEN & modules)


def test_kill_of_running_container(root, running):
    status, modules, _ = run_cli("--root", root, "kill", "web", "KILL")
    assert status == 0
    assert running.wait(5) == -9
    assert not FORBIDDEN & modules, sorted(FORBIDDEN & modules)


def test_usage_error_uses_click(root):
    # The fallback really is click: usage errors are its job.
    status, modules, _ = run_cli("--root", root, "state")
    assert status == 1
    assert "click" in modules


@pytest.mark.root
def test_run_of_real_container(root, tmp_path, request):
    # The whole foreground run: config.json read, plan, clone, state
    # written and removed, all without json, re or the rest.
    import helpers

    if os.geteuid() != 0:
        pytest.skip("needs root")
    bundle = helpers.make_bundle(
        tmp_path / "bundle",
        cgroups_path=helpers.cgroup_name(request.node.name))
    bundle.config["process"]["args"] = ["true"]
    bundle.config["process"]["terminal"] = False
    bundle.save()
    status, modules, _ = run_cli("--root", root, "run", "--bundle",
                                 str(bundle.path), "imports")
    assert status == 0
    assert not FORBIDDEN & modules, sorted(FORBIDDEN & modules)
