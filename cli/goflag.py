"""Option values parsed the way runc's Go flag package parses them.

runc reads integers with strconv.ParseInt(s, 0, 64) (so "0x10" and "010"
are 16 and 8), slices of integers in base 10, durations with
time.ParseDuration ("5s", "1m30s", "250ms"), and the value of a boolean
flag written --name=value with strconv.ParseBool ("false", "0", "T").
The converters below accept exactly those spellings and raise ValueError
with the reason runc gives after `invalid value "X" for flag -NAME: `,
so that both of pyrunc's parsers (cli/fastpath.py and cli/app.py) take
the same values; find_option looks a flag's name up as Go does.

Nothing here imports more than the interpreter already has: the fast
path loads this module on every call.
"""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

# The flag package replaces strconv's detail by these two words.
PARSE_ERROR = "parse error"
RANGE_ERROR = "value out of range"

_DIGITS = "0123456789"

# time.ParseDuration's units, in nanoseconds; "µs" is spelt with the
# micro sign (U+00B5) or the Greek mu (U+03BC).
_UNITS = {
    "ns": 1,
    "us": 1000,
    "\u00b5s": 1000,
    "\u03bcs": 1000,
    "ms": 1000 ** 2,
    "s": 1000 ** 3,
    "m": 60 * 1000 ** 3,
    "h": 3600 * 1000 ** 3,
}


_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True,
    "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False,
    "False": False,
}


def find_option(by_name, name):
    """Return (option, name as registered) for a flag's name, or
    (None, name).

    Go's flag package reads -name and --name alike, so runc takes
    -root, -bundle and --b for --root, --bundle and -b.

    >>> table = {"--root": "R", "-b": "B"}
    >>> find_option(table, "-root"), find_option(table, "--b")
    (('R', '--root'), ('B', '-b'))
    """
    opt = by_name.get(name)
    if opt is not None:
        return opt, name
    if name.startswith("--"):
        other = name[1:]
    elif name.startswith("-") and len(name) > 2:
        other = "-" + name
    else:
        return None, name
    opt = by_name.get(other)
    if opt is None:
        return None, name
    return opt, other


def go_bool(text):
    """Parse the value of a boolean flag given as --name=value:
    strconv.ParseBool(text).

    >>> go_bool("false"), go_bool("T"), go_bool("1")
    (False, True, True)
    """
    try:
        return _BOOLS[text]
    except KeyError:
        raise ValueError(PARSE_ERROR) from None


def go_int(text):
    """Parse an IntFlag value: strconv.ParseInt(text, 0, 64).

    >>> go_int("0x10"), go_int("010"), go_int("-3"), go_int("1_000")
    (16, 8, -3, 1000)
    """
    if not text.isascii() or text.strip() != text:
        raise ValueError(PARSE_ERROR)
    sign = text[:1] if text[:1] in ("+", "-") else ""
    body = text[len(sign):]
    # Go reads a leading zero as octal; Python's int() refuses it.
    if len(body) > 1 and body[0] == "0" and body[1] in _DIGITS + "_":
        body = "0o" + body[1:]
    try:
        value = int(sign + body, 0)
    except ValueError:
        raise ValueError(PARSE_ERROR) from None
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(RANGE_ERROR)
    return value


def go_decimal(text):
    """Parse an Int64SliceFlag item: strconv.ParseInt(text, 10, 64).

    The slice flags report strconv's own error, not the flag package's.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(
            f"strconv.ParseInt: parsing {_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(
            f"strconv.ParseInt: parsing {_quote(text)}: {RANGE_ERROR}")
    return value


def go_float(text):
    """Parse a Float64Flag value: strconv.ParseFloat(text, 64).

    >>> go_float("1e3"), go_float("1_0.5"), go_float("0x1p-2")
    (1000.0, 10.5, 0.25)
    """
    # Python's float() also takes surrounding blanks; Go does not.
    if not text.isascii() or text.strip() != text:
        raise ValueError(PARSE_ERROR)
    body = text.lstrip("+-")
    try:
        if body[:2].lower() != "0x":
            return float(text)
        # Go's hexadecimal floats need a binary exponent ("0x1p-2").
        if "p" not in body.lower():
            raise ValueError(PARSE_ERROR)
        return float.fromhex(text.replace("_", ""))
    except ValueError:
        raise ValueError(PARSE_ERROR) from None


def go_duration(text):
    """Parse a DurationFlag value (time.ParseDuration) into seconds.

    >>> go_duration("1m30s"), go_duration("250ms"), go_duration("0")
    (90.0, 0.25, 0.0)
    """
    nanos = _duration_nanos(text)
    if nanos is None:
        raise ValueError(PARSE_ERROR)
    return nanos / 1e9


def format_duration(seconds):
    """Spell a whole number of seconds as Go prints it ("5s")."""
    return f"{seconds:g}s"


def _duration_nanos(text):
    """Return text as integer nanoseconds, or None if Go refuses it."""
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("+", "-"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        return None
    total = 0
    while rest:
        whole, rest = _take(rest, lambda ch: ch in _DIGITS)
        fraction = ""
        if rest[:1] == ".":
            fraction, rest = _take(rest[1:], lambda ch: ch in _DIGITS)
        if not whole and not fraction:
            return None
        unit, rest = _take(rest, lambda ch: ch != "." and ch not in _DIGITS)
        scale = _UNITS.get(unit)
        if scale is None:
            return None
        total += int(whole or "0") * scale
        if fraction:
            # Go truncates the fractional part to whole nanoseconds.
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _INT64_MAX:
            return None
    return -total if negative else total


def _take(text, wanted):
    """Split text after its longest prefix of characters that are wanted."""
    end = 0
    while end < len(text) and wanted(text[end]):
        end += 1
    return text[:end], text[end:]


def _quote(text):
    from pyrunc.log import go_quote

    return go_quote(text)
