"""A command on a pseudo-terminal, read and typed into as a person would.

The command runs in its own session with the pty as its controlling terminal, so
``/dev/tty`` is that pty, as in a real terminal; what it writes there is read back
byte for byte, and keys are typed into it. Every wait is bounded.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

TIMEOUT = 30.0


class Pty:
    """A command with a pseudo-terminal as its controlling terminal (and stdin/out/err)."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.output = bytearray()
        try:
            self.process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                # The new session's leader takes the pty as its controlling terminal.
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            )
        finally:
            os.close(slave)

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError as error:  # EIO: every process has closed the terminal
            if error.errno != errno.EIO:
                raise
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, text: bytes, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(
                    f"{text!r} not shown; the terminal shows {bytes(self.output)!r}"
                )

    def settle(self, seconds: float) -> None:
        """Collect output for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(0.05):
            pass

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.1):
            pass
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        os.close(self.master)
