"""AWS sessions built from a client's context, and AWS errors in one line.

The daemon serves many shells, each with its own AWS_PROFILE, keys, region,
endpoints, SSO login and helpers, so a session is built per fetch from the
requesting client's context (``Context``: its AWS_* variables, HOME, whole
environment and working folder), never from the daemon's own
(``aws_session.CallerSession``). A fresh session per fetch also picks up a
renewed ``aws sso login`` or an edited credentials file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from botocore import exceptions as boto

from wev_client.protocol import aws as conventions
from wev_client.protocol.context import NETWORK_VARS
from wev_client.protocol.errors import UpstreamError
from wev_daemon import aws_identity
from wev_daemon.aws_session import Caller, CallerSession

if TYPE_CHECKING:
    from wev_daemon.plugins import Context

#: What an AWS plugin's values depend on (``Plugin.context_vars``): the caller's
#: AWS_* variables, HOME (its ~/.aws), proxies and CA bundle.
AWS_CONTEXT = ("AWS_*", "HOME", *NETWORK_VARS)

CLIENT_CONFIG = AioConfig(
    connect_timeout=5,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 2},
)

_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
_EXPIRED_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


class FetchError(UpstreamError):
    """An upstream failure; ``transient`` ones are worth retrying soon.

    A ``local`` one was found without asking AWS (no login on disk, an expired
    SSO token, a broken profile): the next client retries it at once. ``watch``
    names the folder a sign-in changes (the SSO token cache): a caller with no
    terminal waits for it (``wev_daemon.questions``). A ``refused`` one may be
    a wrong MFA code (AccessDenied): the code is asked again once.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        transient: bool = False,
        local: bool = False,
        watch: str | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient
        self.local = local
        self.watch = watch
        self.refused = refused


class LoginNeeded(FetchError):
    """The caller's AWS login must be made or renewed (SSO, keys, session) before a retry."""


class AccessDenied(FetchError):
    """AWS refuses the caller's identity what was asked."""


#: AWS error codes of a refusal.
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})


def profile_name(env: Mapping[str, str], configured: str | None) -> str | None:
    """The profile in effect: the plugin's, else botocore's AWS_DEFAULT_PROFILE, AWS_PROFILE."""
    return conventions.profile_name(env, configured)


def credentials_text(env: Mapping[str, str], configured: str | None) -> str | None:
    """How an entry's description names whose credentials it uses: the profile in effect,
    or keys from the environment; None for botocore's default chain."""
    if profile := profile_name(env, configured):
        return f"profile {profile}"
    if env.get("AWS_ACCESS_KEY_ID"):
        return "keys from the environment"
    return None


def region_for(
    env: Mapping[str, str], configured: str | None, profile: str | None = None
) -> str | None:
    """The region botocore uses: the plugin's, AWS_REGION, AWS_DEFAULT_REGION, else the
    region of the profile in effect (``profile``: the plugin's profile setting)."""
    return aws_identity.region_name(env, configured, profile)


def identity(context: Context, profile: str | None, region: str | None) -> dict[str, object]:
    """The caller's AWS identity for a plugin's ``profile`` and ``region`` settings: what
    the credential chain reads and the region botocore resolves (``aws_identity``). Part
    of a regional AWS plugin's ``Plugin.identity``."""
    return aws_identity.identity(context.env, context.process_env, context.cwd, profile, region)


def global_identity(context: Context, profile: str | None) -> dict[str, object]:
    """``identity`` for a secret valid in every region (an STS session)."""
    return aws_identity.identity(
        context.env, context.process_env, context.cwd, profile, with_region=False
    )


def session_for(context: Context, *, profile: str | None) -> CallerSession:
    """A session using exactly the client's credentials, files and profile.

    Precedence follows the AWS CLI: a profile set in wev.yml beats keys in the
    environment, which beat AWS_PROFILE. A file the client names that cannot be
    read is an error here: botocore would skip it and try another identity.
    """
    caller = Caller(context.env, context.process_env, context.cwd)
    if unreadable := caller.unreadable_file():
        name, path, reason = unreadable
        raise FetchError(f"{name}={path} cannot be read: {reason}", local=True)
    session = CallerSession(caller)
    if profile:
        session.set_config_variable("profile", profile)

    # Every client this session makes (credential providers' STS and SSO
    # clients too) copies its handlers: each answer AWS sends is counted.
    def answered(response_dict: object = None, **_: object) -> None:
        if response_dict is not None:
            context.reached_upstream()

    session.register("response-received", answered)
    return session


def answer_mfa_prompts(session: CallerSession, context: Context) -> None:
    """Let a profile with ``mfa_serial`` (and ``role_arn``) get its code from the client.

    botocore's assume-role provider reads the code with ``getpass`` on the
    daemon's (absent) terminal; the client's answer comes instead (or
    InputNeeded), with the profile's ``mfa_process`` to print it.
    """
    provider: Any = session.get_component("credential_provider").get_provider("assume-role")
    if provider is not None:  # botocore offers no other way in for an existing session
        provider._prompter = lambda text: context.ask_sync(
            text, secret=True, process=mfa_process(session)
        )


def mfa_process(session: CallerSession) -> str | None:
    """The profile's ``mfa_process`` (aws-vault's key): a command that prints the MFA code."""
    try:
        value = session.get_scoped_config().get("mfa_process")
    except Exception:  # no such profile: the fetch itself says so
        return None
    return value if isinstance(value, str) and value.strip() else None


