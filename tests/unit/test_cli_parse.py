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
    # Trailing arguments: options end at the container id.
    ["exec", "c1", "sh", "-c", "echo hi"],
    ["exec", "c1", "--", "sh"],
    ["exec", "c1", "-t", "--help", "-"],
    ["exec", "-e", "A=1", "-e", "B=2", "c1", "env"],
    ["exec", "--env=A=1", "--env", "A=2", "-t", "-d", "c1", "x"],
    ["exec", "-u", "1000:1000", "-g", "10", "-g", "20", "--cwd", "/tmp",
     "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_KILL", "c1", "id"],
    ["exec", "-p", "/p.json", "--console-socket", "/s", "--pid-file",
     "/pid", "--preserve-fds", "2", "--no-new-privs", "--apparmor", "a",
     "--process-label", "l", "--ignore-paused", "--cgroup", "cpu:x", "c1"],
    ["exec", "c1"],
    ["exec", "c1", ""],
    ["exec", "--preserve-fds", "0x10", "c1", "true"],
    ["exec", "--preserve-fds", "010", "c1", "true"],
    ["ps", "c1"],
    ["ps", "-f", "json", "c1"],
    ["ps", "--format=table", "c1", "-o", "pid,comm"],
    ["ps", "c1", "-f", "json"],
    ["pause", "c1"],
    ["resume", "c1"],
    ["events", "c1"],
    ["events", "--stats", "c1"],
    ["events", "--interval", "1m30s", "c1"],
    ["events", "c1", "--interval=250ms"],
    ["events", "--interval", "0", "c1"],
    ["update", "--memory", "64m", "--memory-swap", "1g", "c1"],
    ["update", "c1", "--pids-limit", "10", "--blkio-weight", "500"],
    ["update", "-r", "/res.json", "c1"],
    ["update", "--cpu-share", "512", "--cpu-quota", "1000", "--cpu-period",
     "100000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "c1"],
    ["update", "--cpu-shares", "2", "c1"],
    ["update", "--kernel-memory", "1m", "--kernel-memory-tcp", "1m",
     "--memory-reservation", "1m", "--cpu-rt-period", "1",
     "--cpu-rt-runtime", "1", "--l3-cache-schema", "L3:0=f",
     "--mem-bw-schema", "MB:0=70", "c1"],
    # Go's flag package takes a boolean flag's value after "=".
    ["delete", "--force=true", "c1"],
    ["delete", "--force=false", "c1"],
    ["exec", "--tty=false", "-d=1", "c1", "true"],
    ["exec", "-t=F", "c1", "sh", "--tty=true"],
    ["--debug=false", "--systemd-cgroup=0", "state", "c1"],
    ["list", "--quiet=T"],
    # It also reads -name as --name (and --b as -b).
    ["-root", "/r", "run", "-bundle", "/b", "c1"],
    ["-debug", "-log-format=json", "state", "c1"],
    ["create", "--b", "/b", "-pid-file", "/p", "c1"],
    ["exec", "-tty", "c1", "sh", "-tty"],
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
    ["state", "-"],
    ["--root"],
    ["--root", "--debug", "state", "c"],
    ["--debug"],
    ["state", "--root", "/r", "c"],
    ["exec"],
    ["exec", "--", "c1", "sh"],
    ["exec", "-e", "-x", "c1", "sh"],
    ["exec", "-g", "0x10", "c1", "id"],
    ["exec", "-g", "-5", "c1", "id"],
    ["exec", "-te", "A=1", "c1", "sh"],
    ["ps"],
    ["ps", "--", "c1"],
    ["events", "--interval", "5", "c1"],
    ["events", "--interval", "-1s", "c1"],
    ["events", "c1", "c2"],
    ["pause"],
    ["resume", "a", "b"],
    ["update", "--pids-limit", "-1", "c1"],
    ["update", "--pids-limit", "x", "c1"],
    ["update", "--memory", "-1", "c1"],
    ["update", "c1", "c2"],
    ["exec", "--cap", "A", "-c", "B", "c1", "true"],
    ["delete", "c1", "-f", "--force"],
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
        # urfave/cli: one flag under two names, the later name first,
        # found before the arguments are counted.
        (["exec", "--cap", "A", "-c", "B", "c", "true"], 1,
         "Cannot use two forms of the same flag: c cap"),
        (["exec", "-t", "-e", "A=1", "--env", "B=2", "--tty", "c", "sh"],
         1, "Cannot use two forms of the same flag: e env"),
        (["delete", "-f", "--force"], 1,
         "Cannot use two forms of the same flag: f force"),
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


class TestShapes:
    """Trailing arguments, repeatable and typed options, as runc has them."""

    def test_exec_stops_at_the_container_id(self):
        inv = fastpath.parse(["exec", "-e", "A=1", "-e", "B=2", "ctr", "sh",
                              "-c", "echo hi", "-e", "C=3"])
        assert inv.params["container_id"] == "ctr"
        assert inv.params["command"] == ("sh", "-c", "echo hi", "-e", "C=3")
        assert inv.params["env"] == ("A=1", "B=2")

    def test_double_dash_after_the_id_is_the_command(self):
        # runc runs "--" then (and fails to find it), as Go's flag
        # package stopped before it.
        inv = click_parse(["exec", "ctr", "--", "sh"])
        assert inv.params["command"] == ("--", "sh")

    def test_double_dash_before_the_id_ends_options(self):
        inv = click_parse(["exec", "-t", "--", "ctr", "-t"])
        assert inv.params["tty"] is True
        assert inv.params["container_id"] == "ctr"
        assert inv.params["command"] == ("-t",)

    def test_exec_defaults(self):
        inv = fastpath.parse(["exec", "ctr", "true"])
        assert inv.params == {
            "console_socket": "", "cwd": "", "env": (), "tty": False,
            "user": "", "additional_gids": (), "process": "",
            "detach": False, "pid_file": "", "process_label": "",
            "apparmor": "", "no_new_privs": False, "cap": (),
            "preserve_fds": 0, "cgroup": (), "ignore_paused": False,
            "container_id": "ctr", "command": ("true",)}

    def test_repeated_ints_keep_order(self):
        inv = fastpath.parse(["exec", "-g", "20", "-g", "10", "c", "id"])
        assert inv.params["additional_gids"] == (20, 10)

    def test_ps_arguments(self):
        inv = fastpath.parse(["ps", "c", "-o", "pid,comm"])
        assert inv.params == {"format": "table", "container_id": "c",
                              "ps_args": ("-o", "pid,comm")}
        assert fastpath.parse(["ps", "c"]).params["ps_args"] == ()

    @pytest.mark.parametrize("text, seconds", [
        ("5s", 5.0), ("1m30s", 90.0), ("250ms", 0.25), ("1.5h", 5400.0),
        ("0", 0.0), ("2h45m", 9900.0),
    ])
    def test_interval_is_a_go_duration(self, text, seconds):
        inv = fastpath.parse(["events", "--interval", text, "c"])
        assert inv.params["interval"] == seconds
        assert click_parse(["events", "--interval", text, "c"]) == inv

    def test_interval_default(self):
        assert fastpath.parse(["events", "c"]).params == {
            "interval": 5.0, "stats": False, "container_id": "c"}

    def test_negative_values_go_to_click(self):
        # The fast path never takes a value starting with "-"; click
        # does, as Go's flag package does.
        assert fastpath.parse(["update", "--pids-limit", "-1", "c"]) is None
        inv = click_parse(["update", "--pids-limit", "-1", "--memory-swap",
                           "-1", "c"])
        assert inv.params["pids_limit"] == -1
        assert inv.params["memory_swap"] == "-1"

    @pytest.mark.parametrize("argv, message", [
        (["events", "--interval", "5", "c"],
         'invalid value "5" for flag -interval: parse error'),
        (["exec", "--preserve-fds", "x", "c", "true"],
         'invalid value "x" for flag -preserve-fds: parse error'),
        (["update", "--pids-limit", "1.5", "c"],
         'invalid value "1.5" for flag -pids-limit: parse error'),
        (["exec", "-g", "0x10", "c", "id"],
         'invalid value "0x10" for flag -additional-gids: '
         'strconv.ParseInt: parsing "0x10": invalid syntax'),
        (["exec"], 'pyrunc: "exec" requires a minimum of 1 argument(s)'),
        (["ps"], 'pyrunc: "ps" requires a minimum of 1 argument(s)'),
        (["pause", "a", "b"],
         'pyrunc: "pause" requires exactly 1 argument(s)'),
        (["update", "--cpu-sharez", "1", "c"],
         "flag provided but not defined: -cpu-sharez"),
    ])
    def test_usage_errors_worded_like_runc(self, argv, message, capfd):
        assert click_parse(argv) == 1
        out, err = capfd.readouterr()
        assert out.startswith("Incorrect Usage")
        assert f"level=error msg={log.go_quote(message)}" in err

    def test_hidden_options_accepted_not_shown(self, capfd):
        assert click_parse(["update", "--help"]) == 0
        out = capfd.readouterr().out
        assert "--kernel-memory" not in out
        assert "--memory-swap" in out
        inv = click_parse(["update", "--kernel-memory", "1m", "c"])
        assert inv.params["kernel_memory"] == "1m"


def test_boolean_flag_values():
    fast = fastpath.parse(["exec", "--tty=false", "-d=1", "c1", "sh",
                           "--tty=true"])
    assert fast.params["tty"] is False
    assert fast.params["detach"] is True
    assert fast.params["command"] == ("sh", "--tty=true")
    assert fastpath.parse(["--debug=false", "state", "c1"]).globals[
        "debug"] is False


def test_single_dash_long_names():
    fast = fastpath.parse(["-root", "/r", "run", "-bundle", "/b", "c1"])
    assert fast.globals["root"] == "/r"
    assert fast.params["bundle"] == "/b"
    fast = fastpath.parse(["exec", "-tty", "c1", "sh", "-tty"])
    assert fast.params["tty"] is True
    # After the options, the process's own arguments stay as given.
    assert fast.params["command"] == ("sh", "-tty")
    assert click_parse(["-root", "/r", "-debug", "state", "c1"]).globals[
        "debug"] is True


def test_bad_boolean_flag_worded_like_go(capfd):
    assert fastpath.parse(["delete", "--force=maybe", "c1"]) is None
    assert click_parse(["delete", "--force=maybe", "c1"]) == 1
    err = capfd.readouterr().err
    assert 'invalid boolean value \\"maybe\\" for -force: parse error' \
        in err, err


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
                     "-q", "-qf", "--x=1", "true", "sh", "-c", "A=1",
                     "5s", "1m30s", "0", "-1", "0x10", "010", "64m",
                     "1.5", "-ef"]),
    st.builds(lambda n, v: f"{n}={v}", st.sampled_from(_NAMES),
              st.sampled_from(["", "1", "json", "/x", "5s", "A=1"])),
    st.text(min_size=0, max_size=5),
)

