"""The cache's decisions: pure functions of an entry's facts and of the two clocks.

Nothing here waits, locks or runs anything: given what is known of one entry
(when its value was fetched, when it expires, how it last failed) and a
reading of the wall and monotonic clocks, each function says whether a value
may be served, when the background refresh is due, and how long to back off.
``cache`` acts on these answers; tests call them without an event loop.

With ``lifetime`` = expiry minus fetch time:

* a value is *fresh* (handed to a client) while more than 10% of its
  lifetime (at most 15 minutes) remains;
* it stays *valid* (served when upstream fails) until a small margin before
  its expiry;
* its refresh is due once 75% of the lifetime has passed;
* a failed fetch is retried after a capped exponential backoff with jitter.

Time: expiries are wall-clock times (AWS's ``expiration``) and are judged
against the wall clock; backoff and idleness are durations of the daemon's
own running time, on the monotonic clock (which stops while a laptop sleeps).
A due time is a monotonic time converted from a wall-clock one at one
reading, so it must be computed again after any wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from wev_client.protocol.errors import WevError

#: Exponents beyond this only overflow: the delay is capped long before.
_MAX_BACKOFF_EXPONENT = 32


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
    #: How long a client that was asked on its terminal owns the question; after
    #: that (Ctrl-C without a word, a closed terminal) the next client is asked.
    prompt_lease: float = 120.0
    #: Longest one request waits for another's answer (below the client's 60 s
    #: response timeout); the client then asks again, and so waits on.
    prompt_wait: float = 50.0
    #: The wait bound: how long a question (or a sign-in) may wait for its answer
    #: in all, whoever waits for it; ``mfa_process`` and askpass programs are
    #: stopped then too. Every waiter then fails with one line.
    question_wait: float = 120.0


@dataclass(eq=False)
class Facts:
    """What the policy judges of one entry: its value's times and its last failure."""

    #: Wall-clock seconds (epoch) of the fetch and of the expiry AWS gave.
    fetched_at: float = 0.0
    expires_at: float | None = None
    has_value: bool = False
    failures: int = 0
    #: Monotonic time of the last failure, and of the earliest retry after it.
    failed_at: float = 0.0
    retry_at: float | None = None
    last_error: WevError | None = None
    #: The fetch has needed the user's input: no background refresh, no backoff.
    interactive: bool = False

    @property
    def lifetime(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - self.fetched_at

    def remaining(self, wall: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - wall


def valid(facts: Facts, wall: float, policy: Policy) -> bool:
    """Not expired yet, with a margin for the trip to the client and to AWS."""
    remaining, lifetime = facts.remaining(wall), facts.lifetime
    if not facts.has_value or remaining is None or lifetime is None:
        return facts.has_value
    return remaining > min(policy.expiry_margin, 0.05 * lifetime)


def fresh(facts: Facts, wall: float, policy: Policy) -> bool:
    """Valid with enough lifetime left to hand to a client."""
    remaining, lifetime = facts.remaining(wall), facts.lifetime
    if not facts.has_value or remaining is None or lifetime is None:
        return facts.has_value
    floor = min(policy.min_remaining_fraction * lifetime, policy.min_remaining_cap)
    return remaining > floor


def refresh_at(facts: Facts, policy: Policy, now: float, wall: float) -> float | None:
    """When the background refresh is due, as a monotonic time, or None.

    A value's due time is a wall-clock time, converted at ``now``/``wall``.
    After a non-transient failure nothing is retried in the background: a
    client asks again. An entry that needed the user is never refreshed
    unasked (nobody to ask).
    """
    if facts.interactive:
        return None
    if facts.last_error is not None and facts.retry_at is not None:
        return facts.retry_at if getattr(facts.last_error, "transient", False) else None
    lifetime = facts.lifetime
    if not facts.has_value or lifetime is None:
        return None
    return now + (facts.fetched_at + policy.refresh_fraction * lifetime - wall)


def backoff(failures: int, policy: Policy, draw: float) -> float:
    """Seconds to wait after ``failures`` failures in a row; ``draw`` in [0, 1) is the jitter."""
    exponent = min(failures - 1, _MAX_BACKOFF_EXPONENT)
    delay = min(policy.backoff_cap, policy.backoff_base * 2.0**exponent)
    return delay * (0.5 + 0.5 * draw)


def holding_off(facts: Facts, now: float, wall: float, policy: Policy) -> bool:
    """True while a recent failure should be reported instead of retried.

    A client holding a still-valid value is not blocked, so upstream is left
    alone for the whole backoff; without one, a non-transient failure (bad
    credentials, perhaps fixed since) may be retried after a short pause,
    and one found without asking upstream (no login on disk, an expired
    SSO token) at once: the user may just have fixed it.
    """
    error = facts.last_error
    if error is None or facts.retry_at is None:
        return False
    if valid(facts, wall, policy) or getattr(error, "transient", False):
        return now < facts.retry_at
    if getattr(error, "local", False):
        return False
    return now < facts.failed_at + policy.client_retry_after


def retry_pause(facts: Facts, now: float, policy: Policy) -> float:
    """How long a client with a valid but ageing value waits before trying upstream again.

    Never sooner than ``retry_spacing`` after the last failure: a burst of
    clients cannot hammer AWS.
    """
    return max(0.0, facts.failed_at + policy.retry_spacing - now)
