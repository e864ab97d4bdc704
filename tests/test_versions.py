"""Upgrades: versions compare in full, and a service's daemon is never stopped in a loop.

The order itself is checked in-process (and against ``packaging``, which
pytest depends on). The daemon's side runs the real ``wev-daemon``: once
started by a client, once on a socket handed over as systemd does (the test
is the service manager, as in ``test_activation.py``), each asked by a newer
client, raw and through the real ``wev``. Every process is stopped in
``finally``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from packaging.version import Version
from pytest_aiohttp import AiohttpClient
from test_activation import (
    EXEC_AS_SYSTEMD,
    PRINT_TOKEN,
    TOKEN_CONFIG,
    WAIT,
    ServiceManager,
    linux_only,
    service_manager,
    stopped_at_exit,
)
from wire import exchange, resolve_message

from wev_client import __version__, protocol
from wev_client.output import status as status_text
from wev_client.protocol import codec
from wev_client.versions import compare, sort_key
from wev_daemon.app import STOP, make_app
from wev_daemon.cache import TokenCache
from wev_daemon.plugins import Plugin
from wev_daemon.plugins.echo import EchoPlugin
from wev_daemon.resolver import Resolver

# -- the order -------------------------------------------------------------------------

ASCENDING = [
    "1.9",
    "1.10.0",
    "2.0.0.dev0",
    "2.0.0.dev1",
    "2.0.0a1.dev0",
    "2.0.0a1",
    "2.0.0a2",
    "2.0.0b1",
    "2.0.0rc1",
    "2.0.0rc1.post1",
    "2.0.0",
    "2.0.0+local.1",
    "2.0.0.post1.dev0",
    "2.0.0.post1",
    "2.0.1.dev0",
    "2.0.1",
    "10.0.0",
]


def test_versions_compare_in_full() -> None:
    for older, newer in itertools.pairwise(ASCENDING):
        assert compare(older, newer) == -1, (older, newer)
        assert compare(newer, older) == 1, (newer, older)
    assert compare("2.0.0.dev0", "2.0.0") == -1  # the leading numbers alone are equal
    assert compare("2.0.0", "2.0.0.post1") == -1


@pytest.mark.parametrize(
    ("left", "right"), [("2.0", "2.0.0"), ("v2.1", "2.1"), ("2.0RC1", "2.0rc1")]
)
def test_equal_versions(left: str, right: str) -> None:
    assert compare(left, right) == 0


@pytest.mark.parametrize(
    "version",
    ["", "abc", "2.0.0.", "2..0", "2.0.0.dev", "2.0.0c1", "2.0-1", "2.0.0+", "2.0+a..b", "9" * 300],
)
def test_unknown_forms_are_not_comparable(version: str) -> None:
    assert sort_key(version) is None
    assert compare(version, "2.0.0") is None and compare("2.0.0", version) is None


def test_the_order_agrees_with_packaging() -> None:
    packaging_version = pytest.importorskip("packaging.version")
    for left, right in itertools.product(ASCENDING, repeat=2):
        a, b = packaging_version.Version(left), packaging_version.Version(right)
        assert compare(left, right) == (a > b) - (a < b), (left, right)


# -- the daemon's decision, through its handlers ------------------------------------------


#: A client from a later release than any of this checkout.
NEWER = "99.0.0"
ECHO_REQUEST = {
    "variables": [{"names": ["A"], "plugin": {"id": "wev-echo", "value": "a"}, "sources": []}],
    "env": {},
}


@pytest.mark.parametrize(
    ("client_version", "manager", "stops"),
    [
        (NEWER, "", True),
        ("2.0.0.post1", "", compare("2.0.0.post1", __version__) == 1),
        (NEWER, "systemd", False),
        (NEWER, "launchd", False),
        ("0.0.1", "", False),  # an older client is served
        ("a-fork's-own-scheme", "", False),  # not comparable: never a reason to stop
    ],
)
async def test_only_a_newer_client_stops_a_daemon_no_service_manager_started(
    aiohttp_client: AiohttpClient, client_version: str, manager: str, stops: bool
) -> None:
    plugins: dict[str, Plugin[Any]] = {EchoPlugin.id: EchoPlugin()}
    app = make_app(resolver=Resolver(cache=TokenCache(), plugins=plugins), service_manager=manager)
    client = await aiohttp_client(app)
    response = await client.post(
        protocol.RESOLVE_ROUTE,
        data=codec.dumps(ECHO_REQUEST),
        headers={protocol.CLIENT_VERSION_HEADER: client_version},
    )
    assert response.status == (409 if stops else 200)
    assert app[STOP].is_set() == stops
    status = await (await client.get(protocol.STATUS_ROUTE)).json()
    assert status["service_manager"] == (manager or None)


# -- wev --status ----------------------------------------------------------------------------


def test_status_says_how_to_upgrade_a_service_running_an_older_wev() -> None:
    body = {
        "version": "2.0.0",
        "pid": 1,
        "uptime_seconds": 5,
        "service_manager": "systemd",
        "restart_command": "systemctl --user restart wev.service",
    }
    text = status_text(body, "2.1.0")
    assert "wev-daemon 2.0.0 (started by systemd) is older than this wev 2.1.0" in text
    assert "systemctl --user restart wev.service" in text
    assert "wev-daemon --install-service" in text

    assert "older" not in status_text(body, "2.0.0")
    assert "older" not in status_text(body, "1.9.0")
    assert "older" not in status_text({**body, "version": "custom"}, "2.1.0")


def test_status_of_an_older_daemon_a_client_started_says_it_is_replaced() -> None:
    text = status_text({"version": "2.0.0.dev0", "pid": 1, "uptime_seconds": 5}, "2.0.0")
    assert "older than this wev 2.0.0; the next wev command replaces it" in text
    assert "started by" not in text and "--install-service" not in text


# -- the real daemon -----------------------------------------------------------------------

NEWER = "99.0.0"


def newer_client_message(user: User) -> bytes:
    """What a newer ``wev`` sends from the user's project."""
    message = resolve_message(str(user.project), str(user.home), user.env)
    header = f"{protocol.CLIENT_VERSION_HEADER}: {__version__}\r\n".encode()
    assert header in message
    return message.replace(header, f"{protocol.CLIENT_VERSION_HEADER}: {NEWER}\r\n".encode())


