"""Who may come in through the loopback proxy: its port, the user's secret, the door's checks.

A loopback port is reachable by every local user and by the user's browser,
so the door is never wider than the daemon's Unix socket:

- **Other users** are judged when their connection is accepted, before a byte
  of it is read (``Gate``): on Linux by the owner of the connecting socket
  (``owners``), which must be this user (or root) and still held by a process;
  where the kernel does not say (macOS), by the per-user secret that the URL
  carries as its userinfo (``http://wev:SECRET@...``), checked on each request.
  A refused connection gets one 403 line and is closed, its request unread.
- **Browsers** are refused on each request (``refusal``): a request with
  ``Origin``, or with ``Sec-Fetch-Site`` other than ``none``, comes from a web
  page (pip, uv, Poetry, twine, npm and Maven never send them), which could
  otherwise publish to the user's repository with a ``no-cors`` POST.
- **Other hosts**: only ``Host: 127.0.0.1:PORT``, ``[::1]:PORT`` or
  ``localhost:PORT`` (DNS rebinding).

Refusals are logged at most once a minute per uid (or per reason), so that no
one can fill the log. The port is ``WEV_PROXY_PORT``, else fixed per uid,
held on both loopback addresses (``bind_loopback``); ``port_holders`` names
who holds it when it is taken.

Imported by the proxy's other modules and by ``wev_daemon.service``.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hmac
import logging
import os
import pwd
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from aiohttp import web

from wev_client.protocol.errors import UpstreamError
from wev_daemon.proxy import owners

log = logging.getLogger("wev_daemon.proxy")

HOST = "127.0.0.1"
HOST6 = "::1"
PORT_ENV = "WEV_PROXY_PORT"
#: The default port is PORT_BASE + uid % PORT_SPAN: fixed for a user, apart
#: for users of one machine, and below the ephemeral ranges of Linux
#: (32768-60999) and macOS (49152-), so no outgoing connection takes it.
PORT_BASE = 23000
PORT_SPAN = 8000
#: The user name in the URL where the secret is needed.
SECRET_USER = "wev"  # noqa: S105 - a user name, not a secret
SECRET_FILE = "proxy-secret"  # noqa: S105 - a file name
#: How often a refusal of one uid (or one kind) is logged at most.
REFUSAL_LOG_INTERVAL = 60.0
#: Most uids remembered for that; more are logged again.
MAX_REFUSERS = 1024
BACKLOG = 256
#: A refused connection is closed once the peer has read its line, or after this long.
REFUSED_LINGER = 1.0
#: Refused connections waiting for that at once; more are dropped at once.
MAX_REFUSED = 64


class ProxyUnavailable(UpstreamError):
    """The loopback proxy cannot serve (its port, its secret); the daemon serves the rest."""


class BadPort(UpstreamError):
    """``WEV_PROXY_PORT`` is not a port number."""


def default_port(uid: int) -> int:
    return PORT_BASE + uid % PORT_SPAN


def port_from_environ(environ: Mapping[str, str]) -> int:
    """``WEV_PROXY_PORT``, else the user's fixed default; BadPort for a bad value."""
    raw = environ.get(PORT_ENV, "").strip()
    if not raw:
        return default_port(os.getuid())
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 65536:
        raise BadPort(f"{PORT_ENV}={raw!r} is not a port number (1-65535)")
    return int(raw)


def secret_path() -> str:
    """Where the per-user secret is kept: the user's state folder, as the log is."""
    import platformdirs

    return os.path.join(platformdirs.user_state_dir("wev"), SECRET_FILE)


