"""The command line as data: runc's global flags, commands and options.

This table is the single definition of pyrunc's command line. Two parsers
read it: the click application (cli/app.py), which renders help and
reports usage errors, and the pre-parser (cli/fastpath.py), which serves
well-formed argv without importing click. Both turn argv into the same
Invocation, which cli/main.py dispatches to cli/<command>.py.

Help texts follow runc's where runc has them.

Three shapes go beyond "options and a few positional arguments":

- repeatable options (``multiple``: `exec -e A=1 -e B=2`), whose value is
  a tuple in the order given;
- typed options: ``type`` is str or a converter from cli/goflag.py that
  parses the value as runc's Go flag package does (ints in any base,
  durations such as "5s"), raising ValueError otherwise;
- trailing arguments (``rest``): `exec` and `ps` hand everything after the
  container id to another program, so, like runc (whose commands set
  SkipArgReorder), option parsing stops at the first positional argument:
  in `exec ctr sh -c "echo hi"` the "-c" belongs to sh, and in
  `exec ctr -- sh` the "--" is part of the command.
"""

from pyrunc.cli.goflag import format_duration, go_decimal, go_duration
from pyrunc.cli.goflag import go_int

PROG = "pyrunc"


class Opt:
    """One option: dest is the parameter name, names the spellings."""

    __slots__ = ("dest", "names", "help", "flag", "default", "type",
                 "metavar", "multiple", "hidden", "shown_default")

    def __init__(self, dest, names, help, flag=False, default=None,
                 type=str, metavar="value", multiple=False, hidden=False,
                 shown_default=None):
        self.dest = dest
        self.names = names
        self.help = help
        self.flag = flag
        self.default = False if flag else default
        if multiple:
            self.default = ()
        # str, or a converter from cli/goflag.py (raises ValueError).
        self.type = type
        self.metavar = metavar
        self.multiple = multiple
        # Accepted but left out of --help, as runc hides obsolete flags.
        self.hidden = hidden
        # How --help spells the default, when str(default) would not do.
        self.shown_default = shown_default

    def convert(self, text):
        """Return the value of text for this option; ValueError if bad."""
        if self.type is str:
            return text
        return self.type(text)


class Cmd:
    """One command: positional args (min..max) and options."""

    __slots__ = ("name", "help", "args", "min_args", "options", "usage",
                 "description", "rest")

    def __init__(self, name, help, args=(), min_args=None, options=(),
                 usage="", description="", rest=None):
        self.name = name
        self.help = help
        # (name, default) pairs; the first min_args are required.
        self.args = args
        self.min_args = len(args) if min_args is None else min_args
        self.options = options
        self.usage = usage
        self.description = description
        # The parameter that receives, as a tuple, every argument after
        # the positional ones; options end at the first positional.
        self.rest = rest

    @property
    def max_args(self):
        """The most positional arguments allowed; None for no limit."""
        if self.rest is not None:
            return None
        return len(self.args)


class Invocation:
    """A parsed command line: command name, globals and its parameters."""

    __slots__ = ("command", "globals", "params")

    def __init__(self, command, globals, params):
        self.command = command
        self.globals = globals
        self.params = params

    def __eq__(self, other):
        return (isinstance(other, Invocation)
                and (self.command, self.globals, self.params)
                == (other.command, other.globals, other.params))

    def __repr__(self):
        return (f"Invocation({self.command!r}, {self.globals!r}, "
                f"{self.params!r})")


GLOBAL_OPTIONS = (
    Opt("debug", ("--debug",), "enable debug logging", flag=True),
    Opt("log", ("--log",),
        "set the log file to write pyrunc logs to (default is "
        "'/dev/stderr')", default=""),
    Opt("log_format", ("--log-format",),
        "set the log format ('text' (default), or 'json')",
        default="text"),
    # None means the default root, resolved at dispatch (it depends on
    # the euid and $XDG_RUNTIME_DIR).
    Opt("root", ("--root",),
        "root directory for storage of container state (this should be "
        "located in tmpfs) (default: \"/run/pyrunc\")"),
    Opt("criu", ("--criu",),
        "path to the criu binary used for checkpoint and restore "
        "(accepted, unused)", default="criu"),
    Opt("systemd_cgroup", ("--systemd-cgroup",),
        "enable systemd cgroup support (not supported by pyrunc)",
        flag=True),
    Opt("rootless", ("--rootless",),
        "ignore cgroup permission errors ('true', 'false', or 'auto')",
        default="auto"),
)

