"""Messages that leave the user with a next step: they name the thing and what to do.

A program other than wev-daemon on the socket (exit 76) is named by its
socket, with the way out; the other messages of this kind are tested beside
their subject (a key's count in ``test_cli.py``, YAML in
``test_config_values.py``, a second daemon in ``test_stop.py``).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import User

CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: a\n"


@contextmanager
def impostor(path: str, answer: bytes) -> Iterator[None]:
    """Another program on the socket path, answering every connection with ``answer``."""
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
                try:
                    conn.recv(65536)
                    conn.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n"
            b"<html></html>",
            "not valid JSON",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP"),
    ],
    ids=["html", "ssh"],
)
def test_another_program_on_the_socket_is_named_with_the_way_out(
    user: User, answer: bytes, why: str
) -> None:
    user.write("work/project/wev.yml", CONFIG)

    with impostor(user.socket, answer):
        result = user.wev("true")
        status = user.wev("--status")

    for outcome in (result, status):
        assert outcome.returncode == 76, outcome.stderr
        [line] = outcome.stderr.splitlines()
        assert line == (
            f"wev: cannot read the answer on {user.socket}: {why}; is a program other than "
            "wev-daemon listening there? (unset WEV_SOCKET, or set it to wev-daemon's socket)"
        )
