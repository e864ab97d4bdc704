"""Reading a client's request body: bounded in size, time and nesting, and read once.

A body is refused when larger than the protocol allows (413, from the
header), when it does not arrive within BODY_TIMEOUT (408), and when it nests
deeper than MAX_REQUEST_DEPTH (400), before any handler walks it.
``ReadLately`` keeps the resolve requests of the latest distinct bodies: a
terminal that runs ``wev`` again sends the very same bytes (its environment,
folder and configuration), decoded and checked once. Imported by ``app``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from wev_client import protocol
from wev_client.protocol import codec
from wev_client.protocol.errors import ProtocolError
from wev_client.protocol.messages import ResolveRequest

#: Deepest nesting a request may have; real ones have five levels. Deeper
#: documents fail before recursion does, anywhere a handler walks them.
MAX_REQUEST_DEPTH = 64
#: Longest a client may take to send its body; headers are bounded by the
#: server's keep-alive timeout (see ``server``).
BODY_TIMEOUT = 10.0
#: Resolve requests kept, and the largest body kept (a real one is a few kilobytes):
#: a user has a few terminals and projects.
MAX_KEPT = 16
MAX_KEPT_BYTES = 64 * 1024


class SlowRequest(ProtocolError):
    """The client sent its request too slowly."""

    code = "timeout"
    http_status = 408


async def body(request: web.Request) -> bytes:
    """The request's body, bounded in size and time."""
    if request.content_length is not None and request.content_length > protocol.MAX_REQUEST_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=protocol.MAX_REQUEST_BYTES, actual_size=request.content_length
        )
    if request.content.is_eof():  # the whole body came with the headers, as wev sends it
        return await request.read()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):  # a body sent a byte at a time
            return await request.read()
    except TimeoutError:
        raise SlowRequest(f"the request body did not arrive within {BODY_TIMEOUT:.0f} s") from None


def decode(raw: bytes) -> object:
    """A body's JSON, bounded in nesting."""
    document = codec.loads(raw)
    if _brackets(raw) > MAX_REQUEST_DEPTH:
        _check_depth(document)
    return document


class ReadLately:
    """The resolve requests of the latest distinct bodies, by their bytes."""

    def __init__(self) -> None:
        self._kept: dict[bytes, ResolveRequest] = {}

    def resolve_request(self, raw: bytes) -> ResolveRequest:
        """``raw`` decoded and checked as a ResolveRequest, or as it was the last time."""
        request = self._kept.get(raw)
        if request is None:
            request = ResolveRequest.from_json(decode(raw))
            if len(raw) <= MAX_KEPT_BYTES:
                while len(self._kept) >= MAX_KEPT:  # the oldest first: dicts keep order
                    del self._kept[next(iter(self._kept))]
                self._kept[raw] = request
        return request


def _check_depth(document: object) -> None:
    """ProtocolError if ``document`` nests deeper than MAX_REQUEST_DEPTH."""
    level: list[object] = [document]
    for _ in range(MAX_REQUEST_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    raise ProtocolError(f"the request nests deeper than {MAX_REQUEST_DEPTH} levels")


def _brackets(raw: bytes) -> int:
    """How many ``[`` and ``{`` ``raw`` holds, counted in C: with no more than
    MAX_REQUEST_DEPTH in all, no document nests deeper, and none is walked."""
    return len(raw) - len(raw.translate(None, b"[{"))
