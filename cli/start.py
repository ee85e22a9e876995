"""pyrunc start <container-id>: run the user process of a created
container."""

from pyrunc.container.start import start


def run(g, container_id):
    """Start the container."""
    start(g.store(), container_id)
