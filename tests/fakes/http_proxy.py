"""A forward HTTP proxy on 127.0.0.1, as a corporate proxy is used for ``http://`` URLs.

It forwards absolute-form requests (``GET http://host:port/path``) to their target and
records each target URL, so a test sees which calls went through it. Plain HTTP only: the
fakes it fronts are HTTP too.
"""

from __future__ import annotations

import threading

import aiohttp
from aiohttp import web

from .server import ServedFake, ThreadedAppServer

#: Hop-by-hop headers a proxy does not forward.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"}
)


class FakeHttpProxy(ServedFake):
    """``with FakeHttpProxy() as proxy: proxy.url``; ``proxy.targets`` lists what it forwarded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._server = ThreadedAppServer(app)

    @property
    def targets(self) -> list[str]:
        with self._lock:
            return list(self._targets)

    async def _forward(self, request: web.Request) -> web.Response:
        target = request.url
        if request.headers.get("Host") == f"127.0.0.1:{self._server.port}" and not (
            request.raw_path.startswith("http://")
        ):
            return web.Response(status=400, text="not a proxy request")
        with self._lock:
            self._targets.append(str(target))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method, request.raw_path, headers=headers, data=body, allow_redirects=False
            ) as response,
        ):
            payload = await response.read()
            kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            kept.pop("Content-Length", None)
            kept.pop("Transfer-Encoding", None)
            return web.Response(status=response.status, headers=kept, body=payload)
