"""runc-compatible logging: logrus text or JSON lines, to stderr or --log.

runc logs through logrus; container managers read its --log file, so the
line format is an interface. Text lines look like

    time="2023-04-01T12:00:00Z" level=error msg="container does not exist"

and JSON lines hold exactly the keys level, msg and time. On a terminal
the text format turns into logrus' coloured `ERRO[0000] message` form.

Importing the standard logging module costs about 6 ms, a third of a
`pyrunc state`, so this module formats and writes lines itself. Modules
on the hot commands' path take their logger from get_logger(__name__),
which has the methods of logging.Logger they need and costs nothing
until it emits. Other code may keep using logging.getLogger(__name__):
setup() attaches a handler that feeds the same sink as soon as the
logging module is imported, by whoever imports it first.
"""

import os
import sys
import time

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
FATAL = 50

_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error",
          FATAL: "fatal"}
# logrus' colours by level: gray, blue, yellow, red.
_COLOURS = {DEBUG: 37, INFO: 36, WARNING: 33, ERROR: 31, FATAL: 31}

# Characters logrus leaves unquoted in a text value.
_BARE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+"
)
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\",
               '"': '\\"'}

_START = time.time()


class _Sink:
    """Where lines go and in which format; one per process."""

    fd = 2
    json = False
    colour = None  # None: decide with isatty on first use
    level = INFO


_sink = _Sink()
_handler = None


def setup(log_path=None, log_format="text", debug=False):
    """Configure the sink from runc's --log, --log-format and --debug.

    The log file is opened (and created) at once, like runc does, with
    O_APPEND and O_SYNC so that lines from concurrent runtimes never
    interleave. Raises ConfigError for an unknown format and
    PyruncError when the file cannot be opened; the sink is unchanged
    then, so the error itself is still reported on stderr.
    """
    from pyrunc.errors import ConfigError, PyruncError

    if log_format not in ("", "text", "json"):
        raise ConfigError(f"invalid log-format: {log_format}")
    fd = 2
    if log_path:
        flags = (os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_SYNC
                 | os.O_CLOEXEC)
        try:
            fd = os.open(log_path, flags, 0o644)
        except OSError as err:
            reason = go_strerror(err.errno)
            raise PyruncError(f"open {log_path}: {reason}") from None
    if _sink.fd != 2:
        os.close(_sink.fd)
    _sink.fd = fd
    _sink.json = log_format == "json"
    _sink.colour = None
    _sink.level = DEBUG if debug else INFO
    _bridge_stdlib()


def reset():
    """Return to the defaults (text on stderr at info); for tests."""
    if _sink.fd != 2:
        os.close(_sink.fd)
    _sink.fd = 2
    _sink.json = False
    _sink.colour = None
    _sink.level = INFO
    _update_stdlib_levels()


def go_strerror(err):
    """Return errno text the way Go prints it ("no such file or ...")."""
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


# -- emitting --------------------------------------------------------------


def is_enabled(level):
    """Tell whether a line at level would be written."""
    return level >= _sink.level


def emit(level, msg):
    """Write one line at level (DEBUG ... FATAL) if the level is enabled."""
    if level < _sink.level:
        return
    colour = _sink.colour
    if colour is None:
        colour = not _sink.json and os.isatty(_sink.fd)
        _sink.colour = colour
    line = format_line(level, str(msg), time.time(), _sink.json, colour)
    _write(_sink.fd, line.encode("utf-8", "surrogateescape"))


def report_error(msg, level=ERROR):
    """Log a fatal error and make sure the user sees it on stderr.

    runc's fatal(): the error goes to the log, and also to stderr as a
    bare line when the log is a file.
    """
    emit(level, msg)
    if _sink.fd != 2:
        _write(2, f"{msg}\n".encode("utf-8", "surrogateescape"))


def _write(fd, data):
    try:
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except OSError:
        # Nowhere left to report a failing log write (EPIPE, ENOSPC).
        pass


# -- formatting ------------------------------------------------------------


