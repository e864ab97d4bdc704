"""The cache's decisions as pure functions of an entry's facts and two clock readings: no
event loop, no waiting. ``tests/test_cache.py`` drives the scheduler that acts on them."""

from __future__ import annotations

from wev_client.protocol.errors import UpstreamError
from wev_daemon import policy
from wev_daemon.aws import FetchError
from wev_daemon.policy import Facts, Policy

HOUR = 3600.0
WALL = 2_000_000_000.0  # an epoch time
NOW = 5000.0  # a monotonic time, unrelated to the wall clock
RULES = Policy()


def fetched(at: float = WALL, lifetime: float | None = HOUR) -> Facts:
    return Facts(
        fetched_at=at, expires_at=None if lifetime is None else at + lifetime, has_value=True
    )


def test_fresh_until_ten_percent_of_the_lifetime_is_left() -> None:
    facts = fetched()
    assert policy.fresh(facts, WALL + 0.89 * HOUR, RULES)
    assert not policy.fresh(facts, WALL + 0.91 * HOUR, RULES)
    assert policy.valid(facts, WALL + 0.91 * HOUR, RULES)  # still served when upstream fails


def test_the_floor_is_at_most_fifteen_minutes() -> None:
    facts = fetched(lifetime=12 * HOUR)
    assert policy.fresh(facts, WALL + 12 * HOUR - 16 * 60, RULES)
    assert not policy.fresh(facts, WALL + 12 * HOUR - 14 * 60, RULES)


def test_never_valid_within_the_margin_of_expiry() -> None:
    facts = fetched()
    assert not policy.valid(facts, WALL + HOUR - 4, RULES)
    assert not policy.valid(Facts(), WALL, RULES)  # nothing fetched


def test_a_value_without_expiry_stays_fresh_and_is_never_refreshed() -> None:
    facts = fetched(lifetime=None)
    assert policy.fresh(facts, WALL + 1e9, RULES)
    assert policy.refresh_at(facts, RULES, NOW, WALL) is None


def test_refresh_is_due_at_75_percent_judged_by_the_wall_clock() -> None:
    facts = fetched()
    assert policy.refresh_at(facts, RULES, NOW, WALL) == NOW + 0.75 * HOUR
    # After a suspend of half an hour (the wall clock moved, the monotonic one did not):
    assert policy.refresh_at(facts, RULES, NOW, WALL + 0.5 * HOUR) == NOW + 0.25 * HOUR


def test_an_entry_that_needed_the_user_is_never_refreshed_unasked() -> None:
    facts = fetched()
    facts.interactive = True
    assert policy.refresh_at(facts, RULES, NOW, WALL) is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rules = Policy(backoff_base=1.0, backoff_cap=16.0)
    assert policy.backoff(1, rules, 0.0) == 0.5 and policy.backoff(1, rules, 0.999) < 1.0
    assert policy.backoff(4, rules, 0.999) < 8.0 <= policy.backoff(5, rules, 0.0) * 2
    assert policy.backoff(10_000, rules, 0.5) == 12.0


def test_holding_off_after_failures() -> None:
    transient = Facts(
        failures=1, failed_at=NOW, retry_at=NOW + 10, last_error=FetchError("x", transient=True)
    )
    assert policy.holding_off(transient, NOW + 5, WALL, RULES)
    assert not policy.holding_off(transient, NOW + 10, WALL, RULES)
    permanent = Facts(failures=1, failed_at=NOW, retry_at=NOW + 10, last_error=UpstreamError("x"))
    assert policy.holding_off(permanent, NOW + 1, WALL, RULES)
    assert not policy.holding_off(permanent, NOW + RULES.client_retry_after, WALL, RULES)
    local = Facts(
        failures=1, failed_at=NOW, retry_at=NOW + 10, last_error=FetchError("x", local=True)
    )
    assert not policy.holding_off(local, NOW, WALL, RULES)  # the user may just have fixed it
    assert policy.retry_pause(transient, NOW + 0.25, RULES) == RULES.retry_spacing - 0.25
