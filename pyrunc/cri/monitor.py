"""Run containers under conmon, and talk to the runtime's command line.

The server never forks into namespaces itself. ``create`` starts conmon,
which daemonizes, becomes a subreaper, runs ``<runtime> create`` with
pipes for the container's stdio, writes what the container prints in
the CRI log format, and on exit writes the exit status to
``<exit dir>/<container id>``. conmon reports the container's pid (or
the runtime's error) on a sync pipe passed in ``_OCI_SYNCPIPE``; with
``--api-version 1`` the message is ``{"data": <pid or -1>, "message":
...}``. conmon outlives the server, so a restarted server finds its
containers as they were.

The other operations (start, kill, delete, state, exec, update) run the
runtime binary directly and wait for it.
"""

import json
import logging
import os
import select
import signal
import subprocess
import time

from pyrunc.cri.errors import DeadlineExceeded, RuntimeFailed

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 120
COMMAND_TIMEOUT = 120
REOPEN_LOGS = "2 0 0\n"
# How long ReopenContainerLog waits for conmon to create the new file.
REOPEN_WAIT = 2
# How long a timed-out exec gets to write its pid file, and its runtime
# to exit once the process was killed.
EXEC_GRACE = 5


# conmon links <socket dir>/<cuuid> to the bundle and binds the attach
# socket below it; a socket path has at most 107 bytes, so the link name
# is a prefix of the id.
CUUID_LEN = 20


def cuuid(cid):
    """Return the --cuuid conmon gets for a container id."""
    return cid[:CUUID_LEN]


