"""Exec and attach sessions: a process's stdio over SPDY streams.

Exec runs ``<runtime> exec`` with pipes, or with ``-t`` on a pty the
session owns: the runtime relays between that pty and the container's,
and copies the window size from its own stdin when it gets SIGWINCH, so
a resize sets the size on our side and signals the runtime. The exec'd
process is killed when the client goes away before it ends (containerd
does the same).

Attach connects to the attach socket conmon listens on for the
container (``<socket dir>/<cuuid>/attach``, SOCK_SEQPACKET): conmon
sends each chunk of output with one byte before it naming the pipe (2
stdout, 3 stderr) and writes whatever it receives to the container's
stdin. Closing our sending side tells conmon the input ended; for a
StdinOnce container (started without --leave-stdin-open) conmon then
closes the container's stdin. Resizes go to conmon's ``ctl`` fifo in
the bundle as ``1 <height> <width>``.

The session ends when the process (or the container) ends; the exit
status goes on the error stream: with ``v4.channel.k8s.io`` as a v1
Status (Success, or Failure with reason NonZeroExitCode and the code as
the ExitCode cause, as kubelet writes it), with older protocols as text,
nothing on success.
"""

import fcntl
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
import tty

from pyrunc.cri import containers as containers_mod
from pyrunc.cri import monitor
from pyrunc.cri.errors import FailedPrecondition, RuntimeFailed

log = logging.getLogger(__name__)

V4 = "v4.channel.k8s.io"
RESIZE_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io")
# How long output may still drain once the process ended.
DRAIN_WAIT = 10
READ_SIZE = 32 * 1024
# conmon reads its attach socket in packets of at most this size.
ATTACH_PACKET = 8192
ATTACH_STDOUT = 2
ATTACH_STDERR = 3
POLL = 0.2


def check_running(containers, cid):
    """Return the record of a running container, or raise."""
    rec = containers.get(cid)
    if containers.state(rec) != containers_mod.RUNNING:
        raise FailedPrecondition(f"container {rec['id']} is not running")
    return rec


# --- statuses

def status_success():
    return {"metadata": {}, "status": "Success"}


def status_exit(code, cmd):
    """The Status kubelet writes for a non-zero exit code."""
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error "
                   f"executing command {list(cmd)}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode",
                                "message": str(code)}]},
    }


def status_error(message):
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500}


def write_status(stream, protocol, status):
    """Put a Status on the error stream, as the protocol wants it."""
    if stream is None:
        return
    if protocol == V4:
        stream.write(json.dumps(status).encode())
    elif status["status"] != "Success":
        stream.write(status["message"].encode())
    stream.close()


# --- streams

def wanted_streams(req, protocol):
    """The stream types the client must open for this request."""
    want = {"error"}
    for name in ("stdin", "stdout", "stderr"):
        if getattr(req, name):
            want.add(name)
    if req.tty and protocol in RESIZE_PROTOCOLS:
        want.add("resize")
    return want


def wait_streams(conn, want, timeout=None):
    """Collect the client's streams by type; None if it did not open
    them all in time (or went away)."""
    from pyrunc.cri.streaming import STREAM_CREATION_TIMEOUT

    deadline = time.monotonic() + (timeout or STREAM_CREATION_TIMEOUT)
    streams = {}
    while not want <= set(streams):
        left = deadline - time.monotonic()
        stream = conn.accept(max(left, 0)) if left > 0 else None
        if stream is None:
            log.info("streaming: client opened %s of %s", sorted(streams),
                     sorted(want))
            for s in streams.values():
                s.cancel()
            return None
        kind = stream.headers.get("streamtype", "")
        if kind in streams or kind not in want | {"resize"}:
            log.debug("streaming: unexpected stream %r", stream)
            stream.cancel()
            continue
        streams[kind] = stream
    return streams


