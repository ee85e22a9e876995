"""pyrunc run <container-id>: create and start a container, then wait.

Exits with the container's status (unless detached), as runc does.
"""

import os

from pyrunc.cli.create import check_globals, create_kwargs


def run(g, container_id, bundle="", console_socket="", pid_file="",
        no_pivot=False, no_new_keyring=False, preserve_fds=0,
        detach=False, keep=False):
    """Run the container and return its exit status."""
    check_globals(g)
    from pyrunc.process import prewarm

    prewarm.start()
    try:
        from pyrunc.container.run import run as run_container

        kwargs = create_kwargs(bundle, console_socket, pid_file, no_pivot,
                               no_new_keyring, preserve_fds)
        return run_container(g.store(), container_id,
                             os.path.abspath(bundle or "."), detach=detach,
                             keep=keep, **kwargs)
    finally:
        prewarm.finish()
