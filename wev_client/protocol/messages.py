"""The protocol's messages of every call: resolve and explain, validated as they arrive.

``from_json`` validates the shape of what arrives and raises ProtocolError,
never another exception; fields it does not know are ignored. Values and
secrets never appear in a message's repr. The messages of the side
exchanges (a plugin's questions, answers) are in ``side_messages``, and an
edited configuration's files and what they make in ``parsing``: a plain
``wev CMD`` loads neither.

One module a little over 400 lines on purpose: the request and the response
of every call, with the entries' facts they carry, read as one wire format.
"""

from __future__ import annotations

from wev_client.protocol import MAX_VARIABLES
from wev_client.protocol.errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from wev_client.protocol.parsing import ParseResponse
    from wev_client.protocol.side_messages import Prompt


def is_variable_name(name: object) -> bool:
    """Whether ``name`` can be set in an environment (``execve`` refuses ``=`` and NUL)."""
    return isinstance(name, str) and bool(name) and "=" not in name and "\0" not in name


def is_environment(mapping: Mapping[object, object]) -> bool:
    """Whether ``mapping`` maps variable names to strings without NUL, as ``execve`` needs.

    One C-level join of the names and one of the values instead of a Python
    test per item: a request carries the caller's whole environment.
    """
    names = list(mapping)
    try:
        joined_names, joined_values = "".join(names), "".join(mapping.values())  # type: ignore[arg-type]
    except TypeError:  # a name or a value that is no string
        return False
    return (
        "" not in names
        and "=" not in joined_names
        and "\0" not in joined_names
        and "\0" not in joined_values
    )


def expect(value: object, kind: type | tuple[type, ...], what: str) -> object:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else kind[0].__name__
        raise ProtocolError(f"{what} must be a {names}")
    return value


def _str_list(value: object, what: str, *, empty: bool = False) -> tuple[str, ...]:
    items = expect(value, (list, tuple), what)
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