_CID = (("container_id", None),)

_CREATE_OPTIONS = (
    Opt("bundle", ("--bundle", "-b"),
        "path to the root of the bundle directory, defaults to the "
        "current directory", default=""),
    Opt("console_socket", ("--console-socket",),
        "path to an AF_UNIX socket which will receive a file descriptor "
        "referencing the master end of the console's pseudoterminal",
        default=""),
    Opt("pid_file", ("--pid-file",),
        "specify the file to write the process id to", default=""),
    Opt("no_pivot", ("--no-pivot",),
        "do not use pivot root to jail process inside rootfs. This "
        "should be used whenever the rootfs is on top of a ramdisk",
        flag=True),
    Opt("no_new_keyring", ("--no-new-keyring",),
        "do not create a new session keyring for the container. This "
        "will cause the container to inherit the calling processes "
        "session key", flag=True),
    Opt("preserve_fds", ("--preserve-fds",),
        "Pass N additional file descriptors to the container (stdio + "
        "$LISTEN_FDS + N in total)", default=0, type=go_int),
)

_EXEC_OPTIONS = (
    Opt("console_socket", ("--console-socket",),
        "path to an AF_UNIX socket which will receive a file descriptor "
        "referencing the master end of the console's pseudoterminal",
        default=""),
    Opt("cwd", ("--cwd",), "current working directory in the container",
        default=""),
    Opt("env", ("--env", "-e"), "set environment variables",
        multiple=True),
    Opt("tty", ("--tty", "-t"), "allocate a pseudo-TTY", flag=True),
    Opt("user", ("--user", "-u"), "UID (format: <uid>[:<gid>])",
        default=""),
    Opt("additional_gids", ("--additional-gids", "-g"), "additional gids",
        multiple=True, type=go_decimal),
    Opt("process", ("--process", "-p"), "path to the process.json",
        default=""),
    Opt("detach", ("--detach", "-d"), "detach from the container's "
        "process", flag=True),
    Opt("pid_file", ("--pid-file",),
        "specify the file to write the process id to", default=""),
    Opt("process_label", ("--process-label",),
        "set the asm process label for the process commonly used with "
        "selinux", default=""),
    Opt("apparmor", ("--apparmor",),
        "set the apparmor profile for the process", default=""),
    Opt("no_new_privs", ("--no-new-privs",),
        "set the no new privileges value for the process", flag=True),
    Opt("cap", ("--cap", "-c"),
        "add a capability to the bounding set for the process",
        multiple=True),
    Opt("preserve_fds", ("--preserve-fds",),
        "Pass N additional file descriptors to the container (stdio + "
        "$LISTEN_FDS + N in total)", default=0, type=go_int),
    Opt("cgroup", ("--cgroup",),
        "run the process in an (existing) sub-cgroup(s). Format is "
        "[<controller>:]<cgroup> (not supported by pyrunc)",
        multiple=True),
    Opt("ignore_paused", ("--ignore-paused",),
        "allow exec in a paused container", flag=True),
)


def _update_value(dest, names, help, hidden=False):
    """A string flag of update, parsed by cli/update.py as runc does."""
    return Opt(dest, names, help, default="", hidden=hidden)


