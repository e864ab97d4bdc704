"""``make demo`` runs wev's main job for real and leaves nothing behind.

The demo script (``examples/demo.py``, what ``make demo`` runs after
installing wev) is run as a subprocess of this environment, as a newcomer
runs it; it must prove its three points and stop everything it started.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
#: The demo waits for one refresh of a 20 s token; pip and the daemon's start add a few seconds.
DEMO_TIMEOUT = 90


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """The demo's TMPDIR: short, as its daemon's socket path below it must be."""
    folder = Path(tempfile.mkdtemp(prefix="wevd-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_demo_proves_the_main_job_and_leaves_nothing_running(short_tmp: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(short_tmp),
        # What a user's shell may hold must not matter to the demo.
        "AWS_PROFILE": "not-a-profile",
        "AWS_ACCESS_KEY_ID": "AKIANOTUSED000000000",
        "PIP_INDEX_URL": "http://127.0.0.1:9/nothing/",
    }
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        env=env,
        cwd=short_tmp,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    proved = [line for line in out.splitlines() if line.startswith("  ok: ")]
    assert len(proved) == 3, out
    assert "installed corp-lib 1.2.3 from a private index" in proved[0]
    assert "one GetAuthorizationToken call" in proved[0]
    assert "a second terminal got the same token" in proved[1]
    assert "before expiry" in proved[2] and "still 2 calls in all" in proved[2]
    # What AWS answered: the token and the endpoint, then the refreshed token.
    assert "wev --status counted 2 upstream calls" in proved[1]
    assert out.count("upstream calls since start: 2") == 1
    assert out.count("upstream calls since start: 3") == 1
    tokens = re.findall(r"^  \| token ([0-9a-f]{12})$", out, re.MULTILINE)
    assert len(tokens) == 2 and tokens[0] != tokens[1], "the second terminal's, then the new one"

    stopped = re.search(r"^Stopped wev-daemon \(pid (\d+)\), .* removed (\S+): nothing", out, re.M)
    assert stopped, out
    pid, folder = int(stopped[1]), Path(stopped[2])
    assert not folder.exists()
    assert list(short_tmp.iterdir()) == [], "nothing left in the temporary folder"
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        state = "gone"
    assert state in ("gone", "Z"), "the demo's daemon still runs"
