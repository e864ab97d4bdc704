"""The loopback proxy: a repository URL that never expires and holds no token.

A ``wev-awscodeartifact`` entry with ``proxy: true`` hands out
``http://127.0.0.1:PORT/<domain>/<repository>/<format>/`` instead of the
CodeArtifact endpoint. Requests to it are forwarded to the endpoint with the
entry's current token, which comes from the daemon's one cache exactly as a
client's request would get it (``Resolver.resolution``: same cache key, same
refresh ahead of expiry); the token and the real endpoint are the
resolution's ``private`` part.

Registration: when ``wev`` resolves a proxied entry, ``register`` records its
route with the prepared entry (plugin settings and the caller's AWS context,
without its answers). Routes live in memory only: after a restart a route
answers 503 with a one-line hint until a ``wev`` call registers it again.
The path and the port do not depend on the daemon's run, so the URL stays
the same (the port: ``WEV_PROXY_PORT``, else a fixed one derived from the uid).

Who gets in: it listens on 127.0.0.1 only, answers only ``Host:
127.0.0.1:PORT`` (or ``localhost:PORT``, against DNS rebinding), and only the
daemon's own user (or root): on Linux by the owner of the connecting socket
(``/proc/net/tcp``); where that cannot be known, by a per-user secret sent as
the URL's userinfo (``http://wev:SECRET@127.0.0.1:PORT/...``), kept 0600 in the
user's state folder. Nothing is cached on disk and no token is logged.

A service manager may hand the daemon the proxy's socket (``wev-proxy.socket``,
the plist's ``proxy`` socket; see ``activation``): it is served from the start,
at its port, so a tool that connects after a reboot starts the daemon.
``wev --forget`` drops routes with their tokens.

Responses: simple pages, PEP 691 JSON and npm packuments are rewritten so that
URLs to the endpoint point at the proxy; so is a ``Location`` to it. Other
redirects (presigned S3 downloads) pass untouched, and other bodies stream
both ways through one pooled upstream session.

Imported by ``wev_daemon.app`` and ``wev_daemon.__main__`` only.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hmac
import logging
import os
import secrets
import socket
import sys
import weakref
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from wev_client.protocol.errors import InputRequired, UpstreamError, WevError
from wev_client.protocol.messages import ResolveRequest
from wev_daemon import network
from wev_daemon.plugins import Context
from wev_daemon.plugins.awscodeartifact import PROXY_FORMATS, USERNAME, Settings
from wev_daemon.questions import Pending
from wev_daemon.resolver import Prepared, Resolver

log = logging.getLogger(__name__)

PLUGIN_ID = "wev-awscodeartifact"
HOST = "127.0.0.1"
PORT_ENV = "WEV_PROXY_PORT"
#: The default port is PORT_BASE + uid % PORT_SPAN: fixed for a user, apart
#: for users of one machine, and below the ephemeral ranges of Linux
#: (32768-60999) and macOS (49152-), so no outgoing connection takes it.
PORT_BASE = 23000
PORT_SPAN = 8000
#: The user name in the URL where the secret is needed.
SECRET_USER = "wev"  # noqa: S105 - a user name, not a secret
SECRET_FILE = "proxy-secret"  # noqa: S105 - a file name
#: Most routes kept (one per repository and format; a user has a handful).
MAX_ROUTES = 64
#: Largest page or packument rewritten in memory; bigger ones fail with 502.
MAX_REWRITE_BYTES = 64 * 1024 * 1024
CHUNK = 256 * 1024
#: Content types whose bodies carry URLs to the endpoint.
REWRITTEN_TYPES = frozenset(
    {
        "text/html",
        "application/vnd.pypi.simple.v1+html",
        "application/vnd.pypi.simple.v1+json",
        "application/json",
        "application/vnd.npm.install-v1+json",
    }
)
#: Headers of one connection, not of the message (RFC 9110 7.6.1), and ours to set.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
REQUEST_DROPPED = HOP_BY_HOP | {"host", "authorization", "cookie", "accept-encoding"}
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length", "set-cookie", "www-authenticate"}
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)


def default_port(uid: int) -> int:
    return PORT_BASE + uid % PORT_SPAN


def port_from_environ(environ: Mapping[str, str]) -> int:
    """``WEV_PROXY_PORT``, else the user's fixed default; WevError for a bad value."""
    raw = environ.get(PORT_ENV, "").strip()
    if not raw:
        return default_port(os.getuid())
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise WevError(f"{PORT_ENV}={raw!r} is not a port number (1-65535)")
    return int(raw)


def secret_path() -> str:
    """Where the per-user secret is kept: the user's state folder, as the log is."""
    import platformdirs

    return os.path.join(platformdirs.user_state_dir("wev"), SECRET_FILE)


