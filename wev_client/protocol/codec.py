"""JSON for the protocol, without importing the json package.

``import json`` costs the client about as much as starting Python (it pulls in
``re``). The C accelerator ``_json`` that json itself uses is nearly free, so
we drive it directly. Output and accepted input match ``json`` for the plain
types the protocol uses; NaN and Infinity are refused.
"""

from __future__ import annotations

import _json

from wev_client.protocol.errors import ProtocolError


class NotJSON(ProtocolError, ValueError):
    """A value JSON cannot carry (NaN, Infinity); a ValueError too, as ``json`` raises."""


class _ScannerContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str]

    def __init__(self) -> None:
        self.memo = {}

    @staticmethod
    def parse_constant(name: str) -> object:
        raise ValueError(f"{name} is not allowed")


def loads(data: bytes | bytearray | memoryview | str) -> object:
    """Decode one JSON document; raise ProtocolError if it is not valid JSON."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode()
        context = _ScannerContext()
        scan = _json.make_scanner(context)  # type: ignore[arg-type]  # duck-typed context
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, end = scan(text, start)
        if text[end:].strip(" \t\n\r"):
            raise ValueError("extra data after the document")
    except (ValueError, TypeError, StopIteration, RecursionError):
        # ValueError covers UnicodeDecodeError and json's JSONDecodeError.
        raise ProtocolError("the message is not valid JSON") from None
    return value


def dumps(value: object) -> str:
    """Encode plain data (dict, list, tuple, str, int, float, bool, None) as JSON."""
    try:
        return "".join(_encoder(value, 0))
    except ValueError:  # the C encoder's "Out of range float values are not JSON compliant"
        raise NotJSON("NaN and Infinity cannot be sent") from None


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} cannot be sent")


# json's own C encoder (``json.encoder.c_make_encoder``), compact and ASCII-only
# as ``json.dumps(value, separators=(",", ":"))``: a whole environment in a
# request encodes in microseconds instead of a Python walk over every item.
_encoder = _json.make_encoder(
    None,  # markers: no circular check (shared state; our data is never circular)
    _refuse,  # default: anything but plain data
    _json.encode_basestring_ascii,
    None,  # indent
    ":",
    ",",
    False,  # sort_keys
    False,  # skipkeys: a key that is no str, int, float, bool or None raises TypeError
    False,  # allow_nan
)
