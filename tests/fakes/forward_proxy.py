"""A plain HTTP forward proxy on 127.0.0.1 (``HTTP_PROXY``) that records what passed.

It takes absolute-form requests (``GET http://host:port/path``), as clients send them to a
proxy for ``http://`` URLs, and forwards them; ``targets`` lists each request's URL.
"""

from __future__ import annotations

import threading

import aiohttp
from aiohttp import web

from .server import ServedFake, ThreadedAppServer

DROPPED = {"host", "proxy-connection", "connection", "keep-alive", "transfer-encoding"}


class FakeForwardProxy(ServedFake):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[str] = []
        app = web.Application()
        app[PROXY] = self
        app.router.add_route("*", "/{tail:.*}", _forward)
        self._server = ThreadedAppServer(app)

    @property
    def targets(self) -> list[str]:
        with self._lock:
            return list(self._targets)


PROXY = web.AppKey("fake_forward_proxy", FakeForwardProxy)


async def _forward(request: web.Request) -> web.Response:
    target = request.url  # the absolute-form target: the host the client wants
    with request.app[PROXY]._lock:
        request.app[PROXY]._targets.append(str(target))
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(
            request.method, target, headers=headers, data=await request.read()
        ) as upstream,
    ):
        body = await upstream.read()
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in DROPPED}
        out.pop("Content-Length", None)
        return web.Response(status=upstream.status, headers=out, body=body)
