"""The settings of a ``wev-awscodeartifact`` block: parsed and validated once, with one clear line.

What each configured name receives (``values``), the repository and its
format, ``proxy``, the token's duration and owner. Imported by the plugin
(``wev_daemon.plugins.awscodeartifact``) and by the daemon's proxy, which
routes proxied repositories by these settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wev_daemon.plugins import (
    PropertyError,
    optional_int,
    optional_kinds,
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
    #: The block lists its ``values`` (rather than leaving them to the defaults).
    listed: bool = False


def _parse_values(
    properties: Mapping[str, object], fmt: str | None, proxy: bool
) -> tuple[str, ...]:
    items = optional_kinds(properties, "values", VALUE_KINDS)
    if items is None and proxy:
        return (INDEX_URL if fmt == "pypi" else ENDPOINT,)
    if items is None:  # one name: the token; two with a repository: token and its URL
        if fmt is None:
            return (TOKEN,)
        return (TOKEN, INDEX_URL if fmt == "pypi" else ENDPOINT)
    for item in items:
        if item in REPOSITORY_KINDS and fmt is None:
            raise PropertyError(f"'values': {item} needs 'repository' and 'format'")
        if item == INDEX_URL and fmt != "pypi":
            raise PropertyError(f"'values': index_url is for format pypi, not {fmt}")
        if proxy and item not in PROXY_KINDS:
            raise PropertyError(
                f"'values': {item} is not handed out with proxy: true (the proxy keeps the "
                "token); use endpoint or index_url"
            )
    return items


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


def parse(properties: Mapping[str, object]) -> Settings:
    """Validate a block's properties once, with one clear line for what is wrong."""
    duration = optional_int(properties, "duration")
    if duration is None:
        duration = DEFAULT_DURATION
    if duration != 0 and not MIN_DURATION <= duration <= DEFAULT_DURATION:
        raise PropertyError(
            f"'duration' must be 0 or {MIN_DURATION} to {DEFAULT_DURATION} seconds, not {duration}"
        )
    repository = optional_str(properties, "repository") or None
    fmt = optional_str(properties, "format") or None
    if (repository is None) != (fmt is None):
        raise PropertyError("'repository' and 'format' go together (e.g. format: pypi)")
    if fmt is not None:
        fmt = fmt.lower()
    proxy = _parse_proxy(properties, fmt)
    account = optional_str(properties, "account") or None
    if account is not None and not (len(account) == 12 and account.isascii() and account.isdigit()):
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
        listed=properties.get("values") is not None,
        proxy=proxy,
    )