class Runtime:
    """One runtime handler: its binary and --root, plus conmon's path.

        >>> rt = Runtime(handler, "/usr/bin/conmon")
        >>> pid = rt.create(cid, bundle, workdir, log_path, exit_dir,
        ...                 socket_dir)
        >>> rt.start(cid)
    """

    def __init__(self, handler, conmon):
        self.name = handler.name
        self.path = handler.path
        self.root = handler.root
        self.conmon = conmon
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def _global_args(self):
        return [f"--root={self.root}", "--log-format=json"]

    def argv(self, *args):
        """Return the command line running the runtime with args."""
        return [self.path, *self._global_args(), *args]

    # --- create through conmon

    def create(self, cid, bundle, workdir, log_path, exit_dir, socket_dir,
               name="", stdin=False, tty=False, stdin_once=False):
        """Create the container under a new conmon; return its pid.

        workdir receives conmon's pid file, the container's pid file and
        conmon's own messages. Raises RuntimeFailed with the runtime's
        error when create fails.
        """
        pidfile = os.path.join(workdir, "pidfile")
        argv = [
            self.conmon, "--api-version", "1",
            "--bundle", bundle, "--cid", cid, "--cuuid", cuuid(cid),
            "--name", name or cid, "--runtime", self.path,
            "--container-pidfile", pidfile,
            "--conmon-pidfile", os.path.join(workdir, "conmon.pid"),
            "--log-path", log_path, "--exit-dir", exit_dir,
            "--socket-dir-path", socket_dir, "--log-level", "info",
        ]
        for arg in self._global_args():
            argv += ["--runtime-arg", arg]
        if stdin:
            argv.append("--stdin")
            # Without it, conmon closes the container's stdin when the
            # first attached client ends its input (StdinOnce).
            if not stdin_once:
                argv.append("--leave-stdin-open")
        if tty:
            argv.append("--terminal")
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        env = dict(os.environ, _OCI_SYNCPIPE=str(wfd))
        errlog = os.path.join(workdir, "conmon.log")
        log.debug("running `%s`", " ".join(argv))
        try:
            with open(errlog, "ab") as err:
                proc = subprocess.Popen(
                    argv, env=env, pass_fds=(wfd,), stdin=subprocess.DEVNULL,
                    stdout=err, stderr=err, cwd="/")
            os.close(wfd)
            wfd = -1
            # The first conmon exits at once: the daemon is its child.
            proc.wait(timeout=SYNC_TIMEOUT)
            reply = _read_sync(rfd, SYNC_TIMEOUT)
        finally:
            if wfd >= 0:
                os.close(wfd)
            os.close(rfd)
        if reply is None:
            raise RuntimeFailed(
                f"conmon for {cid} exited without reporting: "
                f"{_tail(errlog)}")
        pid = reply.get("data", -1)
        if pid <= 0:
            message = _runtime_message(reply.get("message", ""))
            raise RuntimeFailed(f"create container {cid}: {message}")
        return pid

    # --- plain runtime commands

    def run(self, *args, input=None, timeout=COMMAND_TIMEOUT, check=True):
        """Run the runtime with args; return the CompletedProcess.

        Raises RuntimeFailed (with the runtime's own error message) when
        it exits non-zero and check is true.
        """
        argv = self.argv(*args)
        log.debug("running `%s`", " ".join(argv))
        try:
            res = subprocess.run(
                argv, input=input, capture_output=True, timeout=timeout,
                stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeadlineExceeded(
                f"{self.name} {args[0]} timed out after {timeout}s") from None
        if check and res.returncode != 0:
            message = _runtime_message(res.stderr.decode(errors="replace"))
            raise RuntimeFailed(f"{self.name} {args[0]}: {message}")
        return res

    def start(self, cid):
        """Start a created container (the runtime's ``start``)."""
        self.run("start", cid)

    def kill(self, cid, sig, all_processes=False):
        """Send sig to the container; a stopped one is not an error."""
        args = ["kill"]
        if all_processes:
            args.append("--all")
        res = self.run(*args, cid, str(int(sig)), check=False)
        if res.returncode != 0:
            log.debug("%s kill %s: %s", self.name, cid, _runtime_message(
                res.stderr.decode(errors="replace")))
        return res.returncode == 0

    def delete(self, cid, force=True):
        """Delete the container; one the runtime does not know is fine."""
        args = ["delete"] + (["--force"] if force else []) + [cid]
        res = self.run(*args, check=False)
        if res.returncode == 0:
            return
        if self.state(cid) is None:
            return
        message = _runtime_message(res.stderr.decode(errors="replace"))
        raise RuntimeFailed(f"{self.name} delete {cid}: {message}")

    def state(self, cid):
        """Return the runtime's state JSON of cid, or None if unknown."""
        res = self.run("state", cid, check=False)
        if res.returncode != 0:
            return None
        try:
            return json.loads(res.stdout)
        except ValueError:
            return None

    def update(self, cid, resources):
        """Apply an OCI LinuxResources dict (``update --resources -``)."""
        data = json.dumps(resources).encode()
        self.run("update", "--resources", "-", cid, input=data)

    def exec_sync(self, cid, cmd, timeout=0, workdir="/tmp"):
        """Run cmd in the container; return (exit code, stdout, stderr).

        timeout (seconds, 0 for none) kills the process and raises
        DeadlineExceeded, as the CRI asks of ExecSync.
        """
        pidfile = os.path.join(
            workdir, f"exec-{os.getpid()}-{time.monotonic_ns()}.pid")
        argv = self.argv("exec", "--pid-file", pidfile, cid, *cmd)
        log.debug("running `%s`", " ".join(argv))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            _stop_exec(proc, pidfile)
            raise DeadlineExceeded(
                f"command {list(cmd)!r} timed out after {timeout}s") \
                from None
        finally:
            _unlink(pidfile)
        if proc.returncode == 255 and b"exec failed" in err:
            message = _runtime_message(err.decode(errors="replace"))
            raise RuntimeFailed(f"exec in {cid}: {message}")
        return proc.returncode, out, err


def reopen_log(bundle, log_path, timeout=REOPEN_WAIT):
    """Ask the container's conmon to reopen its log file (ctl fifo).

    conmon reads the fifo in its own loop; wait (up to timeout) for the
    new file to appear at log_path, as the caller renamed the old one
    away and expects a file there when the call returns (containerd
    waits the same way).
    """
    path = os.path.join(bundle, "ctl")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise RuntimeFailed(
            f"reopen log: conmon control fifo {path}: {err.strerror}") \
            from None
    try:
        os.write(fd, REOPEN_LOGS.encode())
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while log_path and not os.path.exists(log_path):
        if time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"reopen log: conmon did not create {log_path} within "
                f"{timeout}s")
        time.sleep(0.01)


def _read_sync(fd, timeout):
    """Read conmon's JSON line from the sync pipe; None on EOF."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("conmon did not report in time")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    if not buf.strip():
        return None
    try:
        return json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        return {"data": -1, "message": buf.decode(errors="replace")}


def _runtime_message(text):
    """Pick the error out of the runtime's JSON (or logrus) log lines."""
    text = text.strip()
    messages = []
    for line in text.splitlines():
        line = line.strip()
        try:
            entry = json.loads(line)
        except ValueError:
            if line:
                messages.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in (
                "error", "fatal"):
            messages.append(str(entry.get("msg", "")))
    return messages[-1] if messages else (text or "no error message")


def _tail(path, size=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _stop_exec(proc, pidfile):
    """Kill a timed-out exec'd process, then let its runtime exit.

    The exec'd process is killed, not the runtime waiting for it: the
    runtime reaps it. Killing the runtime instead would orphan the
    process to whichever subreaper is above us, and in a container with
    its own PID namespace an unreaped zombie keeps the container's init
    from ever finishing its exit.
    """
    deadline = time.monotonic() + EXEC_GRACE
    while time.monotonic() < deadline:
        pid = _read_pid(pidfile)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    try:
        proc.communicate(timeout=EXEC_GRACE)
    except subprocess.TimeoutExpired:
        log.warning("runtime exec did not exit after its process was "
                    "killed: killing it")
        proc.kill()
        proc.communicate()


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
