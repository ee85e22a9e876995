"""pyrunc delete [--force] <container-id>: remove a container."""

from pyrunc.container.delete import delete


def run(g, container_id, force=False):
    """Delete the container; with force, kill it first if it runs."""
    delete(g.store(), container_id, force=force)
