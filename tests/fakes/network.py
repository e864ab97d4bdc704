"""A stand-in for the internet: AWS's host names reach local fakes over real HTTPS.

Tools written in Go (skopeo, podman, buildah, the docker CLI,
``docker-credential-ecr-login``) connect to ``https://<registry host>`` and
``https://api.ecr.<region>.amazonaws.com`` by name, and some have no setting
to send them elsewhere. Here they keep their names: ``HTTPS_PROXY`` names a
CONNECT proxy on 127.0.0.1 that accepts tunnels to the host names in
``routes`` only (any other gets 403: nothing leaves the machine), ends TLS
with a certificate for those names from a throwaway CA (``SSL_CERT_FILE``,
which Go and OpenSSL read), and passes the requests on to the plain-HTTP fake
the name is routed to. ``env`` holds the variables a tool needs to go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Every socket wait of a tunnel is bounded by this.
IDLE_TIMEOUT = 30.0
START_TIMEOUT = 10.0


def write_certificates(folder: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signs for ``hosts``: (ca, certificate, key) files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wev test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


class FakeInternet:
    """``with FakeInternet(folder, {"api.ecr.eu-west-1.amazonaws.com": ecr.url}) as net: net.env``.

    ``routes`` maps a host name (port 443) to the ``http://127.0.0.1:PORT`` of a fake;
    ``tunnels`` lists the hosts tunnelled to, ``refused`` the targets turned away.
    """

    def __init__(self, folder: Path, routes: Mapping[str, str]) -> None:
        self.routes = {host.lower(): _port(url) for host, url in routes.items()}
        self.ca_file, cert_file, key_file = write_certificates(folder, sorted(self.routes))
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert_file, key_file)
        self._lock = threading.Lock()
        self.tunnels: list[str] = []
        self.refused: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

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

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or not self._port:
            raise RuntimeError("the fake internet did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
            self._port = server.sockets[0].getsockname()[1]
        finally:
            self._ready.set()
        async with server:
            await self._stop.wait()

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
