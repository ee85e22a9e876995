"""pyrunc's entry point: parse argv, run the command, report errors once.

argv goes first to the pre-parser (cli/fastpath.py), which needs no
click, then, if it declines, to the click application (cli/app.py). Both
return an Invocation that dispatch() hands to cli/<command>.py, imported
only then, so each command loads only what it uses.

Every error ends here: a PyruncError is logged at error level (and also
printed on stderr when --log names a file, as runc does) and sets the
exit status; anything else is reported in one line, with the traceback
only under --debug.
"""

import os
import stat
import sys

from pyrunc import log as _log
from pyrunc.errors import PyruncError

_EXIT_INTERRUPTED = 130

# runc names the failed command for these; engines log the whole line.
FAILED_PREFIX = {
    "create": "pyrunc create failed: ",
    "run": "pyrunc run failed: ",
    "exec": "exec failed: ",
}

# runc's exec exits 255 for any failure of its own, so that a caller can
# tell it from the exit status of the process it ran.
FAILED_STATUS = {
    "exec": 255,
}


def main(argv=None):
    """Run pyrunc with argv (default sys.argv[1:]) and exit."""
    if argv is None:
        argv = sys.argv[1:]
    exit_now(run_argv(argv))


def exit_now(status):
    """Exit with status without the interpreter's teardown.

    Freeing every module and object at exit costs a CLI call about 3 ms,
    as much as a whole `runc state`, and pyrunc registers no atexit
    handler and leaves no buffered file but stdout and stderr, which are
    flushed here. A failed flush exits 120, as the interpreter does.
    """
    stop_prewarm()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            # Closed by the caller (without the entry program, which
            # opens /dev/null there): nothing was written.
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            die_of_sigpipe()
            status = status or 120
        except (OSError, ValueError):
            status = status or 120
    if status is None:
        status = 0
    os._exit(status & 0xFF if isinstance(status, int) else 1)


def stop_prewarm():
    """Stop the cgroup-attach helper if the command left it running
    (entry.c guessed wrong, or the command failed early): else it would
    outlive us as a zombie."""
    prewarm = sys.modules.get("pyrunc.process.prewarm")
    if prewarm is not None:
        prewarm.finish()


def die_of_sigpipe():
    """Die of SIGPIPE if stdout or stderr is a pipe nobody reads.

    runc, a Go program, is killed by SIGPIPE when it writes there (a
    shell's caller sees status 141, `pyrunc list | head -0`); Python
    ignores the signal and raises BrokenPipeError instead. Returns if
    neither is such a pipe: the error came from another one.
    """
    import _signal
    import select

    poller = select.poll()
    for fd in (1, 2):
        poller.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poller.poll(0)):
        return
    stop_prewarm()
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGPIPE)


def run_argv(argv):
    """Parse argv and run it; return the exit status."""
    invocation = parse(argv)
    if isinstance(invocation, int):
        return invocation
    return dispatch(invocation)


def parse(argv):
    """Return argv's Invocation, or an exit status if click handled it."""
    from pyrunc.cli import fastpath

    invocation = fastpath.parse(argv)
    if invocation is not None:
        return invocation
    from pyrunc.cli import app

    return app.parse(argv)


class Globals:
    """The global options, as commands see them."""

    def __init__(self, values):
        self.debug = values["debug"]
        self.log = values["log"]
        self.log_format = values["log_format"]
        self.root = resolve_root(values["root"])
        self.criu = values["criu"]
        self.systemd_cgroup = values["systemd_cgroup"]
        self.rootless = values["rootless"]

    def store(self):
        """Return the state Store under --root."""
        from pyrunc.state.store import Store

        try:
            st = os.stat(self.root)
        except OSError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            # runc makes the root on every command and says so.
            raise PyruncError(f"mkdir {self.root}: not a directory")
        return Store(self.root)


def resolve_root(root):
    """Return the absolute state root; None means the default.

    Like runc, an unprivileged user gets $XDG_RUNTIME_DIR/pyrunc.
    """
    if root is None:
        from pyrunc.state.store import DEFAULT_ROOT

        root = DEFAULT_ROOT
        runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
        if os.geteuid() != 0 and runtime_dir:
            root = os.path.join(runtime_dir, "pyrunc")
    return os.path.abspath(root)


def dispatch(invocation):
    """Run a parsed command line; return the exit status."""
    debug = invocation.globals.get("debug", False)
    try:
        globals_ = Globals(invocation.globals)
        _log.setup(globals_.log or None, globals_.log_format, debug)
        if invocation.params.get("container_id") == "":
            raise PyruncError("container id cannot be empty")
        module = command_module(invocation.command)
        status = module.run(globals_, **invocation.params)
    except PyruncError as err:
        prefix = FAILED_PREFIX.get(invocation.command, "")
        _log.report_error(f"{prefix}{err}")
        return FAILED_STATUS.get(invocation.command, err.exit_code)
    except KeyboardInterrupt:
        return _EXIT_INTERRUPTED
    except Exception as err:
        if isinstance(err, BrokenPipeError):
            die_of_sigpipe()
        if debug:
            import traceback

            _log.emit(_log.DEBUG, traceback.format_exc().rstrip("\n"))
        text = str(err).replace("\n", " ")
        prefix = FAILED_PREFIX.get(invocation.command, "")
        _log.report_error(
            f"{prefix}unexpected error: {type(err).__name__}: {text}")
        return FAILED_STATUS.get(invocation.command, 1)
    return status or 0


def command_module(name):
    """Import and return cli/<name>.py."""
    qualified = f"pyrunc.cli.{name}"
    __import__(qualified)
    return sys.modules[qualified]


def version_text():
    """Return the three lines of --version."""
    from pyrunc import SPEC_VERSION, __version__

    return (f"pyrunc version {__version__}\n"
            f"commit: {_git_commit()}\n"
            f"spec: {SPEC_VERSION}\n")


def _git_commit():
    import pyrunc

    package = os.path.dirname(os.path.realpath(pyrunc.__file__))
    checkout = os.path.dirname(package)
    if not os.path.exists(os.path.join(checkout, ".git")):
        return "unknown"
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", checkout, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
