"""Who owns a loopback TCP socket, asked of the kernel (Linux).

``connection_uid`` names the user of the process at the other end of an
accepted connection; ``listener_uids`` the users holding a port. The kernel
is asked through ``NETLINK_SOCK_DIAG`` (``sock_diag(7)``, the interface of
``ss``) for the one connection wanted; where that is not available,
``/proc/net/tcp`` and ``tcp6`` are read. Either way a socket counts only
while a process holds it (inode not 0): a socket its owner has closed
(orphaned, in ``FIN_WAIT``, ``TIME_WAIT``) shows uid 0 on kernels before
6.17, and must not pass for root's.

None wherever the kernel does not say (not Linux, no such socket). Standard
library only; imported by ``wev_daemon.proxy.access``.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass

#: netlink's protocol number for socket diagnostics, and its one request type.
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_HEADER = struct.Struct("=IHHII")
#: struct inet_diag_req_v2 without its sockid, and struct inet_diag_sockid.
DIAG_REQUEST = struct.Struct("=BBBBI")
SOCKID = struct.Struct("!HH16s16s")
SOCKID_TAIL = struct.Struct("=III")  # interface, cookie (two words)
NO_COOKIE = 0xFFFFFFFF
#: struct inet_diag_msg: family and state, then the sockid; uid and inode at its end.
DIAG_MESSAGE = struct.Struct("=BBBB")
OWNER = struct.Struct("=II")
OWNER_OFFSET = DIAG_MESSAGE.size + SOCKID.size + SOCKID_TAIL.size + 12
TCP_LISTEN = 10
ALL_STATES = 0xFFFFFFFF
RECEIVE_BYTES = 65536
#: The kernel answers at once; a bound on the wait all the same.
NETLINK_TIMEOUT = 1.0

Address = tuple[str, int]


@dataclass(frozen=True)
class Owned:
    """A TCP socket as the kernel lists it: its two ends, state, owner and inode."""

    local: Address
    remote: Address
    state: int
    uid: int
    inode: int

    @property
    def held(self) -> bool:
        """Whether a process holds it (an orphaned or TIME_WAIT socket has inode 0)."""
        return self.inode != 0


def connection_uid(peer: Address, local: Address) -> int | None:
    """The uid of the live socket at ``peer`` connected to our ``local`` end, or None."""
    family = socket.AF_INET6 if ":" in _host(local) else socket.AF_INET
    try:
        found = list(_diag(family, (_host(peer), peer[1]), (_host(local), local[1])))
    except OSError:
        found = [
            row
            for row in _proc_rows(family)
            if row.local == (_host(peer), peer[1]) and row.remote == (_host(local), local[1])
        ]
    return next((row.uid for row in found if row.held), None)


def listener_uids(port: int, hosts: tuple[str, ...]) -> set[int]:
    """The uids listening on ``port`` at any of ``hosts`` (or on every address)."""
    uids = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            rows: list[Owned] | Iterator[Owned] = list(_diag(family, None, None))
        except OSError:
            rows = _proc_rows(family)
        for row in rows:
            host, bound = row.local
            if row.state == TCP_LISTEN and bound == port and (host in hosts or _any(host)):
                uids.add(row.uid)
    return uids


def _diag(family: int, local: Address | None, remote: Address | None) -> Iterator[Owned]:
    """The kernel's rows: the one socket with these ends, or (None) every socket of ``family``.

    OSError where the kernel has no sock_diag (not Linux, no ``inet_diag``).
    """
    if sys.platform != "linux":
        raise OSError(errno.EAFNOSUPPORT, "no sock_diag")
    exact = local is not None and remote is not None
    sockid = SOCKID.pack(
        local[1] if exact else 0,  # type: ignore[index]
        remote[1] if exact else 0,  # type: ignore[index]
        _packed(family, local[0]) if exact else b"",  # type: ignore[index]
        _packed(family, remote[0]) if exact else b"",  # type: ignore[index]
    ) + SOCKID_TAIL.pack(0, NO_COOKIE, NO_COOKIE)
    body = DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + sockid
    flags = NLM_F_REQUEST if exact else NLM_F_REQUEST | NLM_F_DUMP
    header = NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as link:
        link.settimeout(NETLINK_TIMEOUT)
        link.sendto(header + body, (0, 0))
        while True:
            data = link.recv(RECEIVE_BYTES)
            offset = 0
            while offset + NLMSG_HEADER.size <= len(data):
                length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + NLMSG_HEADER.size)
                    if code == -errno.ENOENT and exact:  # no such connection
                        return
                    raise OSError(-code, "sock_diag")
                if kind == SOCK_DIAG_BY_FAMILY:
                    yield _owned(family, data, offset + NLMSG_HEADER.size)
                offset += (length + 3) & ~3
                if length < NLMSG_HEADER.size:
                    return
            if exact:  # one answer, no NLMSG_DONE
                return


def _owned(family: int, data: bytes, at: int) -> Owned:
    _, state, _, _ = DIAG_MESSAGE.unpack_from(data, at)
    sport, dport, src, dst = SOCKID.unpack_from(data, at + DIAG_MESSAGE.size)
    uid, inode = OWNER.unpack_from(data, at + OWNER_OFFSET)
    return Owned(
        (_unpacked(family, src), sport), (_unpacked(family, dst), dport), state, uid, inode
    )


def _proc_rows(family: int) -> Iterator[Owned]:
    """The rows of ``/proc/net/tcp`` (or ``tcp6``); none where it cannot be read."""
    table = "/proc/net/tcp6" if family == socket.AF_INET6 else "/proc/net/tcp"
    try:
        with open(table) as rows:
            next(rows, None)  # the header
            for row in rows:
                fields = row.split()
                if len(fields) < 10:
                    continue
                yield Owned(
                    _proc_address(fields[1], family),
                    _proc_address(fields[2], family),
                    int(fields[3], 16),
                    int(fields[7]),
                    int(fields[9]),
                )
    except (OSError, ValueError):
        return


def _proc_address(text: str, family: int) -> Address:
    """``0100007F:1F90`` (the kernel's order of 32-bit words) as ("127.0.0.1", 8080)."""
    host, _, port = text.partition(":")
    raw = b"".join(
        int(host[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(host), 8)
    )
    return _host((socket.inet_ntop(family, raw), 0)), int(port, 16)


def _packed(family: int, host: str) -> bytes:
    return socket.inet_pton(family, host).ljust(16, b"\0")


def _unpacked(family: int, raw: bytes) -> str:
    size = 16 if family == socket.AF_INET6 else 4
    return _host((socket.inet_ntop(family, raw[:size]), 0))


def _host(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """The host of an address, an IPv4 peer on a dual-stack socket as plain IPv4."""
    return str(address[0]).removeprefix("::ffff:")


def _any(host: str) -> bool:
    return host in ("0.0.0.0", "::")  # noqa: S104 - a listener's address, read
