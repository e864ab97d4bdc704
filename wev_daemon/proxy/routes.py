"""The proxy's routes: which repository a path names, and the entry whose token it uses.

When ``wev`` resolves a proxied entry, its route is registered with the
prepared entry (plugin settings and the caller's context, without its
answers: a question goes to a terminal, never to a tool). Routes live in
memory only; the latest registration wins, and the oldest go first past
``MAX_ROUTES``. The path does not depend on the daemon's run, so the URL stays
the same across restarts.

Imported by the proxy's other modules.
"""

from __future__ import annotations

import base64
import datetime
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from wev_client.protocol.aws import CODEARTIFACT_USERNAME as USERNAME
from wev_daemon import aws_identity
from wev_daemon.plugins.awscodeartifact import PROXY_FORMATS, Settings
from wev_daemon.resolver import Prepared

log = logging.getLogger("wev_daemon.proxy")

#: Most routes kept (one per repository and format; a user has a handful).
MAX_ROUTES = 64


def route_path(settings: Settings) -> str:
    """``/<domain>[-<account>]/<repository>/<format>/``: the same for every run of the daemon."""
    return _path(settings.domain, settings.account, settings.repository, settings.format)


@functools.lru_cache(maxsize=MAX_ROUTES)
def _path(domain: str, account: str | None, repository: str | None, fmt: str | None) -> str:
    # Asked for each proxied page (the plugin hands out the URL): quoted once.
    parts = (domain + (f"-{account}" if account else ""), repository or "", fmt or "")
    return "/" + "/".join(quote(part, safe="") for part in parts) + "/"


def split(raw_path: str) -> tuple[str, str]:
    """A request's raw path as its route's path and the rest (what follows it upstream)."""
    path = raw_path.split("?", 1)[0]
    parts = path.split("/", 4)
    key = "/" + "/".join(parts[1:4]) + "/" if len(parts) >= 4 else path
    rest = raw_path[len(key) :] if raw_path.startswith(key) else raw_path[len(key) - 1 :]
    return key, rest


def climbs(rest: str) -> bool:
    """Whether the rest of a path has a ``.`` or ``..`` segment, written or percent-encoded
    (``%2e%2e``, ``..%2f``): resolved upstream, it would leave the route's repository.
    An encoded ``/`` alone is no climb (npm's ``@scope%2fname``)."""
    path = unquote(rest.split("?", 1)[0]).replace("\\", "/")
    return bool({".", ".."} & set(path.split("/")))


@dataclass
class Route:
    """A registered repository: the entry whose token it uses, and what it has seen."""

    path: str
    item: Prepared
    auth: str  # "basic" or "bearer"
    registered_at: datetime.datetime
    upstream: str = ""  # the endpoint, once known (it holds no secret)
    requests: int = 0
    last_error: str | None = None
    #: The last token and its ``Authorization`` value: a page costs no base64 of a 1 KB
    #: token. Held no longer than the route (``wev --forget`` drops both).
    _authorization: tuple[str, str] = field(default=("", ""), repr=False)

    def authorization(self, token: str) -> str:
        """The ``Authorization`` header that hands ``token`` to the repository."""
        known, value = self._authorization
        if token != known or not value:
            if self.auth == "bearer":
                value = f"Bearer {token}"
            else:
                value = "Basic " + base64.b64encode(f"{USERNAME}:{token}".encode()).decode()
            self._authorization = (token, value)
        return value

    def profile_ca_bundle(self) -> str | None:
        """The ``ca_bundle`` of the AWS profile the entry resolves with, as AWS calls use it."""
        settings = self.item.settings
        profile = settings.profile if isinstance(settings, Settings) else None
        return aws_identity.profile_setting(self.item.context.env, profile, "ca_bundle")


class Routes:
    """The registered routes, by path."""

    def __init__(self) -> None:
        self.by_path: dict[str, Route] = {}

    def get(self, path: str) -> Route | None:
        return self.by_path.get(path)

    def register(
        self, prepared: Iterable[Prepared], kept: Callable[[Prepared], Prepared]
    ) -> list[str]:
        """Record the proxied entries of one ``wev`` call; the paths that are new.

        ``kept`` makes an entry fit to outlive its request (``Resolver.kept``): no
        answer of that request is held, a question is answered from the channels.
        A route learns its upstream endpoint from its first forwarded request.
        """
        now = datetime.datetime.now(datetime.UTC)
        new = []
        for item in prepared:
            settings = item.settings
            if not isinstance(settings, Settings) or not settings.proxy:
                continue
            path = route_path(settings)
            route = self.by_path.pop(path, None)
            if route is None:
                new.append(path)
                route = Route(path, item, PROXY_FORMATS[settings.format or ""], now)
            route.item, route.registered_at = kept(item), now
            self.by_path[path] = route  # last registered last: the oldest go first
        while len(self.by_path) > MAX_ROUTES:
            del self.by_path[next(iter(self.by_path))]
        return new

    def forget(self, keys: set[str] | None) -> list[str]:
        """Drop the routes of entries with these cache keys (None: all); their paths."""
        gone = [
            path for path, route in self.by_path.items() if keys is None or route.item.key in keys
        ]
        for path in gone:
            del self.by_path[path]
        return gone

    def status(self, base: str) -> list[dict[str, object]]:
        return [
            {
                "url": base + route.path,
                "upstream": route.upstream or None,
                "requests": route.requests,
                "registered_at": route.registered_at.isoformat(timespec="seconds"),
                "last_error": route.last_error,
            }
            for route in self.by_path.values()
        ]
