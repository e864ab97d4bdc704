"""What the fake AWS token endpoints share (``fakes.codeartifact``, ``fakes.ecr``).

Each checks SigV4 against its ``credentials`` (``verifier``), records every call as it
arrived (``calls``), keeps a wall clock a test can move (``shift_clock``: a laptop's sleep,
as AWS sees it; signatures are then checked against the moved clock) and answers with an
injected AWS error on demand (``fail_with``). The knobs are thread-safe: a test sets them
from its own thread while the fake serves on another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from .server import ServedFake
from .sigv4 import SigV4Verifier

CallT = TypeVar("CallT")


@dataclass
class Failure:
    """An injected AWS error; ``remaining``: how many more calls get it (None: all)."""

    status: int
    code: str
    message: str
    remaining: int | None


class AwsFake(ServedFake, Generic[CallT]):
    """Base of a fake AWS endpoint whose calls are records of type ``CallT``."""

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self.verifier = SigV4Verifier(credentials)
        self._cond = threading.Condition()
        self._calls: list[CallT] = []
        self._failure: Failure | None = None
        self._clock_offset = 0.0

    # -- knobs -----------------------------------------------------------------------------

    def fail_with(
        self, status: int, code: str, message: str = "injected failure", times: int | None = None
    ) -> None:
        """Answer the next ``times`` calls (None: all, until cleared) with this AWS error."""
        with self._cond:
            self._failure = None if times == 0 else Failure(status, code, message, times)

    def clear_failures(self) -> None:
        with self._cond:
            self._failure = None

    def shift_clock(self, seconds: float) -> None:
        """Move this fake's wall clock (as AWS's and the laptop's move together across a
        suspend); signatures are then checked against the moved clock."""
        with self._cond:
            self._clock_offset = seconds
        self.verifier.clock_offset = seconds

    def now(self) -> float:
        """This fake's wall clock: epoch seconds."""
        with self._cond:
            return time.time() + self._clock_offset

    # -- observations ----------------------------------------------------------------------

    @property
    def calls(self) -> list[CallT]:
        with self._cond:
            return list(self._calls)

    # -- used by the handlers (event loop thread) ------------------------------------------

    def _record(self, call: CallT) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _take_failure(self) -> Failure | None:
        """The injected failure for this call, if any (counting it down)."""
        with self._cond:
            failure = self._failure
            if failure is not None and failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure
