"""Port forwarding into a pod's network namespace.

With ``portforward.k8s.io`` the client opens two streams per forwarded
connection, both with the headers ``port`` and ``requestID``: ``error``
(the client only reads it) and ``data``. Once both are there, the
server connects to ``localhost:<port>`` in the pod's network namespace
and relays between the socket and the data stream. A failure is
written to the error stream as text; the error stream is closed when
the connection ends, which is what the client waits for.

The server is multi-threaded, so it never enters a namespace itself
(setns applies to one thread, and a thread left in the pod's namespace
would be reused for anything). A short-lived helper process, this
module run as a program, enters the namespace of the pod's pause
process, connects, and hands the connected socket back over a unix
socket (SCM_RIGHTS); the socket stays in the pod's namespace, and the
relaying happens here.
"""

import ctypes
import logging
import os
import socket
import subprocess
import sys
import threading

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
DIAL_TIMEOUT = 10
READ_SIZE = 32 * 1024


class DialError(Exception):
    """Connecting to the port in the pod failed."""


def dial(netns, port, timeout=DIAL_TIMEOUT):
    """Return a socket connected to localhost:port inside netns."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    argv = [sys.executable, "-m", "pyrunc.cri.portforward", netns,
            str(port), str(theirs.fileno())]
    try:
        proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        theirs.close()
        ours.settimeout(timeout)
        try:
            msg, fds, _, _ = socket.recv_fds(ours, 4096, 1)
        except (TimeoutError, OSError) as err:
            proc.kill()
            msg, fds = f"no answer from the helper: {err}".encode(), []
        _, err = proc.communicate(timeout=timeout)
    finally:
        theirs.close()
        ours.close()
    if fds:
        return socket.socket(fileno=fds[0])
    text = msg.decode(errors="replace") or err.decode(errors="replace")
    raise DialError(text.strip() or f"helper exited {proc.returncode}")


def run(conn, pod, req):
    """Serve a port-forward connection until the client hangs up."""
    netns = f"/proc/{pod['pid']}/ns/net"
    allowed = set(req.port)
    pairs = {}
    threads = []
    while True:
        stream = conn.accept()
        if stream is None:
            break
        request_id = stream.headers.get("requestid", "")
        kind = stream.headers.get("streamtype", "")
        if kind not in ("error", "data"):
            log.debug("portforward: unexpected stream %r", stream)
            stream.cancel()
            continue
        pair = pairs.setdefault(request_id, {})
        if kind in pair:
            stream.cancel()
            continue
        pair[kind] = stream
        if len(pair) == 2:
            del pairs[request_id]
            threads.append(_start(_forward, pod, netns, allowed, pair))
    for t in threads:
        t.join(1)


def _start(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def _forward(pod, netns, allowed, pair):
    data, errors = pair["data"], pair["error"]
    port_text = data.headers.get("port", "")
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        errors.write(f"invalid port header {port_text!r}".encode())
        errors.close()
        data.close()
        return
    try:
        if allowed and port not in allowed:
            raise DialError(f"port {port} was not asked for")
        sock = dial(netns, port)
    except (DialError, OSError, subprocess.SubprocessError) as err:
        message = f"error forwarding port {port} to pod {pod['id']}: {err}"
        log.info("portforward: %s", message)
        errors.write(message.encode())
        errors.close()
        data.close()
        return
    try:
        relay(sock, data)
    finally:
        sock.close()
        errors.close()
        data.close()


def relay(sock, stream):
    """Copy both ways until both directions ended."""
    upstream = _start(_to_socket, stream, sock)
    try:
        while True:
            chunk = sock.recv(READ_SIZE)
            if not chunk or not stream.write(chunk):
                break
    except OSError as err:
        log.debug("portforward: recv: %s", err)
    stream.close()
    upstream.join()


def _to_socket(stream, sock):
    try:
        while True:
            chunk = stream.read()
            if not chunk:
                break
            sock.sendall(chunk)
        # A reset stream (or a client gone) also ends the other way.
        sock.shutdown(socket.SHUT_RDWR if stream.reset else socket.SHUT_WR)
    except OSError as err:
        log.debug("portforward: send: %s", err)
        stream.discard()


# --- the helper process

def _helper(netns, port, fd):
    chan = socket.socket(fileno=fd)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ns_fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        if libc.setns(ns_fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {netns}: {os.strerror(errno)}")
        os.close(ns_fd)
        sock = _connect(port)
    except OSError as err:
        chan.send((err.strerror or str(err)).encode())
        return 1
    socket.send_fds(chan, [b"ok"], [sock.fileno()])
    return 0


def _connect(port):
    """Connect to localhost: IPv4 first, then IPv6."""
    last = None
    for family, address in ((socket.AF_INET, "127.0.0.1"),
                            (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(DIAL_TIMEOUT)
        try:
            sock.connect((address, port))
            sock.settimeout(None)
            return sock
        except OSError as err:
            sock.close()
            last = err
    raise OSError(last.errno, f"dial tcp localhost:{port}: "
                              f"{last.strerror}")


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
