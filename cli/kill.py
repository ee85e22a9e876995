"""pyrunc kill [--all] <container-id> [signal]: signal a container."""

from pyrunc.container.kill import kill


def run(g, container_id, signal="SIGTERM", all=False):
    """Send the signal (default SIGTERM) to the init, or to all."""
    # runc reads an empty signal argument as no argument.
    kill(g.store(), container_id, signal or "SIGTERM", all=all)
