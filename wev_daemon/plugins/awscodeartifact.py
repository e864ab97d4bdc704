"""``wev-awscodeartifact``: an AWS CodeArtifact token, and ready-to-use repository URLs.

Calls ``GetAuthorizationToken`` in the requesting client's AWS context; the
token's expiry is the ``expiration`` AWS returns, not an assumed duration.

With ``repository`` and ``format`` it also asks ``GetRepositoryEndpoint``, so
one block can hand each package tool the variables it reads: the token, the
user name ``aws``, the endpoint, or (PyPI) an index URL carrying the token.
``values`` names what each configured name receives, in order.

With ``proxy: true`` the repository's URLs are the daemon's loopback proxy
(``wev_daemon.proxy``), which holds no token in them and never changes; the
token and the real endpoint stay in the resolution's ``private`` part, cached
like any value. Without a daemon (``WEV_NO_DAEMON=1``) such an entry gets the
direct URLs instead, so a CI job with the same ``wev.yml`` still works.

A profile with ``mfa_serial`` (assume-role with MFA) gets its code through the
client that asked (``Context.ask``), as ``wev-awsmfa`` does.

Caching: the daemon caches the token per identity (``identity``: the domain,
the owner as written or the caller's default account, the region as botocore
resolves it, the duration and the caller's AWS identity), so blocks that
differ in names, ``values``, ``repository`` or ``proxy``, or that spell out a
default, share one token and one ``GetAuthorizationToken`` call, whichever
door asks; ``present`` makes each block's values from it. Endpoints never
expire, so this plugin keeps them for the daemon's life, asking AWS once per
repository and identity. A block that hands out only endpoints fetches no token.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from wev_client.protocol.aws import CODEARTIFACT_USERNAME as USERNAME
from wev_daemon import aws
from wev_daemon.plugins import (
    Context,
    InputNeeded,
    Plugin,
    PropertyError,
    Resolution,
    digest,
    optional_int,
    optional_str,
    required_str,
)

DEFAULT_DURATION = 43200  # 12 hours, the longest AWS allows
MIN_DURATION = 900

TOKEN = "token"  # noqa: S105 - the name of a value kind, not a secret
ENDPOINT = "endpoint"
INDEX_URL = "index_url"
VALUE_KINDS = (TOKEN, "username", ENDPOINT, INDEX_URL)
#: Kinds that need ``repository`` and ``format``.
REPOSITORY_KINDS = frozenset({ENDPOINT, INDEX_URL})
#: Kinds that carry the token.
TOKEN_KINDS = frozenset({TOKEN, INDEX_URL})

#: Formats the loopback proxy serves, and how each sends the token upstream.
PROXY_FORMATS = {"pypi": "basic", "npm": "bearer", "maven": "basic"}
#: What a proxied entry may hand out: its URLs, never the token.
PROXY_KINDS = frozenset({ENDPOINT, INDEX_URL})

#: Endpoints kept at most (one per repository and identity; a user has a handful).
MAX_ENDPOINTS = 256

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    domain: str
    account: str | None
    region: str | None
    profile: str | None
    duration: int
    repository: str | None = None
    format: str | None = None
    values: tuple[str, ...] = (TOKEN,)
    proxy: bool = False


def _parse_values(
    properties: Mapping[str, object], fmt: str | None, proxy: bool
) -> tuple[str, ...]:
    raw = properties.get("values")
    if raw is None and proxy:
        return (INDEX_URL if fmt == "pypi" else ENDPOINT,)
    if raw is None:  # one name: the token; two with a repository: token and its URL
        if fmt is None:
            return (TOKEN,)
        return (TOKEN, INDEX_URL if fmt == "pypi" else ENDPOINT)
    items = [raw] if isinstance(raw, str) else raw
    known = ", ".join(VALUE_KINDS)
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PropertyError(f"'values' must be a list of: {known}")
    for item in items:
        if item not in VALUE_KINDS:
            raise PropertyError(f"'values': unknown value {item!r} (known: {known})")
        if item in REPOSITORY_KINDS and fmt is None:
            raise PropertyError(f"'values': {item} needs 'repository' and 'format'")
        if item == INDEX_URL and fmt != "pypi":
            raise PropertyError(f"'values': index_url is for format pypi, not {fmt}")
        if proxy and item not in PROXY_KINDS:
            raise PropertyError(
                f"'values': {item} is not handed out with proxy: true (the proxy keeps the "
                "token); use endpoint or index_url"
            )
    return tuple(items)


def _parse_proxy(properties: Mapping[str, object], fmt: str | None) -> bool:
    raw = properties.get("proxy", False)
    if not isinstance(raw, bool):
        raise PropertyError(f"'proxy' must be true or false, not {raw!r}")
    if raw and fmt is None:
        raise PropertyError("'proxy' needs 'repository' and 'format'")
    if raw and fmt not in PROXY_FORMATS:
        known = ", ".join(PROXY_FORMATS)
        raise PropertyError(f"'proxy': format {fmt} is not proxied (known: {known})")
    return raw


def index_url(endpoint: str, token: str) -> str:
    """``https://aws:TOKEN@host/pypi/repo/simple/`` from a PyPI repository endpoint."""
    scheme, separator, rest = endpoint.partition("://")
    if not separator or not rest:
        raise aws.FetchError(f"AWS sent an unexpected repository endpoint: {endpoint!r}")
    if not rest.endswith("/"):
        rest += "/"
    return f"{scheme}://{USERNAME}:{quote(token, safe='')}@{rest}simple/"


