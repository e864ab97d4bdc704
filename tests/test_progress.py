"""The status line: shown on a terminal while the client waits for a token, and nothing otherwise.

The real ``wev`` runs with its stderr on a pseudo-terminal (``pty.openpty``) or on a pipe; the
fake CodeArtifact's stall makes the wait. What reaches the terminal is compared byte for byte.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass

from conftest import WEV, Daemon, User
from fakes.codeartifact import FakeCodeArtifact

SHARED = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
LINE = b"wev: fetching CodeArtifact token for corp (profile work)..."
CLEAR = b"\r\x1b[K"


@dataclass
class Run:
    returncode: int
    stdout: str
    terminal: bytes  # what wev wrote on its stderr, the terminal


def on_terminal(
    user: User, *args: str, env: Mapping[str, str] | None = None, columns: int = 120
) -> Run:
    """Run the real ``wev`` with stderr on a pseudo-terminal ``columns`` wide (bounded)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        process = subprocess.Popen(
            [WEV, *args],
            cwd=user.project,
            env={**user.env, "TERM": "xterm", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
    finally:
        os.close(slave)
    terminal = bytearray()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError as error:  # EIO: every writer has closed the terminal
                    if error.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                terminal += chunk
            elif process.poll() is not None:
                break
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        os.close(master)
    return Run(process.returncode, stdout.decode(), bytes(terminal))


def test_a_slow_fetch_shows_a_status_line_then_clears_it(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    run = on_terminal(user, *PRINT_TOKEN, env={"AWS_PROFILE": "work"})

    assert run.returncode == 0, run.terminal
    assert fake.is_valid_token(run.stdout)
    assert run.terminal == LINE + CLEAR


def test_a_warm_cache_shows_nothing(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", SHARED)
    assert user.wev("true").returncode == 0

    run = on_terminal(user, *PRINT_TOKEN)

    assert run.returncode == 0 and fake.is_valid_token(run.stdout)
    assert run.terminal == b""


def test_nothing_is_shown_when_stderr_is_not_a_terminal(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    result = user.wev(*PRINT_TOKEN, env={"AWS_PROFILE": "work", "TERM": "xterm"})

    assert result.returncode == 0 and fake.is_valid_token(result.stdout)
    assert result.stderr == ""


def test_nothing_is_shown_on_a_dumb_terminal(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    run = on_terminal(user, *PRINT_TOKEN, env={"TERM": "dumb"})

    assert run.returncode == 0 and run.terminal == b""


def test_the_line_is_cleared_before_an_error(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)
    fake.fail_with(403, "AccessDeniedException", "not allowed", times=None)

    run = on_terminal(user, "true", env={"AWS_PROFILE": "work"})

    assert run.returncode == 69
    line, _, error = run.terminal.partition(CLEAR)
    assert line == LINE
    assert error.startswith(b"wev: CODEARTIFACT_AUTH_TOKEN: ") and b"not allowed" in error
    assert error.count(b"\n") == 1


def test_the_line_fits_a_narrow_terminal(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    run = on_terminal(user, "true", env={"AWS_PROFILE": "work"}, columns=40)

    assert run.terminal == LINE[:39] + CLEAR


def test_the_line_covers_resolving_without_a_daemon(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    run = on_terminal(user, *PRINT_TOKEN, env={"WEV_NO_DAEMON": "1", "AWS_PROFILE": "work"})

    assert run.returncode == 0 and fake.is_valid_token(run.stdout)
    assert run.terminal == LINE + CLEAR


def test_the_timer_never_outlives_exec(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    """An interval timer survives exec: were it left running, SIGALRM would kill the command."""
    user.write("work/project/wev.yml", SHARED)
    assert user.wev("true").returncode == 0

    run = on_terminal(user, "sh", "-c", "sleep 0.8; printf done")

    assert (run.returncode, run.stdout, run.terminal) == (0, "done", b"")


def test_debug_logging_replaces_the_line(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)

    run = on_terminal(user, "--log-level", "DEBUG", "true", env={"AWS_PROFILE": "work"})

    assert run.returncode == 0
    assert b"wev: debug: " in run.terminal and LINE not in run.terminal
