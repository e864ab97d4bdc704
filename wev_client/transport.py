"""One HTTP/1.1 request over the daemon's Unix socket, with ``_socket`` only.

``socket`` and ``http.client`` each cost more than the rest of a ``wev`` call,
and the client needs one request with a JSON body and a short answer, so this
speaks just enough HTTP: ``Content-Length`` bodies and ``Connection: close``.

A request carries the caller's AWS keys, so nothing is sent before the other
end is known to be this user's own daemon: the socket's folder is private and
the socket this user's or root's (checked before connecting), and the
listening process runs as this user or root (checked after, from the kernel:
``SO_PEERCRED`` on Linux, ``LOCAL_PEERCRED`` on macOS and the BSDs).
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from wev_client import paths, protocol
from wev_client.protocol import codec
from wev_client.protocol.errors import ProtocolError, WevError

#: Errors that mean "no daemon is listening there", so one may be started: no such
#: file (ENOENT), refused (ECONNREFUSED), not a socket (ENOTSOCK), and a timeout.
NOT_LISTENING = (FileNotFoundError, ConnectionRefusedError, TimeoutError)

#: Longest a daemon may take to answer; its own upstream waits are shorter.
RESPONSE_TIMEOUT = 60.0
CONNECT_TIMEOUT = 2.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: What to do when the answer on the socket is not wev-daemon's.
NOT_OURS_HINT = "stop that program, or set WEV_SOCKET to wev-daemon's socket"


class NotListening(WevError):
    """Nothing accepts connections on the socket path."""

    code = "not_listening"
    exit_status = 69


class DaemonGone(WevError):
    """The daemon closed the connection without answering (it died or was killed)."""

    code = "daemon_gone"
    exit_status = 69


class UnusableSocket(WevError):
    """The socket path cannot be used, so nothing was sent (e.g. it is too long)."""

    code = "unusable_socket"
    exit_status = 69


class UntrustedDaemon(UnusableSocket):
    """Whatever listens on the socket path may not be this user's daemon."""

    code = "untrusted_daemon"


#: Whose socket and listener are trusted: the user's, and root's, who can read
#: this process's memory anyway (ssh-agent reasons so too). launchd, running
#: as root, is the one that listens on a LaunchAgent's socket.
_TRUSTED_UIDS = frozenset({0, os.geteuid()})

#: ``LOCAL_PEERCRED`` answers at level 0 (``SOL_LOCAL``) with a ``struct xucred``:
#: a version, then the uid; ``SO_PEERCRED`` with a ``struct ucred``: pid, uid, gid.
_PEERCRED = (
    (_socket.SOL_SOCKET, getattr(_socket, "SO_PEERCRED", None), 12)
    if sys.platform == "linux"
    else (0, getattr(_socket, "LOCAL_PEERCRED", None), 76)
)


