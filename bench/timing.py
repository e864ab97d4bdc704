"""Timing one process as a tool runs it, and a figure's row in a bench's table.

Shared by ``docker_helper`` and ``keyring_lookup``: each times whole processes (a credential
helper, ``keyring get``) interleaved with their baselines, and prints median, p90 and min.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

RUN_TIMEOUT = 120


def timed_run(
    argv: Sequence[str],
    *,
    cwd: str,
    env: dict[str, str],
    stdin: str = "",
    answered: Callable[[str], bool] = lambda stdout: True,
) -> float:
    """Milliseconds of one process; the whole run stops, with its output, if it fails or
    its stdout is not ``answered``."""
    start = time.perf_counter()
    result = subprocess.run(
        list(argv),
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        sys.exit(f"{argv[0]} failed: {(result.stdout + result.stderr).strip()[-500:]}")
    if not answered(result.stdout):
        sys.exit(f"{argv[0]} gave no answer: {result.stdout[:200]}")
    return elapsed


def row(name: str, samples: list[float]) -> float:
    """Print ``| name | median | p90 | min |`` (milliseconds); returns the median."""
    median = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else median
    print(f"| {name} | {median:.1f} ms | {p90:.1f} ms | {min(samples):.1f} ms |")
    return median
