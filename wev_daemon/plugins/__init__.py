"""The plugin interface: how a configured entry turns into values.

A plugin is a class registered under the ``wev.plugins`` entry-point group,
named by its id, so a third-party package adds one without touching wev::

    [project.entry-points."wev.plugins"]
    wev-example = "wev_example:ExamplePlugin"

Each plugin validates its properties once (``parse``), names the client
environment variables its result depends on (``context_vars``), and resolves
asynchronously to a Resolution: values plus an optional expiry. The daemon
caches resolutions, refreshes them before they expire and shares them between
clients; a plugin only fetches.

What is fetched and what an entry shows are two steps, so that entries that
differ only in how they are written share one fetch. ``identity`` says what
makes the secret (for an AWS token: the domain, owner, region, duration and
the caller's AWS identity, not the names or ``values`` of the entry); the
cache holds one ``resolve`` result per identity. ``present`` then makes one
entry's values from it (the token, a user name, an index URL carrying the
token). The defaults key on every setting and the whole context, and present
the fetched values as they are: a plugin without shared secrets overrides
neither. A second AWS token plugin adopts the AWS rule in a few lines::

    def identity(self, settings, context):
        return ("token", settings.registry, aws.identity(context, settings.profile,
                                                         settings.region))

A plugin that needs the user (an MFA code) calls ``await context.ask(text,
secret=True)``, passing ``process=`` a command that prints the answer when
its source configures one (the AWS profile's ``mfa_process``). The daemon has
no terminal: the first time, ``ask`` raises InputNeeded, the daemon gets the
answer on the best channel it has (a client's terminal, ``mfa_process``, an
askpass program, ``wev --answer``: see ``wev_daemon.questions``), and
``resolve`` runs again, where ``ask`` returns it. Keep the work before ``ask``
cheap, or cache it. A failure that only the user can fix by signing in says
so in its hint and names the folder that the sign-in changes in a ``watch``
attribute: a caller with no terminal then waits for it. A failure marked
``refused`` (AWS's AccessDenied) may be a wrong answer: it is asked again once.

A plugin marks which of its values are secrets (``Resolution.secret``):
tokens, passwords, session keys, a URL with a token inside; not a plain URL
or a user name. In CI, wev has the runner mask them in its logs.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import ClassVar, Generic, TypeVar

from wev_client.protocol import PLUGIN_ENTRY_POINTS

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PLUGIN_ENTRY_POINTS

SettingsT = TypeVar("SettingsT")


class PropertyError(ValueError):
    """A plugin property is missing or wrong; the message says which and why."""


@dataclass(frozen=True)
class Resolution:
    """Resolved values, in the order of the configured names, and when they expire.

    ``private`` holds what the daemon keeps for its own use beside the values
    (the loopback proxy's upstream token and endpoint): cached with them, never
    sent to a client, never shown.
    """

    values: tuple[str, ...]
    expires_at: datetime.datetime | None = None
    private: tuple[str, ...] = ()
    #: Which values are secrets, in order; empty means all of them.
    secret: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        if self.secret and len(self.secret) != len(self.values):
            raise ValueError("secret must mark each value")

    def is_secret(self, index: int) -> bool:
        return not self.secret or self.secret[index]

    def __repr__(self) -> str:
        return f"Resolution(<{len(self.values)} hidden values>, expires_at={self.expires_at!r})"


class InputNeeded(Exception):
    """Raised by ``Context.ask`` when the request carries no answer to the question yet.

    Not a WevError: the cache does not count it as an upstream failure, and the
    resolver turns it into a prompt for the client.
    """

    def __init__(self, text: str, *, secret: bool, process: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.secret = secret
        #: A command that prints the answer (``mfa_process``), when one is configured.
        self.process = process


#: Answers a question (text, secret, process): returns the user's answer, or
#: raises InputNeeded. Synchronous, so that botocore's own (synchronous) MFA
#: prompter can use it.
Asker = Callable[[str, bool, "str | None"], str]


def _no_answers(text: str, secret: bool, process: str | None) -> str:
    raise InputNeeded(text, secret=secret, process=process)


def _uncounted() -> None:
    return None


@dataclass(frozen=True)
class Context:
    """The requesting client's AWS context and, for helper processes, the rest.

    ``env`` holds the caller's variables a resolution may depend on: those the
    plugin's ``context_vars`` name (AWS_*, proxies, CA bundle and HOME with their
    paths made absolute, as ``protocol.context.context_env`` sends them).
    ``process_env`` (the client's whole environment) and ``cwd`` (its working
    folder) are what a ``credential_process`` helper runs with; ``asker``
    answers questions from the current request's answers. What of them keys
    the cache is the plugin's ``identity``; nothing here is ever printed.
    """

    env: Mapping[str, str]
    asker: Asker = field(default=_no_answers, compare=False)
    process_env: Mapping[str, str] = field(default_factory=dict, compare=False)
    cwd: str | None = field(default=None, compare=False)
    #: What the plugin's ``identity`` gave for this entry and request (None: nothing
    #: fetched, or not yet known), so ``present`` keys what it keeps without
    #: computing it again.
    identity: object = field(default=None, compare=False)
    #: The digest of ``identity`` (the entry's cache key), for keying what a plugin keeps
    #: for the identity without digesting it on every request; "" when not known.
    identity_key: str = field(default="", compare=False)
    #: Called for each request that reached the upstream service (AWS answered),
    #: which ``wev --status`` counts; AWS plugins' sessions call it themselves.
    reached_upstream: Callable[[], None] = field(default=_uncounted, compare=False)

    def __repr__(self) -> str:
        return f"Context(env_keys={sorted(self.env)!r})"

    async def ask(self, text: str, *, secret: bool = True, process: str | None = None) -> str:
        """The user's answer to ``text``; raises InputNeeded until the daemon has it.

        ``process``: a command that prints the answer, configured where the
        question comes from (the AWS profile's ``mfa_process``).
        """
        return self.asker(text, secret, process)

    def ask_sync(self, text: str, *, secret: bool = True, process: str | None = None) -> str:
        """``ask`` for synchronous callers (botocore's MFA prompter)."""
        return self.asker(text, secret, process)


class Plugin(ABC, Generic[SettingsT]):
    """Base class of plugins. Subclasses set ``id`` and implement ``parse`` and ``resolve``."""

    id: ClassVar[str]
    #: Property names the plugin understands; others are reported as warnings.
    properties: ClassVar[frozenset[str]] = frozenset()
    #: Client environment variables the result may depend on (``Context.env``; the
    #: default ``identity`` keys on all of them); a name ending in ``*`` stands for
    #: every name it starts (``AWS_*``). Names the same configuration resolves are
    #: never part of it.
    context_vars: ClassVar[tuple[str, ...]] = ()
    #: False for plugins that fetch nothing (their values come from the config):
    #: the daemon then resolves them on each request instead of caching them.
    cacheable: ClassVar[bool] = True

    @abstractmethod
    def parse(self, properties: Mapping[str, object]) -> SettingsT:
        """Validate the plugin block (without ``id``); raise PropertyError."""

    def value_count(self, settings: SettingsT) -> int:
        """How many values a resolution holds (the number of names to configure)."""
        return 1

    def count_hint(self, settings: SettingsT, names: int) -> str:
        """How the entry could resolve ``names`` values instead, for the error when a key
        names another number of variables than ``value_count``; "" if it cannot."""
        return ""

    def describe(self, settings: SettingsT, context: Context) -> str:
        """A short, secret-free description for ``--explain`` and ``--status``."""
        return ""

    def identity(self, settings: SettingsT, context: Context) -> object:
        """What the fetched secret depends on: entries with equal identities share one
        ``resolve`` (one cache entry, one upstream call). Plain data (tuples, mappings,
        strings, dataclasses); never shown, only digested. None: this entry needs nothing
        fetched, ``present`` alone makes its values.

        The default: every setting and the whole ``context.env``.
        """
        return (settings, dict(context.env))

    @abstractmethod
    async def resolve(self, settings: SettingsT, context: Context) -> Resolution:
        """Fetch what ``identity`` names; raise protocol.errors.UpstreamError with a clear
        message on failure."""

    async def present(
        self, settings: SettingsT, context: Context, fetched: Resolution | None
    ) -> Resolution:
        """This entry's values from the (cached, shared) fetched resolution; the default
        hands it on as it is. Runs on every request: keep it cheap."""
        if fetched is None:
            raise ValueError(f"{self.id}: nothing was fetched to present (a plugin bug)")
        return fetched

    def forget(self, settings: SettingsT, context: Context) -> None:
        """Drop what the plugin remembers for this entry (``wev --forget``)."""

    def forget_all(self) -> None:
        """Drop everything the plugin remembers (``wev --forget --all``)."""


def load_plugins() -> dict[str, Plugin[object]]:
    """Every installed plugin, by id. One that cannot be loaded (a missing dependency, a
    bug) stands in as ``Unloadable``: its entries say why, every other keeps working."""
    plugins: dict[str, Plugin[object]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
            if isinstance(cls, type) and issubclass(cls, Plugin):
                plugins[cls.id] = cls()
        except Exception as error:  # whatever a plugin's import raises
            reason = f"{type(error).__name__}: {error}"
            log.info("plugin %s (%s) cannot be loaded: %s", entry.name, entry.value, reason)
            plugins.setdefault(entry.name, Unloadable(entry.name, reason))
    return plugins


class Unloadable(Plugin[object]):
    """An installed plugin that could not be loaded: each entry naming it is a
    configuration error that says why."""

    id = ""

    def __init__(self, plugin_id: str, reason: str) -> None:
        self.id = plugin_id  # type: ignore[misc]  # one per installed plugin, not per class
        self.reason = reason

    def parse(self, properties: Mapping[str, object]) -> object:
        raise PropertyError(f"installed, but it cannot be loaded ({self.reason})")

    async def resolve(self, settings: object, context: Context) -> Resolution:
        raise PropertyError(self.reason)  # never reached: parse refuses every entry


def digest(*parts: object) -> str:
    """A stable key for ``parts`` (settings, a client context) that keeps no secret.

    Contexts hold the client's secret key, so caches key on this digest of
    them, never on the values themselves.
    """
    return hashlib.sha256(_CANONICAL.encode(parts).encode()).hexdigest()


def identity_key(plugin_id: str, identity: object) -> str:
    """The cache key of what ``plugin_id`` fetches for ``identity`` (``Plugin.identity``):
    a digest, so that the key, which may be shown in logs while debugging, never
    carries the client's secret key."""
    return digest(plugin_id, identity)


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"": type(value).__qualname__, **dataclasses.asdict(value)}
    return repr(value)


#: ``json.dumps(parts, sort_keys=True, default=_jsonable)``, its encoder made once: a
#: key is digested for each entry of each request.
_CANONICAL = json.JSONEncoder(sort_keys=True, default=_jsonable)


# -- helpers for parse() -------------------------------------------------------
#
# The configuration's loader keeps an integer written in any form but plain
# decimal as its text ("012345670123"), so a string property receives what the
# user wrote, and a number property reads it here.


def optional_str(properties: Mapping[str, object], name: str) -> str | None:
    """Text, or a whole number as written (``account: 123456789012``); None when absent."""
    value = properties.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        quote = "" if isinstance(value, list | tuple | Mapping) else "; quote it to mean the text"
        raise PropertyError(f"'{name}' must be a string, not {_kind(value)}{quote}")
    return str(value)


def required_str(properties: Mapping[str, object], name: str) -> str:
    value = optional_str(properties, name)
    if not value:
        raise PropertyError(f"'{name}' is required")
    return value


def optional_kinds(
    properties: Mapping[str, object], name: str, known: tuple[str, ...]
) -> tuple[str, ...] | None:
    """A list of ``known`` words (or one of them alone), in order; None when absent."""
    raw = properties.get(name)
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else raw
    listed = ", ".join(known)
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PropertyError(f"'{name}' must be a list of: {listed}")
    for item in items:
        if item not in known:
            raise PropertyError(f"'{name}': unknown value {item!r} (known: {listed})")
    return tuple(items)


def optional_int(properties: Mapping[str, object], name: str) -> int | None:
    """A whole number: decimal even with leading zeros ("0900"), or 0x/0o/0b, or 1:30."""
    value = properties.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _whole_number(value) if isinstance(value, str) else None
    if number is None:
        raise PropertyError(f"'{name}' must be a whole number, not {_kind(value)}")
    return number


def _whole_number(text: str) -> int | None:
    """The number YAML 1.1 writers mean, except that a leading zero is not octal."""
    digits = text.strip().replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    if digits[:1] in ("+", "-"):
        digits = digits[1:]
    if not (digits.isascii() and digits.replace(":", "").isalnum()):
        return None
    if ":" in digits:  # sexagesimal, as YAML 1.1 reads 1:30 (90)
        parts = digits.split(":")
        if not all(part.isdigit() for part in parts):
            return None
        total = 0
        for part in parts:
            total = total * 60 + int(part)
        return sign * total
    try:
        return sign * (int(digits, 10) if digits.isdigit() else int(digits, 0))
    except ValueError:
        return None


def _kind(value: object) -> str:
    """What a wrong value is, in the user's terms, with the value when it is short."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else "that text"
    return f"a {type(value).__name__}"
