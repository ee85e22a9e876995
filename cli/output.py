"""Writing command output to stdout."""

import sys


def write_out(text):
    """Write text to stdout as UTF-8, whatever the locale says."""
    out = sys.stdout
    out.flush()
    out.buffer.write(text.encode("utf-8", "surrogateescape"))
    out.buffer.flush()
