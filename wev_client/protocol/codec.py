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
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


_quote = _json.encode_basestring_ascii


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise NotJSON("NaN and Infinity cannot be sent")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(_quote(_key(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} cannot be sent")


def _key(key: object) -> str:
    # As json does: true, false and null for those keys; other keys as text.
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    return key if isinstance(key, str) else str(key)
