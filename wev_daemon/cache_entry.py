"""One cached resolution, and the clock it is judged by.

``Entry`` holds a value with its wall-clock fetch and expiry times (the
``policy`` decides from them), the fetch that makes it and the last caller's
context; ``Clock`` gives the two times, and tests pass one whose wall and
monotonic parts they move apart. Imported by ``cache``, which schedules entries.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from wev_client.protocol.errors import UpstreamError, WevError
from wev_daemon import policy as rules
from wev_daemon.channels import Caller
from wev_daemon.plugins import InputNeeded, Resolution
from wev_daemon.policy import Facts, Policy

Fetch = Callable[[], Awaitable[Resolution]]
Outcome = WevError | InputNeeded | None
#: A caller that asks on its own terminal: what a request says when it says nothing.
TERMINAL = Caller()


def iso(moment: float | None) -> str | None:
    """Wall-clock seconds as ISO 8601 to the second, UTC (every answer shows two)."""
    return None if moment is None else _iso_second(math.floor(moment))


@functools.lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    return datetime.datetime.fromtimestamp(second, datetime.UTC).isoformat()


class FetchTimeout(UpstreamError):
    """A fetch ran past ``Policy.fetch_limit``; worth retrying soon."""

    transient = True


class Clock:
    """The real clock; tests pass one whose wall and monotonic parts they move."""

    def monotonic(self) -> float:
        """The event loop's clock, read directly (``BaseEventLoop.time`` reads it too;
        asking the running loop costs a system call each time)."""
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def wall(self) -> float:
        """Wall-clock seconds since the epoch (``now`` as a number)."""
        return self.now().timestamp()


@dataclass(eq=False)
class Entry(Facts):
    """One cached resolution and its schedule. Its repr never shows values."""

    key: str = ""
    names: tuple[str, ...] = ()
    plugin_id: str = ""
    description: str = ""
    fetch: Fetch | None = field(default=None, repr=False)
    #: The context of the request that last asked: a channel's answer fetches with it.
    caller: Caller = field(default=TERMINAL, repr=False)
    last_used: float = 0.0
    resolution: Resolution | None = field(default=None, repr=False)
    inflight: asyncio.Task[Outcome] | None = field(default=None, repr=False)

    def valid(self, wall: float, policy: Policy) -> bool:
        return rules.valid(self, wall, policy)

    def fresh(self, wall: float, policy: Policy) -> bool:
        return rules.fresh(self, wall, policy)

    def refresh_at(self, policy: Policy, now: float, wall: float) -> float | None:
        return rules.refresh_at(self, policy, now, wall)
