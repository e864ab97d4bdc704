"""The daemon's HTTP application: routes, the peer check, and errors as JSON.

``make_app`` is pure (no sockets, no signals) so tests can drive it directly;
``server`` binds it to the Unix socket. Every failure leaves through
``guard_middleware`` as ``{"error": {"code", "message", "hint"}}`` with the
status the error class names. Bodies are read by ``reading``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

# yaml_loader: PyYAML loaded once here, for clients whose config changed (``parse``).
from wev_client import __version__, config_parse, protocol, versions, yaml_loader  # noqa: F401
from wev_client.protocol import codec
from wev_client.protocol.errors import VersionMismatch, WevError
from wev_client.protocol.messages import ResolveRequest, VariableSpec
from wev_client.protocol.parsing import ParseRequest, ParseResponse
from wev_client.protocol.side_messages import AnswerRequest
from wev_daemon import reading
from wev_daemon.cache import stopping
from wev_daemon.installation import Installation
from wev_daemon.proxy import Proxy
from wev_daemon.reading import ReadLately
from wev_daemon.resolver import Resolver
from wev_daemon.service import RESTART_COMMANDS, STOP_COMMANDS

log = logging.getLogger(__name__)

RESOLVER = web.AppKey("resolver", Resolver)
STARTED = web.AppKey("started", float)
SOCKET_PATH = web.AppKey("socket_path", str)
#: Set to make ``server.serve`` shut the daemon down (signals set it too).
STOP = web.AppKey("stop", asyncio.Event)
#: "systemd" or "launchd" when one of them started the daemon, else "".
SERVICE_MANAGER = web.AppKey("service_manager", str)
#: Client versions newer than this daemon that it has served (logged once each).
NEWER_CLIENTS = web.AppKey("newer_clients", set[str])
#: The loopback proxy of ``proxy: true`` entries, when the daemon runs one.
PROXY = web.AppKey("proxy", Proxy)
#: What was installed when the daemon started, when it watches for changes.
INSTALLATION = web.AppKey("installation", Installation)
#: Resolve requests read lately, by their bytes (``reading.ReadLately``).
READ_LATELY = web.AppKey("read_lately", ReadLately)

#: Most versions remembered in NEWER_CLIENTS: a header is no reason to grow memory.
MAX_NEWER_CLIENTS = 16

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Config texts up to this size are parsed in the event loop (well under a millisecond).
INLINE_PARSE_BYTES = 16 * 1024


class UnsupportedVersion(VersionMismatch):
    """A route of another protocol version than this daemon's."""

    http_status = 501


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(text=codec.dumps(body), status=status, content_type="application/json")


def error_response(error: WevError) -> web.Response:
    return json_response(error.to_json(), error.http_status)


#: ``struct ucred`` (pid, uid, gid), the answer to SO_PEERCRED (Linux only).
_UCRED = struct.Struct("3i")
_PEERCRED: int | None = getattr(socket, "SO_PEERCRED", None)


def peer_uid(request: web.Request) -> int | None:
    """The connecting process's uid (Linux SO_PEERCRED), or None where unknown."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX or _PEERCRED is None:
        return None
    return int(_UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, _PEERCRED, _UCRED.size))[1])


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's door, in one middleware (each one costs every request a layer).

    It refuses any peer that is not this daemon's own user; once the daemon
    is stopping, it resolves nothing more, so the client waits for the next
    daemon instead (until the socket closes a request may still arrive, and
    this daemon's answer could be stale: plugins that changed since it
    started; its status still answers, saying ``"stopping": true``); and it is
    the one place where failures become JSON error bodies.
    """
    uid = peer_uid(request)
    if uid is not None and uid != os.getuid():
        log.warning("refused a connection from uid %d", uid)
        return json_response(
            {"error": {"code": "forbidden", "message": "this wev-daemon serves another user"}}, 403
        )
    try:
        if request.app[STOP].is_set() and request.path != protocol.STATUS_ROUTE:
            raise stopping()
        return await handler(request)
    except WevError as error:
        log.info("%s %s: %s", request.method, request.path, error)
        return error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        messages = {
            404: f"{request.path} is not a wev-daemon route",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request is larger than {protocol.MAX_REQUEST_BYTES} bytes",
        }
        message = messages.get(error.status, error.reason)
        return json_response({"error": {"code": "protocol", "message": message}}, error.status)
    except ConnectionError:
        raise  # the client went away: aiohttp closes quietly
    except Exception:
        log.exception("%s %s failed unexpectedly", request.method, request.path)
        return error_response(WevError("the daemon hit an internal error; see its log"))


async def _read_request(request: web.Request) -> ResolveRequest:
    return request.app[READ_LATELY].resolve_request(await _read_body(request))


async def _read_json(request: web.Request) -> object:
    return reading.decode(await _read_body(request))