def fetch_error(error: Exception, what: str, profile: str | None, home: str | None) -> FetchError:
    """Turn an SDK exception into one clear line with AWS's code and message.

    ``home``: the caller's HOME, whose SSO token cache a sign-in changes (a caller with
    no terminal waits for that sign-in).
    """
    if isinstance(error, FetchError):  # found by wev before asking AWS: what it is, named
        return type(error)(
            f"{what}: {error.message}",
            hint=error.hint,
            transient=error.transient,
            local=error.local,
            watch=error.watch,
            refused=error.refused,
        )
    login = f"aws sso login --profile {profile}" if profile else "aws sso login"
    sso_cache = os.path.join(home, ".aws", "sso", "cache") if home else None
    if isinstance(error, boto.ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code") or "Unknown"
        message = detail.get("Message") or "no message"
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in _TRANSIENT_CODES or status >= 500 or status == 429
        line = f"{what}: {code}: {message}"
        if code in _EXPIRED_CODES:
            return LoginNeeded(line, hint="refresh your AWS credentials", transient=transient)
        if code in _DENIED_CODES:
            # STS's word for a wrong MFA code, too: that code is asked again once.
            return AccessDenied(line, transient=transient, refused=True)
        return FetchError(line, transient=transient)
    # Found on this machine, without asking AWS: the next client retries at once.
    if isinstance(error, boto.SSOError | boto.TokenRetrievalError | boto.SSOTokenLoadError):
        return LoginNeeded(
            f"{what}: the AWS SSO session has expired or is missing",
            hint=login,
            local=True,
            watch=sso_cache,
        )
    if isinstance(error, boto.UnauthorizedSSOTokenError):
        return LoginNeeded(
            f"{what}: the AWS SSO session has expired", hint=login, local=True, watch=sso_cache
        )
    if isinstance(error, boto.ProfileNotFound):
        return FetchError(
            f"{what}: the AWS profile {profile!r} is not configured",
            hint="check AWS_CONFIG_FILE / ~/.aws/config",
            local=True,
        )
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return LoginNeeded(
            f"{what}: no AWS credentials found" + (f" for profile {profile!r}" if profile else ""),
            hint="set AWS_PROFILE, a profile in wev.user.yml, or run `aws configure`",
            local=True,
        )
    if isinstance(error, boto.NoRegionError):
        return FetchError(
            f"{what}: no AWS region is set",
            hint="add `region:` to the plugin block, or set AWS_REGION",
            local=True,
        )
    if isinstance(error, boto.CredentialRetrievalError):
        # credential_process failed: never rerun it in the background (it may
        # prompt for a hardware key or a password-manager unlock every time).
        detail = " ".join(str(error).split())
        return FetchError(f"{what}: {detail}", hint="check the profile's credential_process")
    if isinstance(
        error,
        boto.InvalidConfigError
        | boto.ConfigParseError
        | boto.InfiniteLoopConfigError
        | boto.MissingParametersError
        | boto.InvalidRegionError
        | boto.InvalidEndpointConfigurationError
        | boto.InvalidProxiesConfigError,
    ):
        return FetchError(f"{what}: the AWS configuration is broken: {error}", local=True)
    if isinstance(error, boto.ParamValidationError):
        detail = " ".join(str(error).split())
        return FetchError(f"{what}: {detail}", hint="check the plugin's settings", local=True)
    if unusable := _unusable_setting(error):
        return FetchError(f"{what}: the AWS configuration is broken: {unusable}", local=True)
    if isinstance(error, boto.EndpointConnectionError | boto.ConnectionError):
        return FetchError(f"{what}: cannot reach AWS: {error}", transient=True)
    if isinstance(error, TimeoutError | boto.ReadTimeoutError | boto.ConnectTimeoutError):
        return FetchError(f"{what}: AWS did not answer in time", transient=True)
    if isinstance(error, boto.BotoCoreError):  # its message reads as a sentence
        return FetchError(f"{what}: {error}", transient=True)
    return FetchError(f"{what}: {type(error).__name__}: {error}", transient=True)


#: What aiohttp raises for a URL it cannot call: NonHttpUrlClientError (``ftp://``)
#: is newer than the oldest aiohttp wev runs with.
_NOT_CALLABLE_URLS: tuple[type[Exception], ...] = tuple(
    getattr(aiohttp, name)
    for name in ("InvalidURL", "NonHttpUrlClientError")
    if hasattr(aiohttp, name)
)


def _unusable_setting(error: Exception) -> str:
    """What the SDK could not use among the caller's settings, "" for another error.

    An endpoint URL that is not one (``AWS_ENDPOINT_URL_*``), a container
    credentials host it refuses, a proxy URL: the SDK raises a bare ValueError,
    or wraps one in HTTPClientError, before any request leaves this machine,
    so waiting will not fix it. (Its subclasses, such as a JSON decoding
    error, may come from an answer: those stay transient.)
    """
    inner = error.kwargs.get("error") if isinstance(error, boto.HTTPClientError) else error
    if isinstance(inner, _NOT_CALLABLE_URLS):
        return f"not a URL it can call: {inner}"
    if type(inner) is ValueError or isinstance(inner, boto.InvalidProxiesConfigError):
        return " ".join(str(inner).split())
    return ""
