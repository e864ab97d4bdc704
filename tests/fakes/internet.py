"""A stand-in for the internet: AWS's host names reach local fakes over real HTTPS.

Tools written in Go (skopeo, podman, buildah, the docker CLI,
``docker-credential-ecr-login``) connect to ``https://<registry host>`` and
``https://api.ecr.<region>.amazonaws.com`` by name, and some have no setting
to send them elsewhere. Here they keep their names: ``HTTPS_PROXY`` names a
CONNECT proxy on 127.0.0.1 that accepts tunnels to the host names in
``routes`` only (any other gets 403: nothing leaves the machine), ends TLS
with a certificate for those names from a throwaway CA (``fakes.tls``; its
file is ``SSL_CERT_FILE``, which Go and OpenSSL read), and passes the requests
on to the plain-HTTP fake the name is routed to. ``env`` holds the variables a
tool needs to go through it.

A proxy that only carries a caller's ``http://`` requests, and records them, is
``fakes.http_proxy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path

from . import tls
from .server import ThreadedServer

#: Every socket wait of a tunnel is bounded by this.
IDLE_TIMEOUT = 30.0


class FakeInternet(ThreadedServer):
    """``with FakeInternet(folder, {"api.ecr.eu-west-1.amazonaws.com": ecr.url}) as net: net.env``.

    ``routes`` maps a host name (port 443) to the ``http://127.0.0.1:PORT`` of a fake;
    ``tunnels`` lists the hosts tunnelled to, ``refused`` the targets turned away.
    """

    def __init__(self, folder: Path, routes: Mapping[str, str]) -> None:
        super().__init__()
        self.routes = {host.lower(): _port(url) for host, url in routes.items()}
        certificates = tls.issue(folder, *sorted(self.routes), "127.0.0.1")
        self.ca_file, self.tls = certificates.ca_file, certificates.server
        self._lock = threading.Lock()
        self.tunnels: list[str] = []
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a tool's environment needs to reach the routed hosts, and only them."""
        return {
            "HTTPS_PROXY": self.url,
            "https_proxy": self.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "SSL_CERT_FILE": str(self.ca_file),
        }

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._closing.wait()
        finally:
            server.close()  # open tunnels are cancelled as the loop ends: stop stays bounded

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One CONNECT: 200, then TLS with the client and bytes both ways to the routed fake."""
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                method, _, rest = head.partition(b"\r\n")[0].decode("latin-1").partition(" ")
                target = rest.partition(" ")[0]
                host, _, port = target.rpartition(":")
                backend_port = self.routes.get(host.lower()) if port == "443" else None
                if method != "CONNECT" or backend_port is None:
                    self._note(target, allowed=False)
                    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
                self._note(host.lower(), allowed=True)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.start_tls(self.tls)
                backend_reader, backend_writer = await asyncio.open_connection(
                    "127.0.0.1", backend_port
                )
            try:
                await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
            finally:
                backend_writer.close()
        except (
            OSError,
            ssl.SSLError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            return  # the tool gave up, or did not trust the CA
        finally:
            writer.close()

    def _note(self, host: str, *, allowed: bool) -> None:
        with self._lock:
            (self.tunnels if allowed else self.refused).append(host)


def _port(url: str) -> int:
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        raise ValueError(f"a route goes to http://127.0.0.1:PORT, not {url}")
    return int(port)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until the source closes or stays idle for IDLE_TIMEOUT, then end the sink."""
    try:
        while True:
            async with asyncio.timeout(IDLE_TIMEOUT):
                data = await source.read(65536)
            if not data:
                break
            sink.write(data)
            await sink.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError, ssl.SSLError):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()
