"""An edited ``wev.yml`` costs nothing: the running daemon parses it, the client caches by content.

The client reads the few config files on every call and compares their bytes
with the cache's; when they changed it sends their text to the daemon, which
has PyYAML loaded, instead of importing PyYAML (~20 ms): ``wev`` with its
resolve request, in one round trip, other doors alone (``/v1/parse``). With
``WEV_NO_DAEMON=1``, or no daemon, it parses them itself, as before. Real
``wev`` and ``wev-daemon`` processes throughout (and, where a daemon of an
older version is the subject, a stand-in on the socket that answers as it did).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, User
from test_config import billion_laughs
from wire import read_message, serving

from wev_client import __version__, protocol, transport
from wev_client.protocol import codec, errors, messages, parsing

LOAD = textwrap.dedent(
    """\
    import os, sys
    from wev_client import config_files, connection, paths
    specs = config_files.load(
        os.getcwd(),
        os.environ["HOME"],
        paths.config_cache_path(os.environ),
        None,
        lambda files: connection.parse_config(files, os.environ, lambda message: None),
    )
    print([(spec.names, dict(spec.plugin)) for spec in specs])
    print("yaml" in sys.modules)
    """
)


def echo(value: str) -> str:
    return f"GREETING:\n  plugin:\n    id: wev-echo\n    value: {value}\n"


def load_as_wev_does(user: User) -> tuple[str, str]:
    """The specs that the client's own loading gives, and whether it imported PyYAML."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=user.project,
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    specs, imported = result.stdout.splitlines()
    return specs, imported


def test_an_edited_config_is_parsed_by_the_daemon_not_the_client(
    user: User, daemon: Daemon
) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    first, first_yaml = load_as_wev_does(user)
    path.write_text(echo("two"))
    edited, edited_yaml = load_as_wev_does(user)
    again, again_yaml = load_as_wev_does(user)

    assert "'value': 'one'" in first and "'value': 'two'" in edited
    assert (first_yaml, edited_yaml) == ("False", "False"), "PyYAML stays out of the client"
    assert (again, again_yaml) == (edited, "False")


