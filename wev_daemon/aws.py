"""AWS sessions built from a client's environment, and AWS errors in one line.

The daemon serves many shells, each with its own AWS_PROFILE, keys, region
and endpoint, so a session is built per fetch from the requesting client's
environment (``Context.env``), never from the daemon's own: ``server`` strips
AWS_* from the daemon's environment at start-up. A fresh session per fetch
also picks up a renewed ``aws sso login`` or an edited credentials file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as boto

from wev_client.protocol import UpstreamError

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
    SSO token, a broken profile): the next client retries it at once.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        transient: bool = False,
        local: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient
        self.local = local


def profile_name(env: Mapping[str, str], configured: str | None) -> str | None:
    """The profile in effect: the plugin's, else AWS_PROFILE, else AWS_DEFAULT_PROFILE."""
    return configured or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or None


def session_for(env: Mapping[str, str], *, profile: str | None) -> AioSession:
    """A session using exactly the client's credentials, files and profile.

    Precedence follows the AWS CLI: a profile set in wev.yml beats keys in the
    environment, which beat AWS_PROFILE.
    """
    session = AioSession()
    home = env.get("HOME") or os.path.expanduser("~")
    session.set_config_variable(
        "config_file", env.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")
    )
    session.set_config_variable(
        "credentials_file",
        env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials"),
    )
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if profile:
        session.set_config_variable("profile", profile)
    elif key and secret:
        session.set_credentials(key, secret, env.get("AWS_SESSION_TOKEN"))
    elif named := profile_name(env, None):
        session.set_config_variable("profile", named)
    return session


def answer_mfa_prompts(
    session: AioSession, env: Mapping[str, str], ask: Callable[[str], str]
) -> None:
    """Let a profile with ``mfa_serial`` (and ``role_arn``) get its code from the client.

    botocore's assume-role provider reads the code with ``getpass`` on the
    daemon's (absent) terminal; ``ask`` returns the client's answer instead, or
    raises InputNeeded. Its STS client also honours the client's
    ``AWS_ENDPOINT_URL_STS``, which the daemon's own environment lacks.
    """
    provider: Any = session.get_component("credential_provider").get_provider("assume-role")
    if provider is None:
        return
    provider._prompter = ask  # botocore offers no other way in for an existing session
    endpoint = endpoint_for(env, "STS")
    create = provider._client_creator

    def client_creator(service_name: str, **kwargs: Any) -> Any:
        if service_name == "sts" and endpoint:
            kwargs.setdefault("endpoint_url", endpoint)
        return create(service_name, **kwargs)

    provider._client_creator = client_creator


def region_for(env: Mapping[str, str], configured: str | None) -> str | None:
    return configured or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def endpoint_for(env: Mapping[str, str], service_env_suffix: str) -> str | None:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``, as the SDKs read them."""
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return env.get(f"AWS_ENDPOINT_URL_{service_env_suffix}") or env.get("AWS_ENDPOINT_URL") or None


def fetch_error(error: Exception, what: str, profile: str | None) -> FetchError:
    """Turn an SDK exception into one clear line with AWS's code and message."""
    login = f"aws sso login --profile {profile}" if profile else "aws sso login"
    if isinstance(error, boto.ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code") or "Unknown"
        message = detail.get("Message") or "no message"
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in _TRANSIENT_CODES or status >= 500 or status == 429
        hint = "refresh your AWS credentials" if code in _EXPIRED_CODES else None
        return FetchError(f"{what}: {code}: {message}", hint=hint, transient=transient)
    if isinstance(error, boto.SSOError | boto.TokenRetrievalError | boto.SSOTokenLoadError):
        return FetchError(f"{what}: the AWS SSO session has expired or is missing", hint=login)
    if isinstance(error, boto.UnauthorizedSSOTokenError):
        return FetchError(f"{what}: the AWS SSO session has expired", hint=login)
    if isinstance(error, boto.ProfileNotFound):
        return FetchError(
            f"{what}: the AWS profile {profile!r} is not configured",
            hint="check AWS_CONFIG_FILE / ~/.aws/config",
        )
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return FetchError(
            f"{what}: no AWS credentials found" + (f" for profile {profile!r}" if profile else ""),
            hint="set AWS_PROFILE, a profile in wev.user.yml, or run `aws configure`",
        )
    if isinstance(error, boto.NoRegionError):
        return FetchError(
            f"{what}: no AWS region is set",
            hint="add `region:` to the plugin block, or set AWS_REGION",
        )
    if isinstance(error, boto.EndpointConnectionError | boto.ConnectionError):
        return FetchError(f"{what}: cannot reach AWS: {error}", transient=True)
    if isinstance(error, TimeoutError | boto.ReadTimeoutError | boto.ConnectTimeoutError):
        return FetchError(f"{what}: AWS did not answer in time", transient=True)
    return FetchError(f"{what}: {type(error).__name__}: {error}", transient=True)