def format_line(level, msg, when, as_json=False, colour=False):
    """Return one log line, newline included, in runc's format."""
    if as_json:
        from pyrunc.state.gojson import quote

        return (f'{{"level":"{_NAMES[level]}","msg":{quote(msg)},'
                f'"time":"{rfc3339(when)}"}}\n')
    if colour:
        # logrus pads the message to 44 columns and keeps the space that
        # would separate it from extra fields.
        tag = _NAMES[level].upper()[:4]
        elapsed = int(when - _START)
        text = msg[:-1] if msg.endswith("\n") else msg
        return (f"\x1b[{_COLOURS[level]}m{tag}\x1b[0m[{elapsed:04d}] "
                f"{text:<44} \n")
    return (f"time={_text_value(rfc3339(when))} level={_NAMES[level]} "
            f"msg={_text_value(msg)}\n")


def rfc3339(when):
    """Format a Unix time like Go's time.RFC3339 in local time."""
    tm = time.localtime(when)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    offset = tm.tm_gmtoff
    if not offset:
        return stamp + "Z"
    sign = "+" if offset > 0 else "-"
    minutes = abs(offset) // 60
    return f"{stamp}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _text_value(text):
    # logrus leaves an empty value bare too (QuoteEmptyFields is off).
    if _BARE.issuperset(text):
        return text
    return go_quote(text)


def go_quote(text):
    """Quote text like Go's strconv.Quote (logrus' %q)."""
    out = ['"']
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
            continue
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if code < 0x80 or 0xDC80 <= code <= 0xDCFF:
            # Control characters, and bytes that were not valid UTF-8
            # (surrogateescape), are written as one \x escape per byte.
            out.append(f"\\x{code & 0xFF:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# -- loggers ---------------------------------------------------------------


class Logger:
    """The subset of logging.Logger that pyrunc's modules use."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def isEnabledFor(self, level):  # noqa: N802 (logging's spelling)
        return level >= _sink.level

    def _log(self, level, msg, args):
        if level < _sink.level:
            return
        if args:
            msg = msg % args
        emit(level, msg)

    def debug(self, msg, *args):
        self._log(DEBUG, msg, args)

    def info(self, msg, *args):
        self._log(INFO, msg, args)

    def warning(self, msg, *args):
        self._log(WARNING, msg, args)

    def error(self, msg, *args):
        self._log(ERROR, msg, args)


def get_logger(name):
    """Return a Logger for a module: get_logger(__name__)."""
    return Logger(name)


# -- the standard logging module --------------------------------------------


def _level_of(levelno):
    for level in (FATAL, ERROR, WARNING, INFO):
        if levelno >= level:
            return level
    return DEBUG


def _bridge_stdlib():
    logging = sys.modules.get("logging")
    if logging is not None:
        _attach(logging)
        return
    for finder in sys.meta_path:
        if isinstance(finder, _AttachOnImport):
            return
    sys.meta_path.insert(0, _AttachOnImport())


def _attach(logging):
    """Send records of the logging module to the sink, once."""
    global _handler

    for finder in list(sys.meta_path):
        if isinstance(finder, _AttachOnImport):
            sys.meta_path.remove(finder)

    if _handler is None:
        class _SinkHandler(logging.Handler):
            def emit(self, record):
                try:
                    text = record.getMessage()
                    if record.exc_info and _sink.level <= DEBUG:
                        trace = self.formatException(record.exc_info)
                        text = f"{text}\n{trace}"
                    emit(_level_of(record.levelno), text)
                except Exception:
                    self.handleError(record)

        _handler = _SinkHandler()
        root = logging.getLogger()
        root.addHandler(_handler)
        # Other libraries' chatter stays out unless it is a warning.
        root.setLevel(logging.WARNING)
    _update_stdlib_levels()


def _update_stdlib_levels():
    logging = sys.modules.get("logging")
    if logging is None or _handler is None:
        return
    logging.getLogger("pyrunc").setLevel(_sink.level)


class _AttachOnImport:
    """Import hook that calls _attach right after logging is imported.

    Lives in sys.meta_path only until then. It asks the other finders
    for the real spec and wraps the loader's exec_module, so the module
    itself is loaded exactly as it would be without the hook.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_attach(module):
            exec_module(module)
            _attach(module)

        loader.exec_module = exec_and_attach
        return spec
