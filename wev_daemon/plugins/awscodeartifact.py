"""``wev-awscodeartifact``: an AWS CodeArtifact authorization token.

Calls ``GetAuthorizationToken`` in the requesting client's AWS context; the
token's expiry is the ``expiration`` AWS returns, not an assumed duration.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from wev_client.protocol import CONTEXT_ENV_VARS
from wev_daemon import aws
from wev_daemon.plugins import (
    Context,
    Plugin,
    PropertyError,
    Resolution,
    optional_int,
    optional_str,
    required_str,
)

DEFAULT_DURATION = 43200  # 12 hours, the longest AWS allows
MIN_DURATION = 900


@dataclass(frozen=True)
class Settings:
    domain: str
    account: str | None
    region: str | None
    profile: str | None
    duration: int


class CodeArtifactPlugin(Plugin[Settings]):
    """Properties: ``domain`` (required), ``account``, ``region``, ``profile``, ``duration``."""

    id = "wev-awscodeartifact"
    # cache_duration: read by the earlier wev's plugin; the real expiry is used instead.
    properties = frozenset({"domain", "account", "region", "profile", "duration", "cache_duration"})
    context_vars = CONTEXT_ENV_VARS

    def parse(self, properties: Mapping[str, object]) -> Settings:
        duration = optional_int(properties, "duration")
        if duration is None:
            duration = DEFAULT_DURATION
        if duration != 0 and not MIN_DURATION <= duration <= DEFAULT_DURATION:
            raise PropertyError(
                f"'duration' must be 0 or {MIN_DURATION} to {DEFAULT_DURATION} seconds, "
                f"not {duration}"
            )
        return Settings(
            domain=required_str(properties, "domain"),
            account=optional_str(properties, "account"),
            region=optional_str(properties, "region"),
            profile=optional_str(properties, "profile"),
            duration=duration,
        )

    def describe(self, settings: Settings, context: Context) -> str:
        parts = [f"domain {settings.domain}"]
        if settings.account:
            parts.append(f"account {settings.account}")
        if region := aws.region_for(context.env, settings.region):
            parts.append(f"region {region}")
        if profile := aws.profile_name(context.env, settings.profile):
            parts.append(f"profile {profile}")
        elif context.env.get("AWS_ACCESS_KEY_ID"):
            parts.append("keys from the environment")
        return ", ".join(parts)

    async def resolve(self, settings: Settings, context: Context) -> Resolution:
        env = context.env
        what = f"CodeArtifact token for domain {settings.domain}"
        profile = aws.profile_name(env, settings.profile)
        if profile:
            what += f" (profile {profile})"
        params: dict[str, object] = {"domain": settings.domain}
        if settings.account:
            params["domainOwner"] = settings.account
        params["durationSeconds"] = settings.duration
        try:
            session = aws.session_for(env, profile=settings.profile)
            async with session.create_client(
                "codeartifact",
                region_name=aws.region_for(env, settings.region),
                endpoint_url=aws.endpoint_for(env, "CODEARTIFACT"),
                config=aws.CLIENT_CONFIG,
            ) as client:
                reply = await client.get_authorization_token(**params)
            token = reply["authorizationToken"]
            expiration = reply["expiration"]
        except Exception as error:  # every SDK failure becomes one clear line
            raise aws.fetch_error(error, what, profile) from None
        if not isinstance(token, str) or not isinstance(expiration, datetime.datetime):
            raise aws.FetchError(f"{what}: AWS sent an unexpected reply", transient=True)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.UTC)
        return Resolution((token,), expiration)
