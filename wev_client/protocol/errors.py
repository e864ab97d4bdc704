"""wev's failures: a small hierarchy with a wire code, an exit status and an HTTP status.

wev's own failures happen before the command is exec'd. Their exit statuses
come from sysexits.h so that they are documented and stable; see README. The
daemon sends them as ``{"error": {"code", "message", "hint"}}``;
``error_from_json`` rebuilds them in the client.
"""

from __future__ import annotations


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


class UnknownPlugin(ConfigError):
    """An entry names a plugin the daemon has not loaded: a configuration error (so on
    the wire, for every client), unless another installation of wev started the daemon.
    """

    def __init__(self, message: str, *, plugin: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.plugin = plugin

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        body["error"]["plugin"] = self.plugin  # type: ignore[index]
        return body


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


class InputRequired(WevError):
    """A plugin needs the user's input (an MFA code) and there is no terminal to ask on."""

    code = "input_required"
    exit_status = 69  # EX_UNAVAILABLE
    http_status = 409


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
        InputRequired,
    )
}


def error_from_json(body: object) -> WevError:
    """Rebuild the error a daemon sent (``{"error": {...}}``)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail.get("message"), str):
        return ProtocolError("the daemon sent an error this client does not understand")
    cls = ERRORS_BY_CODE.get(str(detail.get("code")), WevError)
    hint = detail.get("hint")
    hint = hint if isinstance(hint, str) else None
    plugin = detail.get("plugin")
    if cls is ConfigError and isinstance(plugin, str):
        return UnknownPlugin(detail["message"], plugin=plugin, hint=hint)
    return cls(detail["message"], hint=hint)