_UPDATE_OPTIONS = (
    Opt("resources", ("--resources", "-r"),
        "path to the file containing the resources to update or '-' to "
        "read from the standard input (a JSON LinuxResources object, "
        "unchanged values can be omitted); all other options are then "
        "ignored", default=""),
    Opt("blkio_weight", ("--blkio-weight",),
        "Specifies per cgroup weight, range is from 10 to 1000",
        default=0, type=go_int),
    _update_value("cpu_period", ("--cpu-period",),
                  "CPU CFS period to be used for hardcapping (in usecs). 0 "
                  "to use system default"),
    _update_value("cpu_quota", ("--cpu-quota",),
                  "CPU CFS hardcap limit (in usecs). Allowed cpu time in a "
                  "given period"),
    # runc spells it in the singular; the plural is pyrunc's alias.
    _update_value("cpu_share", ("--cpu-share", "--cpu-shares"),
                  "CPU shares (relative weight vs. other containers)"),
    _update_value("cpu_rt_period", ("--cpu-rt-period",),
                  "CPU realtime period to be used for hardcapping (in "
                  "usecs). 0 to use system default"),
    _update_value("cpu_rt_runtime", ("--cpu-rt-runtime",),
                  "CPU realtime hardcap limit (in usecs). Allowed cpu time "
                  "in a given period"),
    _update_value("cpuset_cpus", ("--cpuset-cpus",), "CPU(s) to use"),
    _update_value("cpuset_mems", ("--cpuset-mems",),
                  "Memory node(s) to use"),
    _update_value("kernel_memory", ("--kernel-memory",),
                  "(obsoleted; do not use)", hidden=True),
    _update_value("kernel_memory_tcp", ("--kernel-memory-tcp",),
                  "(obsoleted; do not use)", hidden=True),
    _update_value("memory", ("--memory",), "Memory limit (in bytes)"),
    _update_value("memory_reservation", ("--memory-reservation",),
                  "Memory reservation or soft_limit (in bytes)"),
    _update_value("memory_swap", ("--memory-swap",),
                  "Total memory usage (memory + swap); set '-1' to enable "
                  "unlimited swap"),
    Opt("pids_limit", ("--pids-limit",),
        "Maximum number of pids allowed in the container", default=0,
        type=go_int),
    _update_value("l3_cache_schema", ("--l3-cache-schema",),
                  "The string of Intel RDT/CAT L3 cache schema (not "
                  "supported by pyrunc)"),
    _update_value("mem_bw_schema", ("--mem-bw-schema",),
                  "The string of Intel RDT/MBA memory bandwidth schema (not "
                  "supported by pyrunc)"),
)

