"""pyrunc ps [--format table|json] <container-id> [ps options]: processes.

json prints the host pids of the container's processes as a JSON list,
which is what containerd reads. table runs the host's ps(1) with the
given options (default -ef) and keeps its header and the rows whose PID
column is one of the container's pids, as runc does.
"""

from pyrunc.cli.output import write_out
from pyrunc.errors import PyruncError
from pyrunc.log import go_quote
from pyrunc.state.gojson import dumps

DEFAULT_PS_ARGS = ("-ef",)


def run(g, container_id, format="table", ps_args=()):
    """Print the container's processes in the chosen format."""
    from pyrunc.container.ps import pids as container_pids

    pids = container_pids(g.store(), container_id)
    if format == "json":
        # Go encodes an empty (nil) slice as null.
        write_out(dumps(list(pids) or None) + "\n")
        return
    if format != "table":
        raise PyruncError("invalid format option")
    output = run_ps(ps_args or DEFAULT_PS_ARGS)
    write_out(filter_table(output, set(pids)))


def run_ps(args):
    """Return what `ps ARGS` prints on stdout and stderr together."""
    import subprocess

    argv = ["ps", *args]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
    except OSError as err:
        raise PyruncError(f'exec: "ps": {err.strerror}') from None
    output = done.stdout.decode("utf-8", "surrogateescape")
    if done.returncode > 0:
        raise PyruncError(f"exit status {done.returncode}: {output}")
    if done.returncode < 0:
        raise PyruncError(f"signal: {_signal_name(-done.returncode)}: "
                          f"{output}")
    return output


def filter_table(output, pids):
    """Keep ps's header and the lines whose PID column is in pids.

    >>> filter_table("  PID CMD\\n    1 init\\n   42 sh\\n", {42})
    '  PID CMD\\n   42 sh\\n'
    """
    lines = output.split("\n")
    header = lines[0]
    titles = header.split()
    if "PID" not in titles:
        raise PyruncError("couldn't find PID field in ps output")
    column = titles.index("PID")
    kept = [header]
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        field = fields[column] if column < len(fields) else ""
        if not field.isascii() or not field.isdigit():
            raise PyruncError(f"unable to parse pid: strconv.Atoi: parsing "
                              f"{go_quote(field)}: invalid syntax")
        pid = int(field)
        if pid in pids:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept)


def _signal_name(number):
    """Go's wording for a signal ("killed"), from strsignal(3)."""
    import signal

    return (signal.strsignal(number) or f"signal {number}").lower()
