"""CodeArtifact tokens asked for by URL or by entry: the keyring backend's and ``wev-token``'s.

Package tools that ask a credential helper name a URL (pip, uv, twine and
Poetry through ``keyring``) or nothing at all (pnpm's ``tokenHelper``). This
module turns that into a ``wev-awscodeartifact`` request built in memory and
resolved like any ``wev`` call (the daemon, or this process), so the token
comes from the daemon's cache:

- a CodeArtifact host, ``DOMAIN-OWNER.d.codeartifact.REGION.amazonaws.com``,
  names the domain, its owner and the region; the nearest wev.yml entry for
  that domain adds its ``profile`` (and ``duration``), else the caller's
  environment decides, as for any entry. The entry is used as it is written
  where it agrees with the URL (an entry without ``account`` stands for the
  caller's own account), so the token is the one ``wev CMD`` gets for it;
- any other URL is matched against the repository endpoints of the wev.yml
  entries with ``repository`` and ``format`` (a stand-in whose endpoints are
  elsewhere): endpoints first, a token only for the entry that serves the URL.
  While CodeArtifact calls go to AWS itself, every endpoint is a CodeArtifact
  host, so such a URL costs no call at all;
- the public registries (``PUBLIC_REGISTRIES``: pypi.org, npm's, Maven
  Central) are never a repository of anyone's: pip asks keyring about
  pypi.org too, and that costs no call and no question, whatever the
  endpoints.

Imported only by those helpers, never by ``wev CMD``.
"""

from __future__ import annotations

import os

from wev_client import config_files, connection, paths
from wev_client.protocol.aws import CODEARTIFACT_PLUGIN_ID as PLUGIN_ID
from wev_client.protocol.context import context_env
from wev_client.protocol.errors import WevError
from wev_client.protocol.messages import ResolveRequest, VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Names of the in-memory entries' values (never set in any environment).
TOKEN_NAME = "WEV_CODEARTIFACT_TOKEN"  # noqa: S105 - a variable name, not a secret
ENDPOINT_NAME = "WEV_CODEARTIFACT_ENDPOINT"
#: What an entry built from a URL keeps of the configured one.
REPOSITORY_PROPERTIES = ("repository", "format", "values", "proxy")
#: Where the caller may send CodeArtifact calls instead of AWS (a stand-in whose
#: repository endpoints need not be CodeArtifact hosts).
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_CODEARTIFACT", "AWS_ENDPOINT_URL")
#: Hosts of the public package registries: never a CodeArtifact repository, so a
#: lookup for them needs no endpoint, which behind an MFA profile would need a code.
PUBLIC_REGISTRIES = frozenset(
    {
        "pypi.org",
        "test.pypi.org",
        "upload.pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
        "registry.yarnpkg.com",
        "repo.maven.apache.org",
        "repo1.maven.org",
    }
)


def parse_host(host: str) -> tuple[str, str, str] | None:
    """(domain, owner, region) of ``DOMAIN-OWNER.d.codeartifact.REGION.amazonaws.com``."""
    labels = host.lower().rstrip(".").split(".")
    if (
        len(labels) != 6
        or labels[1:3] != ["d", "codeartifact"]
        or labels[4:] != ["amazonaws", "com"]
    ):
        return None
    domain, dash, owner = labels[0].rpartition("-")
    if not dash or not domain or len(owner) != 12 or not owner.isdigit() or not labels[3]:
        return None
    return domain, owner, labels[3]