COMMANDS = {
    "create": Cmd(
        "create", "create a container", _CID, options=_CREATE_OPTIONS,
        usage="<container-id>",
        description="The create command creates an instance of a "
        "container for a bundle. The bundle is a directory with a "
        "specification file named \"config.json\" and a root "
        "filesystem."),
    "delete": Cmd(
        "delete", "delete any resources held by the container often used "
        "with detached container", _CID,
        options=(Opt("force", ("--force", "-f"),
                     "Forcibly deletes the container if it is still "
                     "running (uses SIGKILL)", flag=True),),
        usage="<container-id>"),
    "events": Cmd(
        "events", "display container events such as OOM notifications, "
        "cpu, memory, and IO usage statistics", _CID,
        options=(Opt("interval", ("--interval",),
                     "set the stats collection interval", default=5.0,
                     type=go_duration, shown_default=format_duration(5)),
                 Opt("stats", ("--stats",),
                     "display the container's stats then exit",
                     flag=True)),
        usage="<container-id>",
        description="The events command displays information about the "
        "container. By default the information is displayed once every 5 "
        "seconds."),
    "exec": Cmd(
        "exec", "execute new process inside the container", _CID,
        options=_EXEC_OPTIONS, rest="command",
        usage="<container-id> <command> [command options]  || -p "
        "process.json <container-id>",
        description="Run a new process inside a running container: "
        "<command> is executed in the container, and can't be empty "
        "unless a \"-p\" flag provided. The exit status is the process' "
        "own, or 255 when it could not be started."),
    "features": Cmd(
        "features", "show the enabled features",
        description="Show the enabled features. The result is parsable "
        "as a JSON."),
    "kill": Cmd(
        "kill", "kill sends the specified signal (default: SIGTERM) to "
        "the container's init process",
        (("container_id", None), ("signal", "SIGTERM")), min_args=1,
        options=(Opt("all", ("--all", "-a"),
                     "send the specified signal to all processes inside "
                     "the container", flag=True),),
        usage="<container-id> [signal]"),
    "list": Cmd(
        "list", "lists containers started by pyrunc with the given root",
        options=(Opt("format", ("--format", "-f"),
                     "select one of: table or json", default="table"),
                 Opt("quiet", ("--quiet", "-q"),
                     "display only container IDs", flag=True)),
        usage=""),
    "pause": Cmd(
        "pause", "pause suspends all processes inside the container", _CID,
        usage="<container-id>",
        description="The pause command suspends all processes in the "
        "instance of the container.\n\nUse pyrunc list to identify "
        "instances of containers and their current status."),
    "ps": Cmd(
        "ps", "ps displays the processes running inside a container", _CID,
        options=(Opt("format", ("--format", "-f"),
                     "select one of: table or json", default="table"),),
        rest="ps_args", usage="<container-id> [ps options]"),
    "resume": Cmd(
        "resume", "resumes all processes that have been previously paused",
        _CID, usage="<container-id>",
        description="The resume command resumes all processes in the "
        "instance of the container.\n\nUse pyrunc list to identify "
        "instances of containers and their current status."),
    "run": Cmd(
        "run", "create and run a container", _CID,
        options=_CREATE_OPTIONS + (
            Opt("detach", ("--detach", "-d"), "detach from the "
                "container's process", flag=True),
            Opt("keep", ("--keep",), "do not delete the container after "
                "it exits", flag=True),
        ),
        usage="<container-id>"),
    "spec": Cmd(
        "spec", "create a new specification file",
        options=(Opt("bundle", ("--bundle", "-b"),
                     "path to the root of the bundle directory",
                     default=""),
                 Opt("rootless", ("--rootless",),
                     "generate a configuration for a rootless container",
                     flag=True)),
        usage=""),
    "start": Cmd(
        "start", "executes the user defined process in a created "
        "container", _CID, usage="<container-id>"),
    "state": Cmd(
        "state", "output the state of a container", _CID,
        usage="<container-id>"),
    "update": Cmd(
        "update", "update container resource constraints", _CID,
        options=_UPDATE_OPTIONS, usage="<container-id>"),
}


def global_defaults():
    """Return the global options' defaults, by dest."""
    return {opt.dest: opt.default for opt in GLOBAL_OPTIONS}


def option_defaults(cmd):
    """Return a command's option defaults, by dest."""
    return {opt.dest: opt.default for opt in cmd.options}


def check_args(cmd, count):
    """Return runc's usage message if count positional args are wrong."""
    if cmd.min_args == cmd.max_args and count != cmd.max_args:
        return (f'{PROG}: "{cmd.name}" requires exactly {cmd.max_args} '
                f"argument(s)")
    if count < cmd.min_args:
        return (f'{PROG}: "{cmd.name}" requires a minimum of '
                f"{cmd.min_args} argument(s)")
    if cmd.max_args is not None and count > cmd.max_args:
        return (f'{PROG}: "{cmd.name}" requires a maximum of '
                f"{cmd.max_args} argument(s)")
    return None


def two_forms(cmd, used):
    """Return runc's usage message if one option was used by two names.

    used holds the option names given (with their dashes). urfave/cli
    checks each option in the command's order and names the later
    spelling first: `exec --cap A -c B` fails with "... flag: c cap".
    runc lists the long name first, as the table does.
    """
    for opt in cmd.options:
        given = [name for name in opt.names if name in used]
        if len(given) > 1:
            first, second = given[0].lstrip("-"), given[1].lstrip("-")
            return f"Cannot use two forms of the same flag: {second} {first}"
    return None


def bind_args(cmd, values):
    """Return positional values by name, with defaults for the missing.

    A command with trailing arguments gets the surplus as a tuple.
    """
    bound = {}
    for index, (name, default) in enumerate(cmd.args):
        bound[name] = values[index] if index < len(values) else default
    if cmd.rest is not None:
        bound[cmd.rest] = tuple(values[len(cmd.args):])
    return bound