async def _read_body(request: web.Request) -> bytes:
    """The request's body (``reading.body``), once the client's version and what is
    installed are found to be this daemon's."""
    client_version = request.headers.get(protocol.CLIENT_VERSION_HEADER)
    if client_version and client_version != __version__:
        _check_client_version(request.app, client_version)
    installation = request.app.get(INSTALLATION)
    if installation is not None and installation.changed():
        _give_way_to_the_installation(request.app)
    return await reading.body(request)


def _check_client_version(app: web.Application, client_version: str) -> None:
    """Make way for a newer client's daemon, unless a service manager started this one.

    The newer client then starts a daemon of its own version. A service manager
    would start this same old one again at the next connection, and the
    client would stop it again, in a loop: such a daemon serves the newer
    client instead, and ``wev --status`` says how to restart the service.
    """
    if versions.compare(client_version, __version__) != 1:  # older, or not comparable
        log.debug("client %s talks to daemon %s", client_version, __version__)
        return
    manager = app[SERVICE_MANAGER]
    if not manager:
        log.info("client %s is newer than this daemon: stopping", client_version)
        app[STOP].set()
        raise VersionMismatch(
            f"wev-daemon {__version__} is older than this wev {client_version}",
            hint="restarting it",
        )
    seen = app[NEWER_CLIENTS]
    if client_version not in seen and len(seen) < MAX_NEWER_CLIENTS:
        seen.add(client_version)
        log.warning(
            "client %s is newer than this daemon, which %s started: serving it; "
            "restart the service to upgrade (%s)",
            client_version,
            manager,
            RESTART_COMMANDS.get(manager, "see its manual"),
        )


def _give_way_to_the_installation(app: web.Application) -> None:
    """wev or a plugin was installed, removed or replaced since this daemon started: stop.

    The client then starts a daemon that loads what is installed now; under a
    service manager, the manager does at the next connection (its unit runs
    this same environment's wev-daemon).
    """
    log.info("wev or a plugin changed in this environment since the start: stopping")
    app[STOP].set()
    raise VersionMismatch(
        "what is installed changed since this wev-daemon started (wev or a plugin)",
        hint="restarting it",
    )


async def resolve(request: web.Request) -> web.Response:
    body = await _read_request(request)
    parsed = None
    if body.files:  # right after an edit: the configuration's text, parsed first
        parsed = ParseResponse(await _parsed(body.files), __version__)
        body = body.with_variables(parsed.variables)
    resolver, proxy = request.app[RESOLVER], request.app.get(PROXY)
    if proxy is None or body.cancel or not proxy.wants(body):
        answer = await resolver.resolve(body)
    else:
        prepared = resolver.prepare(body)
        await proxy.ensure_listening()  # its URLs must lead somewhere before they are handed out
        answer = await resolver.resolve(body, prepared)
        if answer.values:
            proxy.register(prepared[0])
    answer.parsed = parsed
    return json_response(answer.to_json())


async def explain(request: web.Request) -> web.Response:
    answer = request.app[RESOLVER].explain(await _read_request(request))
    return json_response(answer.to_json())


async def parse(request: web.Request) -> web.Response:
    """Parse and merge the configuration files' text a client sent, as it would itself.

    A large text is parsed in a worker thread, so that other clients are served
    meanwhile; a small one (every real config) at once, which is quicker than
    handing it to a thread. Errors name the file, as ConfigError, exactly as
    the client's own.
    """
    files = ParseRequest.from_json(await _read_json(request)).files
    return json_response(ParseResponse(await _parsed(files), __version__).to_json())


async def _parsed(files: tuple[tuple[str, str], ...]) -> tuple[VariableSpec, ...]:
    """The variables that the configuration files' text makes; in a worker thread if large."""
    texts = [(path, text.encode()) for path, text in files]
    if sum(len(data) for _, data in texts) <= INLINE_PARSE_BYTES:
        return config_parse.parse_texts(texts)
    return await asyncio.to_thread(config_parse.parse_texts, texts)


async def forget(request: web.Request) -> web.Response:
    body = await _read_request(request)
    forgotten = request.app[RESOLVER].forget(body)
    if PROXY in request.app:  # its routes would fetch again with the forgotten identity
        request.app[PROXY].forget(body)
    return json_response({"forgotten": forgotten})


async def forget_all(request: web.Request) -> web.Response:
    if PROXY in request.app:
        request.app[PROXY].forget(None)
    return json_response({"forgotten": request.app[RESOLVER].forget(None)})


async def stop(request: web.Request) -> web.Response:
    """``wev --stop``: drop every value, then exit, unless a service manager started us.

    Such a daemon would be started again at the next connection: it keeps
    running, empty, and the client says which command stops the service.
    """
    app = request.app
    manager = app[SERVICE_MANAGER]
    if not manager:  # first, or a request held for a question would open another
        app[RESOLVER].cache.stop_serving()
    if PROXY in app:
        app[PROXY].forget(None)
    forgotten = app[RESOLVER].forget(None)
    if not manager:
        log.info("wev --stop: dropped %d entries, stopping", forgotten)
        app[STOP].set()
    else:
        log.info("wev --stop: dropped %d entries; %s stops the service", forgotten, manager)
    return json_response(
        {
            "forgotten": forgotten,
            "pid": os.getpid(),
            "stopping": not manager,
            "service_manager": manager or None,
            "stop_command": STOP_COMMANDS.get(manager),
        }
    )


