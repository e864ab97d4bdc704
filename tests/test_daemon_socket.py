"""The real ``wev-daemon`` process on its Unix socket: permissions, one daemon per
socket, stale sockets, signals, peer checks, its environment and its log.

Every daemon runs in a short private temporary folder, every wait is bounded,
and every process a test starts is killed in ``finally``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from wev_client import __version__, protocol

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 5.0
NOBODY = 65534


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX socket."""

    def __init__(self, path: str) -> None:
        super().__init__("wev", timeout=REQUEST_TIMEOUT)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(REQUEST_TIMEOUT)
        sock.connect(self.unix_path)
        self.sock = sock


def request(path: str, method: str, route: str, payload: object = None) -> tuple[int, Any]:
    """One request through the socket: status and decoded JSON body."""
    connection = UnixHTTPConnection(path)
    try:
        data = None if payload is None else json.dumps(payload).encode()
        connection.request(method, route, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def status_through_curl(path: str) -> dict[str, Any]:
    """``/v1/status`` with curl, as a user would; http.client where curl is missing."""
    curl = shutil.which("curl")
    if curl is None:
        code, answer = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200
        return dict(answer)
    done = subprocess.run(
        [
            *(curl, "--silent", "--show-error", "--fail", "--max-time", str(REQUEST_TIMEOUT)),
            *("--unix-socket", path, f"http://wev{protocol.STATUS_ROUTE}"),
        ],
        capture_output=True,
        timeout=REQUEST_TIMEOUT + 5,
        check=True,
    )
    return dict(json.loads(done.stdout))


def accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
        return True


class Daemon:
    """A ``python -m wev_daemon`` child; its stderr goes to a file for the test to read."""

    def __init__(
        self,
        socket_path: str,
        log_path: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-m", "wev_daemon"),
    ) -> None:
        self.socket = socket_path
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, "--socket", socket_path, *extra],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=env,
            cwd=log_path.parent,
        )

    @property
    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(self.socket):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"wev-daemon exited with {self.process.returncode}:\n{self.log}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"wev-daemon did not listen within {START_TIMEOUT} s")
            time.sleep(0.02)

    def wait_exit(self) -> int:
        return self.process.wait(STOP_TIMEOUT)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.wait_exit()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        self._log.close()


