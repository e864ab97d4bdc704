"""Resolution inside the client's process, for ``WEV_NO_DAEMON=1`` and no daemon.

The client imports this lazily, only off its hot path. Same resolver, same
plugins, same errors as the daemon; nothing is kept after the call.
"""

from __future__ import annotations

import asyncio

from wev_client import protocol
from wev_client.protocol import ResolveRequest, ResolveResponse
from wev_daemon.cache import TokenCache
from wev_daemon.resolver import Resolver


def answer(route: str, request: ResolveRequest) -> ResolveResponse:
    """Answer ``route`` (resolve or explain) as the daemon would."""

    async def run() -> ResolveResponse:
        resolver = Resolver(cache=TokenCache())
        try:
            if route == protocol.EXPLAIN_ROUTE:
                return resolver.explain(request)
            return await resolver.resolve(request)
        finally:
            await resolver.cache.close()

    return asyncio.run(run())