def http_status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def answer_body(answer: bytes) -> dict[str, object]:
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert isinstance(body, dict)
    return body


def test_a_daemon_a_client_started_makes_way_for_a_newer_client(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-echo\n    value: a\n")

    answer = asyncio.run(exchange(user.socket, newer_client_message(user)))

    assert http_status(answer) == 409
    error = answer_body(answer)["error"]
    assert isinstance(error, dict) and error["code"] == "version_mismatch"
    assert daemon.process.wait(WAIT) == 0
    assert f"client {NEWER} is newer than this daemon: stopping" in daemon.log


@linux_only
def test_a_service_managers_daemon_serves_a_newer_client_and_keeps_running(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    with service_manager(user) as manager, stopped_at_exit(manager.start()) as daemon:
        manager.expect("READY=1")

        for _ in range(3):  # each one served, never a stop
            answer = asyncio.run(exchange(user.socket, newer_client_message(user)))
            assert http_status(answer) == 200, answer
            values = answer_body(answer)["values"]
            assert isinstance(values, dict)
            assert fake.is_valid_token(values["CODEARTIFACT_AUTH_TOKEN"])
        assert daemon.poll() is None

        status = user.wev("--status", "--json")
        document = json.loads(status.stdout)
        assert document["pid"] == daemon.pid
        assert document["service_manager"] == "systemd"
        assert document["restart_command"] == "systemctl --user restart wev.service"

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(WAIT) == 0
    log = manager.log()
    assert log.count(f"client {NEWER} is newer than this daemon, which systemd started") == 1


#: A wev-daemon that believes it is an older release, for a real upgrade.
OLDER = "1.9.0"
RUN_OLDER_DAEMON = (
    f"import sys, wev_client; wev_client.__version__ = {OLDER!r}\n"
    "from wev_daemon.__main__ import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
OLDER_DAEMON_ARGV = (sys.executable, "-c", RUN_OLDER_DAEMON, "--log-level", "DEBUG")


@contextmanager
def older_service(manager: ServiceManager) -> Iterator[subprocess.Popen[bytes]]:
    """An older wev-daemon on the manager's socket, started as systemd starts one."""
    fd = manager.listener.fileno()
    log = manager.user.root / "older-service.log"
    manager.logs.append(log)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", EXEC_AS_SYSTEMD, str(fd), *OLDER_DAEMON_ARGV],
            pass_fds=[fd],
            env={**manager.user.env, "LISTEN_FDS": "1", "NOTIFY_SOCKET": manager.notify_address},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    with stopped_at_exit(process):
        yield process


@linux_only
def test_after_an_upgrade_wev_uses_the_older_service_and_says_how_to_upgrade_it(
    user: User, fake: FakeCodeArtifact
) -> None:
    assert compare(OLDER, __version__) == -1
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    with service_manager(user) as manager, older_service(manager) as daemon:
        manager.expect("READY=1")

        for _ in range(2):
            started = time.monotonic()
            result = user.wev(*PRINT_TOKEN)
            # Served at once: no waiting for a daemon of its own version.
            assert time.monotonic() - started < 5, result.stderr
            assert result.returncode == 0, result.stderr
            assert fake.is_valid_token(result.stdout)
        assert fake.call_count == 1  # the second answer came from the daemon's cache

        status = user.wev("--status")
        assert status.returncode == 0, status.stderr
        assert f"wev-daemon {OLDER}: running, pid {daemon.pid}" in status.stdout
        assert (
            f"wev-daemon {OLDER} (started by systemd) is older than this wev {__version__}"
            in status.stdout
        )
        assert "systemctl --user restart wev.service" in status.stdout
        assert "wev-daemon --install-service" in status.stdout
        assert daemon.poll() is None
        # No daemon of the client's own: the lock file names the service's.
        with open(user.socket + ".lock") as lock:
            assert lock.read().strip() == str(daemon.pid)

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(WAIT) == 0
    assert "Traceback" not in manager.log()


def test_the_ci_floors_are_the_floors_of_the_dependencies() -> None:
    """``.ci/floors.txt`` (installed and run by CI) pins exactly pyproject.toml's floors."""
    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for requirement in declared:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(,<[0-9.]+)?", requirement)
        assert match, f"{requirement}: a floor (and an upper bound) is expected"
        floors[match[1].lower()] = match[2]
    pinned = {}
    for line in (root / ".ci" / "floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name.lower()] = version
    assert {name: Version(v) for name, v in pinned.items()} == {
        name: Version(v) for name, v in floors.items()
    }
