"""The click application, built from the table in cli/options.py.

Used for whatever the pre-parser (cli/fastpath.py) declines: help,
--version, unusual spellings and every usage error. Commands are built
from the table only when click asks for them, and their callbacks return
an Invocation instead of acting, so that both parsers feed one dispatch.

Usage errors follow runc rather than click: "Incorrect Usage." and the
command's help on stdout, the error logged on stderr, exit status 1 (3
for an unknown command, as urfave/cli does).
"""

import sys

import click

from pyrunc.cli import options
from pyrunc.cli.goflag import PARSE_ERROR, find_option, go_bool
from pyrunc.cli.options import COMMANDS, GLOBAL_OPTIONS, PROG, Invocation

_DESCRIPTION = """\
Open Container Initiative runtime

pyrunc is a command line client for running applications packaged
according to the Open Container Initiative (OCI) format and is a
compliant implementation of the Open Container Initiative specification.
It follows runc's command line, so that container managers can use
either.

\b
To start a new instance of a container:
    # pyrunc run [ -b bundle ] <container-id>
"""

_CONTEXT = {"help_option_names": ["-h", "--help"]}


class UnknownCommand(click.UsageError):
    """A command name that is not in the table; exits 3 like runc."""

    exit_code = 3


class BadFlagValue(click.BadParameter):
    """An option value that runc's flag package would refuse."""

    def __init__(self, value, reason, ctx=None, param=None):
        super().__init__(reason, ctx=ctx, param=param)
        self.value = value
        self.reason = reason


class GoValue(click.ParamType):
    """A click type that converts with the table's converter."""

    def __init__(self, opt):
        self.opt = opt
        self.name = opt.metavar

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            # The default, already converted.
            return value
        try:
            return self.opt.convert(value)
        except ValueError as err:
            raise BadFlagValue(value, str(err), ctx, param) from None


def _click_option(opt):
    if opt.flag:
        return click.Option([*opt.names, opt.dest], is_flag=True,
                            help=opt.help, hidden=opt.hidden)
    kind = click.STRING if opt.type is str else GoValue(opt)
    default = opt.default
    text = opt.help
    shown = default not in (None, "", 0, ())
    if opt.shown_default is not None:
        # click would print a converted default (5.0) as it is.
        text = f"{text}  [default: {opt.shown_default}]"
        shown = False
    return click.Option([*opt.names, opt.dest], type=kind,
                        default=default, help=text,
                        metavar=opt.metavar.upper(), multiple=opt.multiple,
                        show_default=shown, hidden=opt.hidden)


# Where TableCommand keeps a command's arguments as given.
_RAW_ARGS = "pyrunc.raw_args"


class TableCommand(click.Command):
    """A command that keeps its raw arguments for the callback.

    click records which option got a value, not the name it was given
    by; runc refuses one option given by two names (`-c A --cap B`).
    """

    table = None

    def parse_args(self, ctx, args):
        ctx.meta[_RAW_ARGS] = list(args)
        args = plain_flags(ctx, args, self.table.options,
                           self.table.rest is not None)
        return super().parse_args(ctx, args)


def plain_flags(ctx, args, table_options, options_end_early):
    """args with each boolean flag given a value, Go's way (--tty=false,
    -d=true), spelt for click: the bare name when true, nothing when
    false; and each option named Go's way (-root, --b) by the name click
    knows. Options end at "--" and, with options_end_early, at the
    first positional argument."""
    by_name = {name: opt for opt in table_options for name in opt.names}
    out = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--" or (options_end_early and not arg.startswith("-")):
            out += args[index - 1:]
            break
        name, sep, value = arg.partition("=")
        opt, name = find_option(by_name, name)
        if opt is None or not arg.startswith("-"):
            out.append(arg)
            continue
        arg = name + sep + value
        if opt.flag and sep:
            try:
                if go_bool(value):
                    out.append(name)
            except ValueError:
                from pyrunc.log import go_quote

                raise click.UsageError(
                    f"invalid boolean value {go_quote(value)} for "
                    f"-{name.lstrip('-')}: {PARSE_ERROR}", ctx) from None
            continue
        out.append(arg)
        if not opt.flag and not sep and index < len(args):
            # Its value, which may look like anything.
            out.append(args[index])
            index += 1
    return out


def _names_used(cmd, args):
    """The option names in args, which click parsed without error."""
    by_name = {name: opt for opt in cmd.options for name in opt.names}
    used = set()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            break
        if arg == "-" or not arg.startswith("-"):
            if cmd.rest is not None:
                break
            continue
        if arg.startswith("--"):
            name, sep, _ = arg.partition("=")
            opt = by_name.get(name)
            if opt is not None:
                used.add(name)
                if not opt.flag and not sep:
                    index += 1
            continue
        # A cluster of short options ("-td"); one that takes a value
        # takes the rest of the cluster ("-uroot") or the next argument.
        for at in range(1, len(arg)):
            opt = by_name.get("-" + arg[at])
            if opt is None:
                break
            used.add("-" + arg[at])
            if not opt.flag:
                if at + 1 == len(arg):
                    index += 1
                break
    return used