def test_an_edit_that_keeps_size_and_timestamps_is_never_served_stale(
    user: User, daemon: Daemon
) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    before = path.stat()
    show = ("sh", "-c", 'printf %s "$GREETING"')
    assert user.wev(*show).stdout == "one"

    with open(path, "r+") as file:  # same inode, same size; then the old mtime back
        file.write(echo("two"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert user.wev(*show).stdout == "two"
    assert user.wev(*show, env={"WEV_NO_DAEMON": "1"}).stdout == "two"


def test_an_error_found_by_the_daemon_reads_as_the_clients_own(user: User, daemon: Daemon) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    assert user.wev("true").returncode == 0
    path.write_text("GREETING: [\n")

    through_daemon = user.wev("true")
    in_process = user.wev("true", env={"WEV_NO_DAEMON": "1"})

    assert through_daemon.returncode == 78
    assert through_daemon.stderr.startswith(f"wev: {path}: line ")
    assert through_daemon.stderr.count("\n") == 1
    assert (in_process.returncode, in_process.stderr) == (78, through_daemon.stderr)


def test_without_a_daemon_the_client_parses_each_edit_itself(user: User) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    show = ("sh", "-c", 'printf %s "$GREETING"')
    no_daemon = {"WEV_NO_DAEMON": "1"}
    assert user.wev(*show, env=no_daemon).stdout == "one"

    path.write_text(echo("two"))

    assert user.wev(*show, env=no_daemon).stdout == "two"
    assert not os.path.exists(user.socket), "no daemon was started to parse"


def test_a_file_that_is_not_utf8_is_parsed_by_the_client(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", "")
    (user.project / "wev.yml").write_bytes(echo("utf16").encode("utf-16"))

    specs, imported = load_as_wev_does(user)

    assert "'value': 'utf16'" in specs
    assert imported == "True"


def test_the_daemon_parses_only_what_it_is_sent(user: User, daemon: Daemon) -> None:
    elsewhere = user.write("work/project/wev.yml", echo("on disk"))
    body = parsing.ParseRequest(((str(elsewhere), echo("sent")),)).to_json()

    code, answer = transport.request(
        user.socket, "POST", protocol.PARSE_ROUTE, body, version=__version__
    )

    parsed = parsing.ParseResponse.from_json(answer)
    assert code == 200 and parsed.version == __version__
    assert [(spec.names, spec.plugin["value"], spec.sources) for spec in parsed.variables] == [
        (("GREETING",), "sent", (str(elsewhere),))
    ]


def test_the_daemon_refuses_a_malformed_parse_request(user: User, daemon: Daemon) -> None:
    for body in (
        {"files": "wev.yml"},
        {"files": [{"path": "relative/wev.yml", "text": ""}]},
        {"files": [{"path": "/wev.yml", "text": 5}]},
        {"files": [{"path": "/wev.yml", "text": ""}] * (protocol.MAX_FILES + 1)},
    ):
        code, answer = transport.request(
            user.socket, "POST", protocol.PARSE_ROUTE, body, version=__version__
        )
        assert code == 400, answer
        assert isinstance(errors.error_from_json(answer), errors.ProtocolError)
    assert daemon.process.poll() is None


def test_parse_messages_round_trip_through_json() -> None:
    request = parsing.ParseRequest((("/home/me/wev.yml", "A: {plugin: {id: x}}\n"), ("/p/w", "")))
    spec = messages.VariableSpec(("A", "B"), {"id": "x", "n": [1, 2.5]}, ("/p/wev.yml",))
    response = parsing.ParseResponse((spec,), "2.0.0")

    again = parsing.ParseRequest.from_json(codec.loads(codec.dumps(request.to_json())))
    answer = parsing.ParseResponse.from_json(codec.loads(codec.dumps(response.to_json())))

    assert again.files == request.files
    assert (answer.variables, answer.version) == ((spec,), "2.0.0")
    assert "A: {plugin" not in repr(request), "a repr names the files, not their text"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 5_000 + "]" * 5_000,
        "{a: " * 20_000,
        "".join(" " * depth + "a:\n" for depth in range(1_200)),
        billion_laughs(),
        "A: [\n",
        "\x00\x01binary",
    ],
    ids=["open", "balanced", "flow", "block", "alias-bomb", "syntax", "binary"],
)
def test_hostile_text_is_one_config_error_and_the_daemon_lives_on(
    user: User, daemon: Daemon, text: str
) -> None:
    path = user.write("work/project/wev.yml", text)

    started = time.monotonic()
    through_daemon = user.wev("true")

    assert time.monotonic() - started < 5
    assert through_daemon.returncode == 78, through_daemon.stderr
    assert through_daemon.stderr.startswith(f"wev: {path}: ")
    assert through_daemon.stderr.count("\n") == 1
    assert daemon.process.poll() is None
    user.write("work/project/wev.yml", echo("after"))
    assert user.wev("sh", "-c", 'printf %s "$GREETING"').stdout == "after"


# -- wev itself: the edit rides on the resolve request -------------------------------------

Answer = Callable[[dict[str, Any]], dict[str, Any]]


@contextmanager
def recording_socket(folder: Path, answer: Answer) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """A socket in a private ``folder`` that records each request (its request line and
    JSON body) and answers it with ``answer(body)``; yields the records."""
    folder.mkdir(mode=0o700)
    records: list[tuple[str, dict[str, Any]]] = []

    def handle(conn: socket.socket) -> None:
        head, _, body = read_message(conn).partition(b"\r\n\r\n")
        request = json.loads(body)
        records.append((head.decode().split("\r\n")[0], request))
        reply = json.dumps(answer(request)).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(reply), reply)
        )

    with serving(str(folder / "daemon.sock"), handle):
        yield records


def relayed_to(daemon_socket: str) -> Answer:
    """An answer that is the real daemon's own."""

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        code, body = transport.request(
            daemon_socket, "POST", protocol.RESOLVE_ROUTE, request, version=__version__
        )
        assert code == 200, body
        assert isinstance(body, dict)
        return body

    return answer


