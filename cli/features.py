"""pyrunc features: print the features document as indented JSON."""

from pyrunc.cli.output import write_out
from pyrunc.spec.features import features
from pyrunc.state.gojson import dumps


def run(g):
    """Print the document with runc's four-space indent."""
    write_out(dumps(features(), indent=4) + "\n")
