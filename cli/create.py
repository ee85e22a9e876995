"""pyrunc create <container-id>: set a container up, stopped before exec.

The work is pyrunc.container.create's; this module maps runc's flags to
its arguments and refuses what pyrunc does not support.
"""

import os

from pyrunc.errors import ConfigError, NotSupported


def check_globals(g):
    """Refuse global options that pyrunc cannot honour when creating."""
    if g.systemd_cgroup:
        raise NotSupported("systemd cgroup driver is not supported")
    if g.rootless.lower() not in _ROOTLESS_VALUES:
        raise ConfigError(
            f'invalid --rootless value "{g.rootless}": want true, false or '
            f"auto")


# strconv.ParseBool's spellings, which runc accepts, plus "auto".
_ROOTLESS_VALUES = frozenset(
    ("auto", "1", "t", "true", "0", "f", "false"))


def create_kwargs(bundle, console_socket, pid_file, no_pivot,
                  no_new_keyring, preserve_fds):
    """Return the keyword arguments shared by create and run."""
    return {
        # runc resolves both before it changes into the bundle.
        "pid_file": os.path.abspath(pid_file) if pid_file else None,
        "console_socket": console_socket or None,
        "no_pivot": no_pivot,
        "no_new_keyring": no_new_keyring,
        "preserve_fds": preserve_fds,
    }


def run(g, container_id, bundle="", console_socket="", pid_file="",
        no_pivot=False, no_new_keyring=False, preserve_fds=0):
    """Create the container; the exit status is 0 once it is created."""
    check_globals(g)
    from pyrunc.process import prewarm

    # The cgroup attach's grace period runs while the rest is imported.
    prewarm.start()
    try:
        from pyrunc.container.create import create

        kwargs = create_kwargs(bundle, console_socket, pid_file, no_pivot,
                               no_new_keyring, preserve_fds)
        create(g.store(), container_id, os.path.abspath(bundle or "."),
               **kwargs)
    finally:
        prewarm.finish()