def request(
    path: str, method: str, route: str, body: object = None, *, version: str = ""
) -> tuple[int, object]:
    """Send one request, return ``(status, decoded JSON body)``."""
    payload = b"" if body is None else codec.dumps(body).encode()
    head = (
        f"{method} {route} HTTP/1.1\r\nHost: wev\r\nConnection: close\r\n"
        f"{protocol.CLIENT_VERSION_HEADER}: {version}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    sock = _connect(path)
    try:
        sock.settimeout(RESPONSE_TIMEOUT)
        try:
            sock.sendall(head.encode() + payload)
            raw = _read_all(sock)
        except ProtocolError as error:
            raise not_ours(path, error) from None
        except TimeoutError:
            raise _no_answer(path) from None
        except OSError as error:
            raise DaemonGone(f"the daemon closed the connection: {error.strerror}") from None
    finally:
        sock.close()
    try:
        return _parse_response(raw)
    except ProtocolError as error:
        raise not_ours(path, error) from None


def _no_answer(path: str) -> WevError:
    """The daemon took the request and said nothing for the whole response timeout: it is
    stopped (SIGSTOP, a debugger) or stuck; its pid, from the socket's lock file."""
    from wev_client.protocol.errors import DaemonUnavailable

    try:
        with open(path + ".lock") as lock:
            pid = int(lock.read().strip())
    except (OSError, ValueError):
        pid = 0
    who = f"wev-daemon (pid {pid})" if pid else "the daemon"
    return DaemonUnavailable(
        f"{who} did not answer within {RESPONSE_TIMEOUT:g} s: it is stopped or stuck",
        hint=f"kill {pid}; the next wev starts another" if pid else "see `wev --status`",
    )


def not_ours(path: str, error: ProtocolError) -> ProtocolError:
    """An answer this client cannot read (``error`` says why), naming the socket that sent it."""
    return ProtocolError(
        f"cannot read the answer on {path}: {error.message}; is a program other than "
        "wev-daemon listening there?",
        hint=NOT_OURS_HINT,
    )


def _connect(path: str) -> _socket.socket:
    """A socket connected to this user's daemon; a full backlog is waited out (CONNECT_TIMEOUT)."""
    _check_path(path)
    sock = _connect_once(path)
    try:
        _check_peer(path, sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _check_path(path: str) -> None:
    """Refuse a socket in a folder others can enter, or not this user's, before connecting."""
    problem = paths.socket_path_problem(path)
    if problem:
        raise UnusableSocket(
            f"not using the daemon at {path}: {problem}",
            hint="set WEV_SOCKET to a shorter path in a folder only you can enter",
        )
    folder = os.path.dirname(path) or "."
    hint = paths.ELSEWHERE_HINT
    try:
        problem = paths.folder_problem(folder)
        if problem is None:
            owner = os.lstat(path).st_uid
            if owner not in _TRUSTED_UIDS:
                problem = f"the socket belongs to uid {owner}, not to you (uid {os.geteuid()})"
        else:
            hint = paths.private_folder_hint(folder)
    except FileNotFoundError:
        raise NotListening(f"no daemon at {path}") from None
    if problem:
        raise UntrustedDaemon(f"not using the daemon at {path}: {problem}", hint=hint)


def _check_peer(path: str, sock: _socket.socket) -> None:
    level, option, size = _PEERCRED
    if option is None:  # no way to ask on this platform: the file checks stand alone
        return
    try:
        creds = sock.getsockopt(level, option, size)
    except OSError as error:
        raise UntrustedDaemon(
            f"not using the daemon at {path}: cannot tell who runs it ({error.strerror})"
        ) from None
    uid = int.from_bytes(creds[4:8], sys.byteorder)
    if uid not in _TRUSTED_UIDS:
        raise UntrustedDaemon(
            f"not using the daemon at {path}: it runs as uid {uid}, not as you (uid {os.geteuid()})"
        )


def _connect_once(path: str) -> _socket.socket:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    delay = 0.002
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            # A Unix socket with a full backlog says EAGAIN at once rather than
            # "in progress", so the socket's own timeout never applies.
            sock.close()
            if time.monotonic() >= deadline:
                raise WevError(f"the daemon at {path} is too busy to accept a connection") from None
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        except OSError as error:
            sock.close()
            if isinstance(error, NOT_LISTENING) or _not_a_socket(error):
                raise NotListening(f"no daemon at {path}") from None
            raise WevError(f"cannot connect to the daemon at {path}: {error.strerror}") from None


def _not_a_socket(error: OSError) -> bool:
    import errno  # no daemon at all: not the hot path

    return error.errno == errno.ENOTSOCK


def _read_all(sock: _socket.socket) -> bytes:
    chunks = []
    size = 0
    while chunk := sock.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ProtocolError(f"larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
    return b"".join(chunks)


def _parse_response(raw: bytes) -> tuple[int, object]:
    if not raw:
        raise DaemonGone("the daemon closed the connection without answering")
    head, separator, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError("not HTTP")
    try:
        status = int(parts[1])
    except ValueError:
        raise ProtocolError("no status code") from None
    for line in header_lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            if not value.strip().isdigit():
                raise ProtocolError("a bad Content-Length")
            body = body[: int(value.strip())]
        elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
            raise ProtocolError("an unsupported transfer encoding")
    try:
        return status, codec.loads(body) if body else None
    except ProtocolError:
        raise ProtocolError("not valid JSON") from None
