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
repository and identity. A block that hands out only endpoints fetches no token:
its fetch is the endpoint, held in the cache as a token is.

Rooms: ``settings`` parses a block, ``calls`` makes the two AWS calls; this
module is the plugin itself: identities, kept endpoints and each block's values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote

from wev_client.protocol.aws import CODEARTIFACT_PLUGIN_ID
from wev_client.protocol.aws import CODEARTIFACT_USERNAME as USERNAME
from wev_daemon import aws
from wev_daemon.plugins import Context, Plugin, Resolution, identity_key
from wev_daemon.plugins.awscodeartifact import calls, settings
from wev_daemon.plugins.awscodeartifact.settings import (
    ENDPOINT,
    INDEX_URL,
    PROXY_FORMATS,
    REPOSITORY_KINDS,
    TOKEN,
    TOKEN_KINDS,
    VALUE_KINDS,
    Settings,
)
from wev_daemon.plugins.shared_calls import SharedCalls

__all__ = ["PROXY_FORMATS", "CodeArtifactPlugin", "Settings", "index_url"]

#: Endpoints kept at most (one per repository and identity; a user has a handful).
MAX_ENDPOINTS = 256


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

    id = CODEARTIFACT_PLUGIN_ID
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
        return settings.parse(properties)

    def value_count(self, settings: Settings) -> int:
        return len(settings.values)

    def count_hint(self, settings: Settings, names: int) -> str:
        if settings.listed:  # one kind in 'values' for each name of the key
            return f"list {names} kinds in 'values', one for each name"
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
        if credentials := aws.credentials_text(context.env, settings.profile):
            parts.append(credentials)
        return ", ".join(parts)

    def identity(self, settings: Settings, context: Context) -> object:
        """The token's identity; for a block that hands out only its repository's endpoint,
        the endpoint's (fetched through the cache like a token, so that a question its call
        needs, an MFA code, reaches every channel); None for a block that needs neither."""
        if _hands_out_token(settings):
            return _token_identity(settings, context)
        if REPOSITORY_KINDS.intersection(settings.values):
            return (
                "endpoint",
                settings.repository,
                settings.format,
                _token_identity(settings, context),
            )
        return None

    async def resolve(self, settings: Settings, context: Context) -> Resolution:
        """The token alone, what every block of this identity shares; or the endpoint alone,
        which never expires."""
        if not _hands_out_token(settings):
            return Resolution((await self._endpoint(settings, context),), None)
        token, expiration = await calls.fetch_token(settings, context)
        return Resolution((token,), expiration)

    async def present(
        self, settings: Settings, context: Context, fetched: Resolution | None
    ) -> Resolution:
        # A block of endpoints alone fetched its endpoint, not a token.
        fetched_token = fetched if _hands_out_token(settings) else None
        token = fetched_token.values[0] if fetched_token is not None else ""
        expiration = fetched_token.expires_at if fetched_token is not None else None
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
        return await self._endpoints.get(key, lambda: calls.fetch_endpoint(settings, context))

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


def _hands_out_token(settings: Settings) -> bool:
    return settings.proxy or bool(TOKEN_KINDS.intersection(settings.values))


def _endpoint_key(settings: Settings, context: Context) -> str:
    """The repository within the token's identity (digested once per request: ``Context``)."""
    # A block without a token: its token's identity all the same, so blocks share endpoints.
    key = (context.identity_key if _hands_out_token(settings) else "") or identity_key(
        CODEARTIFACT_PLUGIN_ID, _token_identity(settings, context)
    )
    return f"{key}/{settings.repository}/{settings.format}"
