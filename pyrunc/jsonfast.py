"""json.loads and json.dumps without importing json on the hot path.

Importing json costs about 6 ms, most of a `pyrunc state` and a fifth
of a `pyrunc run`: json.decoder compiles regular expressions, which
pulls in re, enum and functools. The C scanner and encoder that json
itself uses live in _json and need none of that; they are called
directly here with json's default settings. Whatever the fast path does
not accept is handed to json, so error messages read as json's.
"""


class _ScanContext:
    """The settings json.JSONDecoder hands to its C scanner."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # float() reads NaN and [-]Infinity
    memo = {}


class _StrictScanContext(_ScanContext):
    """As _ScanContext, refusing NaN and Infinity as Go's decoder does."""

    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"{name} is not valid json")


_WHITESPACE = " \t\n\r"


def loads(text, strict_numbers=False):
    """json.loads(text); strict_numbers refuses NaN and Infinity.

    text may be str or UTF-8 bytes.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    context = _StrictScanContext if strict_numbers else _ScanContext
    try:
        import _json

        scan = _json.make_scanner(context)
        stripped = text.strip(_WHITESPACE)
        value, end = scan(stripped, 0)
        if end == len(stripped):
            return value
    except ImportError:
        pass
    except (ValueError, StopIteration, RecursionError, SystemError):
        # SystemError: the C scanner fails that way on some malformed
        # input (an unquoted key); json itself then says what is wrong.
        pass
    finally:
        context.memo.clear()
    import json

    hook = context.parse_constant if strict_numbers else None
    return json.loads(text, parse_constant=hook)


def _no_default(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON "
                    "serializable")


def dumps(obj, compact=False):
    """json.dumps(obj), or with separators (",", ":") when compact."""
    item_sep, key_sep = (",", ":") if compact else (", ", ": ")
    try:
        import _json
    except ImportError:
        import json

        return json.dumps(obj, separators=(item_sep, key_sep))
    encode = _json.make_encoder({}, _no_default,
                                _json.encode_basestring_ascii, None,
                                key_sep, item_sep, False, False, True)
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    return "".join(encode(obj, 0))
