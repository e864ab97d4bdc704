"""Messages that leave the user with a next step: they name the thing and what to do.

A program other than wev-daemon on the socket (exit 76) is named by its
socket, with the way out; the other messages of this kind are tested beside
their subject (a key's count in ``test_cli.py``, YAML in
``test_config_values.py``, a second daemon in ``test_stop.py``).
"""

from __future__ import annotations

import socket
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from conftest import User
from wire import serving

CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: a\n"


def impostor(path: str, answer: bytes) -> AbstractContextManager[None]:
    """Another program on the socket path, answering every connection with ``answer``."""

    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(answer)

    return serving(path, handle)


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
            "wev-daemon listening there? (stop that program, or set WEV_SOCKET to wev-daemon's "
            "socket)"
        )


def test_an_answer_without_values_is_not_the_daemons(user: User) -> None:
    """A program that speaks JSON too: the command never runs without its variables."""
    user.write("work/project/wev.yml", CONFIG)
    answer = (
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"foo": 1}'
    )

    with impostor(user.socket, answer):
        result = user.wev("sh", "-c", "echo ran")

    assert (result.returncode, result.stdout) == (76, "")
    assert "the response's 'values' must be a dict" in result.stderr


def test_a_daemon_that_says_nothing_is_named_with_its_pid(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (SIGSTOP, a debugger) or stuck: it takes the request and never answers."""
    from wev_client import transport
    from wev_client.protocol.errors import DaemonUnavailable

    monkeypatch.setattr(transport, "RESPONSE_TIMEOUT", 0.5)

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        time.sleep(1)

    with serving(user.socket, silent):
        Path(user.socket + ".lock").write_text("4242\n")
        with pytest.raises(DaemonUnavailable) as raised:
            transport.request(user.socket, "GET", "/v1/status")

    assert raised.value.exit_status == 69
    assert str(raised.value) == (
        "wev-daemon (pid 4242) did not answer within 0.5 s: it is stopped or stuck "
        "(kill 4242; the next wev starts another)"
    )
