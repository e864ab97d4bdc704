"""Resolutions held in memory: one fetch at a time per entry, refreshed ahead of expiry.

One Entry per cache key (normalised plugin settings + the client context they
depend on). This module is the scheduler: it runs fetches and the background
refresh, and acts on the decisions of ``policy`` (fresh, valid, refresh due,
backoff: pure functions of the two clocks) and of ``questions`` (who asks the
user, who waits):

* Concurrent requests for a key share one fetch (single flight).
* A client is handed a fresh value; otherwise it waits for a new one, or is
  served a still-valid one while upstream fails.
* ``run`` refetches in the background when a refresh is due, for entries
  used within ``idle_after``; idle entries are dropped.
* A fetch that needs the user's input (InputNeeded: an MFA code) is no
  failure: it opens the entry's question, and every client for the key waits
  for one answer (``questions``); such entries are never refreshed in the
  background (nobody to ask) and their failures are not backed off.

Time comes from an injectable Clock whose two parts tests can move apart. No
wait lasts longer than ``Policy.wall_check`` without reading the wall clock
again: a daemon that wakes from a night's sleep refreshes what became due.

Nothing here is ever written to disk or logged with its values. A little over
400 lines on purpose: the scheduler's one state machine (get, fetch, failure,
refresh, forget) reads best whole; its decisions are in ``policy``, its
entries in ``cache_entry`` and its questions in ``questions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
from collections.abc import Callable, Iterable
from typing import NoReturn

from wev_client.protocol.errors import UpstreamError, VersionMismatch, WevError
from wev_daemon import policy as rules
from wev_daemon.cache_entry import TERMINAL, Clock, Entry, Fetch, FetchTimeout, Outcome, iso
from wev_daemon.channels import Caller
from wev_daemon.plugins import InputNeeded, Resolution
from wev_daemon.policy import Policy
from wev_daemon.question import raise_copy
from wev_daemon.questions import Pending, Question, Questions, Turn

log = logging.getLogger(__name__)

__all__ = [
    "Caller",
    "Clock",
    "Entry",
    "FetchTimeout",
    "Outcome",
    "Pending",
    "Policy",
    "TokenCache",
]

#: Whether the current request carries the answer to the question of this id.
Answered = Callable[[str], bool]


def _never(question_id: str) -> bool:
    return False


def stopping() -> VersionMismatch:
    """The answer to a request that reaches a stopping daemon: the client asks the next."""
    return VersionMismatch("wev-daemon is stopping", hint="the next call starts another")


def _raise(error: WevError) -> NoReturn:
    # The same error object is raised to every client until the next fetch;
    # each raise would otherwise prepend frames to its traceback for good.
    raise error.with_traceback(None)


class TokenCache:
    """Entries by key, their questions, and the background task that keeps them fresh."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
        answerable: bool = True,
        after_fetches: Callable[[], None] | None = None,
    ) -> None:
        """``answerable``: ``wev --answer`` can reach this cache (a daemon's).
        ``after_fetches``: run each time the last fetch in flight has ended (the daemon
        collects what they left then: ``server.collect_what_fetches_left``)."""
        self.clock = clock or Clock()
        self.policy = policy or Policy()
        self.entries: dict[str, Entry] = {}
        self.questions = Questions(
            self.clock.monotonic, self.policy, reachable=answerable, answered=self._answered
        )
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
        #: Set once the daemon stops: what every request still held ends with.
        self.stopping: WevError | None = None
        self._fetching = 0
        self._after_fetches = after_fetches

    def stop_serving(self) -> None:
        """The daemon is stopping: every request it holds ends now, so that the drain
        does not wait out a question (up to a request's hold), nor does a request open
        another one; their clients go on to the next daemon."""
        if self.stopping is None:
            self.stopping = stopping()
            self.questions.close(self.stopping)

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
        caller: Caller = TERMINAL,
    ) -> tuple[Resolution, bool]:
        """The value for ``key`` and whether it came from the cache; may wait for a fetch.

        Raises Pending when the answer is a question: this client's to ask, or
        still held elsewhere once this request has waited its ``caller.hold``.
        """
        now = self.clock.monotonic()
        entry = self.entries.get(key)
        if entry is None:
            self._make_room()
            entry = Entry(key=key, names=names, plugin_id=plugin_id, description=description)
            self.entries[key] = entry
        entry.names, entry.fetch, entry.caller, entry.last_used = names, fetch, caller, now
        hold = self.policy.prompt_wait if caller.hold is None else caller.hold
        hold_until = now + hold
        error: WevError | InputNeeded | None = None
        while True:
            if self.stopping is not None:
                raise_copy(self.stopping)
            now, wall = self.clock.monotonic(), self.clock.wall()
            if entry.fresh(wall, self.policy):
                assert entry.resolution is not None
                return entry.resolution, True
            question = self.questions.current(key)
            if question is not None and entry.inflight is None:
                turn = self.questions.turn(question, caller, answered)
                if turn is Turn.ASK:
                    raise Pending(question, ask=True)
                if turn is Turn.WAIT:
                    await self.questions.wait(question, caller, hold_until)
                    continue
            elif entry.inflight is None and rules.holding_off(entry, now, wall, self.policy):
                if not entry.valid(wall, self.policy):
                    assert entry.last_error is not None
                    _raise(entry.last_error)
                # Valid but no longer fresh: never handed out while AWS may answer,
                # so try again now (after a pause); if that fails too, the
                # still-valid value is served below.
                if pause := rules.retry_pause(entry, now, self.policy):
                    tried = entry.failures
                    await asyncio.sleep(pause)
                    if entry.failures != tried and entry.inflight is None:
                        # Another client of the burst tried meanwhile: its outcome is ours.
                        if entry.fresh(self.clock.wall(), self.policy):
                            continue
                        error = entry.last_error
                        break
            task = self._start_fetch(entry, fetch, caller)
            try:
                error = await asyncio.wait_for(asyncio.shield(task), self.policy.fetch_timeout)
            except TimeoutError:
                source = f"{plugin_id} ({description})" if description else plugin_id
                error = UpstreamError(
                    f"{source}: no answer within {self.policy.fetch_timeout:g} s; "
                    "still trying in the background",
                    hint="check the network or `wev --status` in a moment",
                )
            if self.questions.current(key) is not None or isinstance(error, InputNeeded):
                continue  # a question opened, or opened again: ask or wait for it
            break
        if error is None and entry.resolution is not None:
            return entry.resolution, False
        if entry.valid(self.clock.wall(), self.policy):
            assert entry.resolution is not None
            log.warning("serving a cached value for %s: %s", ", ".join(names), error)
            return entry.resolution, True
        _raise(error or UpstreamError(f"{plugin_id}: no value"))

    def peek(self, key: str) -> Resolution | None:
        """The fresh value held for ``key``, which ``get`` would hand at once; else None."""
        entry = self.entries.get(key)
        if entry is not None and entry.fresh(self.clock.wall(), self.policy):
            return entry.resolution
        return None

    def answer(self, question_id: str, answer: str) -> Question | None:
        """``wev --answer``'s answer to an open question (None: no such question)."""
        question = self.questions.find(question_id)
        if question is not None:
            entry = self.entries.get(question.key)
            caller = entry.caller if entry is not None else TERMINAL
            self.questions.give(question, answer, "wev --answer", caller)
        return question

    def _answered(self, question: Question, caller: Caller) -> None:
        """A channel answered: fetch with the answer now, whoever is waiting."""
        entry = self.entries.get(question.key)
        if entry is not None and entry.fetch is not None:
            question.answering = True
            self._start_fetch(entry, entry.fetch, entry.caller)

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

    def _start_fetch(
        self, entry: Entry, fetch: Fetch | None = None, caller: Caller | None = None
    ) -> asyncio.Task[Outcome]:
        # ``fetch`` is bound now: another client may replace ``entry.fetch``
        # (and its answers) before the task starts.
        if entry.inflight is None:
            bound = fetch or entry.fetch
            assert bound is not None
            self.questions.fetching(entry.key)
            entry.inflight = asyncio.create_task(
                self._fetch(entry, bound, caller or entry.caller),
                name=f"fetch {entry.key[:40]}",
            )
        return entry.inflight

    async def _fetch(self, entry: Entry, fetch: Fetch, caller: Caller) -> Outcome:
        """Run one fetch; record the outcome on the entry and its question; never raises."""
        outcome = await self._run_fetch(entry, fetch)
        if isinstance(outcome, InputNeeded):
            entry.interactive = True
            self.questions.ask(entry.key, entry.names, outcome, caller)
        else:
            self.questions.fetched(entry.key, entry.names, outcome, caller)
        return outcome

    async def _run_fetch(self, entry: Entry, fetch: Fetch) -> Outcome:
        deadline = asyncio.timeout(self.policy.fetch_limit)
        self._fetching += 1
        try:
            async with deadline:
                resolution = await fetch()
        except InputNeeded as question:
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
            self._fetching -= 1
            if not self._fetching and self._after_fetches is not None:
                self._after_fetches()
        wall = self.clock.wall()
        expiry = resolution.expires_at
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
        entry.resolution, entry.has_value = resolution, True
        entry.fetched_at = wall
        entry.expires_at = None if expiry is None else expiry.timestamp()
        entry.failures, entry.retry_at, entry.last_error = 0, None, None
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
        entry.retry_at = now + rules.backoff(entry.failures, self.policy, self._random.random())
        if entry.interactive:  # a wrong code: the next client is asked again, at once
            entry.retry_at = None
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
            if question := self.questions.open.get(key):
                self.questions.settle(question, None)
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
        runners = self.questions.close()
        tasks = [e.inflight for e in self.entries.values() if e.inflight is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *runners, return_exceptions=True)

    def status(self) -> list[dict[str, object]]:
        """Secret-free facts about every entry, for ``--status``."""
        self.questions.expire()
        now, wall = self.clock.monotonic(), self.clock.wall()
        return [self.describe(entry, now, wall) for entry in self.entries.values()]

    def schedule(
        self, entry: Entry, now: float | None = None, wall: float | None = None
    ) -> tuple[bool, str | None, str | None]:
        """Whether ``entry``'s value may be served, when it expires and when it is refreshed
        (ISO 8601, UTC), judged by the wall clock now: what every answer tells of an entry."""
        now = self.clock.monotonic() if now is None else now
        wall = self.clock.wall() if wall is None else wall
        due = entry.refresh_at(self.policy, now, wall)
        return (
            entry.valid(wall, self.policy),
            iso(entry.expires_at) if entry.resolution else None,
            None if due is None else iso(wall + (due - now)),
        )

    def describe(
        self, entry: Entry, now: float | None = None, wall: float | None = None
    ) -> dict[str, object]:
        """Facts for ``--status`` and ``--explain``, judged by the wall clock now."""
        now = self.clock.monotonic() if now is None else now
        wall = self.clock.wall() if wall is None else wall
        cached, expires_at, refresh_at = self.schedule(entry, now, wall)
        remaining = entry.remaining(wall) if entry.resolution else None

        return {
            "names": list(entry.names),
            "plugin": entry.plugin_id,
            "description": entry.description,
            "cached": cached,
            "expires_at": expires_at,
            "expires_in_seconds": None if remaining is None else round(remaining),
            "refresh_at": refresh_at,
            "last_used_seconds_ago": round(now - entry.last_used, 1),
            "fetching": entry.inflight is not None,
            "failures": entry.failures,
            "waiting_for_input": entry.key in self.questions.open,
            "last_error": str(entry.last_error) if entry.last_error else None,
        }
