"""Resolutions held in memory: shared fetches, refresh ahead of expiry, backoff.

One Entry per cache key (normalised plugin settings + the client context they
depend on). Rules, with ``lifetime`` = expiry minus fetch time:

* Concurrent requests for a key share one fetch (single flight).
* A client is handed a value only while more than 10% of its lifetime (at most
  15 minutes) remains; otherwise it waits for a fresh one.
* Once 75% of the lifetime has passed, ``run`` refetches in the background,
  for entries used within ``idle_after``; idle entries are dropped.
* A failed fetch is retried with capped exponential backoff and jitter; a value
  that is still valid keeps being served meanwhile, and while the backoff runs
  clients get the cached value or the last error without a new upstream call.
* A fetch that needs the user's input (InputNeeded: an MFA code) is no
  failure. The first client to see it is asked (it "owns" the prompt for
  ``prompt_lease``); other clients for the same key wait for its answer and
  get the same value, or the same error: one prompt, one upstream call. The
  owner's next request carries the answer and runs the fetch. An abandoned
  prompt (lease over, or cancelled) goes to the next client. Such entries are
  never refreshed in the background (nobody to ask) and their failures are
  not backed off (the next client is simply asked again).

Time: expiries are wall-clock times (AWS's ``expiration``), and every decision
about them (serve, wait, refresh) reads the wall clock again. The monotonic
clock stops while a laptop sleeps, so it only measures how long to wait, and
no wait lasts longer than ``Policy.wall_check``: a daemon that wakes from a
night's sleep refreshes what became due within that time, unasked. Backoff,
idleness and prompt leases are durations of the daemon's own running time and
stay monotonic. Time comes from an injectable Clock whose two parts tests can
move apart.

Nothing here is ever written to disk or logged with its values.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn

from wev_client.protocol.errors import UpstreamError, WevError
from wev_daemon.plugins import InputNeeded, Resolution

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[Resolution]]
#: Whether the current request carries the answer to this question.
Answered = Callable[[InputNeeded], bool]
Outcome = WevError | InputNeeded | None


def _never(question: InputNeeded) -> bool:
    return False


#: Exponents beyond this only overflow: the delay is capped long before.
_MAX_BACKOFF_EXPONENT = 32


class FetchTimeout(UpstreamError):
    """A fetch ran past ``Policy.fetch_limit``; worth retrying soon."""

    transient = True


def _raise(error: WevError) -> NoReturn:
    # The same error object is raised to every client until the next fetch;
    # each raise would otherwise prepend frames to its traceback for good.
    raise error.with_traceback(None)


class Clock:
    """The real clock; tests pass one whose wall and monotonic parts they move."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def wall(self) -> float:
        """Wall-clock seconds since the epoch (``now`` as a number)."""
        return self.now().timestamp()


@dataclass(frozen=True)
class Policy:
    refresh_fraction: float = 0.75
    min_remaining_fraction: float = 0.10
    min_remaining_cap: float = 15 * 60
    #: A value this close to expiry is never served, even when upstream fails.
    expiry_margin: float = 5.0
    idle_after: float = 12 * 3600
    #: Most entries held; a real user has a handful, so this only stops runaway growth.
    max_entries: int = 1000
    fetch_timeout: float = 25.0
    #: A fetch still running after this long is abandoned as a transient failure,
    #: so that one hung upstream call cannot stop refreshes for good.
    fetch_limit: float = 120.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    #: After a non-transient failure (bad credentials), clients may retry this soon.
    client_retry_after: float = 2.0
    #: Longest sleep of the refresher between two looks at the wall clock.
    wall_check: float = 30.0
    #: A client holding only a no-longer-fresh value retries this long after a failure.
    retry_spacing: float = 0.5
    #: How long the client that was asked for input owns the question; after
    #: that (Ctrl-C, a closed terminal) the next client is asked instead.
    prompt_lease: float = 120.0
    #: Longest another client waits for that answer in one request (below the
    #: client's response timeout); it then fails and may simply run again.
    prompt_wait: float = 50.0


