"""linux.seccomp: filters built by libseccomp, loaded by the executor.

The parent turns ``linux.seccomp`` into a classic BPF program with
libseccomp (``compile_filter``) and puts the bytes in the launch plan as
an ``OP_SECCOMP`` step ``(op, bpf, flags, notify_tag)``; the compiled
executor only calls seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog).

Where the step goes (process/plan.py, as runc does it):

- without ``process.noNewPrivileges`` loading a filter needs
  CAP_SYS_ADMIN, so it is loaded before the user switch and the
  capability drop;
- with it, as late as possible: after the exec fifo (and before the
  startContainer hooks, which run under the filter as with runc);
- with SCMP_ACT_NOTIFY it must be loaded before the child reports READY,
  because the parent still listens then: the child sends the listener
  fd with a SYNC message tagged ``SYNC_NOTIFY`` (SCM_RIGHTS), the parent
  sends it with the container process state to ``listenerPath``
  (``notify.send_state``) and answers; only then does the child go on.
  runc loads it after its READY message but before it closes its sync
  pipe, which our protocol does at READY.

Importing this package costs nothing: libseccomp is loaded on the first
``compile_filter`` call, so configs without linux.seccomp never load it.
"""

from pyrunc.seccomp.filter import (  # noqa: F401
    Filter,
    FLAG_LOG,
    FLAG_NEW_LISTENER,
    FLAG_SPEC_ALLOW,
    FLAG_TSYNC,
    FLAG_WAIT_KILLABLE_RECV,
    compile_filter,
)

# The sync tag of the message carrying the notify listener fd. Far from
# the plan's own small SYNC_* numbers so that the two never collide.
SYNC_NOTIFY = 0x5EC
