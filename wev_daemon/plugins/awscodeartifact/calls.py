"""The two AWS calls of ``wev-awscodeartifact``: ``GetAuthorizationToken`` and
``GetRepositoryEndpoint``, in the requesting client's AWS context.

Every SDK failure becomes one clear line (``aws.fetch_error``); a profile's
MFA code is asked through the client that asked (``Context.ask_sync``). The
token's expiry is the ``expiration`` AWS returns, as an aware UTC time.
"""

from __future__ import annotations

import datetime
from typing import Any

from wev_daemon import aws
from wev_daemon.plugins import Context, InputNeeded
from wev_daemon.plugins.awscodeartifact.settings import Settings


def _what(settings: Settings, context: Context, thing: str) -> tuple[str, str | None]:
    profile = aws.profile_name(context.env, settings.profile)
    what = f"{thing} for domain {settings.domain}"
    return (what + f" (profile {profile})" if profile else what), profile


def _client(settings: Settings, context: Context) -> Any:  # aiobotocore is untyped
    session = aws.session_for(context, profile=settings.profile)
    aws.answer_mfa_prompts(session, context)
    return session.create_client(
        "codeartifact",
        region_name=aws.region_for(context.env, settings.region, settings.profile),
        config=aws.CLIENT_CONFIG,
    )


async def fetch_token(settings: Settings, context: Context) -> tuple[str, datetime.datetime]:
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


async def fetch_endpoint(settings: Settings, context: Context) -> str:
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
