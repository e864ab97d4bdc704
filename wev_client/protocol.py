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
#: Drop what the daemon holds for the request's entries; answers {"forgotten": N}.
FORGET_ROUTE = f"/v{API_VERSION}/forget"
#: The same for everything the daemon holds; the body may be empty.
FORGET_ALL_ROUTE = f"/v{API_VERSION}/forget-all"
#: Parse and merge configuration files whose text the client sends (the daemon
#: has PyYAML loaded; the client would pay ~20 ms to import it after each edit).
PARSE_ROUTE = f"/v{API_VERSION}/parse"

#: Header with the client's package version, so a daemon can tell it is older.
CLIENT_VERSION_HEADER = "Wev-Client-Version"

#: Largest request body the daemon reads; a real request is a few kilobytes.
MAX_REQUEST_BYTES = 1024 * 1024
#: Most configured entries one request may carry (a real project has a handful).
MAX_VARIABLES = 1000
#: Most rounds of questions one call answers (a plugin asks one or two), in the
#: client and in the in-process resolution alike.
MAX_PROMPT_ROUNDS = 3
#: Most configuration files one parse request may carry (four names per folder).
MAX_FILES = 1000

#: Besides every ``AWS_*`` variable and HOME, what the client sends as its
#: context: the proxies its AWS calls go through. The daemon never uses its own.
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")
#: Context variables that name a file or folder: the client sends them absolute
#: (``~`` expanded with its HOME, relative ones against its working folder),
#: since the daemon has another working folder.
PATH_VARS = frozenset(
    {
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_LOGIN_CACHE_DIRECTORY",
    }
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
    return cls(detail["message"], hint=hint if isinstance(hint, str) else None)


# -- JSON, without importing the json package -------------------------------
#
# ``import json`` costs the client about as much as starting Python (it pulls in
# ``re``). The C accelerator ``_json`` that json itself uses is nearly free, so
# we drive it directly. Output and accepted input match ``json`` for the plain
# types the protocol uses; NaN and Infinity are refused.


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


# -- messages ------------------------------------------------------------------
#
# ``from_json`` validates the shape of what arrives and raises ProtocolError,
# never another exception; fields it does not know are ignored.


def is_variable_name(name: object) -> bool:
    """Whether ``name`` can be set in an environment (``execve`` refuses ``=`` and NUL)."""
    return isinstance(name, str) and bool(name) and "=" not in name and "\0" not in name


def _expect(value: object, kind: type | tuple[type, ...], what: str) -> object:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else kind[0].__name__
        raise ProtocolError(f"{what} must be a {names}")
    return value


def _str_list(value: object, what: str, *, empty: bool = False) -> tuple[str, ...]:
    items = _expect(value, (list, tuple), what)
    assert isinstance(items, list | tuple)
    if (not items and not empty) or not all(isinstance(item, str) for item in items):
        qualifier = "" if empty else "non-empty "
        raise ProtocolError(f"{what} must be a {qualifier}list of strings")
    return tuple(items)


def _names(value: object, what: str) -> tuple[str, ...]:
    names = _str_list(value, what)
    if not all(is_variable_name(name) for name in names):
        raise ProtocolError(f"{what} must be variable names (no '=' or NUL)")
    return names


def _optional(item: Mapping[str, object], field: str, kind: type, default: object) -> object:
    value = item.get(field)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ProtocolError(f"{field!r} must be a {kind.__name__}")
    return value


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

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VariableSpec):
            return NotImplemented
        return (self.names, dict(self.plugin), self.sources) == (
            other.names,
            dict(other.plugin),
            other.sources,
        )

    def __hash__(self) -> int:
        return hash((self.names, self.sources))

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
        sources = item.get("sources")
        return cls(
            _names(item.get("names"), "a variable's names"),
            plugin,
            () if sources is None else _str_list(sources, "a variable's sources", empty=True),
        )


