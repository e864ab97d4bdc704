"""Run an aiohttp Application on 127.0.0.1 in a background thread with its own event loop.

``ThreadedServer`` is the thread, its loop and its bounded start and stop, for any server
(``fakes.internet`` serves raw streams on it); ``ThreadedAppServer`` serves an Application.
Handlers that wait for something should also wait on ``app[CLOSING]``, which is set when the
server starts stopping.

``port`` serves on that port of 127.0.0.1 (443 in a private network namespace), ``tls`` with
TLS. ``on_port_80=True`` serves on port 80 of a loopback address of its own (127.x.y.z), so that
its URL needs no port, as a real endpoint's on 443 does; that takes root (or a lowered
``net.ipv4.ip_unprivileged_port_start``): ``why_not_on_port_80`` says why it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import socket
import ssl
import threading
from types import TracebackType
from typing import Self

from aiohttp import web

CLOSING = web.AppKey("closing", asyncio.Event)

START_TIMEOUT = 10.0
HTTP_PORT = 80


def why_not_on_port_80() -> str | None:
    """Why a fake cannot serve on port 80 here, or None."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as limit:
            lowest = int(limit.read())
    except (OSError, ValueError):
        lowest = 1024
    if os.geteuid() != 0 and lowest > HTTP_PORT:
        return "serving on port 80 needs root (or net.ipv4.ip_unprivileged_port_start <= 80)"
    return None


def _socket_on_port_80() -> socket.socket:
    """A listening socket on port 80 of a random 127.x.y.z (others may hold some of them)."""
    for _ in range(20):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        sock = socket.socket()
        try:
            sock.bind((host, HTTP_PORT))
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        sock.listen(128)
        return sock
    raise RuntimeError("no free 127.x.y.z:80 found")


class ThreadedServer:
    """Serve on 127.0.0.1 from a daemon thread with an event loop of its own.

    A subclass's ``_serve`` listens, sets ``_port``, sets ``_ready`` and serves until
    ``_closing`` is set; ``start`` and ``stop`` are bounded. Usable as a context manager.
    """

    def __init__(self, *, shutdown_timeout: float = 2.0) -> None:
        self._closing = asyncio.Event()  # binds to the server loop on first use
        self._shutdown_timeout = shutdown_timeout
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._port = 0

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("server not started")
        return self._port

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("server did not start in time")
        if self._error is not None:
            raise RuntimeError("server failed to start") from self._error

    def stop(self) -> None:
        """Stop serving; in-flight handlers get ``shutdown_timeout`` seconds, then are cancelled."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended (failed start)
                self._loop.call_soon_threadsafe(self._closing.set)
        if self._thread is not None:
            self._thread.join(self._shutdown_timeout + 5.0)
            if self._thread.is_alive():
                raise RuntimeError("server thread did not stop in time")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); nothing else can see it
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._serve()

    async def _serve(self) -> None:
        raise NotImplementedError


class ThreadedAppServer(ThreadedServer):
    """Serve an aiohttp ``app`` on a free 127.0.0.1 port (or as asked) from a daemon thread."""

    def __init__(
        self,
        app: web.Application,
        *,
        shutdown_timeout: float = 2.0,
        port: int = 0,
        on_port_80: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(shutdown_timeout=shutdown_timeout)
        self.app = app
        self._wanted_port = port
        self._on_port_80 = on_port_80
        self._tls = tls
        self._host = "127.0.0.1"
        app[CLOSING] = self._closing

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        scheme = "https" if self._tls else "http"
        if self.port == {"http": HTTP_PORT, "https": 443}[scheme]:
            return f"{scheme}://{self._host}"
        return f"{scheme}://{self._host}:{self.port}"

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, shutdown_timeout=self._shutdown_timeout, access_log=None)
        await runner.setup()
        try:
            site: web.BaseSite
            if self._on_port_80:
                sock = _socket_on_port_80()
                site = web.SockSite(runner, sock)
                self._host = sock.getsockname()[0]
            else:
                site = web.TCPSite(runner, "127.0.0.1", self._wanted_port, ssl_context=self._tls)
            await site.start()
            self._port = runner.addresses[0][1]
            self._ready.set()
            await self._closing.wait()
        finally:
            await runner.cleanup()


class ServedFake:
    """Base of the fakes: serves ``self._server`` while used as a context manager."""

    _server: ThreadedAppServer

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def url_with_port(self) -> str:
        """The base URL with its port spelled out, even the scheme's own (``:80``)."""
        return f"http://{self._server.host}:{self._server.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()


class ServedWithBlobs(ServedFake):
    """A fake whose downloads may redirect to a second one (``blobs``), served alongside it."""

    blobs: ServedFake | None = None

    def __enter__(self) -> Self:
        if self.blobs is not None:
            self.blobs.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            if self.blobs is not None:
                self.blobs.__exit__(None, None, None)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            if self.blobs is not None:
                self.blobs.__exit__(exc_type, exc, tb)