async def answer(request: web.Request) -> web.Response:
    """``wev --answer``: give each open question its answer, and say what became of it."""
    body = AnswerRequest.from_json(await _read_json(request))
    cache = request.app[RESOLVER].cache
    results: list[dict[str, object]] = []
    for question_id, text in body.answers.items():
        question = cache.answer(question_id, text)
        if question is None:  # answered elsewhere ("gone"), or failed its waiters
            ended = "ended" if cache.questions.failed(question_id) else "gone"
            results.append({"id": question_id, "outcome": ended, "message": ""})
            continue
        outcome, message = await cache.questions.result(question, cache.policy.prompt_wait)
        results.append(
            {
                "id": question_id,
                "names": list(question.names),
                "outcome": outcome,
                "message": message,
            }
        )
    return json_response({"results": results})


async def status(request: web.Request) -> web.Response:
    app = request.app
    cache = app[RESOLVER].cache
    return json_response(
        {
            "running": True,
            "stopping": app[STOP].is_set(),
            "pid": os.getpid(),
            "version": __version__,
            "api_version": protocol.API_VERSION,
            "service_manager": app[SERVICE_MANAGER] or None,
            "restart_command": RESTART_COMMANDS.get(app[SERVICE_MANAGER]),
            "uptime_seconds": round(time.monotonic() - app[STARTED], 1),
            "socket": app[SOCKET_PATH],
            "upstream_calls": cache.upstream_calls,
            "local_failures": cache.local_failures,
            "entries": cache.status(),
            "questions": cache.questions.status(),
            "proxy": app[PROXY].status() if PROXY in app else None,
            "last_upstream_error": _when(cache.last_error),
            "last_local_error": _when(cache.last_local_error),
        }
    )


def _when(error: tuple[datetime.datetime, str] | None) -> str | None:
    return None if error is None else f"{error[0]:%Y-%m-%d %H:%M:%S} UTC: {error[1]}"


async def other_version(request: web.Request) -> web.Response:
    raise UnsupportedVersion(
        f"this wev-daemon ({__version__}) speaks protocol v{protocol.API_VERSION}, "
        f"not v{request.match_info['version']} ({request.path})",
        hint="restart wev-daemon so it matches the client",
    )


def make_app(
    *,
    resolver: Resolver,
    socket_path: str = "",
    service_manager: str = "",
    proxy: Proxy | None = None,
    installation: Installation | None = None,
) -> web.Application:
    """The application; background refresh runs while it is up.

    ``service_manager`` names the one that started the daemon ("systemd",
    "launchd"), "" when a client did. ``proxy`` serves ``proxy: true`` entries
    on loopback while the application is up. With ``installation``, a request
    that finds wev or its plugins changed since then makes the daemon stop.
    """
    app = web.Application(
        middlewares=[guard_middleware],
        client_max_size=protocol.MAX_REQUEST_BYTES,
    )
    app[RESOLVER] = resolver
    app[STARTED] = time.monotonic()
    app[SOCKET_PATH] = socket_path
    app[STOP] = asyncio.Event()
    app[SERVICE_MANAGER] = service_manager
    app[NEWER_CLIENTS] = set()
    app[READ_LATELY] = ReadLately()
    if installation is not None:
        app[INSTALLATION] = installation
    app.router.add_post(protocol.RESOLVE_ROUTE, resolve)
    app.router.add_post(protocol.EXPLAIN_ROUTE, explain)
    app.router.add_get(protocol.STATUS_ROUTE, status)
    app.router.add_post(protocol.FORGET_ROUTE, forget)
    app.router.add_post(protocol.FORGET_ALL_ROUTE, forget_all)
    app.router.add_post(protocol.STOP_ROUTE, stop)
    app.router.add_post(protocol.PARSE_ROUTE, parse)
    app.router.add_post(protocol.ANSWER_ROUTE, answer)
    # Only other versions: an unknown route or method of ours gets 404 or 405.
    other = rf"/v{{version:(?!{protocol.API_VERSION}/)\d+}}/{{rest:.*}}"
    app.router.add_route("*", other, other_version)
    app.cleanup_ctx.append(_background_refresh)
    if proxy is not None:
        app[PROXY] = proxy
        proxy.attach(resolver)
        app.cleanup_ctx.append(proxy.cleanup_ctx)
    return app


async def _background_refresh(app: web.Application) -> AsyncIterator[None]:
    cache = app[RESOLVER].cache
    task = asyncio.create_task(cache.run(), name="refresh")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await cache.close()