class ResolveRequest:
    """What the client asks for: its variables and its context.

    ``env`` is its AWS context (``context_env``), on which values depend;
    ``process_env`` its whole environment and ``cwd`` its working folder, with
    which helper processes (``credential_process``) run. ``answers`` maps the
    ids of prompts the daemon sent to what the user typed (an MFA code: a
    secret, never printed); ``cancel`` names prompts the user abandoned
    (Ctrl-C), so that the next client is asked instead.
    """

    __slots__ = ("answers", "cancel", "cwd", "env", "process_env", "variables")

    def __init__(
        self,
        variables: tuple[VariableSpec, ...],
        env: Mapping[str, str],
        answers: Mapping[str, str] | None = None,
        cancel: tuple[str, ...] = (),
        *,
        process_env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.variables = variables
        self.env = env
        self.answers: Mapping[str, str] = answers or {}
        self.cancel = cancel
        self.process_env: Mapping[str, str] = process_env or {}
        self.cwd = cwd

    def __repr__(self) -> str:
        # The environment can hold AWS secret keys, the answers MFA codes: never print them.
        return (
            f"ResolveRequest(variables={self.variables!r}, env_keys={sorted(self.env)!r}, "
            f"answered={sorted(self.answers)!r}, cancel={self.cancel!r}, cwd={self.cwd!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResolveRequest):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # holds mappings

    def with_answers(
        self, answers: Mapping[str, str], cancel: tuple[str, ...] = ()
    ) -> ResolveRequest:
        """The same request carrying the user's answers (added to earlier ones)."""
        return ResolveRequest(
            self.variables,
            self.env,
            {**self.answers, **answers},
            cancel,
            process_env=self.process_env,
            cwd=self.cwd,
        )

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "variables": [v.to_json() for v in self.variables],
            "env": dict(self.env),
        }
        if self.process_env:
            body["process_env"] = dict(self.process_env)
        if self.cwd is not None:
            body["cwd"] = self.cwd
        if self.answers:
            body["answers"] = dict(self.answers)
        if self.cancel:
            body["cancel"] = list(self.cancel)
        return body

    @classmethod
    def from_json(cls, data: object) -> ResolveRequest:
        body = _expect(data, dict, "the request")
        assert isinstance(body, dict)
        variables = _expect(body.get("variables"), list, "variables")
        env = _optional(body, "env", dict, {})
        process_env = _optional(body, "process_env", dict, {})
        answers = _optional(body, "answers", dict, {})
        cwd = _optional(body, "cwd", str, None)
        assert isinstance(variables, list) and isinstance(env, dict) and isinstance(answers, dict)
        assert isinstance(process_env, dict) and (cwd is None or isinstance(cwd, str))
        if len(variables) > MAX_VARIABLES:
            raise ProtocolError(f"a request may hold at most {MAX_VARIABLES} variables")
        for name, mapping in (("env", env), ("process_env", process_env)):
            if not all(
                is_variable_name(k) and isinstance(v, str) and "\0" not in v
                for k, v in mapping.items()
            ):
                raise ProtocolError(f"{name} must map variable names to strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
            raise ProtocolError("answers must map prompt ids to strings")
        if cwd is not None and (not cwd.startswith("/") or "\0" in cwd):
            raise ProtocolError("cwd must be an absolute path")
        cancel = _str_list(body.get("cancel", []), "cancel", empty=True)
        return cls(
            tuple(VariableSpec.from_json(v) for v in variables),
            env,
            answers,
            cancel,
            process_env=process_env,
            cwd=cwd,
        )


class Prompt:
    """A question a plugin asks the user through the client (an MFA code).

    ``id`` is stable for one entry and question, so the answer sent back finds
    it; ``label`` is the entry's key (``[A, B]``), for messages. A prompt holds
    no secret (the answer does, and travels only in ``ResolveRequest.answers``).
    """

    __slots__ = ("id", "label", "secret", "text")

    def __init__(self, id: str, label: str, text: str, secret: bool) -> None:
        self.id = id
        self.label = label
        self.text = text
        self.secret = secret

    def __repr__(self) -> str:
        return (
            f"Prompt(id={self.id!r}, label={self.label!r}, text={self.text!r}, "
            f"secret={self.secret!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prompt):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.id)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "text": self.text, "secret": self.secret}

    @classmethod
    def from_json(cls, data: object) -> Prompt:
        item = _expect(data, dict, "a prompt")
        assert isinstance(item, dict)
        prompt_id = _expect(item.get("id"), str, "a prompt's id")
        text = _expect(item.get("text"), str, "a prompt's text")
        label = _optional(item, "label", str, "")
        secret = _optional(item, "secret", bool, True)
        assert isinstance(prompt_id, str) and isinstance(text, str)
        assert isinstance(label, str) and isinstance(secret, bool)
        return cls(prompt_id, label, text, secret)


def is_context_var(name: str) -> bool:
    """Whether a resolution may depend on this variable: the caller's AWS context."""
    return name.startswith("AWS_") or name == "HOME" or name in PROXY_VARS


def context_env(environ: Mapping[str, str], cwd: str | None = None) -> dict[str, str]:
    """The caller's AWS context: every AWS_* variable, its proxies and HOME.

    Paths in it are made absolute for the daemon, whose folders are not the
    caller's: ``~`` with the caller's HOME, relative ones against ``cwd``.
    """
    home = environ.get("HOME")
    context = {}
    for name, value in environ.items():
        if not is_context_var(name):
            continue
        if name in PATH_VARS and value:
            value = absolute_path(value, home, cwd)
        context[name] = value
    return context


def absolute_path(path: str, home: str | None, cwd: str | None) -> str:
    """``path`` as the caller means it, independent of any working folder."""
    import posixpath  # already loaded by os: free

    if path == "~" or path.startswith("~/"):
        if home:
            path = home + path[1:]
    elif path.startswith("~"):
        path = posixpath.expanduser(path)  # ~user
    if not path.startswith("/") and cwd:
        path = posixpath.join(cwd, path)
    return posixpath.normpath(path) if path.startswith("/") else path


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

    def __repr__(self) -> str:
        return (
            f"EntryInfo(names={self.names!r}, plugin_id={self.plugin_id!r}, "
            f"cached={self.cached!r}, expires_at={self.expires_at!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntryInfo):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.names, self.plugin_id))

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
        plugin_id = _optional(item, "plugin", str, "")
        description = _optional(item, "description", str, "")
        cached = _optional(item, "cached", bool, False)
        expires_at = _optional(item, "expires_at", str, None)
        refresh_at = _optional(item, "refresh_at", str, None)
        assert isinstance(plugin_id, str) and isinstance(description, str)
        assert isinstance(cached, bool)
        assert expires_at is None or isinstance(expires_at, str)
        assert refresh_at is None or isinstance(refresh_at, str)
        return cls(
            _names(item.get("names"), "an entry's names"),
            plugin_id,
            description,
            cached,
            expires_at,
            refresh_at,
        )


class ResolveResponse:
    """The daemon's answer: resolved values (empty for explain), entry facts, warnings.

    With ``prompts`` the values are held back: the client asks the user and
    sends the same request again with ``answers``.
    """

    __slots__ = ("entries", "prompts", "values", "warnings")

    def __init__(
        self,
        values: Mapping[str, str],
        entries: tuple[EntryInfo, ...] = (),
        warnings: tuple[str, ...] = (),
        prompts: tuple[Prompt, ...] = (),
    ) -> None:
        self.values = values
        self.entries = entries
        self.warnings = warnings
        self.prompts = prompts

    def __repr__(self) -> str:
        return (
            f"ResolveResponse(names={sorted(self.values)!r}, warnings={self.warnings!r}, "
            f"prompts={self.prompts!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResolveResponse):
            return NotImplemented
        return (dict(self.values), self.entries, self.warnings, self.prompts) == (
            dict(other.values),
            other.entries,
            other.warnings,
            other.prompts,
        )

    __hash__ = None  # type: ignore[assignment]  # holds mappings

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "values": dict(self.values),
            "entries": [entry.to_json() for entry in self.entries],
            "warnings": list(self.warnings),
        }
        if self.prompts:
            body["prompts"] = [prompt.to_json() for prompt in self.prompts]
        return body

    @classmethod
    def from_json(cls, data: object) -> ResolveResponse:
        body = _expect(data, dict, "the response")
        assert isinstance(body, dict)
        values = _optional(body, "values", dict, {})
        assert isinstance(values, dict)
        # The client puts these in the environment of an exec: execve refuses
        # a name with '=' or a NUL in either, which must not surface as a crash.
        if not all(
            is_variable_name(k) and isinstance(v, str) and "\0" not in v for k, v in values.items()
        ):
            raise ProtocolError("values must map variable names to strings without NUL")
        entries = _optional(body, "entries", list, [])
        prompts = _optional(body, "prompts", list, [])
        assert isinstance(entries, list) and isinstance(prompts, list)
        warnings = _str_list(body.get("warnings", []), "warnings", empty=True)
        return cls(
            values,
            tuple(EntryInfo.from_json(e) for e in entries),
            warnings,
            tuple(Prompt.from_json(p) for p in prompts),
        )


class ParseRequest:
    """Configuration files to parse and merge: ``(absolute path, text)``, lowest precedence
    first. The client has read them (and judged who may have written them); the
    daemon only parses the text it is sent and never opens the files itself."""

    __slots__ = ("files",)

    def __init__(self, files: tuple[tuple[str, str], ...]) -> None:
        self.files = files

    def __repr__(self) -> str:
        return f"ParseRequest(paths={[path for path, _ in self.files]!r})"

    def to_json(self) -> dict[str, object]:
        return {"files": [{"path": path, "text": text} for path, text in self.files]}

    @classmethod
    def from_json(cls, data: object) -> ParseRequest:
        body = _expect(data, dict, "the request")
        assert isinstance(body, dict)
        items = _expect(body.get("files"), list, "files")
        assert isinstance(items, list)
        if len(items) > MAX_FILES:
            raise ProtocolError(f"a request may hold at most {MAX_FILES} files")
        files = []
        for data_item in items:
            item = _expect(data_item, dict, "a file")
            assert isinstance(item, dict)
            path = _expect(item.get("path"), str, "a file's path")
            text = _expect(item.get("text"), str, "a file's text")
            assert isinstance(path, str) and isinstance(text, str)
            if not path.startswith("/") or "\0" in path:
                raise ProtocolError("a file's path must be absolute")
            files.append((path, text))
        return cls(tuple(files))


class ParseResponse:
    """The merged configuration, and the version of wev that parsed it: a client
    keeps only what its own version's loader would have made."""

    __slots__ = ("variables", "version")

    def __init__(self, variables: tuple[VariableSpec, ...], version: str) -> None:
        self.variables = variables
        self.version = version

    def __repr__(self) -> str:
        return f"ParseResponse(variables={self.variables!r}, version={self.version!r})"

    def to_json(self) -> dict[str, object]:
        return {"variables": [v.to_json() for v in self.variables], "version": self.version}

    @classmethod
    def from_json(cls, data: object) -> ParseResponse:
        body = _expect(data, dict, "the response")
        assert isinstance(body, dict)
        variables = _expect(body.get("variables"), list, "variables")
        version = _optional(body, "version", str, "")
        assert isinstance(variables, list) and isinstance(version, str)
        return cls(tuple(VariableSpec.from_json(v) for v in variables), version)
