"""The loopback endpoint: its listening sockets, its routes and each request's walk.

``Proxy`` listens on ``127.0.0.1:PORT`` and, where IPv6 loopback exists, on
``[::1]:PORT``, so that a ``localhost`` URL reaches nobody else. It listens
from the start on sockets a service manager handed over, else at the first
``wev`` call that needs it (``ensure_listening``, one at a time, so parallel
first calls all succeed). Whatever fails (the port held by another user, a
bad ``WEV_PROXY_PORT``, the secret that cannot be made) leaves the daemon
serving everything else: ``wev --status`` shows the reason, and the ``wev``
call that needs the proxy fails with it in one line (exit 69).

A request passes the door (``access``), names its route (``routes``), takes
the entry's current token from the daemon's one cache, exactly as a client's
request would (``Resolver.resolution``: same key, same refresh ahead of
expiry), and is forwarded (``forward``). When no token can be had, the
status follows from the failure's kind: 401 for a login or an MFA code to
give in a terminal, 403 for AWS's refusal, 502 for the rest.

Imported by ``wev_daemon.proxy`` (the package) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.typedefs import Middleware

from wev_client.protocol.aws import CODEARTIFACT_PLUGIN_ID as PLUGIN_ID
from wev_client.protocol.errors import InputRequired, UpstreamError, WevError
from wev_client.protocol.messages import ResolveRequest
from wev_daemon import aws
from wev_daemon.plugins import InputNeeded
from wev_daemon.plugins.awscodeartifact import Settings
from wev_daemon.proxy import access
from wev_daemon.proxy.access import BACKLOG, HOST, Door, Gate, ProxyUnavailable, Throttle
from wev_daemon.proxy.forward import Forwarder, GatewayError, StreamBroken
from wev_daemon.proxy.rewrite import Spellings
from wev_daemon.proxy.routes import Route, Routes, climbs, route_path, split
from wev_daemon.questions import Pending
from wev_daemon.resolver import Prepared, Resolver

log = logging.getLogger("wev_daemon.proxy")

#: After an error answer, how long the rest of an unread upload is drained.
LINGERING_TIME = 2.0
#: How long requests in flight get to end when the daemon stops, before they are cut
#: off: with the daemon's own drain, well within the time a client gives a new daemon
#: to start (``wev_client.spawn.START_TIMEOUT``).
SHUTDOWN_TIMEOUT = 3.0
#: What a failure to get the token answers, by its kind; any other is a bad gateway.
STATUS_BY_KIND: tuple[tuple[type[Exception], int], ...] = (
    (InputNeeded, 401),
    (aws.LoginNeeded, 401),
    (aws.AccessDenied, 403),
)


class TokenUnavailable(Exception):
    """No token for a route, and the status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Proxy:
    """The listener, its routes and the forwarding; one per daemon."""

    def __init__(
        self,
        *,
        port: int | None,
        secret_file: str,
        uid_known: bool | None = None,
        inherited: Sequence[socket.socket] = (),
        problem: str | None = None,
    ) -> None:
        #: Sockets of the service manager's (``wev-proxy.socket``) win: tools reach their port.
        self.inherited = list(inherited)
        if self.inherited:
            handed = int(self.inherited[0].getsockname()[1])
            if handed != port:
                log.info("proxy: serving the service manager's port %d, not %s", handed, port)
            port, problem = handed, None  # a bad WEV_PROXY_PORT does not matter then
        self.port = port
        #: Why the proxy can never listen in this run (a bad ``WEV_PROXY_PORT``).
        self.problem = problem
        self.error: str | None = problem
        self.secret_file = secret_file
        uid_known = sys.platform == "linux" if uid_known is None else uid_known
        self.door = Door(port=port or 0, uid_known=uid_known, secret=lambda: self._secret)
        # The daemon's own rule for idle and slow connections (imported here:
        # ``server`` imports the application, which imports this module).
        from wev_daemon.server import CONNECTION_IDLE_TIMEOUT

        self.idle_timeout = CONNECTION_IDLE_TIMEOUT
        self.routes = Routes()
        self.forwarder = Forwarder(idle=CONNECTION_IDLE_TIMEOUT)
        #: Wrapped around each request the door lets in, outermost first (``server``
        #: counts them for ``--idle-exit``: a refused web page keeps no daemon up).
        self.middlewares: list[Middleware] = []
        self._admitted: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = self._serve
        self._secret: str | None = None
        self._resolver: Resolver | None = None
        self._runner: web.ServerRunner | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._in_flight: set[asyncio.Transport] = set()
        self._drained = asyncio.Event()  # set while no request is in flight
        self._lock = asyncio.Lock()
        self._log_throttle = Throttle()

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], inherited: Sequence[socket.socket] = ()
    ) -> Proxy:
        """The daemon's proxy; a bad ``WEV_PROXY_PORT`` is its problem, not the daemon's."""
        try:
            port: int | None = access.port_from_environ(environ)
            problem = None
        except access.BadPort as error:
            port, problem = None, str(error)
        secret_file = access.secret_path()
        return cls(port=port, secret_file=secret_file, inherited=inherited, problem=problem)

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

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def endpoint_url(self, settings: Settings) -> str:
        """The URL a proxied entry hands out; with the secret where uids are unknown."""
        if self.port is None:
            raise ProxyUnavailable(f"the loopback proxy cannot serve: {self.problem}")
        userinfo = "" if self.door.uid_known else f"{access.SECRET_USER}:{self._secret}@"
        return f"http://{userinfo}{HOST}:{self.port}{route_path(settings)}"

    @staticmethod
    def wants(request: ResolveRequest) -> bool:
        """Whether the request has a proxied entry (cheap: no validation)."""
        return any(
            spec.plugin.get("proxy") is True and spec.plugin.get("id") == PLUGIN_ID
            for spec in request.variables
        )

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Listen at start on the service manager's sockets, or where the secret says this
        user has used the proxy before; close at the end.

        Listening at once lets a tool that kept the URL get the 503 hint
        instead of a refused connection after a restart. A failure is logged
        and shown by ``wev --status``; the daemon starts all the same.
        """
        try:
            used_before = not self.door.uid_known and _exists(self.secret_file)
            if self.inherited or used_before:
                await self.ensure_listening()
        except WevError as error:
            log.warning("%s", error)
        yield
        await self.close()

    async def ensure_listening(self) -> None:
        """Listen if not yet; ProxyUnavailable with the reason (who holds the port) if not."""
        async with self._lock:  # parallel first uses: one binds, the others find it done
            if self._runner is not None:
                return
            try:
                await self._listen()
            except ProxyUnavailable as error:
                self.error = error.message
                raise
            self.error = None

    async def _listen(self) -> None:
        if self.port is None:
            raise ProxyUnavailable(f"the loopback proxy cannot serve: {self.problem}")
        if not self.door.uid_known:  # the secret exists only where it is used
            try:
                self._secret = access.load_secret(self.secret_file, create=True)
            except UpstreamError as error:
                raise ProxyUnavailable(error.message, hint=error.hint) from None
        socks = self.inherited + access.bind_loopback(self.port, self.inherited)
        # aiohttp's low-level server: one handler for every path, no application
        # or router to walk for each request.
        admitted: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = self._serve
        for middleware in reversed(self.middlewares):
            admitted = functools.partial(middleware, handler=admitted)
        self._admitted = admitted
        runner = web.ServerRunner(
            web.Server(
                self.handle,
                access_log=None,
                keepalive_timeout=self.idle_timeout,
                lingering_time=LINGERING_TIME,
            ),
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        server = runner.server
        assert server is not None
        try:
            for sock in socks:
                self._servers.append(
                    await loop.create_server(
                        functools.partial(Gate, self.door, server), sock=sock, backlog=BACKLOG
                    )
                )
        except OSError as error:
            await self._stop_serving(runner)
            raise ProxyUnavailable(f"the loopback proxy cannot serve: {error.strerror}") from None
        self._runner = runner
        where = ", ".join(_address(sock) for sock in socks)
        log.info("proxy listening on %s", where)

    async def close(self) -> None:
        if self._runner is not None:
            await self._stop_serving(self._runner)
            self._runner = None
        await self.forwarder.close()

    async def _stop_serving(self, runner: web.ServerRunner) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        # A download its tool stopped reading would hold the stopping daemon, and so the
        # socket's lock, for the whole idle time: the next daemon could not start.
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await self._drained.wait()
        for transport in list(self._in_flight):
            transport.abort()
        await runner.cleanup()

    # -- routes ----------------------------------------------------------------------------

    def register(self, prepared: Iterable[Prepared]) -> None:
        """Record a ``wev`` call's proxied entries: their routes now use its AWS context."""
        assert self._resolver is not None
        for path in self.routes.register(prepared, self._resolver.kept):
            log.info("proxy: serving %s%s", self.base, path)

    def forget(self, request: ResolveRequest | None) -> None:
        """Drop the routes of the request's entries (None: all), as ``wev --forget`` does
        with their tokens: until a ``wev`` call registers them again, they answer 503."""
        keys = None
        if request is not None:
            assert self._resolver is not None
            keys = {item.key for item in self._resolver.prepare(request)[0]}
        for path in self.routes.forget(keys):
            log.info("proxy: forgot %s%s", self.base, path)

    def status(self) -> dict[str, object]:
        """Secret-free facts for ``wev --status``; before the first use, which other user
        holds the port, if one does (a tool that kept the URL talks to them)."""
        error = self.error
        if error is None and not self.listening and self.port is not None:
            holders = access.listeners(self.port, others_only=True)
            if holders is not None:
                error = f"the loopback proxy cannot listen on port {self.port}: {holders} holds it"
        return {
            "url": self.base if self.port is not None else None,
            "listening": self.listening,
            "error": error,
            "repositories": self.routes.status(self.base),
        }

    # -- requests --------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        refused = self.door.refusal(request)
        if refused is not None:
            return _text(*refused)
        return await self._admitted(request)

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        key, rest = split(request.raw_path)
        route = self.routes.get(key)
        if route is None:
            return _text(
                503,
                f"no repository is registered at {self.base}{key}: run `wev true` once in a "
                "project whose wev.yml has it with proxy: true, then retry",
            )
        if climbs(rest):
            # Resolved upstream, it would leave the repository the route names.
            return _text(400, f"{request.path}: a path with . or .. segments is not forwarded")
        expect = request.headers.get("Expect")
        if expect is not None and request.version == HttpVersion11:
            # An upload is told to go on only once the door has let it in.
            if expect.lower() != "100-continue":
                return _text(417, f"Expect: {expect} is not understood")
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        route.requests += 1
        transport = request.transport
        if transport is not None:
            self._in_flight.add(transport)
            self._drained.clear()
        try:
            token, endpoint = await self._credentials(route)
            return await self.forwarder.forward(
                request,
                url=endpoint + rest,
                authorization=route.authorization(token),
                spellings=_spellings(endpoint, self.base + route.path),
                env=route.item.context.env,
                profile_ca_bundle=route.profile_ca_bundle(),
            )
        except (TokenUnavailable, GatewayError) as error:
            return self._failed(route, error.status, str(error))
        except StreamBroken as error:
            self._record(route, f"cut off: {error}")
            return error.response
        finally:
            if transport is not None:
                self._in_flight.discard(transport)
                if not self._in_flight:
                    self._drained.set()

    async def _credentials(self, route: Route) -> tuple[str, str]:
        """The entry's current token and endpoint, from the cache; TokenUnavailable if none."""
        assert self._resolver is not None
        try:
            # A question (an MFA code) is waited for, up to the wait bound, on the
            # channels of the `wev` call that registered the route.
            resolution = await self._resolver.resolution(route.item)
        except Pending as pending:
            raise TokenUnavailable(
                401, f"no answer yet to: {pending.question.text.strip()}"
            ) from None
        except InputRequired as error:
            raise TokenUnavailable(401, str(error)) from None
        except WevError as error:
            raise TokenUnavailable(status_of(error), str(error)) from None
        if len(resolution.private) != 2:
            raise TokenUnavailable(502, "the entry holds no token for the proxy")
        token, endpoint = resolution.private
        route.upstream = endpoint
        return token, endpoint

    def _failed(self, route: Route, status: int, message: str) -> web.Response:
        return _text(status, self._record(route, message))

    def _record(self, route: Route, message: str) -> str:
        """The route's last error, logged (at most once a minute for the same status)."""
        line = " ".join(f"{self.base}{route.path}: {message}".split())
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        route.last_error = f"{stamp} UTC: {line}"
        if self._log_throttle.due((route.path, message)):
            log.warning("proxy: %s", line)
        return line


def status_of(error: Exception) -> int:
    """The status a failure to get the token answers, by its kind."""
    return next((status for kind, status in STATUS_BY_KIND if isinstance(error, kind)), 502)


@functools.lru_cache(maxsize=64)
def _spellings(endpoint: str, local: str) -> Spellings:
    return Spellings(endpoint, local)


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"


def _text(status: int, line: str) -> web.Response:
    return web.Response(status=status, text=f"wev: {line}\n")
