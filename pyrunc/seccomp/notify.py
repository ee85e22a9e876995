"""Hand a seccomp listener fd to the agent at linux.seccomp.listenerPath.

The runtime-spec's protocol: connect to the AF_UNIX SOCK_STREAM socket,
send one "container process state" JSON document with the seccomp fd
attached (SCM_RIGHTS; its name, "seccompFd", is in "fds"), close. The
agent then reads notifications from the fd and answers them with
SECCOMP_IOCTL_NOTIF_RECV / SECCOMP_IOCTL_NOTIF_SEND.
"""

import json

import pyrunc
from pyrunc import log as _log
from pyrunc.errors import ConfigError

log = _log.get_logger(__name__)

SECCOMP_FD_NAME = "seccompFd"

# How long an agent may take to accept the connection and the message.
TIMEOUT = 30.0


def process_state(pid, state, metadata=""):
    """The ContainerProcessState document, keys in runc's order."""
    doc = {"ociVersion": pyrunc.SPEC_VERSION, "fds": [SECCOMP_FD_NAME],
           "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    doc["state"] = state
    return doc


def send_state(listener_path, fd, pid, state, metadata="",
               where="linux.seccomp.listenerPath"):
    """Send the process state and fd to the agent; raise ConfigError.

    pid is the process the filter applies to, as the runtime sees it;
    state is the container's runtime-spec state ("creating" for create,
    "running" for exec).
    """
    import array
    import socket

    if fd < 0:
        raise ConfigError(f"{where}: the container process sent no "
                          "seccomp listener fd")
    data = json.dumps(process_state(pid, state, metadata),
                      separators=(",", ":")).encode()
    fds = array.array("i", [fd])
    sock = socket.socket(socket.AF_UNIX,
                         socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(listener_path)
        # The fd goes with the first bytes; the rest, if the socket took
        # only part, follows without it (runtime-spec allows both).
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET,
                                      socket.SCM_RIGHTS, fds)])
        if sent < len(data):
            sock.sendall(data[sent:])
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigError(f"{where}: send seccomp fd to {listener_path}: "
                          f"{reason}") from None
    finally:
        sock.close()
    log.debug("sent seccomp listener fd of pid %d to %s", pid,
              listener_path)


def forward(config, fd, pid, state):
    """At the SYNC_NOTIFY sync point: send the fd to the config's agent.

    config is the raw linux.seccomp object; returns the (empty) answer
    for the child.
    """
    path = config.get("listenerPath") or ""
    metadata = config.get("listenerMetadata") or ""
    send_state(path, fd, pid, state, metadata)
    return b""
