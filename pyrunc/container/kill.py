"""`kill`: send a signal to a container's init, or to all its processes.

No lock is taken, as in runc: a signal is idempotent, the init's start
time guards against a recycled pid, and a `kill` must still get through
while another command (a slow poststart hook, say) holds the lock.
"""

from pyrunc import log as _log
from pyrunc.errors import ContainerNotRunning, PyruncError
from pyrunc.log import go_strerror
from pyrunc.state import proc

log = _log.get_logger(__name__)

SIGKILL = 9

# The names runc accepts (golang.org/x/sys/unix's signal list for Linux).
# Numbers come from the signal module, so that the few architectures
# with other numbering stay right.
_SIGNAL_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
    "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE",
    "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",
    "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
    "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)


def parse_signal(text):
    """Return the signal number for "KILL", "SIGKILL", "kill" or "9".

    >>> parse_signal("kill"), parse_signal("SIGTERM"), parse_signal("9")
    (9, 15, 9)

    Any integer is accepted as runc does (the kernel judges it); an
    unknown name raises PyruncError('unknown signal "FOO"').
    """
    if isinstance(text, int):
        return text
    try:
        return int(text, 10)
    except ValueError:
        pass
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in _SIGNAL_NAMES:
        number = getattr(proc.signals, name, None)
        if number is not None:
            return int(number)
    raise PyruncError(f'unknown signal "{text}"')


def kill(store, cid, sig="SIGTERM", all=False):
    """Send sig (a number or a name) to container cid.

    >>> kill(Store("/run/pyrunc"), "web", "KILL")  # doctest: +SKIP

    Without all, only the init gets the signal and a stopped container
    raises ContainerNotRunning. With all, every process of the cgroup
    gets it, and a stopped container is not an error (runc exits 0).
    """
    record = store.load(cid)
    # runc looks the container up before it parses the signal, so an
    # unknown container wins over an unknown signal.
    signum = parse_signal(sig)
    if all:
        _kill_all(record, signum)
        return
    status = record.status(store)
    if status == "stopped":
        raise ContainerNotRunning()
    log.debug("sending signal %d to init %d", signum, record.pid)
    try:
        sent = proc.send_signal(record.pid, record.pid_start, signum)
    except (OSError, OverflowError, ValueError) as err:
        reason = go_strerror(getattr(err, "errno", None) or 22)
        raise PyruncError(f"unable to signal init: {reason}") from None
    if not sent:
        # Died between the status check and the signal.
        raise ContainerNotRunning()
    if status == "paused" and signum == SIGKILL:
        # A frozen cgroup v1 task does not die until it is thawed.
        _manager(record).thaw()


def _kill_all(record, signum):
    if not record.cgroup:
        return
    manager = _manager(record)
    log.debug("sending signal %d to every process of %r", signum, manager)
    manager.kill_all(signum)


def _manager(record):
    from pyrunc.cgroups import manager_from_dict

    return manager_from_dict(record.cgroup)