def as_an_older_daemon(request: dict[str, Any]) -> dict[str, Any]:
    """A daemon from before files rode on the request: it resolves the variables it is
    sent (each to "old:" and its value) and knows nothing of ``files``."""
    values = {}
    for variable in request["variables"]:
        values[variable["names"][0]] = "old:" + variable["plugin"]["value"]
    return {"values": values, "entries": [], "warnings": []}


def test_an_edit_costs_wev_one_request_to_the_daemon(
    user: User, daemon: Daemon, tmp_path: Path
) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    show = ("sh", "-c", 'printf %s "$GREETING"')
    with recording_socket(tmp_path / "relay", relayed_to(user.socket)) as records:
        relay = {"WEV_SOCKET": str(tmp_path / "relay" / "daemon.sock")}
        first = user.wev(*show, env=relay)
        path.write_text(echo("two"))
        edited = user.wev(*show, env={**relay, "PYTHONPROFILEIMPORTTIME": "1"})
        again = user.wev(*show, env=relay)

    assert (first.stdout, edited.stdout, again.stdout) == ("one", "two", "two"), edited.stderr
    assert [line for line, _ in records] == [f"POST {protocol.RESOLVE_ROUTE} HTTP/1.1"] * 3
    sent = [(body.get("files"), body["variables"]) for _, body in records]
    assert sent[0][0] == [{"path": str(path), "text": echo("one")}] and sent[0][1] == []
    assert sent[1][0] == [{"path": str(path), "text": echo("two")}] and sent[1][1] == []
    assert sent[2][0] is None and len(sent[2][1]) == 1, "the edit is cached: variables again"
    imported = [line.rsplit("|", 1)[-1].strip() for line in edited.stderr.splitlines()]
    assert "yaml" not in imported and "wev_client.config_parse" not in imported


def test_an_older_daemon_that_ignores_the_files_is_asked_with_their_variables(
    user: User, tmp_path: Path
) -> None:
    user.write("work/project/wev.yml", echo("edited"))
    with recording_socket(tmp_path / "old", as_an_older_daemon) as records:
        result = user.wev(
            "sh",
            "-c",
            'printf %s "$GREETING"',
            env={"WEV_SOCKET": str(tmp_path / "old" / "daemon.sock")},
        )

    assert (result.returncode, result.stdout, result.stderr) == (0, "old:edited", "")
    assert [("files" in body, len(body["variables"])) for _, body in records] == [
        (True, 0),
        (False, 1),
    ]


def test_an_edit_to_nothing_configured_starts_no_daemon(user: User) -> None:
    user.write("work/project/wev.yml", echo("one"))
    assert user.wev("true", env={"WEV_NO_DAEMON": "1"}).returncode == 0
    user.write("work/project/wev.yml", "# nothing configured yet\n")

    result = user.wev("sh", "-c", "echo ran")

    assert (result.returncode, result.stdout, result.stderr) == (0, "ran\n", "")
    assert not os.path.exists(user.socket), "no daemon was started for nothing"


def test_an_error_in_the_edit_is_one_line_from_the_resolve_request(
    user: User, daemon: Daemon
) -> None:
    path = user.write("work/project/wev.yml", echo("one"))
    assert user.wev("true").returncode == 0
    path.write_text(echo("two") + "  unknown: [\n")

    result = user.wev("true")

    assert result.returncode == 78
    assert result.stderr.startswith(f"wev: {path}: line ") and result.stderr.count("\n") == 1
    assert daemon.process.poll() is None


def test_a_configuration_too_large_to_ride_on_the_request_is_parsed_here(
    user: User, daemon: Daemon
) -> None:
    """Two files of 600 KiB (each under the file limit) make a request over the daemon's
    1 MiB: the client parses them itself and asks with their variables, as before."""
    padding = "#" + "x" * 99 + "\n"
    user.write("work/project/wev.yml", echo("large") + padding * 6_000)
    user.write("work/project/wev.user.yml", padding * 6_000)

    result = user.wev("sh", "-c", 'printf %s "$GREETING"')

    assert (result.returncode, result.stdout, result.stderr) == (0, "large", "")
    assert daemon.process.poll() is None
