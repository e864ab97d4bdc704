"""An aiobotocore session bound to one client's context, never the daemon's own.

botocore reads ``os.environ`` and expands ``~`` with the running process's
HOME in many places; in a daemon that serves many shells, both belong to the
wrong process. ``CallerSession`` takes them from the requesting client instead:

* configuration (profile, region, config and credentials files, CA bundle,
  ``AWS_ENDPOINT_URL_<SERVICE>`` for every client it creates, the IMDS switch)
  from the client's ``AWS_*`` variables;
* credentials, in botocore's own order: keys in the environment, assumed roles
  and chains, web identity (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``),
  IAM Identity Center (the SSO token cache under the client's HOME), ``aws
  login``, ``credential_process`` (run with the client's whole environment in
  its working folder, killed when the fetch is cancelled), container
  credentials (``AWS_CONTAINER_CREDENTIALS_FULL_URI``) and instance metadata;
* the client's network: its HTTP(S) proxy for every request, unless its
  NO_PROXY names the host actually called (AWS's default endpoints too), and
  no proxy when it has none, whatever the daemon's own environment holds; its
  CA bundle (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``, then
  ``REQUESTS_CA_BUNDLE``, as botocore reads them).

Every session shares one endpoint table, cut to the services wev calls
(``aws_endpoints``), rather than reading botocore's whole table again.

A config or credentials file that does not exist is read as empty, as
botocore reads it; one that exists but cannot be read is an error
(``Caller.unreadable_file``), never a reason to try another identity.

``WEV_NO_DAEMON=1`` builds the same session from the same request, so the
daemon and the in-process fallback agree. Imported by ``wev_daemon.aws``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleProvider,
    AioAssumeRoleWithWebIdentityProvider,
    AioBotoProvider,
    AioCanonicalNameCredentialSourcer,
    AioContainerProvider,
    AioCredentialResolver,
    AioEnvProvider,
    AioInstanceMetadataProvider,
    AioOriginalEC2Provider,
    AioProcessProvider,
    AioProfileProviderBuilder,
    _get_client_creator,
)
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from aiobotocore.utils import AioInstanceMetadataFetcher, _RefCountedSession
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    DEFAULT_PROXIES_CONFIG_VARS,
    DEFAULT_S3_CONFIG_VARS,
    ConfigChainFactory,
    ConfiguredEndpointProvider,
    ConfigValueStore,
    SectionConfigProvider,
)
from botocore.httpsession import ProxyConfiguration
from botocore.utils import JSONFileCache, resolve_imds_endpoint_mode

from wev_daemon import aws_endpoints, network

#: Variables that name a file; one that cannot be read is an error, never a
#: reason to fall through to another identity.
NAMED_FILES = (
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    *network.CA_BUNDLE_VARS,
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
#: Of those, the ones botocore reads as empty when they do not exist (CI images
#: name files that a given job never writes).
OPTIONAL_FILES = frozenset({"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"})


class Caller:
    """What a session needs of the client: AWS context, process environment, folder.

    ``env`` is the AWS context (``AWS_*``, proxies, HOME; the cache key);
    ``process_env`` the client's whole environment, for ``credential_process``.
    Its repr shows no values.
    """

    __slots__ = ("cwd", "env", "home", "process_env")

    def __init__(
        self, env: Mapping[str, str], process_env: Mapping[str, str] | None, cwd: str | None
    ) -> None:
        self.env = env
        self.home = env.get("HOME") or os.path.expanduser("~")
        self.process_env = dict(process_env) if process_env else {**os.environ, **env}
        self.cwd = cwd if cwd and os.path.isabs(cwd) else None

    def __repr__(self) -> str:
        return f"Caller(env_keys={sorted(self.env)!r}, cwd={self.cwd!r})"

    def unreadable_file(self) -> tuple[str, str, str] | None:
        """The first named file that cannot be read: (variable, path, reason).

        A missing config or credentials file is no error (botocore reads it as
        empty); of the CA bundles, only the one in effect is looked at.
        """
        bundle = network.ca_bundle(self.env)
        for name in NAMED_FILES:
            path = self.env.get(name)
            if not path or (name in network.CA_BUNDLE_VARS and path != bundle):
                continue
            try:
                with open(path, "rb"):
                    pass
            except (FileNotFoundError, NotADirectoryError):
                if name not in OPTIONAL_FILES:
                    return name, path, "No such file or directory"
            except OSError as error:
                return name, path, error.strerror or type(error).__name__
        return None


class CallerSession(AioSession):  # type: ignore[misc]  # aiobotocore is untyped
    """A session that reads the client's environment and HOME, not this process's."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller  # before super().__init__, which registers the config store
        super().__init__()
        home = os.path.join(caller.home, ".aws")
        if not caller.env.get("AWS_CONFIG_FILE"):
            self.set_config_variable("config_file", os.path.join(home, "config"))
        if not caller.env.get("AWS_SHARED_CREDENTIALS_FILE"):
            self.set_config_variable("credentials_file", os.path.join(home, "credentials"))

    def _register_endpoint_resolver(self) -> None:
        """The shared endpoint table (``aws_endpoints``), until a service outside it is called.

        botocore calls this from its ``__init__``, hence the flag set here."""

        def create() -> Any:
            return aws_endpoints.resolver_for(self.get_component("data_loader"))

        self._whole_endpoint_table = False
        self._internal_components.lazy_register_component("endpoint_resolver", create)

    def _endpoints_of(self, service_name: str) -> None:
        """botocore's whole endpoint table from now on, once a service outside the shared one's."""
        if service_name not in aws_endpoints.SERVICES and not self._whole_endpoint_table:
            self._whole_endpoint_table = True
            super()._register_endpoint_resolver()

    def get_available_regions(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        self._endpoints_of(service_name)
        return super().get_available_regions(service_name, *args, **kwargs)

    def _register_config_store(self) -> None:
        chain = ConfigChainFactory(session=self, environ=self.caller.env)

        def mapping(variables: Mapping[str, Any]) -> dict[str, Any]:
            return {
                name: chain.create_config_chain(
                    instance_name=name,
                    env_var_names=env_names,
                    config_property_names=properties,
                    default=default,
                    conversion_func=convert,
                )
                for name, (properties, env_names, default, convert) in variables.items()
            }

        store = mapping(BOTOCORE_DEFAUT_SESSION_VARIABLES)
        store["s3"] = SectionConfigProvider("s3", self, mapping(DEFAULT_S3_CONFIG_VARS))
        store["proxies_config"] = SectionConfigProvider(
            "proxies_config", self, mapping(DEFAULT_PROXIES_CONFIG_VARS)
        )
        self._components.register_component("config_store", ConfigValueStore(mapping=store))

    def _add_configured_endpoint_provider(self, client_name: str, config_store: Any) -> None:
        provider = ConfiguredEndpointProvider(
            full_config=self.full_config,
            scoped_config=self.get_scoped_config(),
            client_name=client_name,
            environ=self.caller.env,
        )
        config_store.set_config_provider(logical_name="endpoint_url", provider=provider)

    def _create_credential_resolver(self) -> AioCredentialResolver:
        return _credential_resolver(self, self._last_client_region_used)

    def create_client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        """Every client, the SDK's own (STS, SSO) included, uses the client's network."""
        extra = AioConfig(http_session_cls=_http_session_for(self.caller.env))
        config = kwargs.get("config")
        kwargs["config"] = extra if config is None else config.merge(extra)
        if len(args) < 4 and kwargs.get("verify") is None:
            # botocore would read REQUESTS_CA_BUNDLE from this process's environment.
            configured = self.get_config_variable("ca_bundle")
            kwargs["verify"] = network.ca_bundle(self.caller.env, configured) or True
        self._endpoints_of(service_name)
        return super().create_client(service_name, *args, **kwargs)


class _CallerProxies(ProxyConfiguration):  # type: ignore[misc]  # botocore is untyped
    """The proxy for each request: the caller's, judged by ``network`` against the URL called."""

    def __init__(self, env: Mapping[str, str], settings: Mapping[str, Any] | None) -> None:
        super().__init__(proxies={}, proxies_settings=settings)
        self._env = env

    def proxy_url_for(self, url: str) -> str | None:
        return network.proxy_for(url, self._env)


def _http_session_for(
    env: Mapping[str, str], base: type[AIOHTTPSession] = AIOHTTPSession
) -> type[AIOHTTPSession]:
    """aiobotocore's HTTP session class (``base``), bound to the caller's proxies.

    Without it botocore takes the proxies of this process's environment
    (``get_environ_proxies``) for a caller that has none, and judges NO_PROXY
    only once, against the endpoint it computed. The instance metadata
    fetcher gets one too (``base``: its reference-counted session).
    """

    class CallerHttpSession(base):  # type: ignore[misc]  # aiobotocore is untyped
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["proxies"] = {}
            super().__init__(*args, **kwargs)
            self._proxy_config = _CallerProxies(env, kwargs.get("proxies_config"))

    return CallerHttpSession


class _WebIdentityProvider(AioAssumeRoleWithWebIdentityProvider):  # type: ignore[misc]
    """Web identity from the client's AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN."""

    def __init__(self, *args: Any, environ: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._environ = environ

    def _get_env_config(self, key: str) -> str | None:
        if self._disable_env_vars:
            return None
        name = self._CONFIG_TO_ENV_VAR.get(key)
        return self._environ.get(name) if name else None


class _ProfileProviders(AioProfileProviderBuilder):  # type: ignore[misc]
    """The profile-based providers, with the client's environment and folder."""

    def __init__(self, session: CallerSession, **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self._caller = session.caller

    def _create_process_provider(self, profile_name: str) -> AioProcessProvider:
        return AioProcessProvider(
            profile_name=profile_name,
            load_config=lambda: self._session.full_config,
            popen=_caller_popen(self._caller),
        )

    def _create_web_identity_provider(
        self, profile_name: str, disable_env_vars: bool
    ) -> _WebIdentityProvider:
        return _WebIdentityProvider(
            load_config=lambda: self._session.full_config,
            client_creator=_get_client_creator(self._session, self._region_name),
            cache=self._cache,
            profile_name=profile_name,
            disable_env_vars=disable_env_vars,
            environ=self._caller.env,
        )


def _credential_resolver(session: CallerSession, region_name: str | None) -> Any:
    """aiobotocore's default chain, each provider given the client's environment."""
    caller = session.caller
    env = caller.env
    profile_name = session.get_config_variable("profile") or "default"
    disable_env_vars = session.instance_variables().get("profile") is not None
    cache: dict[str, Any] = {}
    login_cache = env.get("AWS_LOGIN_CACHE_DIRECTORY") or os.path.join(
        caller.home, ".aws", "login", "cache"
    )
    env_provider = AioEnvProvider(environ=env)
    container_provider = AioContainerProvider(environ=env)
    timeout = session.get_config_variable("metadata_service_timeout")
    instance_provider = AioInstanceMetadataProvider(
        iam_role_fetcher=AioInstanceMetadataFetcher(
            timeout=timeout,
            num_attempts=session.get_config_variable("metadata_service_num_attempts"),
            user_agent=session.user_agent(),
            config={
                "ec2_metadata_service_endpoint": session.get_config_variable(
                    "ec2_metadata_service_endpoint"
                ),
                "ec2_metadata_service_endpoint_mode": resolve_imds_endpoint_mode(session),
                "ec2_metadata_v1_disabled": session.get_config_variable("ec2_metadata_v1_disabled"),
            },
            env=env,  # AWS_EC2_METADATA_DISABLED
            session=_http_session_for(env, _RefCountedSession)(timeout=timeout),
        )
    )
    builder = _ProfileProviders(
        session,
        cache=cache,
        region_name=region_name,
        sso_token_cache=JSONFileCache(os.path.join(caller.home, ".aws", "sso", "cache")),
        login_token_cache=JSONFileCache(login_cache),
    )
    assume_role_provider = AioAssumeRoleProvider(
        load_config=lambda: session.full_config,
        client_creator=_get_client_creator(session, region_name),
        cache=cache,
        profile_name=profile_name,
        credential_sourcer=AioCanonicalNameCredentialSourcer(
            [env_provider, container_provider, instance_provider]
        ),
        profile_provider_builder=builder,
    )
    providers = [
        *([] if disable_env_vars else [env_provider]),  # a profile in wev.yml wins
        assume_role_provider,
        *builder.providers(profile_name=profile_name, disable_env_vars=disable_env_vars),
        AioOriginalEC2Provider(environ=env),
        AioBotoProvider(environ=env),
        container_provider,
        instance_provider,
    ]
    return AioCredentialResolver(providers=providers)


def _caller_popen(caller: Caller) -> Any:
    """``credential_process`` as the client would run it, and never left running."""

    async def popen(*args: str, **kwargs: Any) -> _KilledOnCancel:
        process = await asyncio.create_subprocess_exec(
            *args,
            env=caller.process_env,
            cwd=caller.cwd,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # no terminal to ask on, and killed as a group
            **kwargs,
        )
        return _KilledOnCancel(process)

    return popen


class _KilledOnCancel:
    """A helper process whose ``communicate`` kills it when the fetch is given up."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        try:
            return await self._process.communicate(input)
        except BaseException:
            if self._process.returncode is None:
                try:
                    os.killpg(self._process.pid, 9)
                except OSError:
                    self._process.kill()
            raise
