"""The wire protocol between the `wev` client and `wev-daemon`, in one place.

Both sides import this module, so it must stay on the client's start-up budget:
standard library C modules only (``_json``), no ``json``, ``re``, ``typing`` or
``dataclasses`` at run time. The protocol is HTTP/1.1 with JSON bodies over a
Unix socket, so ``curl --unix-socket SOCK http://wev/v1/status`` works too.

Routes carry the API version; unknown fields are ignored in both directions so
that older and newer clients and daemons keep talking.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

API_VERSION = 1
RESOLVE_ROUTE = f"/v{API_VERSION}/resolve"
EXPLAIN_ROUTE = f"/v{API_VERSION}/explain"
STATUS_ROUTE = f"/v{API_VERSION}/status"

#: Header with the client's package version, so a daemon can tell it is older.
CLIENT_VERSION_HEADER = "Wev-Client-Version"

#: Largest request body the daemon reads; a real request is a few kilobytes.
MAX_REQUEST_BYTES = 1024 * 1024

#: The client's environment variables that decide which AWS identity, region and
#: endpoint a plugin uses. The client sends these; the daemon never uses its own.
CONTEXT_ENV_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_CODEARTIFACT",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "HOME",
)


# -- errors ------------------------------------------------------------------
#
# wev's own failures happen before the command is exec'd. Their exit statuses
# come from sysexits.h so that they are documented and stable; see README.


class WevError(Exception):
    """A failure wev explains to the user in one line.

    ``code`` names the kind of failure on the wire, ``exit_status`` is what the
    client exits with, ``hint`` is an optional next step for the user.
    """

    code = "error"
    exit_status = 70  # EX_SOFTWARE
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return {"error": body}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(WevError):
    """The command line is wrong."""

    code = "usage"
    exit_status = 64  # EX_USAGE
    http_status = 400


class ConfigError(WevError):
    """A configuration file is invalid; the message names the file."""

    code = "config"
    exit_status = 78  # EX_CONFIG
    http_status = 422


class ProtocolError(WevError):
    """A request or response does not follow this protocol."""

    code = "protocol"
    exit_status = 76  # EX_PROTOCOL
    http_status = 400


class VersionMismatch(ProtocolError):
    """The daemon runs another version of wev than the client."""

    code = "version_mismatch"
    http_status = 409


class UpstreamError(WevError):
    """A plugin's source (AWS) failed and no valid cached value exists."""

    code = "upstream"
    exit_status = 69  # EX_UNAVAILABLE
    http_status = 502


class DaemonUnavailable(WevError):
    """No daemon answers and none could be started."""

    code = "daemon_unavailable"
    exit_status = 69  # EX_UNAVAILABLE
    http_status = 503


ERRORS_BY_CODE: dict[str, type[WevError]] = {
    cls.code: cls
    for cls in (
        WevError,
        UsageError,
        ConfigError,
        ProtocolError,
        VersionMismatch,
        UpstreamError,
        DaemonUnavailable,
    )
}


def error_from_json(body: object) -> WevError:
    """Rebuild the error a daemon sent (``{"error": {...}}``)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail.get("message"), str):
        return ProtocolError("the daemon sent an error this client does not understand")
    cls = ERRORS_BY_CODE.get(str(detail.get("code")), WevError)
    hint = detail.get("hint")
    return cls(detail["message"], hint=hint if isinstance(hint, str) else None)


# -- JSON, without importing the json package -------------------------------
#
# ``import json`` costs the client about as much as starting Python (it pulls in
# ``re``). The C accelerator ``_json`` that json itself uses is nearly free, so
# we drive it directly. Output and accepted input match ``json`` for the plain
# types the protocol uses; NaN and Infinity are refused.


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


def loads(data: bytes | str) -> object:
    """Decode one JSON document; raise ProtocolError if it is not valid JSON."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
        context = _ScannerContext()
        scan = _json.make_scanner(context)  # type: ignore[arg-type]  # duck-typed context
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, end = scan(text, start)
        if text[end:].strip(" \t\n\r"):
            raise ValueError("extra data after the document")
    except (ValueError, StopIteration, UnicodeDecodeError, RecursionError):
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
            raise ValueError("NaN and Infinity cannot be sent")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(_quote(str(key)))
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


# -- messages ------------------------------------------------------------------


def _expect(value: object, kind: type, what: str) -> object:
    if not isinstance(value, kind):
        raise ProtocolError(f"{what} must be a {kind.__name__}")
    return value


def _str_list(value: object, what: str) -> tuple[str, ...]:
    items = _expect(value, list, what)
    assert isinstance(items, list)
    if not items or not all(isinstance(item, str) for item in items):
        raise ProtocolError(f"{what} must be a non-empty list of strings")
    return tuple(items)


