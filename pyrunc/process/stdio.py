"""The stdio pipes of a foreground `run` or `exec`, and their relay.

A process started in the foreground without a terminal gets three pipes
as its stdin, stdout and stderr, and the runtime copies between them and
its own until the process has exited, as runc does. Handed the caller's
own descriptors instead, the container could reopen them through
/proc/self/fd/N with its own credentials: write or chmod a file the
caller only redirected from, read the log its output goes to.

Detached processes (`create`, `run -d`, `exec -d`) still get the
caller's stdio as they are: the caller prepared it for them.
"""

import fcntl
import os
import select

_CHUNK = 65536
_IN = select.POLLIN
_OUT = select.POLLOUT
# A pipe whose other end is gone polls as POLLHUP, a bad fd as POLLNVAL.
_DONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class Pipes:
    """Three pipes: child holds the process's ends (stdin's read end,
    stdout's and stderr's write ends), in that order."""

    __slots__ = ("child", "stdin", "outputs")

    def __init__(self):
        self.child = ()
        self.stdin = -1
        # {read end: the runtime's fd it is copied to}
        self.outputs = {}
        child = []
        try:
            read_fd, self.stdin = _pipe()
            child.append(read_fd)
            for target in (1, 2):
                read_fd, write_fd = _pipe()
                self.outputs[read_fd] = target
                child.append(write_fd)
        except BaseException:
            self.child = tuple(child)
            self.close()
            raise
        self.child = tuple(child)

    def give_to(self, uid, gid):
        """Make the process's ends owned by uid:gid, the host ids of the
        container's root, so that it can reopen /dev/stdout and the
        like in a user namespace (a pipe is its creator's, mode 0600)."""
        for fd in self.child:
            os.fchown(fd, uid, gid)

    def close_child(self):
        """Close the process's ends here, once the process holds them."""
        for fd in self.child:
            os.close(fd)
        self.child = ()

    def close(self):
        self.close_child()
        if self.stdin >= 0:
            os.close(self.stdin)
            self.stdin = -1
        for fd in self.outputs:
            os.close(fd)
        self.outputs = {}

    def relay(self, exited_fd, on_exit):
        """Copy stdin in and the output out until exited_fd (a pidfd of
        the process) polls readable; return on_exit()'s value then.

        Output left in the pipes is for drain(), which the caller runs
        once it has killed what else might hold them.
        """
        poller = select.poll()
        for fd in self.outputs:
            poller.register(fd, _IN)
        poller.register(exited_fd, _IN)
        pending = b""
        reading_stdin = self.stdin >= 0
        if reading_stdin:
            os.set_blocking(self.stdin, False)
            poller.register(0, _IN)
        while True:
            for fd, events in poller.poll():
                if fd == exited_fd:
                    if reading_stdin:
                        poller.unregister(0)
                    self._close_stdin()
                    return on_exit()
                if fd in self.outputs:
                    if not self._copy_out(fd, events):
                        poller.unregister(fd)
                elif fd == 0:
                    pending = _read(0, events)
                    poller.unregister(0)
                    reading_stdin = False
                    if pending:
                        poller.register(self.stdin, _OUT)
                    else:
                        self._close_stdin()
                elif fd == self.stdin:
                    pending = self._copy_in(pending, events)
                    if not pending:
                        poller.unregister(fd)
                        if self.stdin >= 0:
                            poller.register(0, _IN)
                            reading_stdin = True

    def drain(self):
        """Copy what is left of the output, up to the end of each pipe.

        Both at once: a process left behind that holds stdout open while
        it fills stderr would otherwise wait on us as we wait on it.
        """
        poller = select.poll()
        for fd in self.outputs:
            poller.register(fd, _IN)
        while self.outputs:
            for fd, events in poller.poll():
                if fd in self.outputs and not self._copy_out(fd, events):
                    poller.unregister(fd)

    def _copy_out(self, fd, events):
        """Copy one read's worth from fd; False (and fd closed) at its
        end, or when the runtime's own fd no longer takes output."""
        data = _read(fd, events)
        if data:
            try:
                _write_all(self.outputs[fd], data)
                return True
            except OSError:
                # As runc's copy: give up, and the process's next write
                # gets EPIPE.
                pass
        os.close(fd)
        del self.outputs[fd]
        return False

    def _copy_in(self, pending, events):
        """Write what it takes of pending to the process's stdin; what
        is left, empty once stdin is closed."""
        try:
            written = os.write(self.stdin, pending)
        except BlockingIOError:
            return pending
        except OSError:
            # The process closed its stdin: the rest has no reader.
            self._close_stdin()
            return b""
        return pending[written:]

    def _close_stdin(self):
        if self.stdin >= 0:
            os.close(self.stdin)
            self.stdin = -1


def _pipe():
    """A pipe with both ends above 2: the child dup3()s its ends onto
    0-2, and one of them already there would be overwritten first."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    return _above_stdio(read_fd), _above_stdio(write_fd)


def _above_stdio(fd):
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def _read(fd, events):
    """A read from fd, which poll() reported; b"" at its end."""
    if events & _IN:
        try:
            return os.read(fd, _CHUNK)
        except OSError:
            return b""
    if events & _DONE:
        return b""
    return os.read(fd, _CHUNK)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # The caller left its own stdout non-blocking.
            select.select([], [fd], [])
            continue
        view = view[written:]


def host_root(mappings):
    """The host id of the container's root in (container id, host id,
    size) mappings, or None if root is not mapped."""
    for inside, outside, size in mappings:
        if inside <= 0 < inside + size:
            return outside - inside
    return None