@dataclass(eq=False)
class Entry:
    """One cached resolution and its schedule. Its repr never shows values."""

    key: str
    names: tuple[str, ...]
    plugin_id: str
    description: str
    fetch: Fetch = field(repr=False)
    last_used: float
    resolution: Resolution | None = field(default=None, repr=False)
    #: Wall-clock seconds (epoch) of the fetch and of the expiry AWS gave.
    fetched_at: float = 0.0
    expires_at: float | None = None
    inflight: asyncio.Task[Outcome] | None = field(default=None, repr=False)
    failures: int = 0
    failed_at: float = 0.0
    retry_at: float | None = None
    last_error: WevError | None = None
    #: The fetch has needed the user's input: no background refresh, no backoff.
    interactive: bool = False
    #: The question a client is being asked now, until ``pending_until``.
    pending: InputNeeded | None = field(default=None, repr=False)
    pending_until: float = 0.0
    #: Settles with the answered fetch's outcome (None: a value, or abandoned).
    pending_outcome: asyncio.Future[WevError | None] | None = field(default=None, repr=False)

    @property
    def lifetime(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - self.fetched_at

    def remaining(self, wall: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - wall

    def valid(self, wall: float, policy: Policy) -> bool:
        """Not expired yet, with a margin for the trip to the client and to AWS."""
        remaining, lifetime = self.remaining(wall), self.lifetime
        if self.resolution is None or remaining is None or lifetime is None:
            return self.resolution is not None
        return remaining > min(policy.expiry_margin, 0.05 * lifetime)

    def fresh(self, wall: float, policy: Policy) -> bool:
        """Valid with enough lifetime left to hand to a client."""
        remaining, lifetime = self.remaining(wall), self.lifetime
        if self.resolution is None or remaining is None or lifetime is None:
            return self.resolution is not None
        floor = min(policy.min_remaining_fraction * lifetime, policy.min_remaining_cap)
        return remaining > floor

    def refresh_at(self, policy: Policy, now: float, wall: float) -> float | None:
        """When the background refresh is due, as a monotonic time, or None.

        A value's due time is a wall-clock time, converted at ``now``/``wall``
        (so it must be converted again after any wait). After a non-transient
        failure nothing is retried in the background: a client asks again.
        """
        if self.interactive:
            return None
        if self.last_error is not None and self.retry_at is not None:
            return self.retry_at if getattr(self.last_error, "transient", False) else None
        lifetime = self.lifetime
        if self.resolution is None or lifetime is None:
            return None
        return now + (self.fetched_at + policy.refresh_fraction * lifetime - wall)


class TokenCache:
    """Entries by key, and the background task that keeps them fresh."""

    def __init__(self, *, clock: Clock | None = None, policy: Policy | None = None) -> None:
        self.clock = clock or Clock()
        self.policy = policy or Policy()
        self.entries: dict[str, Entry] = {}
        #: The last failure upstream, and the last one found on this machine
        #: (no login, an unreadable file): when, and the message.
        self.last_error: tuple[datetime.datetime, str] | None = None
        self.last_local_error: tuple[datetime.datetime, str] | None = None
        #: Requests that reached upstream (plugins report them: ``count_upstream_call``),
        #: and fetches that failed before reaching it.
        self.upstream_calls = 0
        self.local_failures = 0
        self._wake = asyncio.Event()
        self._random = random.Random()

    def count_upstream_call(self) -> None:
        """A plugin's request reached upstream (``Context.reached_upstream``)."""
        self.upstream_calls += 1

    async def get(
        self,
        key: str,
        *,
        names: tuple[str, ...],
        plugin_id: str,
        description: str,
        fetch: Fetch,
        answered: Answered = _never,
    ) -> tuple[Resolution, bool]:
        """The value for ``key`` and whether it came from the cache; may wait for a fetch.

        Raises InputNeeded when this client is the one to ask the user.
        """
        now = self.clock.monotonic()
        entry = self.entries.get(key)
        if entry is None:
            self._make_room()
            entry = Entry(key, names, plugin_id, description, fetch, last_used=now)
            self.entries[key] = entry
        entry.names, entry.fetch, entry.last_used = names, fetch, now
        while True:
            now, wall = self.clock.monotonic(), self.clock.wall()
            if entry.fresh(wall, self.policy):
                assert entry.resolution is not None
                return entry.resolution, True
            pending = entry.pending
            if pending is not None and now >= entry.pending_until:
                log.info("nobody answered the question for %s: asking the next client", names[0])
                self.end_prompt(entry)
            elif pending is not None and entry.inflight is None and not answered(pending):
                await self._wait_for_answer(entry, pending)
                continue
            if entry.inflight is None and self._holding_off(entry, now, wall):
                if not entry.valid(wall, self.policy):
                    assert entry.last_error is not None
                    _raise(entry.last_error)
                # Valid but no longer fresh: never handed out while AWS may answer,
                # so try again now, though no sooner than retry_spacing after the
                # last failure (a burst of clients cannot hammer AWS). If that
                # fails too, the still-valid value is served below.
                pause = entry.failed_at + self.policy.retry_spacing - now
                if pause > 0:
                    await asyncio.sleep(pause)
            task = self._start_fetch(entry, fetch)
            try:
                error = await asyncio.wait_for(asyncio.shield(task), self.policy.fetch_timeout)
            except TimeoutError:
                source = f"{plugin_id} ({description})" if description else plugin_id
                error = UpstreamError(
                    f"{source}: no answer within {self.policy.fetch_timeout:g} s; "
                    "still trying in the background",
                    hint="check the network or `wev --status` in a moment",
                )
            if isinstance(error, InputNeeded):
                if entry.pending is None or answered(entry.pending):
                    self._start_prompt(entry, error)
                    raise InputNeeded(error.text, secret=error.secret)
                continue  # another client is being asked: wait for its answer
            break
        if error is None and entry.resolution is not None:
            return entry.resolution, False
        if entry.valid(self.clock.wall(), self.policy):
            assert entry.resolution is not None
            log.warning("serving a cached value for %s: %s", ", ".join(names), error)
            return entry.resolution, True
        _raise(error or UpstreamError(f"{plugin_id}: no value"))

    def _start_prompt(self, entry: Entry, question: InputNeeded) -> None:
        """This client asks the user; the others wait until it answers or the lease ends."""
        self.end_prompt(entry)
        entry.pending = question
        entry.pending_until = self.clock.monotonic() + self.policy.prompt_lease
        entry.pending_outcome = asyncio.get_running_loop().create_future()
        log.info("asking a client for input for %s", ", ".join(entry.names))

    def end_prompt(self, entry: Entry, outcome: WevError | None = None) -> None:
        """The question is answered (``outcome``) or abandoned: wake the waiting clients."""
        future, entry.pending, entry.pending_outcome = entry.pending_outcome, None, None
        if future is not None and not future.done():
            future.set_result(outcome)

    async def _wait_for_answer(self, entry: Entry, pending: InputNeeded) -> None:
        """Wait while another client answers; raise its error, or return to look again."""
        future = entry.pending_outcome
        assert future is not None
        now = self.clock.monotonic()
        timeout = max(0.0, min(entry.pending_until - now, self.policy.prompt_wait))
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see run()
                outcome = await asyncio.shield(future)
        except TimeoutError:
            if self.clock.monotonic() < entry.pending_until and entry.pending is pending:
                raise UpstreamError(
                    f"another wev is waiting for input ({pending.text.strip()})",
                    hint="answer it in that terminal, then run this again",
                ) from None
            return
        if outcome is not None:
            _raise(outcome)

    def _make_room(self) -> None:
        """Keep at most ``policy.max_entries``: drop the least recently used idle ones."""
        excess = len(self.entries) + 1 - self.policy.max_entries
        if excess <= 0:
            return
        idle = sorted(
            (entry for entry in self.entries.values() if entry.inflight is None),
            key=lambda entry: entry.last_used,
        )
        for entry in idle[:excess]:
            log.info("dropping the least recently used entry for %s", ", ".join(entry.names))
            del self.entries[entry.key]

    def _holding_off(self, entry: Entry, now: float, wall: float) -> bool:
        """True while a recent failure should be reported instead of retried.

        A client holding a still-valid value is not blocked, so upstream is left
        alone for the whole backoff; without one, a non-transient failure (bad
        credentials, perhaps fixed since) may be retried after a short pause,
        and one found without asking upstream (no login on disk, an expired
        SSO token) at once: the user may just have fixed it.
        """
        error = entry.last_error
        if error is None or entry.retry_at is None:
            return False
        if entry.valid(wall, self.policy) or getattr(error, "transient", False):
            return now < entry.retry_at
        if getattr(error, "local", False):
            return False
        return now < entry.failed_at + self.policy.client_retry_after

    def _start_fetch(self, entry: Entry, fetch: Fetch | None = None) -> asyncio.Task[Outcome]:
        # ``fetch`` is bound now: another client may replace ``entry.fetch``
        # (and its answers) before the task starts.
        if entry.inflight is None:
            entry.inflight = asyncio.create_task(
                self._fetch(entry, fetch or entry.fetch), name=f"fetch {entry.key[:40]}"
            )
        return entry.inflight

    async def _fetch(self, entry: Entry, fetch: Fetch) -> Outcome:
        """Run one fetch; record the outcome on the entry; never raises."""
        deadline = asyncio.timeout(self.policy.fetch_limit)
        try:
            async with deadline:
                resolution = await fetch()
        except InputNeeded as question:
            entry.interactive = True
            question.__traceback__ = question.__context__ = question.__cause__ = None
            return question
        except WevError as error:
            return self._failed(entry, error)
        except Exception as error:  # a plugin bug must not kill the daemon
            if isinstance(error, TimeoutError) and deadline.expired():
                return self._failed(
                    entry,
                    FetchTimeout(
                        f"{entry.plugin_id}: no answer from upstream within "
                        f"{self.policy.fetch_limit:.0f} s"
                    ),
                )
            log.exception("plugin %s failed unexpectedly", entry.plugin_id)
            return self._failed(entry, UpstreamError(f"{entry.plugin_id}: {error!r}"))
        finally:
            entry.inflight = None
            self._wake.set()
        wall = self.clock.wall()
        expiry = resolution.expires_at
        expires_at = None if expiry is None else expiry.timestamp()
        if expiry is not None and expiry.timestamp() <= wall:
            # Kept, it would be due for refresh at once, again and again.
            return self._failed(
                entry,
                UpstreamError(
                    f"{entry.plugin_id}: upstream sent a value that expired at "
                    f"{expiry.isoformat(timespec='seconds')}",
                    hint="check this machine's clock",
                ),
            )
        entry.resolution, entry.fetched_at, entry.expires_at = resolution, wall, expires_at
        entry.failures, entry.retry_at, entry.last_error = 0, None, None
        self.end_prompt(entry)
        log.info(
            "fetched %s (%s), lifetime %s",
            ", ".join(entry.names),
            entry.plugin_id,
            "unlimited" if entry.lifetime is None else f"{entry.lifetime:.0f} s",
        )
        return None

    def _failed(self, entry: Entry, error: WevError) -> WevError:
        now = self.clock.monotonic()
        # Kept until the next fetch: hold no frames (nor any secrets in their locals).
        error.__traceback__ = error.__cause__ = error.__context__ = None
        entry.failures += 1
        entry.failed_at = now
        entry.last_error = error
        exponent = min(entry.failures - 1, _MAX_BACKOFF_EXPONENT)
        delay = min(self.policy.backoff_cap, self.policy.backoff_base * 2.0**exponent)
        entry.retry_at = now + delay * self._random.uniform(0.5, 1.0)
        if entry.interactive:  # a wrong code: the next client is asked again, at once
            entry.retry_at = None
        self.end_prompt(entry, error)
        if getattr(error, "local", False):
            self.local_failures += 1
            self.last_local_error = (self.clock.now(), str(error))
        else:
            self.last_error = (self.clock.now(), str(error))
        log.warning("fetch failed (%d in a row): %s", entry.failures, error)
        return error

    # -- background ------------------------------------------------------------

    def next_wakeup(self) -> float | None:
        """The earliest monotonic time at which ``refresh_due`` has work.

        Valid only until the wall clock jumps (a suspend): ``run`` looks again
        after ``Policy.wall_check`` at the latest.
        """
        now, wall = self.clock.monotonic(), self.clock.wall()
        times = []
        for entry in self.entries.values():
            times.append(entry.last_used + self.policy.idle_after)
            due = entry.refresh_at(self.policy, now, wall)
            # A running fetch wakes ``run`` when it ends; its past due time would spin it.
            if due is not None and entry.inflight is None:
                times.append(due)
        return min(times, default=None)

    def refresh_due(self) -> list[asyncio.Task[Outcome]]:
        """Drop idle entries and start the refreshes that are due."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        started = []
        for key, entry in list(self.entries.items()):
            if now - entry.last_used >= self.policy.idle_after:
                log.info("dropping idle entry for %s", ", ".join(entry.names))
                del self.entries[key]
                if entry.inflight is not None:  # else close() would never see it
                    entry.inflight.cancel()
                continue
            due = entry.refresh_at(self.policy, now, wall)
            if entry.inflight is None and due is not None and now >= due:
                log.info("refreshing %s ahead of expiry", ", ".join(entry.names))
                started.append(self._start_fetch(entry))
        return started

    def forget(self, keys: Iterable[str] | None = None) -> int:
        """Drop these entries (None: all), their values and running fetches; how many."""
        dropped = 0
        for key in list(self.entries) if keys is None else keys:
            entry = self.entries.pop(key, None)
            if entry is None:
                continue
            dropped += 1
            if entry.inflight is not None:
                entry.inflight.cancel()
            self.end_prompt(entry)
            log.info("forgot the entry for %s", ", ".join(entry.names))
        self._wake.set()
        return dropped

    def refreshing(self) -> list[Entry]:
        """The entries this cache is fetching or will refresh by itself."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        return [
            entry
            for entry in self.entries.values()
            if entry.inflight is not None or entry.refresh_at(self.policy, now, wall) is not None
        ]

    async def run(self) -> None:
        """Refresh forever, sleeping until the nearest due time (cancel to stop).

        No sleep outlasts ``Policy.wall_check``: a due time computed before a
        suspend is wrong after it, so the wall clock is read again that often.
        """
        while True:
            self._wake.clear()
            self.refresh_due()
            wakeup = self.next_wakeup()
            timeout = self.policy.wall_check
            if wakeup is not None:
                timeout = max(0.0, min(timeout, wakeup - self.clock.monotonic()))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the wait ends, and shutdown would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def close(self) -> None:
        """Cancel fetches still running."""
        tasks = [e.inflight for e in self.entries.values() if e.inflight is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> list[dict[str, object]]:
        """Secret-free facts about every entry, for ``--status``."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        return [self.describe(entry, now, wall) for entry in self.entries.values()]

    def describe(
        self, entry: Entry, now: float | None = None, wall: float | None = None
    ) -> dict[str, object]:
        """Facts for ``--status`` and ``--explain``, judged by the wall clock now."""
        now = self.clock.monotonic() if now is None else now
        wall = self.clock.wall() if wall is None else wall

        def at(moment: float | None) -> str | None:  # wall-clock seconds -> ISO 8601
            if moment is None:
                return None
            stamp = datetime.datetime.fromtimestamp(moment, datetime.UTC)
            return stamp.isoformat(timespec="seconds")

        due = entry.refresh_at(self.policy, now, wall)
        remaining = entry.remaining(wall) if entry.resolution else None

        return {
            "names": list(entry.names),
            "plugin": entry.plugin_id,
            "description": entry.description,
            "cached": entry.valid(wall, self.policy),
            "expires_at": at(entry.expires_at) if entry.resolution else None,
            "expires_in_seconds": None if remaining is None else round(remaining),
            "refresh_at": None if due is None else at(wall + (due - now)),
            "last_used_seconds_ago": round(now - entry.last_used, 1),
            "fetching": entry.inflight is not None,
            "failures": entry.failures,
            "waiting_for_input": entry.pending is not None,
            "last_error": str(entry.last_error) if entry.last_error else None,
        }