class CodeArtifactPlugin(Plugin[Settings]):
    """Properties: ``domain`` (required), ``account``, ``region``, ``profile``, ``duration``,
    ``repository`` and ``format`` (together), ``values``."""

    id = "wev-awscodeartifact"
    # cache_duration: read by the earlier wev's plugin; the real expiry is used instead.
    properties = frozenset(
        {
            "domain",
            "account",
            "region",
            "profile",
            "duration",
            "cache_duration",
            "repository",
            "format",
            "values",
            "proxy",
        }
    )
    context_vars = aws.AWS_CONTEXT

    def __init__(self) -> None:
        # In the daemon's memory only, like the cache; keys are digests.
        self._endpoints = SharedCalls[str](keep=True, limit=MAX_ENDPOINTS)
        #: The loopback URL of a proxied repository (ending in "/"), set by the
        #: daemon's proxy; None in the client's own process.
        self.proxy_endpoint: Callable[[Settings], str] | None = None

    def parse(self, properties: Mapping[str, object]) -> Settings:
        duration = optional_int(properties, "duration")
        if duration is None:
            duration = DEFAULT_DURATION
        if duration != 0 and not MIN_DURATION <= duration <= DEFAULT_DURATION:
            raise PropertyError(
                f"'duration' must be 0 or {MIN_DURATION} to {DEFAULT_DURATION} seconds, "
                f"not {duration}"
            )
        repository = optional_str(properties, "repository") or None
        fmt = optional_str(properties, "format") or None
        if (repository is None) != (fmt is None):
            raise PropertyError("'repository' and 'format' go together (e.g. format: pypi)")
        if fmt is not None:
            fmt = fmt.lower()
        proxy = _parse_proxy(properties, fmt)
        account = optional_str(properties, "account") or None
        if account is not None and not (
            len(account) == 12 and account.isascii() and account.isdigit()
        ):
            raise PropertyError(
                f"'account' must be the 12 digits of an AWS account id, not {account!r}"
            )
        return Settings(
            domain=required_str(properties, "domain"),
            account=account,
            region=optional_str(properties, "region"),
            profile=optional_str(properties, "profile"),
            duration=duration,
            repository=repository,
            format=fmt,
            values=_parse_values(properties, fmt, proxy),
            proxy=proxy,
        )

    def value_count(self, settings: Settings) -> int:
        return len(settings.values)

    def count_hint(self, settings: Settings, names: int) -> str:
        hint = f"say what each name receives with 'values' ({', '.join(VALUE_KINDS)})"
        if names == 2 and settings.format is None and not settings.proxy:
            hint += ", or add 'repository' and 'format' for the token and the repository's URL"
        return hint

    def describe(self, settings: Settings, context: Context) -> str:
        parts = [f"domain {settings.domain}"]
        if settings.account:
            parts.append(f"account {settings.account}")
        if settings.repository:
            parts.append(f"repository {settings.repository} ({settings.format})")
        if settings.proxy:
            parts.append("through the loopback proxy")
        if region := aws.region_for(context.env, settings.region, settings.profile):
            parts.append(f"region {region}")
        if profile := aws.profile_name(context.env, settings.profile):
            parts.append(f"profile {profile}")
        elif context.env.get("AWS_ACCESS_KEY_ID"):
            parts.append("keys from the environment")
        return ", ".join(parts)

    def identity(self, settings: Settings, context: Context) -> object:
        """The token's identity; None for a block that hands out no token (nor proxies one)."""
        if not settings.proxy and not TOKEN_KINDS.intersection(settings.values):
            return None
        return _token_identity(settings, context)

    async def resolve(self, settings: Settings, context: Context) -> Resolution:
        """The token alone: what every block of this identity shares."""
        token, expiration = await _fetch_token(settings, context)
        return Resolution((token,), expiration)

    async def present(
        self, settings: Settings, context: Context, fetched: Resolution | None
    ) -> Resolution:
        token = fetched.values[0] if fetched is not None else ""
        expiration = fetched.expires_at if fetched is not None else None
        if settings.proxy and self.proxy_endpoint is not None:
            endpoint = await self._endpoint(settings, context)
            local = self.proxy_endpoint(settings)
            urls = {ENDPOINT: local, INDEX_URL: local + "simple/"}
            values = tuple(urls[kind] for kind in settings.values)
            return Resolution(values, expiration, (token, endpoint), _secrets(values))
        endpoint = ""
        if REPOSITORY_KINDS.intersection(settings.values):
            endpoint = await self._endpoint(settings, context)
        by_kind = {TOKEN: token, "username": USERNAME, ENDPOINT: endpoint}
        if INDEX_URL in settings.values:
            by_kind[INDEX_URL] = index_url(endpoint, token)
        values = tuple(by_kind[kind] for kind in settings.values)
        return Resolution(values, expiration, secret=_secrets(values, token))

    # -- the endpoint, kept ----------------------------------------------------------------

    async def _endpoint(self, settings: Settings, context: Context) -> str:
        key = _endpoint_key(settings, context)
        return await self._endpoints.get(key, lambda: _fetch_endpoint(settings, context))

    def forget(self, settings: Settings, context: Context) -> None:
        self._endpoints.forget(_endpoint_key(settings, context))

    def forget_all(self) -> None:
        self._endpoints.clear()


