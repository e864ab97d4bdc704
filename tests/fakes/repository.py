"""A repository endpoint that answers what the test sets, misbehaviour included.

For the loopback proxy's edge cases: ``answer`` serves a fixed response at a path (a relative
``Location``, a gzip bomb); ``cut`` announces a length and closes the connection half-way.
With ``tls`` (a server context, ``fakes.tls.issue``) it serves HTTPS. Records
each request's path and ``Authorization``; checks no token (the tests look at what arrived).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass

from aiohttp import web

from .server import ServedFake, ThreadedAppServer


@dataclass(frozen=True)
class Seen:
    path: str
    authorization: str | None
    #: The names of the headers the request came with, in lower case.
    header_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Fixed:
    status: int
    headers: dict[str, str]
    body: bytes
    cut_after: int | None
    #: Seconds to send nothing more after ``cut_after`` bytes, before hanging up.
    stall: float = 0.2


class FakeRepository(ServedFake):
    """``with FakeRepository() as repository: repository.answer("/pypi/r/x", b"...")``."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, _Fixed] = {}
        self._seen: list[Seen] = []
        app = web.Application()
        app[REPOSITORY] = self
        app.router.add_route("*", "/{tail:.*}", _answer)
        self._server = ThreadedAppServer(app, tls=tls)

    def answer(
        self, path: str, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self._answers[path] = _Fixed(status, headers or {}, body, None)

    def cut(self, path: str, body: bytes, *, after: int) -> None:
        """At ``path``, announce ``body``'s length, send ``after`` bytes of it and hang up."""
        with self._lock:
            self._answers[path] = _Fixed(200, {}, body, after)

    def stall(self, path: str, page: bytes, *, after: int, seconds: float) -> None:
        """At ``path``, an HTML page that stops after ``after`` bytes for ``seconds``."""
        with self._lock:
            headers = {"Content-Type": "text/html"}
            self._answers[path] = _Fixed(200, headers, page, after, seconds)

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)


REPOSITORY = web.AppKey("fake_repository", FakeRepository)


async def _answer(request: web.Request) -> web.StreamResponse:
    repository = request.app[REPOSITORY]
    with repository._lock:
        names = frozenset(name.lower() for name in request.headers)
        repository._seen.append(Seen(request.path, request.headers.get("Authorization"), names))
        fixed = repository._answers.get(request.path)
    if fixed is None:
        return web.Response(status=404, text="Not found")
    if fixed.cut_after is None:
        return web.Response(status=fixed.status, headers=fixed.headers, body=fixed.body)
    response = web.StreamResponse(
        headers=fixed.headers or {"Content-Type": "application/octet-stream"}
    )
    response.content_length = len(fixed.body)
    await response.prepare(request)
    await response.write(fixed.body[: fixed.cut_after])
    await asyncio.sleep(fixed.stall)  # the bytes reach the proxy before the connection drops
    assert request.transport is not None
    request.transport.abort()
    return response
