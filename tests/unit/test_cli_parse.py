"""The two parsers of the command line agree (fast path and click).

cli/options.py is the one definition; cli/fastpath.py and cli/app.py both
read it. Whenever the fast path accepts an argv, click must produce the
same Invocation; whatever it declines, click handles.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import log
from pyrunc.cli import app, fastpath
from pyrunc.cli.options import COMMANDS, GLOBAL_OPTIONS, Invocation
from pyrunc.cli.options import check_args


@pytest.fixture(autouse=True)
def _reset_log():
    yield
    log.reset()


def click_parse(argv):
    return app.parse(list(argv))


ACCEPTED = [
    ["state", "c1"],
    ["--root", "/r", "state", "c1"],
    ["--root=/r", "--debug", "--log", "/l", "--log-format", "json",
     "state", "c1"],
    ["--systemd-cgroup", "--rootless", "true", "--criu", "x", "start", "c"],
    ["kill", "c1"],
    ["kill", "c1", "KILL"],
    ["kill", "--all", "c1", "9"],
    ["kill", "c1", "-a"],
    ["kill", "-a", "c1", "SIGTERM"],
    ["delete", "-f", "c1"],
    ["delete", "c1", "--force"],
    ["list"],
    ["list", "-q"],
    ["list", "--format", "json"],
    ["list", "-f", "json", "--quiet"],
    ["list", "--format=table"],
    ["create", "c1"],
    ["create", "--bundle", "/b", "--pid-file", "/p", "c1"],
    ["create", "-b", "/b", "--console-socket", "/s", "--no-pivot",
     "--no-new-keyring", "--preserve-fds", "3", "c1"],
    ["create", "c1", "-b", "rel"],
    ["run", "-d", "--keep", "-b", "/b", "c1"],
    ["run", "--detach", "c1"],
    ["spec"],
    ["spec", "--rootless", "-b", "/b"],
    ["features"],
    ["state", ""],
    ["--log=", "state", "c"],
    ["--root", "/a", "--root", "/b", "state", "c"],
]

DECLINED = [
    [],
    ["--help"],
    ["-h"],
    ["state", "--help"],
    ["-v"],
    ["--version"],
    ["state"],
    ["state", "a", "b"],
    ["kill"],
    ["kill", "a", "b", "c"],
    ["nosuch"],
    ["state", "--bogus", "c"],
    ["--bogus", "state", "c"],
    ["list", "-qf", "json"],
    ["delete", "--", "c1"],
    ["kill", "c1", "-9"],
    ["create", "--preserve-fds", "x", "c1"],
    ["create", "--preserve-fds", "-1", "c1"],
    ["create", "-b=/b", "c1"],
    ["delete", "--force=true", "c1"],
    ["state", "-"],
    ["--root"],
    ["--root", "--debug", "state", "c"],
    ["--debug"],
    ["state", "--root", "/r", "c"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_fast_path_agrees_with_click(argv):
    fast = fastpath.parse(argv)
    assert isinstance(fast, Invocation), "fast path should accept this"
    assert click_parse(argv) == fast


@pytest.mark.parametrize("argv", DECLINED, ids=lambda a: " ".join(a) or "-")
def test_fast_path_declines(argv, capsys):
    assert fastpath.parse(argv) is None
    # click decides instead: an Invocation or an exit status, never a
    # traceback.
    result = click_parse(argv)
    assert isinstance(result, (Invocation, int))


def test_params_are_complete_and_typed():
    inv = fastpath.parse(["create", "-b", "/b", "--preserve-fds", "3", "c"])
    assert inv.command == "create"
    assert inv.params == {
        "bundle": "/b", "console_socket": "", "pid_file": "",
        "no_pivot": False, "no_new_keyring": False, "preserve_fds": 3,
        "container_id": "c"}
    assert inv.globals == {
        "debug": False, "log": "", "log_format": "text", "root": None,
        "criu": "criu", "systemd_cgroup": False, "rootless": "auto"}
    kill = fastpath.parse(["kill", "c"])
    assert kill.params == {"all": False, "container_id": "c",
                           "signal": "SIGTERM"}


class TestUsageErrors:
    @pytest.mark.parametrize("argv, status, message", [
        (["state"], 1, 'pyrunc: "state" requires exactly 1 argument(s)'),
        (["state", "a", "b"], 1,
         'pyrunc: "state" requires exactly 1 argument(s)'),
        (["kill"], 1, 'pyrunc: "kill" requires a minimum of 1 argument(s)'),
        (["kill", "a", "b", "c"], 1,
         'pyrunc: "kill" requires a maximum of 2 argument(s)'),
        (["list", "x"], 1, 'pyrunc: "list" requires exactly 0 argument(s)'),
        (["state", "--bogus", "c"], 1,
         "flag provided but not defined: -bogus"),
        (["--bogus", "state", "c"], 1,
         "flag provided but not defined: -bogus"),
        (["nosuch"], 3, "No help topic for 'nosuch'"),
    ])
    def test_runc_status_and_wording(self, argv, status, message, capfd):
        assert click_parse(argv) == status
        out, err = capfd.readouterr()
        assert f"level=error msg={log.go_quote(message)}" in err

    def test_help_on_stdout_for_usage_errors(self, capfd):
        click_parse(["state"])
        out, _ = capfd.readouterr()
        assert out.startswith("Incorrect Usage")
        assert "pyrunc state" in out

    def test_help_and_version_exit_0(self, capfd):
        assert click_parse(["--help"]) == 0
        assert "COMMAND" in capfd.readouterr().out
        assert click_parse([]) == 0
        assert "COMMAND" in capfd.readouterr().out
        assert click_parse(["--root", "/x"]) == 0
        assert "COMMAND" in capfd.readouterr().out
        assert click_parse(["-v"]) == 0
        out = capfd.readouterr().out.splitlines()
        assert out[0] == "pyrunc version 0.1.0"
        assert out[1].startswith("commit: ")
        assert out[2] == "spec: 1.2.0"
        assert len(out) == 3


def test_check_args_wording():
    assert check_args(COMMANDS["delete"], 1) is None
    assert check_args(COMMANDS["kill"], 2) is None
    assert check_args(COMMANDS["features"], 1) == (
        'pyrunc: "features" requires exactly 0 argument(s)')


# Property test: random argv built from the table's own vocabulary plus
# noise; the fast path may decline, but must never disagree.
_NAMES = sorted({n for o in GLOBAL_OPTIONS for n in o.names}
                | {n for c in COMMANDS.values() for o in c.options
                   for n in o.names})
_WORDS = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(sorted(COMMANDS)),
    st.sampled_from(["c1", "KILL", "9", "json", "/x", "", "-", "--", "3",
                     "-q", "-qf", "--x=1", "true"]),
    st.builds(lambda n, v: f"{n}={v}", st.sampled_from(_NAMES),
              st.sampled_from(["", "1", "json", "/x"])),
    st.text(min_size=0, max_size=5),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, min_size=0, max_size=8))
def test_random_argv_never_disagree(argv):
    fast = fastpath.parse(argv)
    if fast is None:
        return
    assert click_parse(argv) == fast
