"""A laptop that sleeps: the real daemon's wall clock jumps while its monotonic clock does not.

libfaketime (Debian's ``faketime``) shifts the running daemon's wall clock by
reading ``~/.faketimerc`` on every call (``FAKETIME_NO_CACHE=1``; the daemon
drops FAKETIME_* from its environment, as it drops everything it does not
need, and libfaketime then reads that file); ``FAKETIME_DONT_FAKE_MONOTONIC=1``
leaves the monotonic clock alone, as a suspend does. The fake AWS's clock moves by the
same amount (AWS and the laptop agree on the time). tests/test_cache.py covers
the same rules with an injected clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact

CONFIG = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
NIGHT = 13 * 3600
#: The daemon looks at the wall clock at least this often (cache.Policy.wall_check).
WALL_CHECK = 30.0


class Suspendable:
    """A real daemon whose wall clock the test moves."""

    def __init__(self, user: User, faked: dict[str, str]) -> None:
        self.offset_file = user.home / ".faketimerc"
        self.daemon = Daemon(user, env=faked)

    def sleep_for(self, seconds: int, fake: FakeCodeArtifact) -> None:
        """The laptop slept ``seconds``: both wall clocks jump, in no time."""
        self.offset_file.write_text(f"+{seconds}\n")
        fake.shift_clock(seconds)


@pytest.fixture
def laptop(user: User, libfaketime: dict[str, str]) -> Iterator[Suspendable]:
    user.write("work/project/wev.yml", CONFIG)
    machine = Suspendable(user, libfaketime)
    try:
        yield machine
    finally:
        machine.daemon.stop()


def status(user: User) -> dict[str, object]:
    result = user.wev("--status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def entry(user: User) -> dict[str, object]:
    entries = status(user)["entries"]
    assert isinstance(entries, list) and len(entries) == 1
    found = entries[0]
    assert isinstance(found, dict)
    return found


def remaining(user: User) -> int:
    seconds = entry(user)["expires_in_seconds"]
    assert isinstance(seconds, int)
    return seconds


def test_after_a_night_asleep_the_dead_token_is_never_handed_out(
    user: User, fake: FakeCodeArtifact, laptop: Suspendable
) -> None:
    evening = user.wev(*PRINT_TOKEN)
    assert evening.returncode == 0, evening.stderr
    assert 43000 < remaining(user) <= 43200

    laptop.sleep_for(NIGHT, fake)
    morning = user.wev("--export", "--format", "json")

    assert morning.returncode == 0, morning.stderr
    token = json.loads(morning.stdout)["CODEARTIFACT_AUTH_TOKEN"]
    assert token != evening.stdout
    assert fake.is_valid_token(token)  # by AWS's clock, moved on 13 hours
    assert not fake.is_valid_token(evening.stdout)


def test_a_resumed_daemon_refreshes_within_the_wall_check_without_a_client(
    user: User, fake: FakeCodeArtifact, laptop: Suspendable
) -> None:
    assert user.wev(*PRINT_TOKEN).returncode == 0
    assert fake.call_count == 1

    laptop.sleep_for(NIGHT, fake)
    resumed = time.monotonic()
    assert fake.wait_for_call_count(2, timeout=WALL_CHECK + 15), "no refresh after the resume"
    took = time.monotonic() - resumed
    print(f"fresh token {took:.1f} s after a simulated {NIGHT // 3600} h suspend")

    assert took <= WALL_CHECK + 10
    assert remaining(user) > 43000  # --status shows the true remaining life
    assert entry(user)["cached"] is True
    served = user.wev(*PRINT_TOKEN)
    assert fake.is_valid_token(served.stdout) and fake.call_count == 2


def test_status_shows_the_true_remaining_life_after_a_short_sleep(
    user: User, fake: FakeCodeArtifact, laptop: Suspendable
) -> None:
    assert user.wev(*PRINT_TOKEN).returncode == 0
    laptop.sleep_for(3 * 3600, fake)  # not yet due: 9 of 12 hours remain

    left = remaining(user)

    assert 9 * 3600 - 60 < left <= 9 * 3600
    explained = user.wev("--explain")
    assert explained.returncode == 0, explained.stderr
    assert fake.call_count == 1