# Values by the type an option converts to: (valid, refused) samples.
_VALUES = {
    "str": (["x", "/p", "A=1", "", "5s", "0"], ["-x", "--"]),
    "go_int": (["0", "3", "0x10", "010", "1_0", "+2"],
               ["-1", "x", "99999999999999999999", " 1"]),
    "go_decimal": (["10", "0", "+3"], ["-5", "0x10", "x"]),
    "go_duration": (["5s", "1m30s", ".5s", "0", "1.5h2m"],
                    ["5", "-1s", "1x", "h"]),
}


def _type_name(opt):
    return "str" if opt.type is str else opt.type.__name__


def _value(opt):
    valid, refused = _VALUES[_type_name(opt)]
    # Mostly valid, so that the fast path accepts a fair share.
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid),
                     st.sampled_from(valid), st.sampled_from(refused))


@st.composite
def _command_lines(draw):
    """argv shaped like real calls: options, the id, then the rest."""
    cmd = COMMANDS[draw(st.sampled_from(sorted(COMMANDS)))]
    argv = [cmd.name]
    for opt in draw(st.lists(st.sampled_from(cmd.options or (None,)),
                             max_size=4)):
        if opt is None:
            continue
        name = draw(st.sampled_from(opt.names))
        if opt.flag:
            argv.append(name)
            continue
        value = draw(_value(opt))
        if name.startswith("--") and draw(st.booleans()):
            argv.append(f"{name}={value}")
        else:
            argv += [name, value]
    count = draw(st.integers(max(cmd.min_args - 1, 0), len(cmd.args) + 1))
    argv += ["c1", "SIGKILL"][:count]
    if cmd.rest is not None or draw(st.integers(0, 9)) == 0:
        argv += draw(st.lists(st.sampled_from(
            ["sh", "-c", "--", "-t", "x y", "-ef", "", "-e", "A=1"]),
            max_size=4))
    return argv


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, min_size=0, max_size=8))
def test_random_argv_never_disagree(argv):
    fast = fastpath.parse(argv)
    if fast is None:
        return
    assert click_parse(argv) == fast


@settings(max_examples=600, deadline=None)
@given(_command_lines())
def test_command_shaped_argv_never_disagree(argv):
    fast = fastpath.parse(argv)
    if fast is None:
        return
    assert click_parse(argv) == fast


def test_every_option_type_has_sample_values():
    for cmd in COMMANDS.values():
        for opt in cmd.options:
            assert opt.flag or _type_name(opt) in _VALUES, opt.dest
