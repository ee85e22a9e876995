"""pyrunc exec [options] <container-id> <command>...: run a process inside.

The process is the container's own (config.json's process) changed by
the flags, or, with --process, read whole from a file. Like runc, the
exit status is the process' own; any failure of exec itself exits 255
with an "exec failed: " line (cli/main.py maps both).

exec is on the hot path of container managers (health checks run it every
few seconds), so this module imports nothing it does not need.
"""

import os

from pyrunc import log as _log
from pyrunc.errors import NotSupported, PyruncError

log = _log.get_logger(__name__)


def run(g, **params):
    """Run the process; return its exit status (0 once started if -d)."""
    from pyrunc.process import prewarm

    # The cgroup attach's grace period runs while the rest is imported.
    prewarm.start()
    try:
        return _run(g, **params)
    finally:
        prewarm.finish()


def _run(g, container_id, command=(), console_socket="", cwd="", env=(),
         tty=False, user="", additional_gids=(), process="", detach=False,
         pid_file="", process_label="", apparmor="", no_new_privs=False,
         cap=(), preserve_fds=0, cgroup=(), ignore_paused=False):
    from pyrunc.container import exec as execution

    if cgroup:
        raise NotSupported("--cgroup (exec in a sub-cgroup) is not "
                           "supported")
    store = g.store()
    if process:
        if command:
            # runc ignores them too: the file holds the whole process.
            log.debug("ignoring the arguments after the container id: "
                      "--process `%s` gives the process", process)
        spec_process = execution.process_from_file(process)
    else:
        spec_process = _process_from_flags(
            execution, store.load(container_id), command, tty=tty,
            cwd=cwd, env=env, user=user, additional_gids=additional_gids,
            cap=cap, no_new_privs=no_new_privs, apparmor=apparmor,
            label=process_label)
    return execution.exec_process(
        store, container_id, spec_process, detach=detach,
        # runc resolves the pid file against the caller's directory.
        pid_file=os.path.abspath(pid_file) if pid_file else None,
        console_socket=console_socket or None, preserve_fds=preserve_fds,
        ignore_paused=ignore_paused)


def _process_from_flags(execution, record, command, *, tty, cwd, env, user,
                        additional_gids, cap, no_new_privs, apparmor,
                        label):
    """The container's process with the command and flags applied."""
    if not command:
        raise PyruncError("process args cannot be empty")
    for gid in additional_gids:
        if gid < 0:
            raise PyruncError(
                f"additional-gids must be a positive number {gid}")
    return execution.process_from_args(
        record, command, tty=tty, cwd=cwd or None, env=env,
        user=user or None, additional_gids=additional_gids, caps=cap,
        no_new_privs=no_new_privs, apparmor=apparmor or None,
        label=label or None)
