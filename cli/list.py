"""pyrunc list [-q] [--format table|json]: every container of the root."""

from pyrunc.cli.output import write_out
from pyrunc.container.list import format_table, list_containers
from pyrunc.errors import PyruncError
from pyrunc.state.gojson import dumps


def run(g, format="table", quiet=False):
    """Print ids, runc's table, or runc's JSON array (null when empty)."""
    items = list_containers(g.store())
    if quiet:
        write_out("".join(f"{item['id']}\n" for item in items))
        return
    if format == "table":
        write_out(format_table(items))
    elif format == "json":
        write_out(dumps(items or None) + "\n")
    else:
        raise PyruncError("invalid format option")
