"""The command line as data: runc's global flags, commands and options.

This table is the single definition of pyrunc's command line. Two parsers
read it: the click application (cli/app.py), which renders help and
reports usage errors, and the pre-parser (cli/fastpath.py), which serves
well-formed argv without importing click. Both turn argv into the same
Invocation, which cli/main.py dispatches to cli/<command>.py.

Help texts follow runc's where runc has them.
"""

PROG = "pyrunc"


class Opt:
    """One option: dest is the parameter name, names the spellings."""

    __slots__ = ("dest", "names", "help", "flag", "default", "type",
                 "metavar")

    def __init__(self, dest, names, help, flag=False, default=None,
                 type=str, metavar="value"):
        self.dest = dest
        self.names = names
        self.help = help
        self.flag = flag
        self.default = False if flag else default
        self.type = type
        self.metavar = metavar


class Cmd:
    """One command: positional args (min..max) and options."""

    __slots__ = ("name", "help", "args", "min_args", "options", "usage",
                 "description")

    def __init__(self, name, help, args=(), min_args=None, options=(),
                 usage="", description=""):
        self.name = name
        self.help = help
        # (name, default) pairs; the first min_args are required.
        self.args = args
        self.min_args = len(args) if min_args is None else min_args
        self.options = options
        self.usage = usage
        self.description = description

    @property
    def max_args(self):
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
        "$LISTEN_FDS + N in total)", default=0, type=int),
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
    if count > cmd.max_args:
        return (f'{PROG}: "{cmd.name}" requires a maximum of '
                f"{cmd.max_args} argument(s)")
    return None


def bind_args(cmd, values):
    """Return positional values by name, with defaults for the rest."""
    bound = {}
    for index, (name, default) in enumerate(cmd.args):
        bound[name] = values[index] if index < len(values) else default
    return bound
