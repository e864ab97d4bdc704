"""Sockets handed over by a service manager, and readiness reports to it.

systemd passes listening sockets as fds 3.. with ``LISTEN_FDS``/``LISTEN_PID``
(``LISTEN_FDNAMES`` optional) and takes ``READY=1``/``STOPPING=1`` datagrams on
``NOTIFY_SOCKET``; launchd hands them out through ``launch_activate_socket``.
Both protocols are a few lines, so they are spoken here with the standard
library only (``sd_listen_fds(3)``, ``sd_notify(3)``, ``launch(3)``).

Imported by ``wev_daemon.__main__``, which takes the sockets and the notify
address out of the environment before anything else runs, and by ``server``
(``Notifier``). Standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

from wev_client.protocol.errors import WevError

log = logging.getLogger(__name__)

#: The first fd of systemd's LISTEN_FDS protocol.
SD_LISTEN_FDS_START = 3
#: The key of the socket under ``Sockets`` in the LaunchAgent plist.
LAUNCHD_SOCKET_NAME = "Listeners"
#: The name of the loopback proxy's TCP socket: systemd's ``FileDescriptorName=``
#: and the plist's ``Sockets`` key. Only a socket so named may be TCP, and it
#: goes to the proxy (``wev_daemon.proxy``), never to the daemon's own routes.
PROXY_SOCKET_NAME = "proxy"


class BadInheritedSocket(WevError):
    """The service manager handed over something the daemon must not serve on."""

    code = "bad_inherited_socket"
    exit_status = 78  # EX_CONFIG: the unit or plist needs fixing, not a restart


@dataclass(frozen=True)
class Inherited:
    """A listening socket from the service manager, and the name it gave it."""

    sock: socket.socket
    name: str
    manager: str  # "systemd" or "launchd"

    @property
    def is_proxy(self) -> bool:
        """The loopback proxy's TCP socket (see ``PROXY_SOCKET_NAME``)."""
        return self.sock.family != socket.AF_UNIX

    @property
    def path(self) -> str:
        """The socket's file system path; "@name" for an abstract one."""
        address = self.sock.getsockname()
        if isinstance(address, bytes):
            address = address.decode(errors="surrogateescape")
        return "@" + address[1:] if address.startswith("\0") else str(address)


def inherited_sockets(environ: MutableMapping[str, str]) -> list[Inherited]:
    """The sockets systemd or launchd handed to this process; [] when started otherwise."""
    sockets = systemd_sockets(environ)
    if not sockets and sys.platform == "darwin":
        sockets = launchd_sockets(LAUNCHD_SOCKET_NAME) + launchd_sockets(PROXY_SOCKET_NAME)
    return sockets


def systemd_sockets(
    environ: MutableMapping[str, str],
    *,
    pid: int | None = None,
    first_fd: int = SD_LISTEN_FDS_START,
) -> list[Inherited]:
    """The fds of systemd's ``LISTEN_FDS`` protocol, meant for this very process.

    The variables are removed either way, as ``sd_listen_fds(1)`` does, so that
    nothing the daemon starts (a ``credential_process``) takes them for its own.
    """
    count = environ.pop("LISTEN_FDS", "")
    owner = environ.pop("LISTEN_PID", "")
    names = environ.pop("LISTEN_FDNAMES", "")
    if not count:
        return []
    if owner != str(os.getpid() if pid is None else pid):
        # Inherited from a parent that was socket-activated itself: not ours.
        log.debug("ignoring LISTEN_FDS meant for pid %s", owner or "?")
        return []
    try:
        number = int(count)
    except ValueError:
        raise BadInheritedSocket(f"LISTEN_FDS={count!r} is not a number") from None
    labels = names.split(":") if names else []
    return [
        _checked(fd, labels[i] if i < len(labels) else f"fd {fd}", "systemd")
        for i, fd in enumerate(range(first_fd, first_fd + number))
    ]


def launchd_sockets(
    name: str,
    *,
    activate: Callable[..., int] | None = None,
    free: Callable[..., object] | None = None,
) -> list[Inherited]:
    """The fds launchd opened for the plist's ``Sockets`` entry ``name``; [] when not a job.

    ``activate`` (``int launch_activate_socket(const char *, int **, size_t *)``)
    and ``free`` default to libSystem's; tests pass stand-ins.
    """
    if activate is None or free is None:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.launch_activate_socket
        function.restype = ctypes.c_int
        function.argtypes = [
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.POINTER(ctypes.c_int)),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        libc.free.argtypes = [ctypes.c_void_p]
        activate, free = activate or function, free or libc.free
    fds = ctypes.POINTER(ctypes.c_int)()
    count = ctypes.c_size_t()
    error = activate(name.encode(), ctypes.pointer(fds), ctypes.pointer(count))
    if error in (errno.ESRCH, errno.ENOENT):  # not started by launchd, or no such socket
        log.debug("launchd handed over no socket %r (%s)", name, errno.errorcode.get(error, error))
        return []
    if error:
        raise BadInheritedSocket(f"launch_activate_socket({name!r}): {os.strerror(error)}")
    try:
        numbers = [fds[i] for i in range(count.value)]
    finally:
        free(fds)  # launchd mallocs the array; the fds in it are ours to keep
    return [_checked(fd, name, "launchd") for fd in numbers]


def _checked(fd: int, name: str, manager: str) -> Inherited:
    """``fd`` as a socket, if it is a listening Unix stream socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise BadInheritedSocket(f"{manager} passed fd {fd} ({name}): {error.strerror}") from None
    # A TCP socket would serve tokens to every local user: the peer uid check
    # and the 0600 file mode only exist for Unix sockets. The proxy's own
    # loopback socket is the exception: it checks who connects itself.
    if name == PROXY_SOCKET_NAME and _loopback_stream(sock):
        sock.set_inheritable(False)
        return Inherited(sock, name, manager)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BadInheritedSocket(
            f"{manager} passed fd {fd} ({name}), which is not a Unix stream socket",
            hint="wev-daemon serves only ListenStream=/SockPathName= Unix sockets",
        )
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise BadInheritedSocket(f"{manager} passed fd {fd} ({name}), which is not listening")
    sock.set_inheritable(False)  # nothing the daemon starts may hold it open
    return Inherited(sock, name, manager)


def _loopback_stream(sock: socket.socket) -> bool:
    """A listening TCP socket on 127.0.0.1 or ::1 (nothing else may reach the proxy)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    host = str(sock.getsockname()[0])
    return host in ("127.0.0.1", "::1") and bool(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    )


@dataclass(frozen=True)
class Notifier:
    """Reports state changes to systemd (``Type=notify``); silent when not asked to."""

    address: str | None = None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str]) -> Notifier:
        """Takes ``NOTIFY_SOCKET`` out of ``environ`` so that children do not report as us."""
        address = environ.pop("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # the abstract namespace
            return cls("\0" + address[1:])
        if address.startswith("/"):
            return cls(address)
        if address:
            log.warning(
                "ignoring NOTIFY_SOCKET=%s: only Unix socket addresses are supported", address
            )
        return cls()

    def notify(self, *assignments: str) -> None:
        """Send e.g. ``READY=1``; a failure is logged, never raised."""
        if self.address is None:
            return
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as error:
            log.warning("could not tell the service manager %s: %s", assignments[0], error)
