"""A TCP forwarder on 127.0.0.1 that can be shut (connections refused) and opened again.

Stands between the daemon and a fake endpoint, so a test can make AWS
unreachable ("connection refused") without changing the endpoint URL, which
is part of the daemon's cache key.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType

START_TIMEOUT = 10.0


class Gate:
    """``with Gate(target_port) as gate: gate.url``; ``gate.shut()`` / ``gate.open()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gate:
        self._thread.start()
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def open(self) -> None:
        """Listen again: connections reach the target."""
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(START_TIMEOUT)

    def shut(self) -> None:
        """Stop listening: new connections are refused."""
        future = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        future.result(START_TIMEOUT)

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target_port), START_TIMEOUT
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()