class VariableSpec:
    """One configured entry: the names it sets, its plugin block, its source files.

    ``plugin`` is the merged ``plugin`` mapping from the configuration, ``id``
    included; ``sources`` are the files that contributed to it, lowest
    precedence first. Treat instances as immutable.
    """

    __slots__ = ("names", "plugin", "sources")

    def __init__(
        self, names: tuple[str, ...], plugin: Mapping[str, object], sources: tuple[str, ...]
    ) -> None:
        self.names = names
        self.plugin = plugin
        self.sources = sources

    def __repr__(self) -> str:
        return f"VariableSpec(names={self.names!r}, plugin_id={self.plugin.get('id')!r})"

    @property
    def label(self) -> str:
        """The key as the user wrote it: ``NAME`` or ``[A, B]``."""
        return self.names[0] if len(self.names) == 1 else "[" + ", ".join(self.names) + "]"

    def to_json(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "plugin": dict(self.plugin),
            "sources": list(self.sources),
        }

    @classmethod
    def from_json(cls, data: object) -> VariableSpec:
        item = _expect(data, dict, "a variable")
        assert isinstance(item, dict)
        plugin = _expect(item.get("plugin"), dict, "a variable's plugin")
        assert isinstance(plugin, dict)
        sources = item.get("sources", [])
        return cls(
            _str_list(item.get("names"), "a variable's names"),
            plugin,
            _str_list(sources, "a variable's sources") if sources else (),
        )


class ResolveRequest:
    """What the client asks for: its variables and its AWS context (env vars)."""

    __slots__ = ("env", "variables")

    def __init__(self, variables: tuple[VariableSpec, ...], env: Mapping[str, str]) -> None:
        self.variables = variables
        self.env = env

    def __repr__(self) -> str:
        # The environment can hold AWS secret keys: never print it.
        return f"ResolveRequest(variables={self.variables!r}, env_keys={sorted(self.env)!r})"

    def to_json(self) -> dict[str, object]:
        return {"variables": [v.to_json() for v in self.variables], "env": dict(self.env)}

    @classmethod
    def from_json(cls, data: object) -> ResolveRequest:
        body = _expect(data, dict, "the request")
        assert isinstance(body, dict)
        variables = _expect(body.get("variables"), list, "variables")
        env = _expect(body.get("env", {}), dict, "env")
        assert isinstance(variables, list) and isinstance(env, dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ProtocolError("env must map names to strings")
        return cls(tuple(VariableSpec.from_json(v) for v in variables), env)


def context_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of an environment that a resolution may depend on."""
    return {name: environ[name] for name in CONTEXT_ENV_VARS if name in environ}


class EntryInfo:
    """What the daemon tells about one entry, never its value (for ``--explain``)."""

    __slots__ = ("cached", "description", "expires_at", "names", "plugin_id", "refresh_at")

    def __init__(
        self,
        names: tuple[str, ...],
        plugin_id: str,
        description: str,
        cached: bool,
        expires_at: str | None,
        refresh_at: str | None,
    ) -> None:
        self.names = names
        self.plugin_id = plugin_id
        self.description = description
        self.cached = cached
        self.expires_at = expires_at
        self.refresh_at = refresh_at

    def to_json(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "plugin": self.plugin_id,
            "description": self.description,
            "cached": self.cached,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
        }

    @classmethod
    def from_json(cls, data: object) -> EntryInfo:
        item = _expect(data, dict, "an entry")
        assert isinstance(item, dict)
        return cls(
            _str_list(item.get("names"), "an entry's names"),
            str(item.get("plugin", "")),
            str(item.get("description", "")),
            bool(item.get("cached")),
            _optional_str(item.get("expires_at")),
            _optional_str(item.get("refresh_at")),
        )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class ResolveResponse:
    """The daemon's answer: resolved values (empty for explain), entry facts, warnings."""

    __slots__ = ("entries", "values", "warnings")

    def __init__(
        self,
        values: Mapping[str, str],
        entries: tuple[EntryInfo, ...] = (),
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.values = values
        self.entries = entries
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"ResolveResponse(names={sorted(self.values)!r}, warnings={self.warnings!r})"

    def to_json(self) -> dict[str, object]:
        return {
            "values": dict(self.values),
            "entries": [entry.to_json() for entry in self.entries],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: object) -> ResolveResponse:
        body = _expect(data, dict, "the response")
        assert isinstance(body, dict)
        values = _expect(body.get("values", {}), dict, "values")
        assert isinstance(values, dict)
        if not all(isinstance(v, str) for v in values.values()):
            raise ProtocolError("values must be strings")
        entries = _expect(body.get("entries", []), list, "entries")
        warnings = _expect(body.get("warnings", []), list, "warnings")
        assert isinstance(entries, list) and isinstance(warnings, list)
        return cls(
            values,
            tuple(EntryInfo.from_json(e) for e in entries),
            tuple(str(w) for w in warnings),
        )