def load_secret(path: str, *, create: bool) -> str | None:
    """The secret in ``path``; made (0600, in a 0700 folder) when missing and ``create``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not create:
            return None
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        value = secrets.token_urlsafe(24)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another daemon made it first
            return load_secret(path, create=False)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        return value
    with os.fdopen(fd) as file:
        st = os.fstat(file.fileno())
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise WevError(
                f"{path} is open to other users or not yours",
                hint=f"remove it (a new secret is made) or chmod 0600 {path}",
            )
        return file.read().strip() or None


def connection_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the TCP socket at ``peer`` connected to ``local``, from /proc/net/tcp(6).

    None where the kernel does not say (not Linux, or no such connection).
    """
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as rows:
                next(rows, None)  # the header
                for row in rows:
                    fields = row.split()
                    if len(fields) < 8:
                        continue
                    here, there = _address(fields[1], family), _address(fields[2], family)
                    if here == _normal(peer) and there == _normal(local):
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None


def _address(text: str, family: int) -> tuple[str, int]:
    """``0100007F:1F90`` (the kernel's order of 32-bit words) as ("127.0.0.1", 8080)."""
    host, _, port = text.partition(":")
    raw = b"".join(
        int(host[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(host), 8)
    )
    return _normal((socket.inet_ntop(family, raw), int(port, 16)))


def _normal(address: tuple[str, int]) -> tuple[str, int]:
    host = address[0].removeprefix("::ffff:")  # an IPv4 peer on a dual-stack socket
    return host, int(address[1])


def route_path(settings: Settings) -> str:
    """``/<domain>[-<account>]/<repository>/<format>/``: the same for every run of the daemon."""
    domain = settings.domain + (f"-{settings.account}" if settings.account else "")
    parts = (domain, settings.repository or "", settings.format or "")
    return "/" + "/".join(quote(part, safe="") for part in parts) + "/"


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


class Proxy:
    """The listener, its routes and the forwarding; one per daemon."""

    def __init__(
        self,
        *,
        port: int,
        secret_file: str,
        uid_known: bool | None = None,
        inherited: socket.socket | None = None,
    ) -> None:
        #: A socket of the service manager's (``wev-proxy.socket``) wins: tools reach its port.
        self.inherited = inherited
        self.port = int(inherited.getsockname()[1]) if inherited is not None else port
        if self.port != port:
            log.info("proxy: serving the service manager's port %d, not %d", self.port, port)
        self.secret_file = secret_file
        #: Whether the kernel tells who connects (Linux); else the URL carries the secret.
        self.uid_known = sys.platform == "linux" if uid_known is None else uid_known
        self.routes: dict[str, Route] = {}
        self.error: str | None = None
        self._secret: str | None = None
        self._resolver: Resolver | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._verdicts: weakref.WeakKeyDictionary[object, str | None] = weakref.WeakKeyDictionary()
        self._hosts = frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], inherited: socket.socket | None = None
    ) -> Proxy:
        return cls(port=port_from_environ(environ), secret_file=secret_path(), inherited=inherited)

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, resolver: Resolver) -> None:
        """Serve ``resolver``'s entries and give its CodeArtifact plugin the loopback URLs."""
        self._resolver = resolver
        plugin = resolver.plugins.get(PLUGIN_ID)
        if plugin is not None and hasattr(plugin, "proxy_endpoint"):
            plugin.proxy_endpoint = self.endpoint_url

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def endpoint_url(self, settings: Settings) -> str:
        """The URL a proxied entry hands out; with the secret where uids are unknown."""
        userinfo = "" if self.uid_known else f"{SECRET_USER}:{self._secret}@"
        return f"http://{userinfo}{HOST}:{self.port}{route_path(settings)}"

    @staticmethod
    def wants(request: ResolveRequest) -> bool:
        """Whether the request has a proxied entry (cheap: no validation)."""
        return any(
            spec.plugin.get("proxy") is True and spec.plugin.get("id") == PLUGIN_ID
            for spec in request.variables
        )

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Listen at start on the service manager's socket, or when this user has used
        the proxy before; close at the end.

        Listening at once lets a tool that kept the URL get the 503 hint
        instead of a refused connection after a restart.
        """
        try:
            if self.inherited or load_secret(self.secret_file, create=False) is not None:
                await self.ensure_listening()
        except WevError as error:
            log.warning("%s", error)
        yield
        await self.close()

    async def ensure_listening(self) -> None:
        """Listen on 127.0.0.1:port if not yet; UpstreamError naming the port if it is taken."""
        if self._runner is not None:
            return
        self._secret = load_secret(self.secret_file, create=True)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            if self.inherited is not None:
                await web.SockSite(runner, self.inherited).start()
            else:
                await web.TCPSite(runner, HOST, self.port, reuse_address=True).start()
        except OSError as error:
            await runner.cleanup()
            self.error = f"cannot listen on {HOST}:{self.port}: {error.strerror}"
            raise UpstreamError(
                f"the loopback proxy {self.error}",
                hint=f"set {PORT_ENV} to a free port for wev-daemon, then restart it",
            ) from None
        self._runner, self.error = runner, None
        log.info("proxy listening on %s", self.base)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def register(self, request: ResolveRequest) -> None:
        """Record the request's proxied entries: their routes now use its AWS context."""
        assert self._resolver is not None
        prepared, _ = self._resolver.prepare(request)
        now = datetime.datetime.now(datetime.UTC)
        for item in prepared:
            settings = item.settings
            if not isinstance(settings, Settings) or not settings.proxy:
                continue
            path = route_path(settings)
            # No answers kept: a question (an MFA code) goes to a terminal, not a tool.
            context = item.context
            quiet = Context(context.env, process_env=context.process_env, cwd=context.cwd)
            route = self.routes.pop(path, None)
            if route is None:
                log.info("proxy: serving %s%s", self.base, path)
                route = Route(path, item, PROXY_FORMATS[settings.format or ""], now)
            route.item, route.registered_at = dataclasses.replace(item, context=quiet), now
            entry = self._resolver.cache.entries.get(item.key)
            if entry is not None and entry.resolution is not None and entry.resolution.private:
                route.upstream = entry.resolution.private[1]
            self.routes[path] = route  # last registered last: the oldest go first
        while len(self.routes) > MAX_ROUTES:
            del self.routes[next(iter(self.routes))]

    def forget(self, request: ResolveRequest | None) -> None:
        """Drop the routes of the request's entries (None: all), as ``wev --forget`` does
        with their tokens: until a ``wev`` call registers them again, they answer 503."""
        if request is None:
            self.routes.clear()
            return
        assert self._resolver is not None
        keys = {item.key for item in self._resolver.prepare(request)[0]}
        for path, route in list(self.routes.items()):
            if route.item.key in keys:
                log.info("proxy: forgot %s%s", self.base, path)
                del self.routes[path]

    def status(self) -> dict[str, object]:
        """Secret-free facts for ``wev --status``."""
        return {
            "url": self.base,
            "listening": self._runner is not None,
            "error": self.error,
            "repositories": [
                {
                    "url": self.base + route.path,
                    "upstream": route.upstream or None,
                    "requests": route.requests,
                    "registered_at": route.registered_at.isoformat(timespec="seconds"),
                    "last_error": route.last_error,
                }
                for route in self.routes.values()
            ],
        }

    # -- requests --------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.host not in self._hosts:
            return _text(421, f"this is wev's proxy at {self.base}, not {request.host}")
        refused = self._refusal(request)
        if refused is not None:
            log.warning("proxy: refused %s", refused)
            return _text(403, refused)
        path = request.raw_path
        parts = path.split("?", 1)[0].split("/", 4)
        key = "/" + "/".join(parts[1:4]) + "/" if len(parts) >= 4 else path
        route = self.routes.get(key)
        if route is None:
            return _text(
                503,
                f"no repository is registered at {self.base}{key}: run `wev true` once in a "
                "project whose wev.yml has it with proxy: true, then retry",
            )
        rest = path[len(key) :] if path.startswith(key) else path[len(key) - 1 :]
        if {".", ".."} & set(rest.split("?", 1)[0].split("/")):
            # Resolved upstream, it would leave the repository the route names.
            return _text(400, f"{request.path}: a path with . or .. segments is not forwarded")
        route.requests += 1
        credentials = await self._credentials(route)
        if isinstance(credentials, web.Response):
            return credentials
        token, endpoint = credentials
        return await self._forward(request, route, token, endpoint, rest)

    def _refusal(self, request: web.Request) -> str | None:
        """Why this connection may not use the proxy, or None; judged once per connection."""
        transport = request.transport
        if transport is None:
            return "the connection is gone"
        if transport in self._verdicts:
            return self._verdicts[transport]
        verdict = self._judge(request, transport)
        self._verdicts[transport] = verdict
        return verdict

    def _judge(self, request: web.Request, transport: object) -> str | None:
        uid = None
        if self.uid_known:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            local = request.transport.get_extra_info("sockname") if request.transport else None
            if peer and local:
                uid = connection_uid(peer, local)
        if uid is not None:
            if uid in (os.getuid(), 0):
                return None
            return f"a connection from uid {uid}: this proxy serves uid {os.getuid()} only"
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        given, expected = credentials.strip(), self._secret or ""
        if scheme.lower() == "basic":  # the URL's userinfo: pip, uv, Poetry
            try:
                given = base64.b64decode(given, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
            expected = f"{SECRET_USER}:{self._secret}"
        elif scheme.lower() != "bearer":  # .npmrc's _authToken: npm
            given = ""
        if self._secret and given and hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return "a connection whose user is unknown and that has not the URL's secret"

    async def _credentials(self, route: Route) -> tuple[str, str] | web.Response:
        """The entry's current token and endpoint, from the cache; or the error response."""
        assert self._resolver is not None
        try:
            # A question (an MFA code) is waited for, up to the wait bound, on the
            # channels of the `wev` call that registered the route.
            resolution = await self._resolver.resolution(route.item)
        except Pending as pending:
            return self._failed(route, 401, f"no answer yet to: {pending.question.text.strip()}")
        except InputRequired as error:
            return self._failed(route, 401, str(error))
        except WevError as error:
            return self._failed(route, _status_of(error), str(error))
        if len(resolution.private) != 2:
            return self._failed(route, 502, "the entry holds no token for the proxy")
        token, endpoint = resolution.private
        route.upstream = endpoint
        return token, endpoint

    def _failed(self, route: Route, status: int, message: str) -> web.Response:
        line = " ".join(f"{self.base}{route.path}: {message}".split())
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        route.last_error = f"{stamp} UTC: {line}"
        log.warning("proxy: %s", line)
        return _text(status, line)

    async def _forward(
        self, request: web.Request, route: Route, token: str, endpoint: str, rest: str
    ) -> web.StreamResponse:
        session = self._upstream()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in REQUEST_DROPPED}
        if route.auth == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        else:
            pair = f"{USERNAME}:{token}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        accepted = request.headers.get("Accept-Encoding", "").lower()
        codings = [c for c in ("gzip", "deflate") if c in accepted]
        headers["Accept-Encoding"] = ", ".join(codings) or "identity"
        url = URL(endpoint + rest, encoded=True)
        data = request.content if request.body_exists else None
        local = self.base + route.path
        try:
            async with session.request(
                request.method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                proxy=network.proxy_for(str(url), route.item.context.env),
            ) as upstream:
                out_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in RESPONSE_DROPPED
                }
                location = upstream.headers.get("Location", "")
                if location.startswith(endpoint):
                    out_headers["Location"] = local + location[len(endpoint) :]
                kind = upstream.headers.get("Content-Type", "").split(";")[0].strip().lower()
                log.debug("proxy: %s %s -> %d", request.method, route.path + rest, upstream.status)
                if kind in REWRITTEN_TYPES and request.method != "HEAD":
                    body = await _read_decoded(upstream)
                    out_headers.pop("Content-Encoding", None)
                    body = body.replace(endpoint.encode(), local.encode())
                    return web.Response(status=upstream.status, headers=out_headers, body=body)
                response = web.StreamResponse(status=upstream.status, headers=out_headers)
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError, zlib.error) as error:
            reason = str(error) or type(error).__name__
            return self._failed(route, 502, f"{url.host}: {reason}")

    def _upstream(self) -> aiohttp.ClientSession:
        """One session for the daemon's life: its pool keeps upstream connections open."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=32, ttl_dns_cache=300),
                timeout=UPSTREAM_TIMEOUT,
                auto_decompress=False,  # bodies pass through as they came
            )
        return self._session


async def _read_decoded(upstream: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in upstream.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > MAX_REWRITE_BYTES:
            raise aiohttp.ClientPayloadError(f"a page larger than {MAX_REWRITE_BYTES} bytes")
    coding = upstream.headers.get("Content-Encoding", "").strip().lower()
    if coding in ("gzip", "x-gzip"):
        return zlib.decompress(bytes(body), 16 + zlib.MAX_WBITS)
    if coding == "deflate":
        with contextlib.suppress(zlib.error):
            return zlib.decompress(bytes(body))
        return zlib.decompress(bytes(body), -zlib.MAX_WBITS)
    return bytes(body)


def _status_of(error: WevError) -> int:
    """401 for a login to renew, 403 for a refusal, 502 for the rest (a bad gateway)."""
    text = str(error)
    if getattr(error, "local", False) or any(
        code in text
        for code in ("ExpiredToken", "UnrecognizedClient", "InvalidClientTokenId", "expired")
    ):
        return 401
    if "AccessDenied" in text or "Forbidden" in text:
        return 403
    return 502


def _text(status: int, line: str) -> web.Response:
    return web.Response(status=status, text=f"wev: {line}\n")
