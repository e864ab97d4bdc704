"""A caller's forward HTTP proxy on 127.0.0.1 (``HTTP_PROXY``), as a corporate proxy is used
for ``http://`` URLs, that records what passed through it.

It forwards absolute-form requests (``GET http://host:port/path``) to their target, as
written, and lists each target URL in ``targets``, so a test sees which calls went through
it and which went direct. A request that is not a proxy request gets 400. Plain HTTP only:
the fakes it fronts are HTTP too. (AWS's host names over HTTPS, through a CONNECT proxy,
are ``fakes.internet``.)
"""

from __future__ import annotations

import threading

import aiohttp
from aiohttp import web

from .server import ServedFake, ThreadedAppServer

#: Hop-by-hop headers a proxy does not forward, and the framing it sets anew.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "upgrade",
        "transfer-encoding",
    }
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
        if not request.raw_path.startswith("http://"):
            return web.Response(status=400, text="not a proxy request")
        with self._lock:
            self._targets.append(str(request.url))
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
            return web.Response(status=response.status, headers=kept, body=payload)
