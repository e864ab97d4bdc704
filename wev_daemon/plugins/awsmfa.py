"""``wev-awsmfa``: an MFA-authenticated AWS session, asking for the one-time code once.

Resolves ``[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]`` with
STS ``GetSessionToken`` in the requesting client's AWS context, for the MFA
device ``mfa_device`` or, when that is not set, the first device of the
caller's IAM user (STS ``GetCallerIdentity``, then IAM ``ListMFADevices``).
The code is asked through the client (``Context.ask``); the daemon keeps the
session in memory until the ``Expiration`` AWS returns and shares it between
terminals.

The session is cached per identity (the device, the duration and the
caller's AWS identity, ``identity``), so ``wev CMD`` and ``wev
--aws-credentials`` share one session and one question. STS is signed for the
region botocore would use (the profile's included), so GovCloud and China
profiles work; ``us-east-1`` only when no region is set at all.

``resolve`` runs once to find the question and once more with the answer, so
the discovered device is kept per identity (in memory; a digest is the key).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wev_client.protocol.aws import PROFILE_VARS
from wev_daemon import aws
from wev_daemon.aws_identity import served_by_wev
from wev_daemon.plugins import (
    Context,
    Plugin,
    PropertyError,
    Resolution,
    digest,
    optional_int,
    optional_str,
)
from wev_daemon.plugins.shared_calls import SharedCalls

DEFAULT_DURATION = 900
MIN_DURATION = 900
MAX_DURATION = 129600  # 36 hours, the longest GetSessionToken allows for IAM users
#: STS and IAM are global services; a region is still needed to sign, when none is set.
DEFAULT_REGION = "us-east-1"
#: Discovered devices kept at most (one per identity; a user has a handful).
MAX_DEVICES = 256


@dataclass(frozen=True)
class Settings:
    mfa_device: str | None
    duration: int
    profile: str | None = None


class MfaSessionPlugin(Plugin[Settings]):
    """Properties: ``mfa_device`` (the device ARN, optional), ``duration`` (seconds),
    ``profile`` (whose credentials ask for the session; default: the caller's)."""

    id = "wev-awsmfa"
    properties = frozenset({"mfa_device", "duration", "profile"})
    context_vars = aws.AWS_CONTEXT

    def __init__(self) -> None:
        # Looked up once per identity at a time, and kept (a digest is the key).
        self._devices = SharedCalls[str](keep=True, limit=MAX_DEVICES)

    def parse(self, properties: Mapping[str, object]) -> Settings:
        duration = optional_int(properties, "duration")
        if duration is None:
            duration = DEFAULT_DURATION
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise PropertyError(
                f"'duration' must be {MIN_DURATION} to {MAX_DURATION} seconds, not {duration}"
            )
        return Settings(
            optional_str(properties, "mfa_device") or None,
            duration,
            optional_str(properties, "profile") or None,
        )

    def value_count(self, settings: Settings) -> int:
        return 3

    def describe(self, settings: Settings, context: Context) -> str:
        context = _unserved(context, settings)
        device = settings.mfa_device or "the IAM user's MFA device"
        parts = [f"MFA session for {device}"]
        if credentials := aws.credentials_text(context.env, settings.profile):
            parts.append(credentials)
        return ", ".join(parts)

    def identity(self, settings: Settings, context: Context) -> object:
        context = _unserved(context, settings)
        return (
            "mfa-session",
            settings.mfa_device,
            settings.duration,
            aws.global_identity(context, settings.profile),
        )

    async def resolve(self, settings: Settings, context: Context) -> Resolution:
        context = _unserved(context, settings)
        profile = aws.profile_name(context.env, settings.profile)
        device = settings.mfa_device or await self._device(context, settings.profile)
        what = f"MFA session for {device}" + (f" (profile {profile})" if profile else "")
        process = aws.mfa_process(aws.session_for(context, profile=settings.profile))
        code = (await context.ask(f"MFA code for {device}: ", process=process)).strip()
        if not code:
            raise aws.FetchError(f"{what}: no MFA code was given")
        try:
            async with _client("sts", context, settings.profile) as sts:
                reply = await sts.get_session_token(
                    SerialNumber=device, TokenCode=code, DurationSeconds=settings.duration
                )
            credentials = reply["Credentials"]
            values = (
                credentials["AccessKeyId"],
                credentials["SecretAccessKey"],
                credentials["SessionToken"],
            )
            expiration = credentials["Expiration"]
        except Exception as error:  # every SDK failure becomes one clear line
            failure = aws.fetch_error(error, what, profile, context.env.get("HOME"))
            if not failure.transient and not settings.mfa_device:
                # The device may be gone or replaced: look it up again next time.
                self._devices.forget(_device_key(context, settings.profile))
            raise failure from None
        if not all(isinstance(v, str) and v for v in values) or not isinstance(
            expiration, datetime.datetime
        ):
            raise aws.FetchError(f"{what}: AWS sent an unexpected reply", transient=True)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.UTC)
        return Resolution(values, expiration)

    def forget(self, settings: Settings, context: Context) -> None:
        self._devices.forget(_device_key(context, settings.profile))

    def forget_all(self) -> None:
        self._devices.clear()

    async def _device(self, context: Context, configured: str | None) -> str:
        """The first MFA device of the caller's IAM user, asked once per identity."""
        key = _device_key(context, configured)
        return await self._devices.get(key, lambda: _discover(context, configured))


def _device_key(context: Context, configured: str | None) -> str:
    return digest("device", aws.global_identity(context, configured))


async def _discover(context: Context, configured: str | None) -> str:
    profile = aws.profile_name(context.env, configured)
    what = "the MFA device of your IAM user" + (f" (profile {profile})" if profile else "")
    hint = "set mfa_device: arn:aws:iam::ACCOUNT:mfa/NAME in the plugin block"
    try:
        async with _client("sts", context, configured) as sts:
            arn = (await sts.get_caller_identity())["Arn"]
        _, _, resource = str(arn).partition(":user/")
        if not resource:
            raise aws.FetchError(f"{what}: the caller {arn} is not an IAM user", hint=hint)
        user = resource.rsplit("/", 1)[-1]
        async with _client("iam", context, configured) as iam:
            devices = (await iam.list_mfa_devices(UserName=user))["MFADevices"]
    except aws.FetchError:
        raise
    except Exception as error:  # every SDK failure becomes one clear line
        raise aws.fetch_error(error, what, profile, context.env.get("HOME")) from None
    if not devices:
        raise aws.FetchError(f"{what}: IAM user {user} has no MFA device", hint=hint)
    return str(devices[0]["SerialNumber"])


def _client(service: str, context: Context, profile: str | None) -> Any:  # aiobotocore is untyped
    session = aws.session_for(context, profile=profile)
    return session.create_client(
        service,
        region_name=aws.region_for(context.env, None, profile) or DEFAULT_REGION,
        config=aws.CLIENT_CONFIG,
    )


def _unserved(context: Context, settings: Settings) -> Context:
    """``context`` without a profile that wev itself serves: a shell that exports
    ``AWS_PROFILE`` of the ``wev --aws-credentials`` recipe would have the session asked
    for through itself. As ``--aws-credentials`` does, it is asked for without it: one
    session, asked for once, on this caller's terminal."""
    if settings.profile is not None or not served_by_wev(context.env):
        return context
    env = {k: v for k, v in context.env.items() if k not in PROFILE_VARS}
    process_env = {k: v for k, v in context.process_env.items() if k not in PROFILE_VARS}
    return dataclasses.replace(context, env=env, process_env=process_env)