def _command(cmd):
    def callback(args, **params):
        ctx = click.get_current_context()
        # urfave/cli finds this while parsing, before runc counts args.
        used = _names_used(cmd, ctx.meta.get(_RAW_ARGS, ()))
        message = options.two_forms(cmd, used)
        if message is None:
            message = options.check_args(cmd, len(args))
        if message is not None:
            raise click.UsageError(message)
        params.update(options.bind_args(cmd, list(args)))
        return Invocation(cmd.name, dict(ctx.parent.params), params)

    params = [_click_option(opt) for opt in cmd.options]
    params.append(click.Argument(["args"], nargs=-1,
                                 metavar=cmd.usage or None))
    settings = dict(_CONTEXT)
    if cmd.rest is not None:
        # Options end at the first positional argument (runc's
        # SkipArgReorder): what follows the id belongs to another program.
        settings["allow_interspersed_args"] = False
    command = TableCommand(
        cmd.name, callback=callback, params=params, help=cmd.description
        or cmd.help, short_help=cmd.help, context_settings=settings,
        no_args_is_help=False)
    command.table = cmd
    return command


class LazyGroup(click.Group):
    """A group whose commands are built from the table on demand."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        cmd = COMMANDS.get(name)
        if cmd is None:
            return None
        return _command(cmd)

    def parse_args(self, ctx, args):
        # The global options end at the command's name.
        args = plain_flags(ctx, args, GLOBAL_OPTIONS, True)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name = args[0]
        if name in ("help", "h"):
            _show_help(ctx, args[1:])
        if self.get_command(ctx, name) is None:
            raise UnknownCommand(f"No help topic for '{name}'", ctx)
        return super().resolve_command(ctx, args)


def _show_help(ctx, topics):
    """runc's `help [COMMAND]`: print the help, exit 0."""
    if not topics:
        click.echo(ctx.get_help())
        ctx.exit(0)
    cmd = ctx.command.get_command(ctx, topics[0])
    if cmd is None:
        raise UnknownCommand(f"No help topic for '{topics[0]}'", ctx)
    sub = click.Context(cmd, info_name=topics[0], parent=ctx)
    click.echo(sub.get_help())
    ctx.exit(0)


def _print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from pyrunc.cli.main import version_text

    click.echo(version_text(), nl=False)
    ctx.exit(0)


def _group_callback(**params):
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        # Global options and no command: runc shows its help, status 0.
        click.echo(ctx.get_help())
        ctx.exit(0)
    return params


def build():
    """Return the click group of pyrunc's whole command line."""
    params = [_click_option(opt) for opt in GLOBAL_OPTIONS]
    params.append(click.Option(
        ["-v", "--version"], is_flag=True, expose_value=False,
        is_eager=True, callback=_print_version, help="print the version"))
    return LazyGroup(PROG, callback=_group_callback, params=params,
                     help=_DESCRIPTION, context_settings=_CONTEXT,
                     invoke_without_command=True, no_args_is_help=False)


def parse(argv):
    """Return the Invocation for argv, or the exit status to leave with.

    Help and version requests print and return 0; usage errors are
    reported here, runc's way, and return 1 (3 for an unknown command).
    """
    group = build()
    if not argv:
        click.echo(group.get_help(click.Context(group, info_name=PROG)))
        return 0
    try:
        result = group.main(args=list(argv), prog_name=PROG,
                            standalone_mode=False)
    except click.UsageError as err:
        _report_usage(err)
        return err.exit_code if isinstance(err, UnknownCommand) else 1
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        return 1
    # An int when click printed help: standalone_mode is off.
    return result


def _report_usage(err):
    from pyrunc import log

    ctx = err.ctx
    if ctx is not None:
        _setup_logging(ctx.find_root().params)
        if not isinstance(err, UnknownCommand):
            sys.stdout.write(f"Incorrect Usage: {_runc_wording(err)}\n\n")
            sys.stdout.write(ctx.get_help() + "\n")
            sys.stdout.flush()
    log.report_error(_runc_wording(err))


def _runc_wording(err):
    if isinstance(err, click.NoSuchOption):
        # Go's flag package names the option with a single dash.
        name = err.option_name.lstrip("-")
        return f"flag provided but not defined: -{name}"
    if isinstance(err, BadFlagValue):
        from pyrunc.log import go_quote

        # Go names the spelling typed; click keeps only the option, so
        # its first (long) name stands in.
        name = err.param.opts[0].lstrip("-")
        return (f"invalid value {go_quote(err.value)} for flag -{name}: "
                f"{err.reason}")
    return err.format_message()


def _setup_logging(params):
    """Honour --log and --log-format for the usage error, if they parsed."""
    from pyrunc import log
    from pyrunc.errors import PyruncError

    try:
        log.setup(params.get("log") or None,
                  params.get("log_format") or "text",
                  bool(params.get("debug")))
    except PyruncError:
        pass
