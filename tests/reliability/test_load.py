"""Load: 200 concurrent raw protocol clients and real ``wev`` processes against one warm daemon.

The raw clients send exactly what ``wev`` sends (the body built from the
project's configuration, ``Connection: close``, one connection per request)
and connect as ``wev_client.transport`` does: one non-blocking ``connect``
whose failure is the client's failure. The test asserts no error, no raw
request slower than 1 s, every ``wev`` exit 0, one upstream call, and a flat
daemon RSS between a 2,000-request warm-up and 20,000 requests later.
``bench/load.py`` runs the long versions and prints the figures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from wire import WARM_WEV_YML, exchange, resolve_message, rss_kib

from wev_client.protocol import codec
from wev_daemon.server import BACKLOG

# It measures latency and memory under a load of its own: after the parallel
# tests, alone, and before what else the machine runs.
pytestmark = [pytest.mark.serial, pytest.mark.timing]

CONCURRENCY = 200
WARMUP_REQUESTS = 2_000
MEASURED_REQUESTS = 20_000
#: ``wev`` processes at a time, and how many in all, run while the raw clients do.
WEV_PARALLEL = 20
WEV_RUNS = 300
MAX_LATENCY = 1.0
#: Measured here: -92 to +56 KiB over 20,000 requests (RSS about 62-65 MiB). The
#: bound leaves room for allocator noise, not for a per-request leak (20,000
#: requests keeping 420 bytes each would cross it).
RSS_GROWTH_LIMIT_KIB = 8 * 1024
#: Every wait is bounded: one request, one ``wev`` process, a whole phase.
REQUEST_TIMEOUT = 10.0
WEV_TIMEOUT = 30.0
PHASE_TIMEOUT = 50.0


def message_for(user: User) -> bytes:
    """The bytes ``wev`` sends from the user's project folder."""
    return resolve_message(str(user.project), str(user.home), user.env)


def parse_response(raw: bytes) -> tuple[int, object]:
    """Status and decoded JSON body of one HTTP/1.1 response."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if not separator or not status_line.startswith(b"HTTP/1.1 "):
        raise ValueError(f"not an HTTP response: {raw[:80]!r}")
    return int(status_line.split()[1]), codec.loads(body) if body else None


@dataclass
class Tally:
    """What the raw clients saw: latencies in seconds and errors by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


async def hammer(
    path: str, message: bytes, expected: dict[str, str], requests: int, concurrency: int
) -> Tally:
    """``requests`` raw requests from ``concurrency`` clients, each one at a time."""
    tally = Tally()
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    raw = await exchange(path, message)
                status, body = parse_response(raw)
            except (OSError, TimeoutError, ValueError) as error:
                tally.errors[f"{type(error).__name__}: {error}"] += 1
                continue
            finally:
                tally.latencies.append(time.perf_counter() - started)
            if status != 200:
                tally.errors[f"status {status}: {body}"] += 1
            elif not isinstance(body, dict) or body.get("values") != expected:
                tally.errors["unexpected values"] += 1

    async with asyncio.timeout(PHASE_TIMEOUT):
        await asyncio.gather(*(client() for _ in range(concurrency)))
    return tally


def run_wev(user: User, token: str) -> str:
    """One real ``wev``; an empty string if it printed the token, else what went wrong."""
    try:
        result = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", timeout=WEV_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"wev took longer than {WEV_TIMEOUT} s"
    if result.returncode != 0:
        return f"exit {result.returncode}: {result.stderr.strip()}"
    if result.stdout != token + "\n":
        return "wev printed another value"
    return ""


@pytest.mark.timeout(90)
def test_200_clients_and_wev_processes_against_a_warm_daemon(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", WARM_WEV_YML)
    warm = user.wev("true")
    assert warm.returncode == 0, warm.stderr
    [token] = fake.issued
    expected = {"CODEARTIFACT_AUTH_TOKEN": token, "GREETING": "hello"}
    message = message_for(user)
    pid = daemon.process.pid

    warm_up = asyncio.run(hammer(user.socket, message, expected, WARMUP_REQUESTS, CONCURRENCY))
    rss_warm = rss_kib(pid)
    pool = ThreadPoolExecutor(WEV_PARALLEL)
    try:
        started = time.perf_counter()
        runs = [pool.submit(run_wev, user, token) for _ in range(WEV_RUNS)]
        load = asyncio.run(hammer(user.socket, message, expected, MEASURED_REQUESTS, CONCURRENCY))
        elapsed = time.perf_counter() - started
        wev_during_load = sum(run.done() for run in runs)
        wev_failures = Counter(run.result(timeout=PHASE_TIMEOUT) for run in runs)
    finally:
        pool.shutdown(cancel_futures=True)  # on failure, start no more wev
    rss_after = rss_kib(pid)
    wev_failures.pop("", None)

    latencies = sorted(load.latencies)
    print(
        f"\n{MEASURED_REQUESTS} raw requests from {CONCURRENCY} clients in {elapsed:.1f} s "
        f"({MEASURED_REQUESTS / elapsed:.0f}/s) with {WEV_RUNS} wev runs "
        f"({wev_during_load} done meanwhile); p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms\n"
        f"daemon RSS after {WARMUP_REQUESTS} requests: {rss_warm} KiB, after "
        f"{MEASURED_REQUESTS} more: {rss_after} KiB, growth {rss_after - rss_warm} KiB"
    )
    problems = {
        "warm-up errors": dict(warm_up.errors),
        "errors": dict(load.errors),
        "wev failures": dict(wev_failures),
    }
    assert not any(problems.values()), problems
    assert len(latencies) == MEASURED_REQUESTS
    assert latencies[-1] < MAX_LATENCY, f"the slowest raw request took {latencies[-1]:.2f} s"
    assert rss_after - rss_warm < RSS_GROWTH_LIMIT_KIB
    assert fake.call_count == 1
    assert daemon.process.poll() is None


def test_wev_waits_out_a_full_listen_backlog(user: User, daemon: Daemon) -> None:
    """A daemon that stalls for a moment (a GC pause, paging) under a burst of clients:
    its backlog fills up, and a ``wev`` arriving then should wait, not fail."""
    user.write("work/project/wev.yml", WARM_WEV_YML)
    assert user.wev("true").returncode == 0
    filler: list[socket.socket] = []
    resume = threading.Timer(0.5, os.kill, (daemon.process.pid, signal.SIGCONT))
    os.kill(daemon.process.pid, signal.SIGSTOP)
    try:
        while len(filler) < 2 * BACKLOG:  # Linux holds BACKLOG + 1
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            filler.append(sock)
            try:
                sock.connect(user.socket)
            except BlockingIOError:
                break
        else:
            pytest.fail(f"the backlog held {2 * BACKLOG} connections")
        resume.start()
        result = user.wev("true", timeout=WEV_TIMEOUT)
    finally:
        resume.cancel()
        os.kill(daemon.process.pid, signal.SIGCONT)
        for sock in filler:
            sock.close()

    assert result.returncode == 0, result.stderr
