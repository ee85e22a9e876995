"""The pty of a foreground `run` whose process asked for a terminal.

runc, run in the foreground with process.terminal set and no console
socket, receives the pty master itself and relays between it and its own
stdio until the container's process exits. This module does the same.
"""

from pyrunc import log as _log
import os
import select
import signal

log = _log.get_logger(__name__)


def receive_master(fd):
    """Take the pty master the container's process sent over fd."""
    import socket

    sock = socket.socket(fileno=fd)
    try:
        _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    finally:
        sock.close()
    if not fds:
        raise OSError("no pty master received from the container")
    return fds[0]


def host_console():
    """The terminal to put in raw mode and take the window size from.

    As runc: the first of stderr, stdout and stdin that is a terminal,
    else the controlling terminal (/dev/tty); without one, the same
    error as runc's, before any process is started. Returns (fd, owned):
    an owned fd is closed by relay().
    """
    for fd in (2, 1, 0):
        if os.isatty(fd):
            return fd, False
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        from pyrunc.errors import PyruncError

        raise PyruncError(
            f"open /dev/tty: {os.strerror(err.errno).lower()}") from None
    return fd, True


def copy_winsize(src, dst):
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def relay(master, pid, on_exit, console=None):
    """Relay stdin to master and master to stdout until pid exits.

    on_exit() polls the process and returns its exit status or None.
    console is host_console()'s (fd, owned), put in raw mode meanwhile;
    by default stdin when it is a terminal. Returns the exit status.
    """
    import termios
    import tty

    stdin = 0
    if console is None:
        console = (stdin, False) if os.isatty(stdin) else (None, False)
    host, owned = console
    saved = None
    if host is not None:
        saved = termios.tcgetattr(host)
        tty.setraw(host)
        copy_winsize(host, master)
        signal.signal(signal.SIGWINCH,
                      lambda *_: copy_winsize(host, master))
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(stdin, select.POLLIN)
    try:
        while True:
            status = on_exit()
            if status is not None:
                drain(master)
                return status
            for fd, event in poller.poll(50):
                if fd == master:
                    if not pump(master, 1):
                        poller.unregister(master)
                elif event & select.POLLIN:
                    if not pump(stdin, master):
                        poller.unregister(stdin)
                else:
                    poller.unregister(stdin)
    finally:
        if saved is not None:
            termios.tcsetattr(host, termios.TCSADRAIN, saved)
        if owned:
            os.close(host)
        os.close(master)


def pump(src, dst):
    """Copy what is ready on src to dst; False once src is done."""
    try:
        data = os.read(src, 65536)
    except OSError:
        return False
    if not data:
        return False
    view = memoryview(data)
    while view:
        written = os.write(dst, view)
        view = view[written:]
    return True


def drain(master):
    """Copy what the process wrote just before it exited."""
    os.set_blocking(master, False)
    try:
        while pump(master, 1):
            pass
    except BlockingIOError:
        pass
