"""Socket activation for real, with the test as the service manager.

The test binds the listening socket itself, starts the real ``wev-daemon`` with
it as fd 3 and ``LISTEN_FDS``/``LISTEN_PID`` set (through a small exec wrapper,
as systemd does between fork and exec), reads ``READY=1`` and ``STOPPING=1`` on
its own ``NOTIFY_SOCKET``, and runs the real ``wev`` through it. The protocol's
details (``LISTEN_PID``, ``LISTEN_FDNAMES``, refused sockets, abstract notify
addresses, launchd's fd array) are checked in-process below.

Every process is stopped in ``finally``; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WEV, WEV_DAEMON, User
from fakes.codeartifact import FakeCodeArtifact
from wire import wait_for_socket

from wev_daemon import activation
from wev_daemon.activation import BadInheritedSocket, Notifier

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="abstract notify sockets and SO_PEERCRED are Linux's"
)

WAIT = 10.0

# What systemd does between fork and exec: the socket becomes fd 3 and
# LISTEN_PID names the very process that reads it.
EXEC_AS_SYSTEMD = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""

TOKEN_CONFIG = (
    "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
)
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')


class ServiceManager:
    """Holds the listening socket and the notify socket, and starts daemons on them."""

    def __init__(self, user: User) -> None:
        self.user = user
        folder = Path(user.socket).parent
        folder.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(user.socket)  # as systemd does to a socket file in its way
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(user.socket)
        os.chmod(user.socket, 0o600)
        self.listener.listen(16)
        self.notify_address = f"@wev-test-{uuid.uuid4().hex}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind("\0" + self.notify_address[1:])
        self.messages: list[str] = []
        self.logs: list[Path] = []

    def start(self, *args: str, sock: socket.socket | None = None) -> subprocess.Popen[bytes]:
        fd = (sock or self.listener).fileno()
        log = self.user.root / f"activated-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-c", EXEC_AS_SYSTEMD, str(fd), WEV_DAEMON, *args],
                pass_fds=[fd],
                env={**self.user.env, "LISTEN_FDS": "1", "NOTIFY_SOCKET": self.notify_address},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def expect(self, message: str, timeout: float = WAIT) -> None:
        """Wait for a notification that contains the line ``message``."""
        deadline = time.monotonic() + timeout
        while not any(message in received.split("\n") for received in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {message} within {timeout} s: {self.messages}")
            self.notify.settimeout(remaining)
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.notify.recv(4096).decode())

    def log(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace")

    def close(self) -> None:
        self.listener.close()
        self.notify.close()


@contextlib.contextmanager
def service_manager(user: User) -> Iterator[ServiceManager]:
    manager = ServiceManager(user)
    try:
        yield manager
    finally:
        manager.close()


@contextlib.contextmanager
def stopped_at_exit(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)


def wait_for_log(manager: ServiceManager, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while text not in manager.log():
        assert process.poll() is None, f"wev-daemon exited:\n{manager.log()}"
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{manager.log()}"
        time.sleep(0.05)


# -- the real daemon on a socket it did not bind ---------------------------------------


@linux_only
def test_the_client_resolves_through_a_socket_activated_daemon(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    with service_manager(user) as manager:
        inode = os.stat(user.socket).st_ino
        with stopped_at_exit(manager.start("--log-level", "DEBUG")) as daemon:
            manager.expect("READY=1")
            result = user.wev(*PRINT_TOKEN)
            assert result.returncode == 0, result.stderr
            assert fake.is_valid_token(result.stdout)

            status = user.wev("--status", "--json")
            assert status.returncode == 0, status.stderr
            assert json.loads(status.stdout)["pid"] == daemon.pid  # no daemon of its own

            daemon.send_signal(signal.SIGTERM)
            manager.expect("STOPPING=1")
            assert daemon.wait(WAIT) == 0
        assert "socket from the service manager" in manager.log()
        assert "Traceback" not in manager.log()
        # The service manager's socket outlives the daemon, untouched.
        assert os.stat(user.socket).st_ino == inode
        assert stat.S_ISSOCK(os.lstat(user.socket).st_mode)

        # A client that connects while no daemon runs waits in the backlog, and
        # the daemon the service manager starts next answers it.
        client = subprocess.Popen(
            [WEV, *PRINT_TOKEN], env=user.env, cwd=user.project, stdout=subprocess.PIPE
        )
        try:
            time.sleep(0.3)
            assert client.poll() is None  # waiting, not resolving by itself
            with stopped_at_exit(manager.start()) as second:
                out, _ = client.communicate(timeout=30)
                assert client.returncode == 0
                assert fake.is_valid_token(out.decode())
                second.send_signal(signal.SIGTERM)
                assert second.wait(WAIT) == 0
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(WAIT)
        assert stat.S_ISSOCK(os.lstat(user.socket).st_mode)


@linux_only
def test_an_idle_activated_daemon_exits_and_keeps_no_socket_of_its_own(user: User) -> None:
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-echo\n    value: a\n")
    with service_manager(user) as manager:
        with stopped_at_exit(manager.start("--idle-exit", "1")) as daemon:
            manager.expect("READY=1")
            # A value without expiry is nothing to keep fresh: no reason to stay.
            assert user.wev("sh", "-c", 'test "$A" = a').returncode == 0
            manager.expect("STOPPING=1")
            assert daemon.wait(WAIT) == 0
        assert "no request for 1 s" in manager.log()
        assert stat.S_ISSOCK(os.lstat(user.socket).st_mode)


@linux_only
def test_an_idle_daemon_stays_for_the_tokens_it_refreshes_unless_told(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    with service_manager(user) as manager:
        with stopped_at_exit(manager.start("--idle-exit", "1", "--log-level", "DEBUG")) as daemon:
            manager.expect("READY=1")
            assert user.wev(*PRINT_TOKEN).returncode == 0
            wait_for_log(manager, "idle, but keeping 1 entries fresh", daemon)
            assert daemon.poll() is None

        with stopped_at_exit(
            manager.start("--idle-exit", "1", "--idle-exit-with-entries")
        ) as daemon:
            manager.expect("READY=1")
            result = user.wev(*PRINT_TOKEN)
            assert result.returncode == 0 and fake.is_valid_token(result.stdout)
            assert daemon.wait(WAIT) == 0
        assert "dropping 1 entries" in manager.log()


@linux_only
def test_a_manually_started_daemon_leaves_the_activated_one_alone(user: User) -> None:
    with service_manager(user) as manager, stopped_at_exit(manager.start()) as activated:
        manager.expect("READY=1")
        manual = subprocess.run(
            [WEV_DAEMON, "--socket", user.socket],
            env=user.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert manual.returncode == 75
        assert f"pid {activated.pid}" in manual.stderr
        assert activated.poll() is None
        assert user.wev("--status").returncode == 0


@linux_only
def test_a_daemon_whose_path_the_service_manager_takes_gives_way(user: User) -> None:
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-echo\n    value: a\n")
    log = user.root / "auto-started.log"
    with log.open("wb") as out:
        auto_started = subprocess.Popen(
            [WEV_DAEMON, "--socket", user.socket],
            env=user.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    with stopped_at_exit(auto_started):
        wait_for_socket(user.socket, auto_started)
        # `systemctl --user enable --now wev.socket` while that daemon runs.
        with service_manager(user) as manager, stopped_at_exit(manager.start()) as activated:
            manager.expect("READY=1")
            assert user.wev("sh", "-c", 'test "$A" = a').returncode == 0
            try:
                auto_started.wait(WAIT + 5)
            except subprocess.TimeoutExpired:
                raise AssertionError(log.read_text()) from None
            assert "replaced by another socket" in log.read_text()
            assert f"pid {auto_started.pid}" in manager.log()  # it held the lock

            status = user.wev("--status", "--json")
            assert json.loads(status.stdout)["pid"] == activated.pid
            assert activated.poll() is None


def test_a_daemon_whose_socket_file_was_removed_makes_way_for_a_new_one(user: User) -> None:
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-echo\n    value: a\n")
    log = user.root / "orphan.log"
    with log.open("wb") as out:
        orphan = subprocess.Popen(
            [WEV_DAEMON, "--socket", user.socket],
            env=user.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    with stopped_at_exit(orphan):
        wait_for_socket(user.socket, orphan)
        os.unlink(user.socket)  # a cleaner of old files in /tmp
        # The client starts a daemon, which waits for the orphan's lock.
        assert user.wev("sh", "-c", 'test "$A" = a').returncode == 0
        assert orphan.wait(WAIT) == 0
        assert "was removed" in log.read_text()
        status = json.loads(user.wev("--status", "--json").stdout)
        assert status["pid"] != orphan.pid


def test_a_tcp_socket_is_refused(user: User) -> None:
    (Path(user.socket).parent).mkdir(mode=0o700)
    with service_manager_tcp() as tcp:
        log = user.root / "tcp.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-c", EXEC_AS_SYSTEMD, str(tcp.fileno()), WEV_DAEMON],
                pass_fds=[tcp.fileno()],
                env={**user.env, "LISTEN_FDS": "1"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        with stopped_at_exit(daemon):
            assert daemon.wait(WAIT) == 78
        assert "not a Unix stream socket" in log.read_text()


@contextlib.contextmanager
def service_manager_tcp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock
    finally:
        sock.close()


# -- the protocols, in-process ---------------------------------------------------------------


@contextlib.contextmanager
def at_fds(*socks: socket.socket) -> Iterator[int]:
    """Duplicate ``socks`` onto consecutive free fds, as a service manager passes them."""
    first = next(
        fd for fd in range(200, 1000) if all(not _is_open(n) for n in range(fd, fd + len(socks)))
    )
    for offset, sock in enumerate(socks):
        os.dup2(sock.fileno(), first + offset)
    try:
        yield first
    finally:
        for offset in range(len(socks)):
            with contextlib.suppress(OSError):
                os.close(first + offset)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def unix_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_listen_fds_with_names(tmp_path: Path) -> None:
    with (
        contextlib.closing(unix_listener(tmp_path / "a.sock")) as a,
        contextlib.closing(unix_listener(tmp_path / "b.sock")) as b,
        at_fds(a, b) as first,
    ):
        environ = {
            "LISTEN_FDS": "2",
            "LISTEN_PID": str(os.getpid()),
            "LISTEN_FDNAMES": "wev.socket:other",
            "KEPT": "1",
        }
        inherited = activation.systemd_sockets(environ, first_fd=first)
        try:
            assert [item.name for item in inherited] == ["wev.socket", "other"]
            assert [item.path for item in inherited] == [
                str(tmp_path / "a.sock"),
                str(tmp_path / "b.sock"),
            ]
            assert all(item.manager == "systemd" for item in inherited)
            assert not any(item.sock.get_inheritable() for item in inherited)
            assert environ == {"KEPT": "1"}  # nothing the daemon starts sees them
        finally:
            for item in inherited:
                item.sock.detach()  # at_fds closes them


def test_listen_fds_for_another_process_are_ignored_and_removed() -> None:
    environ = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDNAMES": "x"}
    assert activation.systemd_sockets(environ) == []
    assert environ == {}
    assert activation.systemd_sockets({}) == []


def test_a_bad_listen_fds_is_an_error() -> None:
    with pytest.raises(BadInheritedSocket, match="not a number"):
        activation.systemd_sockets({"LISTEN_FDS": "three", "LISTEN_PID": str(os.getpid())})


def test_a_socket_that_does_not_listen_is_refused(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "quiet.sock"))
    with contextlib.closing(sock), at_fds(sock) as fd:
        environ = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())}
        with pytest.raises(BadInheritedSocket, match="not listening"):
            activation.systemd_sockets(environ, first_fd=fd)
        assert _is_open(fd)  # refused, not closed behind the caller's back


@linux_only
@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_notify_reaches_the_notify_socket(tmp_path: Path, abstract: bool) -> None:
    if abstract:
        address = f"@wev-test-{uuid.uuid4().hex}"
        bind_to = "\0" + address[1:]
    else:
        address = bind_to = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(bind_to)
        receiver.settimeout(WAIT)
        environ = {"NOTIFY_SOCKET": address}
        notifier = Notifier.from_environ(environ)
        assert environ == {}
        notifier.notify("READY=1", "STATUS=listening")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=listening"


def test_notify_without_a_notify_socket_is_silent(tmp_path: Path) -> None:
    Notifier.from_environ({}).notify("READY=1")
    Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"}).notify("READY=1")
    # A service manager that went away is logged, never raised.
    Notifier(str(tmp_path / "gone")).notify("STOPPING=1")


# launchd's int launch_activate_socket(const char *name, int **fds, size_t *cnt)
ACTIVATE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.POINTER(ctypes.POINTER(ctypes.c_int)),
    ctypes.POINTER(ctypes.c_size_t),
)


def test_launchd_fd_array_is_read_and_freed(tmp_path: Path) -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    with contextlib.closing(unix_listener(tmp_path / "l.sock")) as sock:
        fd = os.dup(sock.fileno())
        names: list[bytes] = []
        freed: list[int] = []

        def launch_activate_socket(
            name: bytes,
            fds: ctypes._Pointer[ctypes._Pointer[ctypes.c_int]],
            count: ctypes._Pointer[ctypes.c_size_t],
        ) -> int:
            names.append(name)
            memory = libc.malloc(ctypes.sizeof(ctypes.c_int))
            array = ctypes.cast(memory, ctypes.POINTER(ctypes.c_int))
            array[0] = fd
            fds[0] = array
            count[0] = 1
            return 0

        def free(pointer: ctypes._Pointer[ctypes.c_int]) -> None:
            freed.append(ctypes.addressof(pointer.contents))
            libc.free(pointer)

        activate = ACTIVATE(launch_activate_socket)
        (item,) = activation.launchd_sockets("Listeners", activate=activate, free=free)
        with contextlib.closing(item.sock):
            assert names == [b"Listeners"]
            assert len(freed) == 1
            assert (item.name, item.manager) == ("Listeners", "launchd")
            assert item.sock.fileno() == fd
            assert item.path == str(tmp_path / "l.sock")


@pytest.mark.parametrize(
    ("code", "outcome"), [(errno.ESRCH, []), (errno.ENOENT, []), (errno.EPERM, None)]
)
def test_launchd_errors(code: int, outcome: list[object] | None) -> None:
    activate = ACTIVATE(lambda name, fds, count: code)
    if outcome is None:
        with pytest.raises(BadInheritedSocket, match="launch_activate_socket"):
            activation.launchd_sockets("Listeners", activate=activate, free=lambda _: None)
    else:
        assert activation.launchd_sockets("Listeners", activate=activate, free=lambda _: None) == []


def test_under_journald_lines_carry_priorities_and_no_timestamp(user: User) -> None:
    # systemd sets JOURNAL_STREAM to the device:inode of the stderr it connected.
    log = user.root / "journal.log"
    with log.open("wb") as out:
        st = os.fstat(out.fileno())
        daemon = subprocess.Popen(
            [WEV_DAEMON, "--socket", user.socket, "--idle-exit", "0.5"],
            env={**user.env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    with stopped_at_exit(daemon):
        assert daemon.wait(WAIT) == 0
    lines = log.read_text().splitlines()
    assert lines and all(line.startswith("<6>INFO wev_daemon.") for line in lines), lines
    # Idle on a socket of its own: it exits and removes it; a client would start another.
    assert not os.path.exists(user.socket)
