"""The status line on stderr while ``wev`` waits for its values, on a terminal only.

Imported by ``cli`` only when stderr is a terminal, which a script's or CI's
``wev`` never has.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions, with stubs
    from collections.abc import Mapping, Sequence

    from wev_client.protocol.messages import VariableSpec
else:
    import _signal  # built in and loaded at start-up: free, unlike signal (enum, ~3 ms)

#: A wait longer than this shows a status line on a terminal; a warm call takes ~1 ms.
PROGRESS_DELAY = 0.3


class Progress:
    """A status line on stderr while the client waits (``cli`` makes one on a terminal).

    A SIGALRM timer (``_signal`` is built in: nothing to import) fires only
    when an answer takes longer than PROGRESS_DELAY, whatever the client is
    waiting for: a daemon starting, AWS, or resolving in this process. The
    line is cleared when the wait ends, and the timer is always cancelled
    before the command is exec'd (an ITIMER_REAL survives exec, and SIGALRM
    would kill the command).
    """

    __slots__ = ("environ", "fd", "previous", "shown", "specs")

    def __init__(self, specs: Sequence[VariableSpec], environ: Mapping[str, str]) -> None:
        self.specs = specs
        self.environ = environ
        self.fd = 2
        self.previous: _signal._HANDLER = None
        self.shown = False

    def __enter__(self) -> Progress:
        if self.fd < 0:
            return self
        try:
            self.previous = _signal.signal(_signal.SIGALRM, self._show)
        except ValueError:  # not the main thread: no signals, no line
            self.fd = -1
            return self
        _signal.setitimer(_signal.ITIMER_REAL, PROGRESS_DELAY)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd < 0:
            return
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        previous = self.previous if self.previous is not None else _signal.SIG_DFL
        _signal.signal(_signal.SIGALRM, previous)
        if self.shown:
            self._write("\r\033[K")

    def pause(self) -> None:
        """Stop the timer and clear the line: the terminal is about to ask the user."""
        if self.fd < 0:
            return
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        if self.shown:
            self._write("\r\033[K")
            self.shown = False

    def _show(self, signum: int, frame: object) -> None:
        try:
            from wev_client import output

            try:
                width = os.get_terminal_size(self.fd).columns or 80  # 0: size unknown
            except OSError:
                width = 80
            line = f"wev: fetching {output.waiting_for(self.specs, self.environ)}..."
            self._write(line[: max(width - 1, 20)])
            self.shown = True
        except Exception:  # never let a status line break the resolution
            return

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode(errors="replace"))
        except OSError:
            return
