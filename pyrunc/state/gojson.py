"""JSON encoding that matches Go's encoding/json byte for byte.

runc prints `state`, `list --format json` and its JSON log lines with Go's
encoder, which differs from Python's json.dumps on a few characters: it
escapes <, > and & (HTML safety), U+2028 and U+2029, writes \\b and \\f
as \\u0008 and \\u000c, and keeps other non-ASCII text as UTF-8. Tools
that compare runtimes' output (and the differential tests) see those
differences, so the CLI encodes with dumps() below. Only the types that
state records hold are supported: dict, list, tuple, str, int, bool, None.
"""

# Characters that Go writes as-is inside a JSON string; everything else
# goes through _escape_char. Plain ASCII text takes the fast path.
_PLAIN = frozenset(
    chr(c) for c in range(0x20, 0x7F + 1) if chr(c) not in '"\\<>&'
)
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch):
    short = _SHORT.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029):
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate is what surrogateescape makes of invalid
        # UTF-8; Go replaces invalid bytes with U+FFFD.
        return "\ufffd"
    return ch


def quote(text):
    """Return text as a JSON string literal, quotes included."""
    if _PLAIN.issuperset(text):
        return f'"{text}"'
    return '"' + "".join(_escape_char(ch) for ch in text) + '"'


def dumps(obj, indent=None):
    """Encode obj like Go's json.Marshal, or MarshalIndent when indent.

    indent is a number of spaces or the indent string itself ("\\t").

    >>> print(dumps({"a": [1, "<b>"]}))
    {"a":[1,"\\u003cb\\u003e"]}
    """
    if isinstance(indent, int) and indent:
        indent = " " * indent
    parts = []
    _encode(obj, parts, indent or "", 0)
    return "".join(parts)


def _encode(obj, parts, indent, depth):
    if isinstance(obj, str):
        parts.append(quote(obj))
    elif obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, int):
        parts.append(str(int(obj)))
    elif isinstance(obj, dict):
        _encode_items(obj.items(), "{}", parts, indent, depth)
    elif isinstance(obj, (list, tuple)):
        pairs = ((None, value) for value in obj)
        _encode_items(pairs, "[]", parts, indent, depth)
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as json")


def _encode_items(pairs, brackets, parts, indent, depth):
    parts.append(brackets[0])
    first = True
    inner = ""
    if indent:
        inner = "\n" + indent * (depth + 1)
    for key, value in pairs:
        if not first:
            parts.append(",")
        first = False
        parts.append(inner)
        if key is not None:
            parts.append(quote(str(key)))
            parts.append(": " if indent else ":")
        _encode(value, parts, indent, depth + 1)
    if indent and not first:
        parts.append("\n" + indent * depth)
    parts.append(brackets[1])
