"""The token cache, driven by a fake clock and fake fetches.

Covers single flight, refresh ahead of expiry, the freshness floor, idle entries,
backoff with jitter, serving a valid value through upstream failures, and the
secret-free status. Only the ``run`` loop and the fetch timeouts use real time,
a few hundred milliseconds at most.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

import pytest

from wev_client.protocol.errors import UpstreamError, WevError
from wev_daemon import cache
from wev_daemon.aws import FetchError
from wev_daemon.cache import Outcome, Pending, Policy, TokenCache
from wev_daemon.plugins import Resolution

START_WALL = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
HOUR = 3600.0
PLUGIN_ID = "test-token"


class FakeClock(cache.Clock):
    """Monotonic and wall time that move only when a test says so."""

    def __init__(self) -> None:
        self.mono = 5000.0  # unrelated to the wall clock, as in real life
        self.wall_time = START_WALL

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime.datetime:
        return self.wall_time

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_time += datetime.timedelta(seconds=seconds)

    def suspend(self, seconds: float) -> None:
        """A laptop asleep: the wall clock moves, the monotonic clock does not."""
        self.wall_time += datetime.timedelta(seconds=seconds)


class Upstream:
    """A fetch coroutine: counts calls, may wait on a gate or fail, returns numbered tokens."""

    def __init__(self, clock: cache.Clock, lifetime: float | None = HOUR) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.delay = 0.0
        self.prefix = "token"

    async def __call__(self) -> Resolution:
        self.calls += 1
        call = self.calls
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        expires = (
            None
            if self.lifetime is None
            else self.clock.now() + datetime.timedelta(seconds=self.lifetime)
        )
        return Resolution((f"{self.prefix}-{call}",), expires)


async def get(tokens: TokenCache, upstream: Upstream, key: str = "key") -> tuple[str, bool]:
    """One client request: the value and whether it came from the cache."""
    resolution, cached = await tokens.get(
        key, names=("TOKEN",), plugin_id=PLUGIN_ID, description="a test token", fetch=upstream
    )
    return resolution.values[0], cached


async def settle() -> None:
    """Let every ready task run up to its next real wait."""
    for _ in range(10):
        await asyncio.sleep(0)


async def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``condition()`` until true, for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {limit} s")
        await asyncio.sleep(0.01)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def upstream(clock: FakeClock) -> Upstream:
    return Upstream(clock)


@pytest.fixture
async def tokens(clock: FakeClock) -> AsyncIterator[TokenCache]:
    tokens = TokenCache(clock=clock)
    try:
        yield tokens
    finally:
        await tokens.close()


def traceback_length(traceback: TracebackType | None) -> int:
    length = 0
    while traceback is not None:
        length, traceback = length + 1, traceback.tb_next
    return length


# -- single flight and caching -------------------------------------------------


async def test_concurrent_gets_share_one_fetch(tokens: TokenCache, upstream: Upstream) -> None:
    upstream.gate = asyncio.Event()
    clients = [asyncio.create_task(get(tokens, upstream)) for _ in range(50)]
    await settle()
    assert upstream.calls == 1
    assert not any(client.done() for client in clients)

    upstream.gate.set()
    results = await asyncio.gather(*clients)

    assert upstream.calls == 1
    assert set(results) == {("token-1", False)}


async def test_a_fresh_value_is_served_from_the_cache(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    assert await get(tokens, upstream) == ("token-1", False)
    clock.advance(HOUR / 2)
    assert await get(tokens, upstream) == ("token-1", True)
    assert upstream.calls == 1


async def test_keys_are_fetched_separately(tokens: TokenCache, upstream: Upstream) -> None:
    first = await get(tokens, upstream, "one")
    second = await get(tokens, upstream, "two")
    assert (first, second) == (("token-1", False), ("token-2", False))
    assert await get(tokens, upstream, "one") == ("token-1", True)
    assert upstream.calls == 2


async def test_a_value_without_expiry_is_kept(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = None
    await get(tokens, upstream)
    clock.advance(HOUR)
    assert await get(tokens, upstream) == ("token-1", True)
    assert tokens.refresh_due() == []
    assert upstream.calls == 1


# -- never hand out a nearly expired value --------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "floor"),
    [
        (12 * HOUR, 15 * 60.0),  # 10% would be 72 min: capped at 15 min
        (1000.0, 100.0),  # 10%
        (HOUR, 360.0),  # 10%, under the cap
    ],
)
async def test_a_client_gets_a_fresh_value_when_little_lifetime_is_left(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock, lifetime: float, floor: float
) -> None:
    upstream.lifetime = lifetime
    await get(tokens, upstream)

    clock.advance(lifetime - floor - 1)
    assert await get(tokens, upstream) == ("token-1", True)
    clock.advance(2)
    assert await get(tokens, upstream) == ("token-2", False)
    assert upstream.calls == 2


async def test_a_client_waits_for_the_fresh_value(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(950)  # 50 s left: still valid, too little to hand out
    upstream.gate = asyncio.Event()

    client = asyncio.create_task(get(tokens, upstream))
    await settle()
    assert not client.done()

    upstream.gate.set()
    assert await client == ("token-2", False)


# -- background refresh and idle entries -----------------------------------------


async def test_refresh_starts_by_itself_after_75_percent_of_the_lifetime(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 750)

    clock.advance(749)
    assert tokens.refresh_due() == []
    assert upstream.calls == 1

    clock.advance(1)
    started = tokens.refresh_due()
    assert len(started) == 1
    await asyncio.gather(*started)
    assert upstream.calls == 2
    # Clients now get the refreshed value without waiting and without a fetch.
    assert await get(tokens, upstream) == ("token-2", True)
    assert upstream.calls == 2
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 750)


async def test_a_running_refresh_is_not_started_twice(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(800)
    upstream.gate = asyncio.Event()
    started = tokens.refresh_due()
    assert len(started) == 1
    assert tokens.refresh_due() == []
    # Clients meanwhile get the still-fresh value at once.
    assert await get(tokens, upstream) == ("token-1", True)
    upstream.gate.set()
    await asyncio.gather(*started)
    assert upstream.calls == 2


async def test_idle_entries_are_dropped_and_not_refreshed(
    clock: FakeClock, upstream: Upstream
) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(idle_after=800))
    upstream.lifetime = 1000.0
    await get(tokens, upstream)

    clock.advance(800)  # the refresh (at 750) is due, but nobody used it for 800 s
    assert tokens.refresh_due() == []
    assert tokens.entries == {}
    assert upstream.calls == 1
    assert tokens.next_wakeup() is None


async def test_the_least_recently_used_entries_make_room_beyond_the_cap(
    clock: FakeClock, upstream: Upstream
) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(max_entries=3))
    for key in ("a", "b", "c"):
        await get(tokens, upstream, key)
        clock.advance(1)
    await get(tokens, upstream, "a")  # "b" is now the least recently used
    clock.advance(1)

    await get(tokens, upstream, "d")

    assert set(tokens.entries) == {"a", "c", "d"}
    assert await get(tokens, upstream, "c") == ("token-3", True)


async def test_recently_used_entries_are_refreshed(clock: FakeClock, upstream: Upstream) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(idle_after=600))
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(500)
    assert await get(tokens, upstream) == ("token-1", True)  # counts as use
    clock.advance(250)  # refresh due; last used 250 s ago

    started = tokens.refresh_due()

    assert len(started) == 1
    await asyncio.gather(*started)
    assert upstream.calls == 2
    assert "key" in tokens.entries


async def test_dropping_an_idle_entry_cancels_its_fetch(
    clock: FakeClock, upstream: Upstream
) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(idle_after=800))
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(760)
    upstream.gate = asyncio.Event()  # never opened: a hung upstream
    (fetch,) = tokens.refresh_due()
    clock.advance(100)

    assert tokens.refresh_due() == []
    await asyncio.wait([fetch], timeout=1)
    assert fetch.cancelled()


async def test_next_wakeup_is_the_nearest_due_time(clock: FakeClock) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(idle_after=2 * HOUR))
    assert tokens.next_wakeup() is None

    await get(tokens, Upstream(clock, lifetime=1000.0), "long")
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 750)
    await get(tokens, Upstream(clock, lifetime=400.0), "short")
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 300)

    # An entry without expiry is only due for being dropped when idle.
    only_idle = TokenCache(clock=clock, policy=Policy(idle_after=100))
    await get(only_idle, Upstream(clock, lifetime=None))
    assert only_idle.next_wakeup() == pytest.approx(clock.mono + 100)


async def test_next_wakeup_skips_a_refresh_already_running(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    # A due time in the past while the fetch runs would make `run` spin.
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(800)
    upstream.gate = asyncio.Event()
    started = tokens.refresh_due()

    wakeup = tokens.next_wakeup()
    assert wakeup is not None and wakeup > clock.mono

    upstream.gate.set()
    await asyncio.gather(*started)
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 750)


# -- upstream failures -----------------------------------------------------------

FAILURES = [
    pytest.param(lambda: FetchError("throttled", transient=True), id="transient"),
    pytest.param(lambda: FetchError("bad credentials", transient=False), id="permanent"),
    pytest.param(lambda: UpstreamError("service says no"), id="upstream-error"),
]


@pytest.mark.parametrize("failure", FAILURES)
async def test_without_a_valid_value_the_client_gets_the_error(
    tokens: TokenCache, upstream: Upstream, failure: Callable[[], WevError]
) -> None:
    error = failure()
    upstream.error = error
    with pytest.raises(type(error)) as raised:
        await get(tokens, upstream)
    assert raised.value.message == error.message
    assert tokens.entries["key"].failures == 1
    assert tokens.last_error is not None and error.message in tokens.last_error[1]


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_valid_value_is_served_while_upstream_fails(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock, failure: Callable[[], WevError]
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    upstream.error = failure()
    clock.advance(950)  # 50 s left: a fresh one is needed, but upstream fails

    assert await get(tokens, upstream) == ("token-1", True)
    assert upstream.calls == 2
    # A burst of clients during the backoff: they try again together, once, no
    # sooner than retry_spacing after the failure, and get the valid value.
    burst = await asyncio.gather(*(get(tokens, upstream) for _ in range(20)))
    assert burst == [("token-1", True)] * 20
    assert upstream.calls == 3

    clock.advance(50)  # expired: nothing valid left to serve
    with pytest.raises(type(upstream.error)):
        await get(tokens, upstream)


@pytest.mark.parametrize("failure", FAILURES)
async def test_an_ageing_value_is_replaced_as_soon_as_upstream_answers(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock, failure: Callable[[], WevError]
) -> None:
    """Under 10% of its lifetime left, a value is not handed out while AWS can be asked."""
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    upstream.error = failure()
    clock.advance(950)
    assert await get(tokens, upstream) == ("token-1", True)  # AWS failed: still valid

    upstream.error = None  # AWS is back, though the backoff has not run out

    assert await get(tokens, upstream) == ("token-3", False)


async def test_a_failed_refresh_ahead_goes_unnoticed_by_clients(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    clock.advance(750)
    upstream.error = FetchError("throttled", transient=True)
    await asyncio.gather(*tokens.refresh_due())
    assert tokens.entries["key"].failures == 1
    assert await get(tokens, upstream) == ("token-1", True)

    upstream.error = None
    entry = tokens.entries["key"]
    assert entry.retry_at is not None and tokens.next_wakeup() == entry.retry_at
    clock.mono = entry.retry_at
    await asyncio.gather(*tokens.refresh_due())
    assert await get(tokens, upstream) == ("token-3", True)
    assert tokens.entries["key"].failures == 0


async def test_transient_failure_backoff_bounds_upstream_calls(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.error = FetchError("throttled", transient=True)
    with pytest.raises(FetchError):
        await get(tokens, upstream)

    for _ in range(20):
        with pytest.raises(FetchError, match="throttled"):
            await get(tokens, upstream)
    assert upstream.calls == 1

    entry = tokens.entries["key"]
    assert entry.retry_at is not None
    clock.mono = entry.retry_at
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    assert upstream.calls == 2


async def test_clients_may_retry_a_permanent_failure_after_a_short_pause(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.error = FetchError("bad credentials", transient=False)
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    assert upstream.calls == 1

    upstream.error = None  # say the user ran `aws sso login`
    clock.advance(tokens.policy.client_retry_after)
    assert await get(tokens, upstream) == ("token-2", False)


async def test_a_failure_found_locally_is_retried_by_the_very_next_client(
    tokens: TokenCache, upstream: Upstream
) -> None:
    upstream.error = FetchError("the AWS SSO session has expired", local=True)
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    upstream.error = None  # the user ran `aws sso login` a moment later
    assert await get(tokens, upstream) == ("token-2", False)


async def test_a_permanent_failure_stops_background_retries_until_a_client_asks(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    await get(tokens, upstream)
    clock.advance(0.8 * HOUR)
    upstream.error = FetchError("AccessDenied: not allowed", transient=False)
    assert len(tokens.refresh_due()) == 1
    await wait_until(lambda: tokens.entries["key"].inflight is None)
    assert upstream.calls == 2
    for _ in range(5):  # hours pass: no more calls to AWS in the background
        clock.advance(HOUR)
        assert tokens.refresh_due() == []
    assert upstream.calls == 2
    assert tokens.refreshing() == []
    upstream.error = None
    assert await get(tokens, upstream) == ("token-3", False)
    assert tokens.next_wakeup() is not None  # refreshing again


async def test_retries_back_off_exponentially_with_jitter_up_to_a_cap(
    clock: FakeClock, upstream: Upstream
) -> None:
    policy = Policy(backoff_base=1.0, backoff_cap=16.0)
    tokens = TokenCache(clock=clock, policy=policy)
    upstream.error = FetchError("throttled", transient=True)
    with pytest.raises(FetchError):
        await get(tokens, upstream)

    delays = []
    for failures in range(1, 25):
        entry = tokens.entries["key"]
        assert entry.failures == failures
        assert entry.retry_at is not None
        delay = entry.retry_at - entry.failed_at
        ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
        delays.append(delay)
        # Retried in the background, when due, without any client asking.
        clock.mono = entry.retry_at - 0.001
        assert tokens.refresh_due() == []
        clock.mono = entry.retry_at
        await asyncio.gather(*tokens.refresh_due())

    assert upstream.calls == 25
    assert max(delays) <= policy.backoff_cap
    assert len({round(delay, 6) for delay in delays[6:]}) > 1  # jittered, even at the cap


async def test_backoff_stays_capped_after_very_many_failures(
    clock: FakeClock, upstream: Upstream
) -> None:
    policy = Policy(backoff_base=1.0, backoff_cap=60.0, idle_after=1e9)
    tokens = TokenCache(clock=clock, policy=policy)
    upstream.error = FetchError("throttled", transient=True)
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    entry = tokens.entries["key"]
    for _ in range(1100):
        assert entry.retry_at is not None
        clock.mono = entry.retry_at
        await asyncio.gather(*tokens.refresh_due())
    assert entry.failures == 1101
    assert entry.retry_at is not None
    assert 30.0 <= entry.retry_at - entry.failed_at <= 60.0


async def test_an_unexpected_plugin_exception_becomes_an_upstream_error(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.error = RuntimeError("plugin bug")
    with pytest.raises(UpstreamError, match=PLUGIN_ID):
        await get(tokens, upstream)

    upstream.error = None
    clock.advance(tokens.policy.client_retry_after)
    assert await get(tokens, upstream) == ("token-2", False)


async def test_a_value_that_arrives_expired_is_a_failure(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = -60.0  # e.g. this machine's clock is far ahead
    with pytest.raises(UpstreamError, match="expired"):
        await get(tokens, upstream)
    # Backed off like any failure, not refreshed again at once.
    wakeup = tokens.next_wakeup()
    assert wakeup is not None and wakeup > clock.mono
    assert tokens.refresh_due() == []


async def test_the_error_raised_again_does_not_grow(tokens: TokenCache, upstream: Upstream) -> None:
    upstream.error = FetchError("throttled", transient=True)
    lengths = []
    for _ in range(5):
        with pytest.raises(FetchError) as raised:
            await get(tokens, upstream)
        lengths.append(traceback_length(raised.value.__traceback__))
    assert upstream.calls == 1
    assert len(set(lengths)) == 1


async def test_a_slow_fetch_answers_the_client_and_keeps_going(clock: FakeClock) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(fetch_timeout=0.05))
    upstream = Upstream(clock)
    upstream.gate = asyncio.Event()
    try:
        with pytest.raises(UpstreamError, match="no answer"):
            await get(tokens, upstream)
        fetch = tokens.entries["key"].inflight
        assert fetch is not None

        upstream.gate.set()
        await asyncio.wait_for(fetch, 1)
        assert await get(tokens, upstream) == ("token-1", True)
    finally:
        await tokens.close()


async def test_a_hung_fetch_is_abandoned_as_a_transient_failure(clock: FakeClock) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(fetch_timeout=0.02, fetch_limit=0.1))
    upstream = Upstream(clock)
    upstream.gate = asyncio.Event()  # never opened
    try:
        with pytest.raises(UpstreamError):
            await get(tokens, upstream)
        entry = tokens.entries["key"]
        await wait_until(lambda: entry.inflight is None, limit=2)
        assert isinstance(entry.last_error, UpstreamError)
        assert getattr(entry.last_error, "transient", False)
        assert entry.retry_at is not None
    finally:
        await tokens.close()


async def test_close_cancels_running_fetches(tokens: TokenCache, upstream: Upstream) -> None:
    upstream.gate = asyncio.Event()
    client = asyncio.create_task(get(tokens, upstream))
    await settle()
    fetch = tokens.entries["key"].inflight
    assert fetch is not None

    await tokens.close()

    assert fetch.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await client


# -- time -------------------------------------------------------------------------


async def test_expiry_and_refresh_are_wall_clock_times_from_the_resolution(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.lifetime = 1000.0
    await get(tokens, upstream)
    (status,) = tokens.status()
    expires = START_WALL + datetime.timedelta(seconds=1000)
    assert status["expires_at"] == expires.isoformat(timespec="seconds")
    assert status["expires_in_seconds"] == 1000
    assert status["refresh_at"] == (expires - datetime.timedelta(seconds=250)).isoformat(
        timespec="seconds"
    )
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 750)


async def test_after_a_suspend_past_expiry_the_dead_value_is_never_served(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    await get(tokens, upstream)
    clock.suspend(13 * HOUR)  # the laptop slept: monotonic time stood still
    assert await get(tokens, upstream) == ("token-2", False)
    (status,) = tokens.status()
    assert status["expires_in_seconds"] == HOUR


async def test_a_suspend_shows_the_true_remaining_life_and_moves_the_refresh_due(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    await get(tokens, upstream)  # one hour: refresh due after 45 minutes
    clock.suspend(30 * 60)
    (status,) = tokens.status()
    assert status["expires_in_seconds"] == 30 * 60
    assert status["expires_at"] == (START_WALL + datetime.timedelta(hours=1)).isoformat()
    assert tokens.next_wakeup() == pytest.approx(clock.mono + 15 * 60)
    clock.suspend(20 * 60)  # now past the 75% mark, by the wall clock only
    assert len(tokens.refresh_due()) == 1


async def test_the_refresher_refreshes_what_a_suspend_made_due_without_a_client(
    clock: FakeClock, upstream: Upstream
) -> None:
    tokens = TokenCache(clock=clock, policy=Policy(wall_check=0.05))
    await get(tokens, upstream)
    runner = asyncio.create_task(tokens.run())
    try:
        await asyncio.sleep(0.3)
        assert upstream.calls == 1  # nothing is due yet: no spinning, no refetch
        clock.suspend(13 * HOUR)  # the refresher sleeps on monotonic time, which stood still
        await wait_until(lambda: upstream.calls == 2, limit=3.0)
        await wait_until(lambda: tokens.entries["key"].inflight is None)
        assert await get(tokens, upstream) == ("token-2", True)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await tokens.close()


async def test_the_refresher_never_sleeps_longer_than_the_wall_check(clock: FakeClock) -> None:
    tokens = CountingCache(clock=clock, policy=Policy(wall_check=0.05))
    runner = asyncio.create_task(tokens.run())
    try:
        await wait_until(lambda: tokens.passes >= 4, limit=3.0)  # no entries: still looks
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_status_describes_entries_without_their_values(
    tokens: TokenCache, upstream: Upstream, clock: FakeClock
) -> None:
    upstream.prefix = "s3cr3t-marker"
    await get(tokens, upstream)
    (status,) = tokens.status()
    assert status["names"] == ["TOKEN"]
    assert status["plugin"] == PLUGIN_ID
    assert status["description"] == "a test token"
    assert status["cached"] is True
    assert status["fetching"] is False
    assert status["failures"] == 0
    assert status["last_error"] is None
    assert "s3cr3t" not in repr(tokens.status())
    assert "s3cr3t" not in repr(tokens.entries["key"])

    clock.advance(HOUR)
    upstream.error = FetchError("throttled", transient=True)
    with pytest.raises(FetchError):
        await get(tokens, upstream)
    (status,) = tokens.status()
    assert status["cached"] is False
    assert status["failures"] == 1
    assert status["last_error"] == "throttled"
    assert "s3cr3t" not in repr(tokens.status())


# -- the run loop, with the real clock ---------------------------------------------


class CountingCache(TokenCache):
    """Counts the passes of ``run``'s loop."""

    passes = 0

    def refresh_due(self) -> list[asyncio.Task[Outcome]]:
        self.passes += 1
        return super().refresh_due()


