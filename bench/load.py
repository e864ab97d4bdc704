"""Load benchmark of ``wev-daemon``: raw protocol requests at 1, 10 and 100 concurrent clients.

Run ``.venv/bin/python bench/load.py [--requests N] [--json]`` (about 10 s with
the defaults). It sets up the same isolated user as ``bench/startup.py`` (temp
HOME with fake AWS keys, a project whose ``wev.yml`` has a ``wev-echo`` and a
``wev-awscodeartifact`` entry served by the tests' fake CodeArtifact on
127.0.0.1), starts the real ``wev-daemon``, warms it with one ``wev`` run
and a few hundred requests, then for each level of concurrency runs that many
clients, each sending ``POST /v1/resolve`` requests one after another until
the level's count is done. A request is what ``wev`` sends from the project:
the same body, ``Connection: close``, a new connection each time; an answer
counts only if it is a 200 with the expected values.

It prints, per level, requests/s and the p50, p99 and max latency (connect to
last byte), then the daemon's RSS after the warm-up and after the whole run,
topped up to 20,000 requests at the highest concurrency if the levels did not
reach that many. ``--json`` prints the same figures as one JSON object. The
clients are one asyncio process on the same machine as the daemon, so on a
small machine the figures are those of both sharing its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from startup import WEV, fake_codeartifact, make_user, running_daemon
from wire import (  # type: ignore[import-not-found,unused-ignore]
    exchange,
    resolve_message,
    rss_kib,
)

from wev_client import protocol
from wev_client.protocol import codec, errors

LEVELS = (1, 10, 100)
#: The daemon's RSS is read again once this many requests have been made in all.
RSS_REQUESTS = 20_000
WARM_UP_REQUESTS = 500
#: Every wait is bounded: one request, the warm-up ``wev``, one whole level.
REQUEST_TIMEOUT = 10.0
COMMAND_TIMEOUT = 60.0
LEVEL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Level:
    clients: int
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Figures:
    """Every level, and the daemon's RSS after the warm-up and after ``requests`` in all."""

    levels: list[Level]
    rss_warm_kib: int
    rss_after_kib: int
    requests: int
    errors: Counter[str]


@dataclass(frozen=True)
class Run:
    latencies: list[float]
    errors: Counter[str]
    seconds: float


# -- one request, as wev sends it --------------------------------------------------------


def check(raw: bytes, expected: dict[str, str]) -> str:
    """An empty string for a 200 with the expected values, else what is wrong."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 200 "):
        return status.decode(errors="replace") or "closed without an answer"
    try:
        values = codec.loads(body)
    except errors.ProtocolError:
        return "an answer that is not JSON"
    if not isinstance(values, dict) or values.get("values") != expected:
        return "unexpected values"
    return ""


async def hammer(
    path: str, message: bytes, expected: dict[str, str], requests: int, clients: int
) -> Run:
    """``requests`` requests from ``clients`` concurrent clients, each one at a time."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    problem = check(await exchange(path, message), expected)
            except (OSError, TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}"
            latencies.append(time.perf_counter() - started)
            if problem:
                errors[problem] += 1

    started = time.perf_counter()
    async with asyncio.timeout(LEVEL_TIMEOUT):
        await asyncio.gather(*(client() for _ in range(clients)))
    return Run(latencies, errors, time.perf_counter() - started)


def level(clients: int, run: Run) -> Level:
    ordered = sorted(run.latencies)
    count = len(ordered)

    def percentile(fraction: float) -> float:
        return ordered[min(count - 1, int(count * fraction))] * 1000

    return Level(
        clients,
        count,
        sum(run.errors.values()),
        round(run.seconds, 3),
        round(count / run.seconds, 1),
        round(percentile(0.50), 3),
        round(percentile(0.99), 3),
        round(ordered[-1] * 1000, 3),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000, help="requests at each level")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.requests < max(LEVELS):
        parser.error(f"--requests must be at least {max(LEVELS)}")
    if not os.path.exists("/proc/self/status"):
        parser.error("this benchmark reads the daemon's RSS from /proc (Linux)")

    root = tempfile.mkdtemp(prefix="wev-bench-")  # short: socket paths are limited
    try:
        with fake_codeartifact() as fake:
            user = make_user(root, fake.url)
            with running_daemon(user) as daemon:
                # The real client warms the daemon and tells the value to expect.
                warm = subprocess.run(
                    [WEV, "printenv", "CODEARTIFACT_AUTH_TOKEN"],
                    cwd=user.project,
                    env=user.env,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT,
                    check=False,
                )
                if warm.returncode != 0:
                    raise RuntimeError(f"wev failed:\n{warm.stderr}")
                home = user.env["HOME"]
                message = resolve_message(user.project, home, user.env)
                expected = {"CODEARTIFACT_AUTH_TOKEN": warm.stdout.strip(), "GREETING": "hello"}
                print(f"warming up, then {args.requests} requests per level...", file=sys.stderr)
                figures = asyncio.run(
                    measure(user.socket, message, expected, args.requests, daemon.pid)
                )
                upstream_calls = fake.call_count
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
        "levels": [asdict(item) for item in figures.levels],
        "rss_kib": {
            "after_warm_up": figures.rss_warm_kib,
            "after": figures.rss_after_kib,
            "requests": figures.requests,
        },
        "codeartifact_calls": upstream_calls,
        "errors": dict(figures.errors),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(figures, upstream_calls)
    return 1 if figures.errors else 0


async def measure(
    path: str, message: bytes, expected: dict[str, str], requests: int, pid: int
) -> Figures:
    """Warm up, run every level, top up to RSS_REQUESTS; RSS before and after."""
    errors: Counter[str] = Counter()
    warm = await hammer(path, message, expected, WARM_UP_REQUESTS, max(LEVELS))
    errors.update(warm.errors)
    rss_warm = rss_kib(pid)
    levels = []
    for clients in LEVELS:
        run = await hammer(path, message, expected, requests, clients)
        errors.update(run.errors)
        levels.append(level(clients, run))
    total = requests * len(LEVELS)
    if total < RSS_REQUESTS:
        run = await hammer(path, message, expected, RSS_REQUESTS - total, max(LEVELS))
        errors.update(run.errors)
        total = RSS_REQUESTS
    return Figures(levels, rss_warm, rss_kib(pid), total, errors)


def print_text(figures: Figures, upstream_calls: int) -> None:
    print(
        f"wev-daemon under load: POST {protocol.RESOLVE_ROUTE} as wev sends it "
        f"(Connection: close); python {sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    print(
        f"{'clients':>7}  {'requests':>8}  {'errors':>6}  {'req/s':>7}  "
        f"{'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}"
    )
    for item in figures.levels:
        print(
            f"{item.clients:>7}  {item.requests:>8}  {item.errors:>6}  "
            f"{item.requests_per_second:>7.0f}  {item.p50_ms:>7.2f}  {item.p99_ms:>7.2f}  "
            f"{item.max_ms:>7.2f}"
        )
    before, after = figures.rss_warm_kib, figures.rss_after_kib
    print(
        f"\ndaemon RSS: {before / 1024:.1f} MiB after the warm-up, {after / 1024:.1f} MiB "
        f"after {figures.requests} requests ({after - before:+d} KiB)"
    )
    print(f"CodeArtifact calls: {upstream_calls}")
    for problem, count in figures.errors.most_common():
        print(f"error x{count}: {problem}")


if __name__ == "__main__":
    sys.exit(main())