def _thread(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def pump_to_stream(fd, stream):
    """Copy fd to stream until EOF (EIO on a pty); then close both."""
    try:
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                break
            if not data or not stream.write(data):
                break
    finally:
        os.close(fd)
        stream.close()


def pump_from_stream(stream, fd):
    """Copy what the client sends to fd; close fd at its end."""
    try:
        while True:
            data = stream.read()
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    except OSError as err:
        log.debug("streaming: stdin: %s", err)
        stream.discard()
    finally:
        os.close(fd)


def read_resizes(stream, apply):
    """Call apply(width, height) for each size the client sends."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        data = stream.read()
        if not data:
            return
        buf += data.decode(errors="replace")
        while buf.strip():
            try:
                size, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                break
            buf = buf.lstrip()[end:]
            try:
                apply(int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (AttributeError, TypeError, ValueError, OSError) as err:
                log.debug("streaming: resize %r: %s", size, err)


def set_winsize(fd, width, height):
    fcntl.ioctl(fd, termios.TIOCSWINSZ,
                struct.pack("HHHH", height, width, 0, 0))


# --- exec

def run_exec(containers, conn, req, protocol):
    """Run req.cmd in the container with its stdio on the streams."""
    streams = wait_streams(conn, wanted_streams(req, protocol))
    if streams is None:
        return
    err_stream = streams["error"]
    try:
        rec = check_running(containers, req.container_id)
        code, message = _ExecProcess(containers, rec, req, streams,
                                     conn).run()
    except (FailedPrecondition, RuntimeFailed, OSError) as err:
        write_status(err_stream, protocol, status_error(str(err)))
        return
    finally:
        for name, stream in streams.items():
            if name != "error":
                stream.close()
    if message:
        status = status_error(message)
    elif code:
        status = status_exit(code, req.cmd)
    else:
        status = status_success()
    write_status(err_stream, protocol, status)


class _ExecProcess:
    """One ``<runtime> exec`` wired to the client's streams."""

    def __init__(self, containers, rec, req, streams, conn):
        self.rec = rec
        self.req = req
        self.streams = streams
        self.conn = conn
        self.runtime = containers.runtimes[rec["handler"]]
        self.workdir = containers.reg.container_dir(rec["id"])
        self.pidfile = os.path.join(
            self.workdir, f"exec-{os.getpid()}-{time.monotonic_ns()}.pid")
        self.errors = bytearray()

    def argv(self):
        args = ["exec", "--pid-file", self.pidfile]
        if self.req.tty:
            args += ["--tty", "--env", "TERM=xterm"]
        return self.runtime.argv(*args, self.rec["id"], *self.req.cmd)

    def run(self):
        """Run to the end; return (exit code, runtime error or "")."""
        try:
            if self.req.tty:
                proc, threads = self._start_tty()
            else:
                proc, threads = self._start_pipes()
            self._wait(proc)
            deadline = time.monotonic() + DRAIN_WAIT
            for t in threads:
                t.join(max(0, deadline - time.monotonic()))
        finally:
            monitor._unlink(self.pidfile)
        code = proc.returncode
        if code == 255 and b"exec failed" in self.errors:
            text = self.errors.decode(errors="replace")
            return code, f"exec in {self.rec['id']}: " \
                f"{monitor._runtime_message(text)}"
        return code, ""

    def _start_pipes(self):
        s = self.streams
        log.debug("running `%s`", " ".join(self.argv()))
        proc = subprocess.Popen(
            self.argv(), stdin=subprocess.PIPE if "stdin" in s
            else subprocess.DEVNULL, stdout=subprocess.PIPE
            if "stdout" in s else subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        threads = []
        if "stdin" in s:
            fd = os.dup(proc.stdin.fileno())
            proc.stdin.close()
            _thread(pump_from_stream, s["stdin"], fd)
        if "stdout" in s:
            fd = os.dup(proc.stdout.fileno())
            proc.stdout.close()
            threads.append(_thread(pump_to_stream, fd, s["stdout"]))
        fd = os.dup(proc.stderr.fileno())
        proc.stderr.close()
        threads.append(_thread(self._pump_stderr, fd, s.get("stderr")))
        return proc, threads

    def _pump_stderr(self, fd, stream):
        """Forward stderr (when asked), keeping its tail for errors."""
        try:
            while True:
                data = os.read(fd, READ_SIZE)
                if not data:
                    break
                self.errors = (self.errors + data)[-4096:]
                if stream is not None:
                    stream.write(data)
        finally:
            os.close(fd)
            if stream is not None:
                stream.close()

    def _start_tty(self):
        s = self.streams
        master, slave = os.openpty()
        # Raw before the runtime starts, so nothing is echoed or
        # translated twice: the container's own pty does that.
        tty.setraw(slave)
        log.debug("running `%s`", " ".join(self.argv()))
        try:
            proc = subprocess.Popen(self.argv(), stdin=slave, stdout=slave,
                                    stderr=slave, start_new_session=True)
        finally:
            os.close(slave)
        threads = []
        if "stdin" in s:
            # A copy of its own: the thread may outlive the session.
            _thread(pump_from_stream, s["stdin"], os.dup(master))
        if "resize" in s:
            _thread(read_resizes, s["resize"],
                    lambda w, h: self._resize(proc, master, w, h))
        out = s.get("stdout")
        if out is not None:
            threads.append(_thread(pump_to_stream, master, out))
        else:
            threads.append(_thread(_discard, master))
        return proc, threads

    def _resize(self, proc, master, width, height):
        set_winsize(master, width, height)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGWINCH)

    def _wait(self, proc):
        """Wait for the runtime; kill the process if the client left."""
        while True:
            try:
                proc.wait(POLL)
                return
            except subprocess.TimeoutExpired:
                pass
            if self.conn.closed:
                log.info("streaming: client of exec in %s went away: "
                         "killing the process", self.rec["id"])
                self._kill(proc)
                proc.wait()
                return

    def _kill(self, proc):
        pid = monitor._read_pid(self.pidfile)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                return
            except ProcessLookupError:
                pass
        proc.kill()


def _discard(fd):
    try:
        while os.read(fd, READ_SIZE):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


# --- attach

def run_attach(containers, conn, req, protocol):
    """Attach the streams to the container's stdio through conmon."""
    streams = wait_streams(conn, wanted_streams(req, protocol))
    if streams is None:
        return
    err_stream = streams["error"]
    try:
        rec = check_running(containers, req.container_id)
        _attach(containers, rec, streams, conn)
    except (FailedPrecondition, OSError) as err:
        write_status(err_stream, protocol, status_error(
            f"attach to {req.container_id}: {err}"))
        return
    finally:
        for name, stream in streams.items():
            if name != "error":
                stream.close()
    write_status(err_stream, protocol, status_success())


def attach_socket_path(containers, rec):
    return os.path.join(containers.reg.socket_dir,
                        monitor.cuuid(rec["id"]), "attach")


def _attach(containers, rec, streams, conn):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(attach_socket_path(containers, rec))
        if "stdin" in streams:
            _thread(_attach_stdin, streams["stdin"], sock)
        if "resize" in streams:
            ctl = os.path.join(containers.reg.container_dir(rec["id"]),
                               "bundle", "ctl")
            _thread(read_resizes, streams["resize"],
                    lambda w, h: _resize_conmon(ctl, w, h))
        reader = _thread(_attach_output, sock, streams)
        while reader.is_alive():
            reader.join(POLL)
            if conn.closed:
                break
    finally:
        sock.close()


def _attach_stdin(stream, sock):
    try:
        while True:
            data = stream.read()
            if not data:
                break
            for i in range(0, len(data), ATTACH_PACKET):
                sock.sendall(data[i:i + ATTACH_PACKET])
        sock.shutdown(socket.SHUT_WR)
    except OSError as err:
        log.debug("streaming: attach stdin: %s", err)
        stream.discard()


def _attach_output(sock, streams):
    targets = {ATTACH_STDOUT: streams.get("stdout"),
               ATTACH_STDERR: streams.get("stderr")}
    while True:
        try:
            packet = sock.recv(ATTACH_PACKET + 1)
        except OSError:
            return
        if not packet:
            return
        stream = targets.get(packet[0])
        if stream is not None:
            stream.write(packet[1:])


def _resize_conmon(ctl, width, height):
    fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    finally:
        os.close(fd)