async def test_run_refreshes_on_its_own_without_spinning() -> None:
    tokens = CountingCache()
    upstream = Upstream(cache.Clock(), lifetime=1.2)
    await get(tokens, upstream)
    upstream.delay = 0.3  # while this refresh runs, `run` must sleep, not spin
    runner = asyncio.create_task(tokens.run())
    try:
        await wait_until(lambda: upstream.calls >= 2)
        await wait_until(lambda: tokens.entries["key"].inflight is None)
        value, cached = await get(tokens, upstream)
        assert (value, cached) == ("token-2", True)
        assert tokens.passes < 10
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await tokens.close()


# -- questions to the user ------------------------------------------------------------


async def test_an_unanswered_question_passes_to_the_next_client_after_its_lease(
    clock: FakeClock,
) -> None:
    """The first client owns the question; others wait; after the lease, the next asks."""
    from wev_daemon.plugins import InputNeeded

    policy = Policy(prompt_lease=120, prompt_wait=0.2, question_wait=600)
    tokens = TokenCache(clock=clock, policy=policy)
    fetches = 0

    async def needs_a_code() -> Resolution:
        nonlocal fetches
        fetches += 1
        raise InputNeeded("MFA code: ", secret=True)

    async def ask() -> None:
        await tokens.get(
            "key", names=("TOKEN",), plugin_id=PLUGIN_ID, description="", fetch=needs_a_code
        )

    try:
        with pytest.raises(Pending) as first:
            await ask()
        assert first.value.ask  # the first client is asked
        with pytest.raises(Pending) as second:
            await ask()
        assert not second.value.ask  # a second one waits (0.2 s here), is not asked
        assert "key" in tokens.questions.open

        clock.advance(121)  # nobody answered within the lease

        with pytest.raises(Pending) as third:
            await ask()
        assert third.value.ask  # now this client is asked
        assert fetches == 1  # one question, asked again: no second fetch
        assert tokens.entries["key"].failures == 0  # a question is not an upstream failure
    finally:
        await tokens.close()


async def test_a_question_past_its_wait_bound_is_no_longer_shown(clock: FakeClock) -> None:
    """``wev --status`` and ``wev --answer`` list a question only within its wait bound,
    even when no request came back to find it over (a client stopped with Ctrl-C)."""
    from wev_daemon.plugins import InputNeeded

    policy = Policy(prompt_wait=0.01, question_wait=60)
    tokens = TokenCache(clock=clock, policy=policy)

    async def needs_a_code() -> Resolution:
        raise InputNeeded("MFA code: ", secret=True)

    try:
        with pytest.raises(Pending):
            await tokens.get(
                "key", names=("TOKEN",), plugin_id=PLUGIN_ID, description="", fetch=needs_a_code
            )
        [entry] = tokens.status()
        assert entry["waiting_for_input"] and len(tokens.questions.status()) == 1

        clock.advance(61)  # nobody came back

        [entry] = tokens.status()
        assert not entry["waiting_for_input"]
        assert tokens.questions.status() == []
    finally:
        await tokens.close()
