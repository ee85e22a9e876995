"""pyrunc pause <container-id>: freeze every process of the container."""


def run(g, container_id):
    """Pause the container; it must be running."""
    from pyrunc.container.pause import pause

    pause(g.store(), container_id)