def optional(item: Mapping[str, object], field: str, kind: type, default: object) -> object:
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
        item = expect(data, dict, "a variable")
        assert isinstance(item, dict)
        plugin = expect(item.get("plugin"), dict, "a variable's plugin")
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
    (Ctrl-C), so that the next client is asked instead. ``terminal``: the
    client can ask the user on its terminal (absent: it can, as older clients
    assumed); without one, the daemon asks on another channel, and answers
    with prompts to wait on: at once the first time, so that the client can
    say what it waits for, and after holding the request a while once it
    says ``wait``.

    ``files``: right after an edit, the configuration files' ``(path, text)``
    in place of ``variables``, as the parse route takes them: the daemon parses
    and merges them first and its response says what it made (``parsed``), so
    that an edit costs the client no round trip of its own.
    """

    __slots__ = (
        "answers",
        "cancel",
        "cwd",
        "env",
        "files",
        "process_env",
        "terminal",
        "variables",
        "wait",
    )

    def __init__(
        self,
        variables: tuple[VariableSpec, ...],
        env: Mapping[str, str],
        answers: Mapping[str, str] | None = None,
        cancel: tuple[str, ...] = (),
        *,
        process_env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        terminal: bool = True,
        wait: bool = False,
        files: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.variables = variables
        self.env = env
        self.answers: Mapping[str, str] = answers or {}
        self.cancel = cancel
        self.process_env: Mapping[str, str] = process_env or {}
        self.cwd = cwd
        self.terminal = terminal
        self.wait = wait
        self.files = files

    def __repr__(self) -> str:
        # The environment can hold AWS secret keys, the answers MFA codes: never print them.
        return (
            f"ResolveRequest(variables={self.variables!r}, env_keys={sorted(self.env)!r}, "
            f"answered={sorted(self.answers)!r}, cancel={self.cancel!r}, cwd={self.cwd!r}, "
            f"terminal={self.terminal!r}, wait={self.wait!r}, "
            f"files={[path for path, _ in self.files]!r})"
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
        return self.but(answers={**self.answers, **answers}, cancel=cancel)

    def but(
        self,
        *,
        answers: Mapping[str, str] | None = None,
        cancel: tuple[str, ...] | None = None,
        terminal: bool | None = None,
        wait: bool | None = None,
        variables: tuple[VariableSpec, ...] | None = None,
        files: tuple[tuple[str, str], ...] | None = None,
    ) -> ResolveRequest:
        """The same request with these fields changed."""
        return ResolveRequest(
            self.variables if variables is None else variables,
            self.env,
            self.answers if answers is None else answers,
            self.cancel if cancel is None else cancel,
            process_env=self.process_env,
            cwd=self.cwd,
            terminal=self.terminal if terminal is None else terminal,
            wait=self.wait if wait is None else wait,
            files=self.files if files is None else files,
        )

    def with_variables(self, variables: tuple[VariableSpec, ...]) -> ResolveRequest:
        """The same request carrying the variables made of its ``files`` instead of them."""
        return self.but(variables=variables, files=())

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
        if not self.terminal:
            body["terminal"] = False
        if self.wait:
            body["wait"] = True
        if self.files:  # after an edit only: in the parse route's shape
            from wev_client.protocol.parsing import ParseRequest

            body.update(ParseRequest(self.files).to_json())
        return body

    @classmethod
    def from_json(cls, data: object) -> ResolveRequest:
        body = expect(data, dict, "the request")
        assert isinstance(body, dict)
        variables = expect(body.get("variables"), list, "variables")
        env = optional(body, "env", dict, {})
        process_env = optional(body, "process_env", dict, {})
        answers = optional(body, "answers", dict, {})
        cwd = optional(body, "cwd", str, None)
        terminal = optional(body, "terminal", bool, True)
        wait = optional(body, "wait", bool, False)
        assert isinstance(terminal, bool) and isinstance(wait, bool)
        assert isinstance(variables, list) and isinstance(env, dict) and isinstance(answers, dict)
        assert isinstance(process_env, dict) and (cwd is None or isinstance(cwd, str))
        if len(variables) > MAX_VARIABLES:
            raise ProtocolError(f"a request may hold at most {MAX_VARIABLES} variables")
        for name, mapping in (("env", env), ("process_env", process_env)):
            if not is_environment(mapping):
                raise ProtocolError(f"{name} must map variable names to strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
            raise ProtocolError("answers must map prompt ids to strings")
        if cwd is not None and (not cwd.startswith("/") or "\0" in cwd):
            raise ProtocolError("cwd must be an absolute path")
        cancel = _str_list(body.get("cancel", []), "cancel", empty=True)
        files: tuple[tuple[str, str], ...] = ()
        if body.get("files") is not None:  # after an edit only
            from wev_client.protocol.parsing import ParseRequest

            files = ParseRequest.from_json(body).files
        return cls(
            tuple(VariableSpec.from_json(v) for v in variables),
            env,
            answers,
            cancel,
            process_env=process_env,
            cwd=cwd,
            terminal=terminal,
            wait=wait,
            files=files,
        )


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
        item = expect(data, dict, "an entry")
        assert isinstance(item, dict)
        plugin_id = optional(item, "plugin", str, "")
        description = optional(item, "description", str, "")
        cached = optional(item, "cached", bool, False)
        expires_at = optional(item, "expires_at", str, None)
        refresh_at = optional(item, "refresh_at", str, None)
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
    sends the same request again with ``answers``. ``secret`` names the values
    their plugins mark secret (None: not said, as by older daemons; take them
    all as secret). ``parsed``: what the daemon made of the request's ``files``
    (None when it carried none, or from an older daemon that ignored them).
    """

    __slots__ = ("entries", "parsed", "prompts", "secret", "values", "warnings")

    def __init__(
        self,
        values: Mapping[str, str],
        entries: tuple[EntryInfo, ...] = (),
        warnings: tuple[str, ...] = (),
        prompts: tuple[Prompt, ...] = (),
        *,
        secret: tuple[str, ...] | None = None,
        parsed: ParseResponse | None = None,
    ) -> None:
        self.values = values
        self.entries = entries
        self.warnings = warnings
        self.prompts = prompts
        self.secret = secret
        self.parsed = parsed

    def secret_values(self) -> list[str]:
        """The values to keep out of logs, in the order of their names."""
        names = self.values if self.secret is None else self.secret
        return [self.values[name] for name in names if name in self.values]

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
        if self.secret is not None:
            body["secret"] = list(self.secret)
        if self.parsed is not None:
            body["parsed"] = self.parsed.to_json()
        return body

    @classmethod
    def from_json(cls, data: object) -> ResolveResponse:
        body = expect(data, dict, "the response")
        assert isinstance(body, dict)
        values = expect(body.get("values"), dict, "the response's 'values'")  # never left out
        assert isinstance(values, dict)
        # The client puts these in the environment of an exec: execve refuses
        # a name with '=' or a NUL in either, which must not surface as a crash.
        if not is_environment(values):
            raise ProtocolError("values must map variable names to strings without NUL")
        entries = optional(body, "entries", list, [])
        prompts = optional(body, "prompts", list, [])
        assert isinstance(entries, list) and isinstance(prompts, list)
        warnings = _str_list(body.get("warnings", []), "warnings", empty=True)
        secret = body.get("secret")
        asked: tuple[Prompt, ...] = ()
        if prompts:  # a plugin's question: rare, so its message is loaded only then
            from wev_client.protocol.side_messages import Prompt

            asked = tuple(Prompt.from_json(p) for p in prompts)
        parsed = None
        if body.get("parsed") is not None:  # after an edit only
            from wev_client.protocol.parsing import ParseResponse

            parsed = ParseResponse.from_json(body["parsed"])
        return cls(
            values,
            tuple(EntryInfo.from_json(e) for e in entries),
            warnings,
            asked,
            secret=None if secret is None else _str_list(secret, "secret", empty=True),
            parsed=parsed,
        )
