"""ECR registry hosts, and which ``wev-awsecr`` entry serves a host: one rule for every door.

A private registry's host names its account and region,
``ACCOUNT.dkr.ecr.REGION.amazonaws.com`` (also ``dkr-ecr``, ``-fips`` and
AWS's other partitions' suffixes); ECR Public is ``public.ecr.aws``. A
``registry`` property may write ``*`` for the account or the region (a
pattern): such an entry serves every host that matches it, and, resolved as a
variable, the caller's own account or region.

Used by ``docker-credential-wev`` and ``wev --install-docker-helper`` (which
read wev.yml entries in the client), and by the ``wev-awsecr`` plugin (which
validates the same property in the daemon). Standard library C modules only:
the helper runs on every image pull.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from wev_client.protocol.messages import VariableSpec

PLUGIN_ID = "wev-awsecr"
#: The user name ECR's registries expect beside the password (what AWS's token decodes to).
USERNAME = "AWS"
PUBLIC_HOSTS = ("public.ecr.aws", "ecr-public.aws.com")
#: ECR Public's GetAuthorizationToken is served in this region only.
PUBLIC_REGION = "us-east-1"
WILDCARD = "*"
#: What follows the region in a private registry's host, per AWS partition.
SUFFIXES = frozenset(
    {
        "amazonaws.com",
        "amazonaws.com.cn",
        "amazonaws.eu",
        "on.aws",
        "on.amazonwebservices.com.cn",
        "sc2s.sgov.gov",
        "c2s.ic.gov",
        "cloud.adc-e.uk",
        "csp.hci.ic.gov",
    }
)
#: Settings of a configured entry that a registry chosen by host replaces.
REGISTRY_PROPERTIES = ("registry", "account", "region", "values")


class Registry:
    """A registry host, or a pattern of them: ``account`` and ``region`` are None where
    the pattern has ``*``; both are None for ECR Public."""

    __slots__ = ("account", "fips", "host", "public", "region", "shape")

    def __init__(
        self,
        host: str,
        *,
        public: bool,
        account: str | None,
        region: str | None,
        fips: bool,
        shape: str = "",
    ) -> None:
        self.host = host
        self.public = public
        self.account = account
        self.region = region
        self.fips = fips
        #: The host with ``*`` for account and region: the partition, FIPS, dual-stack.
        self.shape = shape

    def __repr__(self) -> str:
        return f"Registry({self.host!r})"

    @property
    def is_pattern(self) -> bool:
        return not self.public and (self.account is None or self.region is None)

    def matches(self, other: Registry) -> bool:
        """Whether the host ``other`` is one this registry (or pattern) stands for."""
        if self.public or other.public:
            return self.public and other.public
        return (
            self.shape == other.shape
            and self.account in (None, other.account)
            and self.region in (None, other.region)
        )

    @property
    def specificity(self) -> int:
        """How much of a host the pattern fixes: a host beats a pattern naming its account."""
        return 3 if self.public else (self.account is not None) * 2 + (self.region is not None)


def parse(text: str, *, pattern: bool = False) -> Registry | None:
    """The registry a host names (``pattern``: ``*`` may stand for account and region).

    None when the host is not an ECR registry's.
    """
    host = text.strip().lower().rstrip(".")
    if host in PUBLIC_HOSTS:
        return Registry(host, public=True, account=None, region=None, fips=False)
    labels = host.split(".")
    if len(labels) < 4:
        return None
    account, service = labels[0], labels[1]
    if service == "dkr" and labels[2] in ("ecr", "ecr-fips"):
        fips, region, middle, suffix = labels[2] == "ecr-fips", labels[3], labels[1:3], labels[4:]
    elif service in ("dkr-ecr", "dkr-ecr-fips"):
        fips, region, middle, suffix = service == "dkr-ecr-fips", labels[2], labels[1:2], labels[3:]
    else:
        return None
    if ".".join(suffix) not in SUFFIXES:
        return None
    any_account = pattern and account == WILDCARD
    if not any_account and not (len(account) == 12 and account.isascii() and account.isdigit()):
        return None
    any_region = pattern and region == WILDCARD
    if not any_region and not _is_region(region):
        return None
    return Registry(
        host,
        public=False,
        account=None if any_account else account,
        region=None if any_region else region,
        fips=fips,
        shape=".".join((WILDCARD, *middle, WILDCARD, *suffix)),
    )


def _is_region(label: str) -> bool:
    return (
        bool(label)
        and label.isascii()
        and label[0].isalnum()
        and label.replace("-", "").replace("_", "").isalnum()
    )


def host_of(server_url: str) -> str:
    """The host of what a tool asks a credential helper for: a URL or ``host[:port][/path]``."""
    rest = server_url.strip()
    scheme, separator, after = rest.partition("://")
    if separator and scheme.isalpha():
        rest = after
    netloc = rest.partition("/")[0].rpartition("@")[2]
    if netloc.startswith("["):  # an IPv6 literal: never a registry of ours
        return netloc
    return netloc.partition(":")[0].lower()


def entries(specs: Sequence[VariableSpec]) -> list[tuple[VariableSpec, Registry]]:
    """The configured ``wev-awsecr`` entries with the registry (or pattern) each serves.

    An entry without ``registry`` serves the hosts its ``account`` and
    ``region`` allow (each ``*`` when not set); one whose properties are not
    understood here is left for the daemon to report when it is resolved.
    """
    found = []
    for spec in specs:
        plugin = spec.plugin
        if plugin.get("id") != PLUGIN_ID:
            continue
        registry = configured_registry(plugin)
        if registry is not None:
            found.append((spec, registry))
    return found


def configured_registry(plugin: Mapping[str, object]) -> Registry | None:
    """What the plugin block's ``registry``, or ``account`` and ``region``, stand for."""
    written = plugin.get("registry")
    if written is not None:  # a host, or the URL `docker login` takes: its host
        return parse(host_of(str(written)), pattern=True)
    account, region = plugin.get("account"), plugin.get("region")
    account = WILDCARD if account is None else str(account)
    region = WILDCARD if region is None else str(region)
    return parse(f"{account}.dkr.ecr.{region}.amazonaws.com", pattern=True)


def entry_for(registry: Registry, specs: Sequence[VariableSpec]) -> VariableSpec | None:
    """The configured entry that serves the host ``registry``: the one that fixes most of it,
    the first of equals (callers list the nearest file's entries first)."""
    best: tuple[int, VariableSpec] | None = None
    for spec, served in entries(specs):
        if served.matches(registry) and (best is None or served.specificity > best[0]):
            best = (served.specificity, spec)
    return None if best is None else best[1]


def plugin_for(registry: Registry, configured: VariableSpec | None) -> dict[str, object]:
    """The plugin block that gets the user name and password for the host ``registry``:
    the configured entry's settings (``profile``, ``role``) with that host."""
    base: Mapping[str, object] = {} if configured is None else configured.plugin
    plugin = {k: v for k, v in base.items() if k not in REGISTRY_PROPERTIES}
    plugin.update(id=PLUGIN_ID, registry=registry.host, values=["username", "password"])
    return plugin
