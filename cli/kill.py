"""pyrunc kill [--all] <container-id> [signal]: signal a container."""

from pyrunc.container.kill import kill


def run(g, container_id, signal="SIGTERM", all=False):
    """Send the signal (default SIGTERM) to the init, or to all."""
    kill(g.store(), container_id, signal, all=all)
