"""pyrunc resume <container-id>: thaw a paused container."""


def run(g, container_id):
    """Resume the container; it must be paused."""
    from pyrunc.container.pause import resume

    resume(g.store(), container_id)
