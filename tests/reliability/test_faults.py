"""Upstream faults, a cold stampede and a daemon killed mid-request.

Every fault AWS can throw at the daemon: with a valid cached token, every
client is still served from the cache, fast; without one, the client gets one
clear line within a stated bound, and the daemon retries with capped
exponential backoff and jitter, at a bounded call rate.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.gate import Gate

# Every test here bounds how soon clients are served, or counts calls in a time window.
pytestmark = pytest.mark.timing

CONFIG = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
#: The daemon's bound on a client's wait for AWS (``wev-daemon --wait-timeout``).
WAIT_TIMEOUT = 3.0
#: How long a client may take when no token exists and AWS fails (wait + start-up).
ERROR_BOUND = WAIT_TIMEOUT + 5.0

Fault = Callable[[FakeCodeArtifact, Gate], None]


def refused(fake: FakeCodeArtifact, gate: Gate) -> None:
    gate.shut()


def server_error(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.fail_with(500, "InternalServerException", "internal failure")


def throttled(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.fail_with(429, "ThrottlingException", "Rate exceeded")


def slow(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.stall(120)


def malformed(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.malformed_reply = True


def dropped(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.close_connections = True


def expired(fake: FakeCodeArtifact, gate: Gate) -> None:
    fake.fail_with(403, "ExpiredTokenException", "The security token included is expired")


FAULTS = [refused, server_error, throttled, slow, malformed, dropped, expired]


@pytest.fixture
def gate(fake: FakeCodeArtifact) -> Iterator[Gate]:
    with Gate(int(fake.url.rsplit(":", 1)[1])) as forwarder:
        yield forwarder


@pytest.fixture
def gated(user: User, gate: Gate) -> User:
    """The user's AWS endpoint goes through the gate; the daemon bounds client waits."""
    user.env["AWS_ENDPOINT_URL_CODEARTIFACT"] = gate.url
    user.write("work/project/wev.yml", CONFIG)
    return user


@pytest.fixture
def quick_daemon(gated: User) -> Iterator[Daemon]:
    process = Daemon(gated, args=("--wait-timeout", str(WAIT_TIMEOUT)))
    try:
        yield process
    finally:
        process.stop()


def run_many(user: User, count: int) -> list[tuple[int, str, str, float]]:
    """``count`` real ``wev`` calls at once: (status, stdout, stderr, seconds) each."""

    def one(_: int) -> tuple[int, str, str, float]:
        started = time.monotonic()
        result = user.wev(*PRINT_TOKEN)
        return result.returncode, result.stdout, result.stderr, time.monotonic() - started

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.__name__)
def test_a_cached_token_is_served_through_any_fault(
    gated: User, quick_daemon: Daemon, fake: FakeCodeArtifact, gate: Gate, fault: Fault
) -> None:
    fake.set_lifetime(12)  # background refresh due after 9 s; not handed out after 10.8 s
    first = gated.wev(*PRINT_TOKEN)
    assert first.returncode == 0, first.stderr
    fault(fake, gate)
    # Once the refresh (due after 9 s) has started, and cannot succeed.
    if fault is refused:
        time.sleep(9.3)  # nothing reaches AWS to be counted
    else:
        assert fake.wait_for_call_count(2, timeout=10.0), "no refresh was tried"

    results = run_many(gated, 20)

    assert all(status == 0 for status, *_ in results), results[0][2]
    assert {stdout for _, stdout, *_ in results} == {first.stdout}
    assert max(seconds for *_, seconds in results) < 1.0
    assert fake.is_valid_token(first.stdout)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.__name__)
def test_without_a_token_a_fault_is_one_clear_line_within_a_bound(
    gated: User, quick_daemon: Daemon, fake: FakeCodeArtifact, gate: Gate, fault: Fault
) -> None:
    fault(fake, gate)

    started = time.monotonic()
    result = gated.wev("echo", "must not run")
    elapsed = time.monotonic() - started

    assert result.returncode == 69, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("wev: CODEARTIFACT_AUTH_TOKEN: ") and "corp" in line
    assert "Traceback" not in result.stderr
    assert elapsed < ERROR_BOUND


@pytest.mark.parametrize(
    "fault", [server_error, throttled, malformed, expired], ids=lambda fault: fault.__name__
)
def test_retries_back_off_and_clients_do_not_multiply_calls(
    gated: User, quick_daemon: Daemon, fake: FakeCodeArtifact, gate: Gate, fault: Fault
) -> None:
    fault(fake, gate)
    gated.wev("true")  # the entry now exists, and keeps failing

    window = 8.0
    deadline = time.monotonic() + window
    clients = 0
    while time.monotonic() < deadline:  # a user retrying over and over
        gated.wev("true")
        clients += 1

    # Backoff 1, 2, 4 s (each jittered to 50-100%) allows at most ~5 fetches in
    # 8 s, each up to 2 HTTP attempts by the SDK; clients add none while it runs,
    # except after credential-type errors, which they may retry every 2 s.
    calls = fake.call_count
    assert clients > 10
    assert 2 <= calls <= 2 * (5 + window / 2 + 1)
    times = [call.time for call in fake.calls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) >= 1.0  # it really waited between attempts


def test_stampede_of_100_cold_requests_makes_one_call(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", CONFIG)
    fake.stall(2.0)

    results = run_many(user, 100)

    assert all(status == 0 for status, *_ in results), results[0][2]
    assert len({stdout for _, stdout, *_ in results}) == 1
    assert fake.is_valid_token(results[0][1])
    assert fake.call_count == 1


def test_daemon_killed_mid_request(user: User, fake: FakeCodeArtifact) -> None:
    """kill -9 while 50 clients wait: each succeeds (after a restart) or fails
    clearly, within a bound; none hangs; the dead daemon's socket is recovered."""
    user.write("work/project/wev.yml", CONFIG)
    daemon = Daemon(user)
    fake.stall(3.0)
    clients = [user.popen_wev(*PRINT_TOKEN) for _ in range(50)]
    try:
        assert fake.wait_for_call_count(1, timeout=15), "the daemon never asked AWS"
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(5)
        fake.stall(0)
        started = time.monotonic()
        outputs = [client.communicate(timeout=40) for client in clients]
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.kill()
            client.wait(5)

    assert elapsed < 30
    for client, (stdout, stderr) in zip(clients, outputs, strict=True):
        if client.returncode == 0:
            assert fake.is_valid_token(stdout)
        else:
            assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert sum(client.returncode == 0 for client in clients) >= 45
    status = user.wev("--status", "--json")
    assert status.returncode == 0 and f'"pid": {daemon.process.pid}' not in status.stdout