def split_service(service: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path) of a URL, or of a bare ``host[:port]`` (pip asks both ways).

    User information (``aws@``) is left out; the host is in lower case.
    """
    scheme, separator, rest = service.partition("://")
    if not separator:
        scheme, rest = "", service
    netloc, _, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2].lower()
    return scheme.lower(), netloc, "/" + path.partition("?")[0]


def endpoint_serves(endpoint: str, service: str) -> bool:
    """Whether ``service`` (a URL or a bare host) lies within the repository ``endpoint``."""
    scheme, netloc, path = split_service(service)
    own_scheme, own_netloc, own_path = split_service(endpoint)
    if netloc != own_netloc or (scheme and scheme != own_scheme):
        return False
    if not service.partition("://")[1]:  # a bare host: the tool asks for the whole host
        return True
    return (path.rstrip("/") + "/").startswith(own_path.rstrip("/") + "/")


def entries(specs: Sequence[VariableSpec]) -> list[VariableSpec]:
    return [spec for spec in specs if spec.plugin.get("id") == PLUGIN_ID]


def spec_for_host(
    domain: str, owner: str, region: str, configured: Sequence[VariableSpec]
) -> tuple[VariableSpec, VariableSpec | None]:
    """An entry for the token of that domain, with the settings of a configured one for it
    (returned too, None when none is for it).

    The configured entry's own spelling is kept: one that names the owner, or one
    without ``account`` (the caller's own account) when none names it. So the
    token is the one that entry gets through ``wev CMD``, with no second call.
    The region is the URL's; the cache compares regions as resolved.
    """

    def agrees(spec: VariableSpec, account: object) -> bool:
        plugin = spec.plugin
        return (
            str(plugin.get("domain")) == domain
            and plugin.get("account") == account
            and str(plugin.get("region") or region) == region
        )

    chosen = next((s for s in configured if agrees(s, owner) or agrees(s, int(owner))), None)
    chosen = chosen or next((s for s in configured if agrees(s, None)), None)
    if chosen is None:
        plugin: dict[str, object] = {"id": PLUGIN_ID, "domain": domain, "account": owner}
        plugin.update(region=region, values=["token"])
        return VariableSpec((TOKEN_NAME,), plugin, ()), None
    plugin = token_plugin(chosen)
    plugin["region"] = region
    return VariableSpec((TOKEN_NAME,), plugin, chosen.sources), chosen


def token_plugin(spec: VariableSpec) -> dict[str, object]:
    """The plugin block of ``spec`` giving its token alone (the same token: its identity)."""
    plugin = {k: v for k, v in spec.plugin.items() if k not in REPOSITORY_PROPERTIES}
    plugin["values"] = ["token"]
    return plugin


def endpoint_only(spec: VariableSpec, index: int) -> VariableSpec:
    """``spec`` (with repository and format) giving its endpoint alone: no token is fetched."""
    # The repository's own endpoint, not the loopback proxy's URL.
    plugin = {k: v for k, v in spec.plugin.items() if k != "proxy"}
    plugin["values"] = ["endpoint"]
    return VariableSpec((f"{ENDPOINT_NAME}_{index}",), plugin, spec.sources)


def load(
    environ: Mapping[str, str], cwd: str, warn: Callable[[str], None]
) -> tuple[list[VariableSpec], dict[str, str]]:
    """The CodeArtifact entries of the wev.yml files for ``cwd`` (home's included), those of
    the nearest file first, and ``environ`` without what these files set."""
    try:
        cache_path: str | None = paths.config_cache_path(environ)
    except OSError:
        cache_path = None
    home = environ.get("HOME")
    specs = config_files.load(cwd, home, cache_path, warn)
    return entries(config_files.nearest_first(specs, cwd, home)), config_files.outside(
        specs, environ
    )


def resolve(
    specs: tuple[VariableSpec, ...],
    environ: Mapping[str, str],
    cwd: str,
    written: VariableSpec | None = None,
) -> Mapping[str, str]:
    """The values of in-memory entries, resolved as ``wev`` resolves (the daemon's cache);
    an error names them as the user wrote the entry they were made from (``written``)."""
    request = ResolveRequest(specs, context_env(environ, cwd), process_env=environ, cwd=cwd)
    try:
        return connection.resolve(request, environ, lambda message: None).values
    except WevError as error:
        for spec in specs:
            connection.named_as(error, spec, written)
        raise


def token_for_url(
    service: str, environ: Mapping[str, str], warn: Callable[[str], None], cwd: str | None = None
) -> str | None:
    """The token for a repository URL (or bare host), or None when wev knows no such one."""
    cwd = os.getcwd() if cwd is None else cwd
    host = split_service(service)[1].rpartition(":")[0] or split_service(service)[1]
    if host.lower().rstrip(".") in PUBLIC_REGISTRIES:
        return None
    configured, environ = load(environ, cwd, warn)
    if parts := parse_host(host):
        spec, written = spec_for_host(*parts, configured)
        return resolve((spec,), environ, cwd, written)[TOKEN_NAME]
    candidates = [s for s in configured if s.plugin.get("repository") and s.plugin.get("format")]
    if not candidates or not any(environ.get(name) for name in ENDPOINT_VARS):
        return None  # AWS's own endpoints are all CodeArtifact hosts: not this one
    specs = tuple(endpoint_only(spec, index) for index, spec in enumerate(candidates))
    endpoints = resolve(specs, environ, cwd)
    for index, spec in enumerate(candidates):
        if endpoint_serves(endpoints[f"{ENDPOINT_NAME}_{index}"], service):
            token = VariableSpec((TOKEN_NAME,), token_plugin(spec), spec.sources)
            return resolve((token,), environ, cwd, spec)[TOKEN_NAME]
    return None


def token_of_entry(
    name: str | None,
    environ: Mapping[str, str],
    warn: Callable[[str], None],
    cwd: str | None = None,
) -> str:
    """The token of the entry that sets ``name``; without one, of the nearest entry for npm
    (``format: npm``), else of the first CodeArtifact entry. ConfigError when there is none."""
    from wev_client.protocol.errors import ConfigError

    cwd = os.getcwd() if cwd is None else cwd
    configured, environ = load(environ, cwd, warn)
    if name is not None:
        chosen = [spec for spec in configured if name in spec.names or spec.label == name]
    else:
        chosen = [s for s in configured if str(s.plugin.get("format")).lower() == "npm"]
        chosen = chosen or configured
    if not chosen:
        which = f"sets {name} with" if name else "uses"
        raise ConfigError(
            f"no entry of the wev.yml files for {cwd} {which} {PLUGIN_ID}",
            hint="put one in the project's wev.yml, or in ~/.wev.yml for every folder",
        )
    spec = VariableSpec((TOKEN_NAME,), token_plugin(chosen[0]), chosen[0].sources)
    return resolve((spec,), environ, cwd, chosen[0])[TOKEN_NAME]
