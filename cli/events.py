"""pyrunc events [--stats] [--interval 5s] <container-id>: stream events.

Prints one JSON object per line: OOM notifications and, every interval,
the container's stats; with --stats, the stats once. Lines are flushed
one by one, since a container manager reads them as they come.
"""

import gc
import os

from pyrunc.cli.output import write_out


def run(g, container_id, interval=5.0, stats=False):
    """Stream the events until the container stops (or once, --stats)."""
    from pyrunc.container.events import events

    # The launcher turns the cyclic collector off for the milliseconds a
    # command lives; this one may stream for days.
    gc.enable()
    try:
        events(g.store(), container_id, stats=stats, interval=interval,
               write=write_line)
    except BrokenPipeError:
        # The reader went away: nothing is left to report to.
        _silence_stdout()
    return 0


def write_line(line):
    """Write one event (a JSON text) on its own line, at once."""
    if not line.endswith("\n"):
        line += "\n"
    write_out(line)


def _silence_stdout():
    """Point stdout at /dev/null so the exit-time flush cannot fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
