"""A pre-parser for plain command lines that needs no click.

Importing click costs ~25 ms, more than a whole `pyrunc state`. Container
managers call the runtime with simple, well-formed argv, so this parser
accepts exactly those forms, reading the same table (cli/options.py) as
the click application:

    [--global value | --global=value | --flag[=bool]]... COMMAND
        ([--opt value | --opt=value | -o value | --flag[=bool] | -f[=bool]]
         | ARG)...

Options may be repeated (the last value wins, or, for a repeatable
option, all are kept). For a command with trailing arguments (`exec`,
`ps`) options end at the first positional argument: whatever follows
is taken verbatim, "--" and dashes included.

Everything else (help, --version, short option clusters, "--" before
the arguments, values that start with "-", unknown names, values that do
not convert, one option under two names, a wrong number of arguments)
returns None and goes to click, which owns the error messages. A test
runs both parsers over the same argv corpus and compares results.
"""

from pyrunc.cli.goflag import find_option, go_bool
from pyrunc.cli.options import COMMANDS, GLOBAL_OPTIONS, Invocation
from pyrunc.cli.options import bind_args, check_args, global_defaults
from pyrunc.cli.options import option_defaults, two_forms

_GLOBALS_BY_NAME = {name: opt for opt in GLOBAL_OPTIONS for name in opt.names}


def _by_name(cmd):
    return {name: opt for opt in cmd.options for name in opt.names}


def parse(argv):
    """Return the Invocation for argv, or None when click must decide."""
    values = global_defaults()
    index = _take_options(_GLOBALS_BY_NAME, argv, 0, values, set(), True)
    if index is None or index >= len(argv):
        return None
    cmd = COMMANDS.get(argv[index])
    if cmd is None:
        return None
    params = option_defaults(cmd)
    used = set()
    positional = []
    by_name = _by_name(cmd)
    index += 1
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("-"):
            if cmd.rest is not None:
                positional.extend(argv[index:])
                break
            positional.append(arg)
            index += 1
            continue
        index = _take_options(by_name, argv, index, params, used, False)
        if index is None:
            return None
    if two_forms(cmd, used) is not None:
        return None
    if check_args(cmd, len(positional)) is not None:
        return None
    params.update(bind_args(cmd, positional))
    return Invocation(cmd.name, values, params)


def _take_options(by_name, argv, index, values, used, stop):
    """Consume options from argv[index]; return the next index or None.

    The names taken are added to the set used. With stop, return at the
    first argument that is not an option (the command name); without,
    consume exactly one option.
    """
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("-"):
            return index
        name, sep, value = arg.partition("=")
        opt, name = find_option(by_name, name)
        if opt is None:
            return None
        # "-b=x" means the value "=x" to click; leave such oddities to
        # it. A flag is different: Go's flag package reads "-t=false"
        # and "--tty=false" alike, and so does runc.
        if sep and not name.startswith("--") and not opt.flag:
            return None
        used.add(name)
        if opt.flag:
            if sep:
                try:
                    values[opt.dest] = go_bool(value)
                except ValueError:
                    return None
            else:
                values[opt.dest] = True
            index += 1
        else:
            if not sep:
                if index + 1 >= len(argv):
                    return None
                value = argv[index + 1]
                if value.startswith("-"):
                    return None
                index += 1
            try:
                converted = opt.convert(value)
            except ValueError:
                return None
            if opt.multiple:
                values[opt.dest] += (converted,)
            else:
                values[opt.dest] = converted
            index += 1
        if not stop:
            return index
    return index