def load_secret(path: str, *, create: bool) -> str | None:
    """The secret in ``path``; made (0600, in a 0700 folder) when missing and ``create``.

    UpstreamError when it cannot be read or made (a read-only folder), or is
    not the user's alone.
    """
    try:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                return None
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            value = secrets.token_urlsafe(24)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:  # another daemon made it first
                return load_secret(path, create=False)
            with os.fdopen(fd, "w") as out:
                out.write(value + "\n")
            return value
        with os.fdopen(fd) as file:
            st = os.fstat(file.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise UpstreamError(
                    f"the proxy's secret {path} is open to other users or not yours",
                    hint=f"remove it (a new secret is made) or chmod 0600 {path}",
                )
            return file.read().strip() or None
    except OSError as error:
        raise UpstreamError(
            f"the proxy's secret {path} cannot be {'made' if create else 'read'}: {error.strerror}"
        ) from None


def port_holders(port: int) -> str:
    """Who holds ``port`` on loopback, for a one-line error: "uid 1001 (mallory)"."""
    return listeners(port) or "another program"


def listeners(port: int, *, others_only: bool = False) -> str | None:
    """Who listens on ``port`` on loopback (``others_only``: other users), as
    ``port_holders`` says it; None: nobody the kernel names."""
    uids = owners.listener_uids(port, (HOST, HOST6))
    if others_only:
        uids.discard(os.getuid())
    if not uids:
        return None
    names = []
    for uid in sorted(uids):
        if uid == os.getuid():
            names.append(f"another program of yours (uid {uid})")
            continue
        try:
            names.append(f"uid {uid} ({pwd.getpwuid(uid).pw_name})")
        except KeyError:
            names.append(f"uid {uid}")
    return " and ".join(names)


def bind_loopback(port: int, inherited: Sequence[socket.socket]) -> list[socket.socket]:
    """Listening sockets on the loopback addresses that no ``inherited`` one covers.

    ProxyUnavailable naming who holds the port when it is taken; where there
    is no IPv6 loopback, IPv4 alone.
    """
    covered = {sock.family for sock in inherited}
    bound: list[socket.socket] = []
    for family, host in ((socket.AF_INET, HOST), (socket.AF_INET6, HOST6)):
        if family in covered:
            continue
        try:
            bound.append(_bound(family, host, port))
        except OSError as error:
            if family == socket.AF_INET6 and error.errno in (
                errno.EADDRNOTAVAIL,
                errno.EAFNOSUPPORT,
            ):
                log.debug("proxy: no IPv6 loopback here (%s)", error.strerror)
                continue
            for sock in bound:
                sock.close()
            where = f"[{host}]" if family == socket.AF_INET6 else host
            if error.errno == errno.EADDRINUSE:
                reason = f"{port_holders(port)} holds it"
            else:
                reason = str(error.strerror)
            raise ProxyUnavailable(
                f"the loopback proxy cannot listen on {where}:{port}: {reason}",
                hint=f"set {PORT_ENV} to a free port for wev-daemon, then restart it",
            ) from None
    return bound


def _bound(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Our own connections in TIME_WAIT from the last run must not keep the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Throttle:
    """Whether to log a refusal now: once per ``REFUSAL_LOG_INTERVAL`` per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[object, float] = {}

    def due(self, key: object) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return False
        if len(self._last) >= MAX_REFUSERS:
            self._last.clear()
        self._last[key] = now
        return True


class Door:
    """The checks of the door: who connects, from where, with what."""

    def __init__(self, *, port: int, uid_known: bool, secret: Callable[[], str | None]) -> None:
        self.port = port
        #: Whether the kernel tells who connects (Linux); else the URL carries the secret.
        self.uid_known = uid_known
        self._secret = secret
        self._hosts = frozenset({f"{HOST}:{port}", f"[{HOST6}]:{port}", f"localhost:{port}"})
        self._throttle = Throttle()
        self.refused_waiting = 0

    def judge_connection(self, transport: asyncio.BaseTransport) -> str | None:
        """Why a new connection may not come in (judged before its request is read), or None."""
        if not self.uid_known:
            return None  # the secret is checked on each request
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        uid = owners.connection_uid(peer, local) if peer and local else None
        if uid in (os.getuid(), 0):
            return None
        if uid is None:
            reason = "a connection whose owner the kernel does not name (closed already?)"
        else:
            reason = f"a connection from uid {uid}: this proxy serves uid {os.getuid()} only"
        if self._throttle.due(uid):
            log.warning("proxy: refused %s", reason)
        return reason

    def refusal(self, request: web.BaseRequest) -> tuple[int, str] | None:
        """Why this request is not forwarded, as a status and a line; None to go on."""
        headers = request.headers
        host = headers.get("Host")  # not request.host: that falls back to the socket's address
        if host is None:
            return 421, f"a request without Host is not forwarded (this is {HOST}:{self.port})"
        if host.lower() not in self._hosts:  # a host name is case-insensitive, LOCALHOST too
            return 421, f"this is wev's proxy at {HOST}:{self.port}, not {host}"
        site = headers.get("Sec-Fetch-Site", "none").strip().lower()
        origin = headers.get("Origin")
        if origin is not None or site != "none":
            if origin is None:
                where = f"Sec-Fetch-Site: {site}"
            else:
                where = origin.strip() or "an empty Origin"
            if self._throttle.due("browser"):
                log.warning("proxy: refused a request from a web page (%s)", where)
            return 403, f"a request from a web page ({where}) is not forwarded"
        if not self.uid_known and not self._has_secret(headers.get("Authorization", "")):
            if self._throttle.due("secret"):
                log.warning("proxy: refused a request without the URL's secret")
            return 403, "a connection whose user is unknown and that has not the URL's secret"
        return None

    def _has_secret(self, authorization: str) -> bool:
        secret = self._secret()
        scheme, _, credentials = authorization.partition(" ")
        given, expected = credentials.strip(), secret or ""
        if scheme.lower() == "basic":  # the URL's userinfo: pip, uv, Poetry
            try:
                given = base64.b64decode(given, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
            expected = f"{SECRET_USER}:{secret}"
        elif scheme.lower() != "bearer":  # .npmrc's _authToken: npm
            given = ""
        return bool(secret and given) and hmac.compare_digest(given.encode(), expected.encode())


class Gate(asyncio.Protocol):
    """A new connection's first protocol: hands it to HTTP if the door lets it in.

    A refused one gets its 403 line and is closed, what it sent unread.
    """

    def __init__(self, door: Door, serve: Callable[[], asyncio.BaseProtocol]) -> None:
        self._door = door
        self._serve = serve
        self._transport: asyncio.Transport | None = None
        self._closer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        refusal = self._door.judge_connection(transport)
        if refusal is None:
            protocol = self._serve()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            return
        if self._door.refused_waiting >= MAX_REFUSED:
            transport.abort()
            return
        self._door.refused_waiting += 1
        self._transport = transport
        line = f"wev: {refusal}\n".encode()
        transport.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(line), line)
        )
        # Closing at once would reset the connection, and the peer could lose
        # the line: half-close, drop what it sends, close when it does.
        transport.write_eof()
        self._closer = asyncio.get_running_loop().call_later(REFUSED_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # a refused connection's request: never read

    def eof_received(self) -> bool:
        return False  # closes the transport

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._transport is not None:
            self._transport = None
            self._door.refused_waiting -= 1
        if self._closer is not None:
            self._closer.cancel()
