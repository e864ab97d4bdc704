"""One AWS call per key at a time, shared by every waiter, and optionally kept.

Plugins use it for what they look up on the side of a token (a repository's
endpoint, the caller's MFA device): lookups that concurrent blocks would
otherwise make once each. Depends on ``wev_daemon.aws`` for its error type only;
never on the daemon's app or server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from wev_daemon import aws

T = TypeVar("T")


class SharedCalls(Generic[T]):
    """One AWS call per key at a time, shared by every block that waits for it.

    ``keep`` keeps a success for good (failures never), at most ``limit`` of
    them. When the last waiter gives up (the cache abandons a fetch at its
    limit, ``wev --forget``), the call is cancelled too, so a hung call (a
    ``credential_process`` that never answers) cannot outlive every fetch.
    """

    def __init__(self, *, keep: bool, limit: int = 0) -> None:
        self.keep = keep
        self.limit = limit
        self.tasks: dict[str, asyncio.Task[T]] = {}
        self._waiters: dict[asyncio.Task[T], int] = {}

    async def get(self, key: str, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self.tasks.get(key)
        if task is None:
            while self.limit and len(self.tasks) >= self.limit:  # oldest first: dicts keep order
                del self.tasks[next(iter(self.tasks))]
            task = self.tasks[key] = asyncio.create_task(start())
            task.add_done_callback(lambda done: self._done(key, done))
        self._waiters[task] = self._waiters.get(task, 0) + 1
        try:
            # Shielded: one block giving up must not cancel another's wait.
            return await asyncio.shield(task)
        except aws.FetchError as error:  # each waiter gets its own error object, of its kind
            raise type(error)(
                error.message,
                hint=error.hint,
                transient=error.transient,
                local=error.local,
                watch=error.watch,
                refused=error.refused,
            ) from None
        finally:
            left = self._waiters.pop(task) - 1
            if left:
                self._waiters[task] = left
            elif not task.done():
                task.cancel()

    def forget(self, key: str) -> None:
        self.tasks.pop(key, None)

    def clear(self) -> None:
        self.tasks.clear()

    def _done(self, key: str, done: asyncio.Task[T]) -> None:
        # Retrieving the exception here also keeps asyncio from logging it
        # when every waiter has gone.
        failed = done.cancelled() or done.exception() is not None
        if (failed or not self.keep) and self.tasks.get(key) is done:
            del self.tasks[key]
