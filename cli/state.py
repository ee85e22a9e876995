"""pyrunc state <container-id>: print the state as runc's indented JSON."""

from pyrunc.cli.output import write_out
from pyrunc.container.state import state
from pyrunc.state.gojson import dumps


def run(g, container_id):
    """Print the state; like runc, without a trailing newline."""
    write_out(dumps(state(g.store(), container_id), indent=2))
