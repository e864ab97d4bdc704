"""Driving a real daemon without the ``wev`` client: for tests and the benchmarks.

Waiting for its socket, one raw request per connection exactly as ``wev``
sends it (so what is measured or attacked is the daemon, not a client
library), and reading its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping

from wev_client import __version__, config_files, protocol
from wev_client.protocol import codec
from wev_client.protocol.context import context_env
from wev_client.protocol.messages import ResolveRequest

#: A project with a token to fetch once and a fixed value: the load and hostile tests' daemon.
WARM_WEV_YML = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
GREETING:
  plugin:
    id: wev-echo
    value: hello
"""


def wait_for_socket(
    path: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 10.0
) -> None:
    """Wait until something accepts connections on ``path``; fail if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"wev-daemon exited with {process.returncode}")
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {path} after {timeout} s")


def resolve_message(project: str, home: str, env: Mapping[str, str]) -> bytes:
    """The bytes ``wev`` sends from ``project``: head and body."""
    specs = config_files.load(project, home, None)
    body = codec.dumps(
        ResolveRequest(specs, context_env(env, project), process_env=env, cwd=project).to_json()
    ).encode()
    head = (
        f"POST {protocol.RESOLVE_ROUTE} HTTP/1.1\r\nHost: wev\r\nConnection: close\r\n"
        f"{protocol.CLIENT_VERSION_HEADER}: {__version__}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(path: str, message: bytes) -> bytes:
    """Send one message on a new connection and read until the daemon closes it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        # A Unix connect completes or fails at once (EAGAIN: the listen backlog
        # is full), as it does for wev_client.transport. asyncio's own connect
        # would take EAGAIN for "in progress" and fail later with ENOTCONN.
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        writer.write(message)
        return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def read_message(conn: socket.socket) -> bytes:
    """One HTTP/1.1 message from a blocking socket: its head, and a body as long as its
    ``Content-Length`` says; empty if the peer sent nothing (a probe)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = min(int(value), protocol.MAX_REQUEST_BYTES)
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def serving(path: str, handle: Callable[[socket.socket], None]) -> Iterator[None]:
    """A Unix socket at ``path`` (its folder made private if missing) whose connections a
    thread hands to ``handle`` one at a time, each bounded; a client that goes away is
    no failure. Stopped, and the thread joined, on exit."""
    import os

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        server.close()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