@pytest.fixture
def root() -> Iterator[Path]:
    # Short, under /tmp: socket paths are limited to about 104 bytes.
    folder = Path(tempfile.mkdtemp(prefix="wevd-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(root: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(root),
    }


@contextlib.contextmanager
def running(
    socket_path: str,
    root: Path,
    *extra: str,
    env: dict[str, str],
    command: Sequence[str] = (sys.executable, "-m", "wev_daemon"),
    listen: bool = True,
) -> Iterator[Daemon]:
    """Start a daemon (waiting until it listens, unless ``listen`` is false); always kill it."""
    daemon = Daemon(
        socket_path, root / f"daemon-{uuid.uuid4().hex[:8]}.log", *extra, env=env, command=command
    )
    try:
        if listen:
            daemon.wait_listening()
        yield daemon
    finally:
        daemon.kill()


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def echo_request(name: str, value: str) -> dict[str, object]:
    return {
        "variables": [
            {"names": [name], "plugin": {"id": "wev-echo", "value": value}, "sources": ["t.yml"]}
        ],
        "env": {},
    }


# -- folder, socket, signals ---------------------------------------------------------


def test_private_folder_and_socket_status_and_sigterm(root: Path, env: dict[str, str]) -> None:
    folder = root / "run" / "wev"
    path = str(folder / "daemon.sock")
    with running(path, root, env=env) as daemon:
        assert mode(folder) == 0o700
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert mode(path) == 0o600

        answer = status_through_curl(path)
        assert answer["running"] is True
        assert answer["pid"] == daemon.process.pid
        assert answer["version"] == __version__
        assert answer["socket"] == path
        assert answer["entries"] == []

        assert daemon.stop(signal.SIGTERM) == 0
        assert not os.path.exists(path)


def test_sigint_stops_the_daemon_cleanly(root: Path, env: dict[str, str]) -> None:
    path = str(root / "wev" / "daemon.sock")
    with running(path, root, env=env) as daemon:
        code, _ = request(path, "POST", protocol.RESOLVE_ROUTE, echo_request("A", "a"))
        assert code == 200
        assert daemon.stop(signal.SIGINT) == 0
        assert not os.path.exists(path)
        assert "Traceback" not in daemon.log


@pytest.mark.parametrize("folder_mode", [0o755, 0o710, 0o707])
def test_a_folder_open_to_others_is_refused(
    root: Path, env: dict[str, str], folder_mode: int
) -> None:
    folder = root / "wev"
    folder.mkdir()
    folder.chmod(folder_mode)
    path = str(folder / "daemon.sock")
    with running(path, root, env=env, listen=False) as daemon:
        assert daemon.wait_exit() != 0
        assert "chmod 0700" in daemon.log
        assert not os.path.exists(path)
        assert mode(folder) == folder_mode  # left for the user to fix


def test_a_file_that_is_not_a_socket_is_left_alone(root: Path, env: dict[str, str]) -> None:
    folder = root / "wev"
    folder.mkdir(mode=0o700)
    path = folder / "daemon.sock"
    path.write_text("not a socket")
    with running(str(path), root, env=env, listen=False) as daemon:
        assert daemon.wait_exit() == 78  # EX_CONFIG: the path the user gave is wrong
        assert "not a socket" in daemon.log
        assert path.read_text() == "not a socket"


# -- one daemon per socket -------------------------------------------------------------


def test_a_second_daemon_exits_and_the_first_keeps_serving(root: Path, env: dict[str, str]) -> None:
    path = str(root / "wev" / "daemon.sock")
    with running(path, root, env=env) as first:
        inode = os.stat(path).st_ino
        with running(path, root, env=env, listen=False) as second:
            assert second.wait_exit() != 0
            assert "already running" in second.log
        assert os.stat(path).st_ino == inode
        code, answer = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200 and answer["pid"] == first.process.pid
        assert first.stop() == 0


def test_a_live_daemon_keeps_its_socket_even_without_its_lock_file(
    root: Path, env: dict[str, str]
) -> None:
    path = str(root / "wev" / "daemon.sock")
    with running(path, root, env=env) as first:
        os.unlink(path + ".lock")  # e.g. removed by a cleaner of old files
        with running(path, root, env=env, listen=False) as second:
            assert second.wait_exit() != 0
            assert "already running" in second.log
        code, answer = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200 and answer["pid"] == first.process.pid


def test_a_stale_socket_file_is_replaced(root: Path, env: dict[str, str]) -> None:
    folder = root / "wev"
    folder.mkdir(mode=0o700)
    path = str(folder / "daemon.sock")
    # What a killed process leaves: a bound socket file that nobody listens on.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and not accepts(path)

    with running(path, root, env=env) as daemon:
        code, answer = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200 and answer["pid"] == daemon.process.pid
        assert mode(path) == 0o600


def test_a_daemon_killed_with_sigkill_is_replaced(root: Path, env: dict[str, str]) -> None:
    path = str(root / "wev" / "daemon.sock")
    with running(path, root, env=env) as killed:
        killed.process.kill()
        killed.process.wait(STOP_TIMEOUT)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # left behind

    with running(path, root, env=env) as daemon:
        code, answer = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200 and answer["pid"] == daemon.process.pid


# -- who may talk to it ----------------------------------------------------------------


def request_as(uid: int, path: str) -> str:
    """The raw answer to GET /v1/status sent by a forked child running as ``uid``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(REQUEST_TIMEOUT)
                sock.connect(path)
                sock.sendall(
                    f"GET {protocol.STATUS_ROUTE} HTTP/1.1\r\nHost: wev\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            os.write(write_end, b"".join(chunks))
        except BaseException as error:
            os.write(write_end, f"child error: {error!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        chunks = []
        while chunk := os.read(read_end, 65536):  # the child's socket has a timeout
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(
    os.getuid() != 0,
    reason="connecting as another user needs root; test_app fakes the peer uid instead",
)
def test_a_peer_of_another_user_is_refused(env: dict[str, str]) -> None:
    # Under /tmp itself, so that the other user can reach the socket once allowed.
    root = Path(tempfile.mkdtemp(prefix="wevd-", dir="/tmp"))
    try:
        folder = root / "wev"
        path = str(folder / "daemon.sock")
        with running(path, root, env=env) as daemon:
            # First line of defence: the folder and socket modes.
            assert "PermissionError" in request_as(NOBODY, path)

            # Second: the daemon checks the peer's uid. Open the file modes to see it.
            root.chmod(0o711)
            folder.chmod(0o711)
            os.chmod(path, 0o666)  # noqa: S103  # for this test only, to reach the check
            answer = request_as(NOBODY, path)
            assert answer.startswith("HTTP/1.1 403"), answer
            assert '"forbidden"' in answer

            code, _ = request(path, "GET", protocol.STATUS_ROUTE)
            assert code == 200
            assert daemon.stop() == 0
            assert f"refused a connection from uid {NOBODY}" in daemon.log
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- its environment and its log ---------------------------------------------------------

# The daemon with one extra plugin that reports which AWS_* variables it can see.
ENV_PROBE = """
import os, sys
from wev_daemon import resolver
from wev_daemon.plugins import Plugin, Resolution

class EnvProbe(Plugin):
    id = "test-env-probe"
    def parse(self, properties):
        return None
    async def resolve(self, settings, context):
        seen = sorted(name for name in os.environ if name.startswith(("AWS_", "WEV_PROBE")))
        return Resolution((",".join(seen),))

resolver.load_plugins = lambda: {"test-env-probe": EnvProbe()}
from wev_daemon.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_daemon_drops_aws_variables_from_its_environment(
    root: Path, env: dict[str, str]
) -> None:
    leaky = {
        **env,
        "AWS_PROFILE": "starting-shell",
        "AWS_ACCESS_KEY_ID": "AKIASTARTINGSHELL000",
        "AWS_SECRET_ACCESS_KEY": "starting-shell-secret",
        "WEV_PROBE_KEPT": "1",
    }
    path = str(root / "wev" / "daemon.sock")
    command = (sys.executable, "-c", ENV_PROBE)
    with running(path, root, env=leaky, command=command):
        payload = {
            "variables": [{"names": ["SEEN"], "plugin": {"id": "test-env-probe"}}],
            "env": {"AWS_PROFILE": "the-client"},
        }
        code, answer = request(path, "POST", protocol.RESOLVE_ROUTE, payload)
        assert code == 200, answer
        assert answer["values"] == {"SEEN": "WEV_PROBE_KEPT"}


def test_the_log_never_holds_a_resolved_value(root: Path, env: dict[str, str]) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    path = str(root / "wev" / "daemon.sock")
    with running(path, root, "--log-level", "DEBUG", env=env) as daemon:
        code, answer = request(path, "POST", protocol.RESOLVE_ROUTE, echo_request("A", marker))
        assert code == 200 and answer["values"] == {"A": marker}
        code, _ = request(path, "POST", protocol.EXPLAIN_ROUTE, echo_request("A", marker))
        assert code == 200
        code, _ = request(path, "GET", protocol.STATUS_ROUTE)
        assert code == 200
        assert daemon.stop() == 0
        log = daemon.log
    assert "DEBUG" in log and "listening on" in log  # it did log, verbosely
    assert marker not in log


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--bogus",), "unrecognized arguments: --bogus"),
        (("--idle-exit", "x"), "argument --idle-exit: 'x' is not a number of seconds >= 0"),
        (("--wait-timeout", "-1"), "argument --wait-timeout: '-1' is not a number of seconds >= 0"),
        (("--force",), "--force goes with --install-service"),
    ],
)
def test_a_wrong_option_is_one_line_and_a_usage_error(
    env: dict[str, str], args: tuple[str, ...], complaint: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wev_daemon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 64, result.stderr  # EX_USAGE, as wev's own
    assert result.stderr == f"wev-daemon: {complaint} (see wev-daemon --help)\n"
    assert result.stdout == ""