def _secrets(values: tuple[str, ...], token: str | None = None) -> tuple[bool, ...]:
    """Which values are secrets: the token, and any URL that carries it (or the proxy's
    own secret, as its user information); not a plain endpoint nor the user name."""
    return tuple(
        bool(token and token in value) or "@" in value.partition("://")[2].partition("/")[0]
        for value in values
    )


def _token_identity(settings: Settings, context: Context) -> tuple[object, ...]:
    return (
        "token",
        settings.domain,
        settings.account,  # None: the caller's own account, as AWS takes it
        settings.duration,
        aws.identity(context, settings.profile, settings.region),
    )


def _endpoint_key(settings: Settings, context: Context) -> str:
    """The repository within the token's identity (computed once per request: ``Context``)."""
    identity = context.identity
    if identity is None:  # a block without a token: its token's identity all the same
        identity = _token_identity(settings, context)
    return digest("endpoint", settings.repository, settings.format, identity)


class SharedCalls(Generic[T]):
    """One AWS call per key at a time, shared by every block that waits for it.

    ``keep`` keeps a success for good (failures never), at most ``limit`` of
    them. When the last waiter gives up (the cache abandons a fetch at its
    limit, ``wev --forget``), the call is cancelled too, so a hung call (a
    ``credential_process`` that never answers) cannot outlive every fetch.
    """

    def __init__(self, *, keep: bool, limit: int = 0) -> None:
        self.keep = keep
        self.limit = limit
        self.tasks: dict[str, asyncio.Task[T]] = {}
        self._waiters: dict[asyncio.Task[T], int] = {}

    async def get(self, key: str, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self.tasks.get(key)
        if task is None:
            while self.limit and len(self.tasks) >= self.limit:  # oldest first: dicts keep order
                del self.tasks[next(iter(self.tasks))]
            task = self.tasks[key] = asyncio.create_task(start())
            task.add_done_callback(lambda done: self._done(key, done))
        self._waiters[task] = self._waiters.get(task, 0) + 1
        try:
            # Shielded: one block giving up must not cancel another's wait.
            return await asyncio.shield(task)
        except aws.FetchError as error:  # each waiter gets its own error object, of its kind
            raise type(error)(
                error.message,
                hint=error.hint,
                transient=error.transient,
                local=error.local,
                watch=error.watch,
                refused=error.refused,
            ) from None
        finally:
            left = self._waiters.pop(task) - 1
            if left:
                self._waiters[task] = left
            elif not task.done():
                task.cancel()

    def forget(self, key: str) -> None:
        self.tasks.pop(key, None)

    def clear(self) -> None:
        self.tasks.clear()

    def _done(self, key: str, done: asyncio.Task[T]) -> None:
        # Retrieving the exception here also keeps asyncio from logging it
        # when every waiter has gone.
        failed = done.cancelled() or done.exception() is not None
        if (failed or not self.keep) and self.tasks.get(key) is done:
            del self.tasks[key]


def _what(settings: Settings, context: Context, thing: str) -> tuple[str, str | None]:
    profile = aws.profile_name(context.env, settings.profile)
    what = f"{thing} for domain {settings.domain}"
    return (what + f" (profile {profile})" if profile else what), profile


def _client(settings: Settings, context: Context) -> Any:  # aiobotocore is untyped
    session = aws.session_for(context, profile=settings.profile)
    aws.answer_mfa_prompts(
        session,
        lambda text: context.ask_sync(text, secret=True, process=aws.mfa_process(session)),
    )
    return session.create_client(
        "codeartifact",
        region_name=aws.region_for(context.env, settings.region, settings.profile),
        config=aws.CLIENT_CONFIG,
    )


async def _fetch_token(settings: Settings, context: Context) -> tuple[str, datetime.datetime]:
    what, profile = _what(settings, context, "CodeArtifact token")
    params: dict[str, object] = {"domain": settings.domain}
    if settings.account:
        params["domainOwner"] = settings.account
    params["durationSeconds"] = settings.duration
    try:
        async with _client(settings, context) as client:
            reply = await client.get_authorization_token(**params)
        token = reply["authorizationToken"]
        expiration = reply["expiration"]
    except InputNeeded:
        raise  # the profile's MFA code: asked through the client
    except Exception as error:  # every SDK failure becomes one clear line
        raise aws.fetch_error(error, what, profile, context.env.get("HOME")) from None
    if not isinstance(token, str) or not isinstance(expiration, datetime.datetime):
        raise aws.FetchError(f"{what}: AWS sent an unexpected reply", transient=True)
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=datetime.UTC)
    return token, expiration


async def _fetch_endpoint(settings: Settings, context: Context) -> str:
    what, profile = _what(
        settings,
        context,
        f"CodeArtifact endpoint of repository {settings.repository} ({settings.format})",
    )
    params: dict[str, object] = {
        "domain": settings.domain,
        "repository": settings.repository,
        "format": settings.format,
    }
    if settings.account:
        params["domainOwner"] = settings.account
    try:
        async with _client(settings, context) as client:
            reply = await client.get_repository_endpoint(**params)
        endpoint = reply["repositoryEndpoint"]
    except InputNeeded:
        raise
    except Exception as error:  # every SDK failure becomes one clear line
        raise aws.fetch_error(error, what, profile, context.env.get("HOME")) from None
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise aws.FetchError(f"{what}: AWS sent an unexpected reply", transient=True)
    return endpoint
