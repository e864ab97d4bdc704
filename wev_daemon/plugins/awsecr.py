"""``wev-awsecr``: the password of an Amazon ECR registry, and what Docker needs with it.

Calls ECR's ``GetAuthorizationToken`` (ECR Public's for ``public.ecr.aws``,
in us-east-1) in the requesting client's AWS context; AWS answers base64
``AWS:<password>`` and the ``expiresAt`` that the cache keeps it until. The
registry is a host (``ACCOUNT.dkr.ecr.REGION.amazonaws.com``), or
``account`` and ``region``; a ``*`` in either (or leaving it out) means the
caller's own account or region, as ECR does when it is not named.

A token is made by who asks and for which registry: ``identity`` names
exactly that (service, account, region, role, and the caller's AWS identity
as ``aws.identity`` resolves it), so the daemon's cache keeps one token per
identity; ``present`` gives each entry the values it asks for (``values``)
from that one token, so entries that differ only in their names or values
share one ``GetAuthorizationToken`` call, whichever door asks.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig

from wev_client import ecr
from wev_daemon import aws
from wev_daemon.plugins import (
    Context,
    InputNeeded,
    Plugin,
    PropertyError,
    Resolution,
    optional_kinds,
    optional_str,
)

PASSWORD = "password"  # noqa: S105 - the name of a value kind, not a secret
VALUE_KINDS = (PASSWORD, "username", "registry", "auth")
#: What a CI log must never show: the password, and ``auth``, which carries it.
SECRET_KINDS = frozenset({PASSWORD, "auth"})
#: The session name CloudTrail shows for a ``role`` assumed for a token.
ROLE_SESSION_NAME = "wev-awsecr"
_FIPS_CONFIG = AioConfig(use_fips_endpoint=True)


@dataclass(frozen=True)
class Settings:
    registry: ecr.Registry
    profile: str | None = None
    role: str | None = None
    values: tuple[str, ...] = (PASSWORD,)


@dataclass(frozen=True)
class Token:
    """One GetAuthorizationToken answer: every value an entry can ask for. Hidden in repr."""

    username: str = field(repr=False)
    password: str = field(repr=False)
    #: Docker's ``auth``: base64 ``username:password``, as AWS sends it.
    auth: str = field(repr=False)
    #: The registry host AWS names (``proxyEndpoint``); "" when it names none.
    host: str
    expires_at: datetime.datetime


def _parse_registry(properties: Mapping[str, object]) -> ecr.Registry:
    written = optional_str(properties, "registry")
    account = optional_str(properties, "account")
    region = optional_str(properties, "region")
    if written is not None and (account is not None or region is not None):
        raise PropertyError("'registry' names the account and region: leave out the other two")
    if (
        account is not None
        and account != ecr.WILDCARD
        and not (len(account) == 12 and account.isascii() and account.isdigit())
    ):
        raise PropertyError(
            f"'account' must be the 12 digits of an AWS account id, not {account!r}"
        )
    registry = ecr.configured_registry(
        {"registry": written} if written is not None else {"account": account, "region": region}
    )
    if registry is None:
        raise PropertyError(
            f"'registry' must be an ECR registry host, ACCOUNT.dkr.ecr.REGION.amazonaws.com "
            f"(either may be *), or {ecr.PUBLIC_HOSTS[0]}; not {written or region!r}"
        )
    return registry


def _parse_values(properties: Mapping[str, object]) -> tuple[str, ...]:
    return optional_kinds(properties, "values", VALUE_KINDS) or (PASSWORD,)


class EcrPlugin(Plugin[Settings]):
    """Properties: ``registry`` (a host or pattern), or ``account`` and ``region``;
    ``profile``, ``role``, ``values``."""

    id = ecr.PLUGIN_ID
    properties = frozenset({"registry", "account", "region", "profile", "role", "values"})
    context_vars = aws.AWS_CONTEXT

    def parse(self, properties: Mapping[str, object]) -> Settings:
        role = optional_str(properties, "role") or None
        if role is not None and not (role.startswith("arn:") and ":role/" in role):
            raise PropertyError(
                f"'role' must be a role ARN, arn:aws:iam::ACCOUNT:role/NAME; not {role!r}"
            )
        return Settings(
            registry=_parse_registry(properties),
            profile=optional_str(properties, "profile") or None,
            role=role,
            values=_parse_values(properties),
        )

    def value_count(self, settings: Settings) -> int:
        return len(settings.values)

    def count_hint(self, settings: Settings, names: int) -> str:
        return f"say what each name receives with 'values' ({', '.join(VALUE_KINDS)})"

    def describe(self, settings: Settings, context: Context) -> str:
        parts = [f"ECR registry {_registry_text(settings, context)}"]
        if settings.role:
            parts.append(f"role {settings.role}")
        if credentials := aws.credentials_text(context.env, settings.profile):
            parts.append(credentials)
        return ", ".join(parts)

    def identity(self, settings: Settings, context: Context) -> tuple[object, ...]:
        """What makes the token: the registry's service, account and region, and who asks
        (profile, role and the caller's AWS identity). Equal identities share one token,
        whatever values their entries show."""
        registry = settings.registry
        region = ecr.PUBLIC_REGION if registry.public else registry.region
        who = aws.identity(context, settings.profile, region)
        service = "ecr-public" if registry.public else "ecr"
        return ("token", service, registry.account, registry.fips, settings.role, who)

    async def resolve(self, settings: Settings, context: Context) -> Resolution:
        """One GetAuthorizationToken call: username, password, ``auth`` and the host AWS
        names, in that order; ``present`` picks an entry's values from them."""
        token = await _fetch(settings, context)
        values = (token.username, token.password, token.auth, token.host)
        return Resolution(values, token.expires_at)

    async def present(
        self, settings: Settings, context: Context, fetched: Resolution | None
    ) -> Resolution:
        if fetched is None:
            raise ValueError(f"{self.id}: nothing was fetched to present (a plugin bug)")
        username, password, auth, named = fetched.values
        registry = settings.registry
        host = named if registry.is_pattern and named else registry.host
        by_kind = {PASSWORD: password, "username": username, "registry": host, "auth": auth}
        values = tuple(by_kind[kind] for kind in settings.values)
        secret = tuple(kind in SECRET_KINDS for kind in settings.values)
        return Resolution(values, fetched.expires_at, secret=secret)


def _registry_text(settings: Settings, context: Context) -> str:
    registry = settings.registry
    if not registry.is_pattern:
        return registry.host
    account = registry.account or "your account"
    region = registry.region or aws.region_for(context.env, None, settings.profile)
    region = region or "your region"
    return f"of {account} in {region}"


async def _fetch(settings: Settings, context: Context) -> Token:
    registry = settings.registry
    profile = aws.profile_name(context.env, settings.profile)
    what = f"ECR password for {_registry_text(settings, context)}"
    if profile:
        what += f" (profile {profile})"
    region = ecr.PUBLIC_REGION if registry.public else registry.region
    region = region or aws.region_for(context.env, None, settings.profile)
    try:
        session = aws.session_for(context, profile=settings.profile)
        aws.answer_mfa_prompts(session, context)
        keys = await _assume(session, settings.role, region) if settings.role else {}
        config = aws.CLIENT_CONFIG.merge(_FIPS_CONFIG) if registry.fips else aws.CLIENT_CONFIG
        service = "ecr-public" if registry.public else "ecr"
        params: dict[str, object] = {}
        if registry.account:
            params["registryIds"] = [registry.account]
        async with session.create_client(
            service, region_name=region, config=config, **keys
        ) as client:
            reply = await client.get_authorization_token(**params)
        data = reply["authorizationData"]
        if not registry.public:
            data = data[0]  # one per registry asked for: one was
        encoded, expires_at = data["authorizationToken"], data["expiresAt"]
        endpoint = data.get("proxyEndpoint", "")
    except (InputNeeded, aws.FetchError):
        raise
    except Exception as error:  # every SDK failure becomes one clear line
        raise aws.fetch_error(error, what, profile, context.env.get("HOME")) from None
    token = _token(encoded, expires_at, endpoint)
    if token is None:
        raise aws.FetchError(f"{what}: AWS sent an unexpected reply", transient=True)
    return token


async def _assume(session: Any, role: str, region: str | None) -> dict[str, str]:
    """Keys of ``role``, assumed with the caller's credentials, for one token fetch."""
    async with session.create_client("sts", region_name=region, config=aws.CLIENT_CONFIG) as sts:
        reply = await sts.assume_role(RoleArn=role, RoleSessionName=ROLE_SESSION_NAME)
    keys = reply["Credentials"]
    return {
        "aws_access_key_id": keys["AccessKeyId"],
        "aws_secret_access_key": keys["SecretAccessKey"],
        "aws_session_token": keys["SessionToken"],
    }


def _token(encoded: object, expires_at: object, endpoint: object) -> Token | None:
    """The Token in AWS's answer, or None when it is not what ECR sends."""
    if not isinstance(encoded, str) or not isinstance(expires_at, datetime.datetime):
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not username or not password:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=datetime.UTC)
    host = ecr.host_of(endpoint) if isinstance(endpoint, str) else ""
    return Token(username, password, encoded, host, expires_at)
