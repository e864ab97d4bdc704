"""Shared harness: an isolated user (HOME, AWS files, runtime folder), the fake
CodeArtifact endpoint, the real ``wev-daemon`` and the real ``wev`` command.

Everything a test starts is stopped in ``finally``; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from fakes.wheels import build_wheel
from wire import wait_for_socket

BIN = Path(sys.executable).parent
WEV = str(BIN / "wev")
WEV_DAEMON = str(BIN / "wev-daemon")

#: Fake AWS keys: the default profile's and the "work" profile's.
DEFAULT_KEY = "AKIADEFAULT000000001"
DEFAULT_SECRET = "default-secret-key-0000000000000000000000"
WORK_KEY = "AKIAWORK0000000000002"
WORK_SECRET = "work-secret-key-00000000000000000000000000"
ENV_KEY = "AKIAENVIRONMENT00003"
ENV_SECRET = "env-secret-key-000000000000000000000000000"
CREDENTIALS = {DEFAULT_KEY: DEFAULT_SECRET, WORK_KEY: WORK_SECRET, ENV_KEY: ENV_SECRET}

COMMAND_TIMEOUT = 60.0
#: A daemon listens within a second; the bound is for a machine busy with parallel tests.
DAEMON_START_TIMEOUT = 30.0
#: The nice value of a ``timing`` test's processes and threads (see ``_timing_first``).
TIMING_NICE = -10


class User:
    """An isolated user: a HOME with AWS files, a private runtime folder, an environment."""

    def __init__(self, root: Path, endpoint: str) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime = root / "run"
        self.project = root / "work" / "project"
        #: The tools' TMPDIR: what they leave there is removed with the root, and the
        #: check that no token reached the disk reads it too.
        self.tmp = root / "tmp"
        for folder in (self.home / ".aws", self.project, self.tmp):
            folder.mkdir(parents=True)
        self.runtime.mkdir(mode=0o700)
        (self.home / ".aws" / "config").write_text(
            "[default]\nregion = eu-west-1\n\n[profile work]\nregion = eu-west-2\n"
        )
        (self.home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {DEFAULT_KEY}\n"
            f"aws_secret_access_key = {DEFAULT_SECRET}\n\n"
            f"[work]\naws_access_key_id = {WORK_KEY}\naws_secret_access_key = {WORK_SECRET}\n"
        )
        self.socket = str(self.runtime / "wev" / "daemon.sock")
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(self.runtime),
            "TMPDIR": str(self.tmp),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "AWS_ENDPOINT_URL_CODEARTIFACT": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    @property
    def log_file(self) -> Path:
        return self.root / "state" / "wev" / "log" / "daemon.log"

    def write(self, relative: str, text: str) -> Path:
        """Write a file under the user's root (e.g. ``work/project/wev.yml``)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def wev(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``wev`` and wait for it (bounded), with no controlling terminal."""
        return subprocess.run(
            [WEV, *args],
            cwd=cwd or self.project,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # no terminal, as in CI, whoever runs the tests
        )

    def popen_wev(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [WEV, *args],
            cwd=self.project,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )


class Daemon:
    """A real ``wev-daemon`` process on the user's socket."""

    def __init__(
        self, user: User, env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.user = user
        self.stderr_path = user.root / f"daemon-{time.monotonic_ns()}.log"
        with self.stderr_path.open("w") as log:
            self.process = subprocess.Popen(
                [WEV_DAEMON, "--socket", user.socket, "--log-level", "DEBUG", *args],
                env={**user.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            wait_for_socket(user.socket, self.process, timeout=DAEMON_START_TIMEOUT)
        except BaseException:  # no test will stop it
            self.stop(signal.SIGKILL)
            raise

    @property
    def log(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


# A suite started in the background of a script inherits SIGINT ignored (every
# asynchronous command of a non-interactive shell does), and so would each process
# it starts: the Ctrl-C tests need what a terminal gives, its default. A handler
# here becomes the default in what this process runs.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


#: Ports for daemons to bind later, per xdist worker: below the kernel's ephemeral range,
#: which every bind to port 0 and every outgoing connection draws from (another test could
#: take one of those between our choosing it and the daemon binding it), and below wev's
#: own default ports (23000 and up).
PORTS_BASE, PORTS_PER_WORKER = 12000, 1000
_ports = itertools.count()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now that no other test is handed (never a fixed one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = PORTS_BASE + PORTS_PER_WORKER * (int(worker) if worker.isdigit() else 0)
    for _ in range(PORTS_PER_WORKER):
        port = base + next(_ports) % PORTS_PER_WORKER
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # a program outside the tests holds it
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + PORTS_PER_WORKER - 1}")


def kill_processes_of(user: User) -> None:
    """Stop what a test left running for this user: daemons its clients auto-started, and
    clients that outlived their caller (a ``credential_process`` whose daemon was killed
    waits on, and starts another). Each names the user's root in its command line or
    environment (HOME, the socket); this process never does."""
    root = os.fsencode(user.root) + b"/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            named = Path(f"/proc/{entry}/cmdline").read_bytes()
            named += Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if root in named:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``timing`` tests run one at a time, in order, on one worker (``--dist=loadgroup``)."""
    for item in items:
        if item.get_closest_marker("timing") is not None:
            item.add_marker(pytest.mark.xdist_group("timing"))


@pytest.fixture(autouse=True)
def _timing_first(request: pytest.FixtureRequest) -> Iterator[None]:
    """A ``timing`` test gets the CPU before the tests that run beside it.

    Such a test asserts how soon something happens, with bounds meant for a
    machine doing nothing else; under ``pytest -n`` other tests keep the cores
    busy. The thread that runs it, and so every process and thread it starts
    (daemon, ``wev``, fakes), get a higher priority while it runs; timing tests
    never run beside each other (``pytest_collection_modifyitems``). Only root
    may raise a priority: elsewhere the test runs as any other.
    """
    if request.node.get_closest_marker("timing") is None:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)  # on Linux: this thread's
    try:
        os.setpriority(os.PRIO_PROCESS, 0, TIMING_NICE)
    except PermissionError:
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


@pytest.fixture
def fake() -> Iterator[FakeCodeArtifact]:
    with FakeCodeArtifact(CREDENTIALS) as server:
        yield server


@pytest.fixture
def user(fake: FakeCodeArtifact) -> Iterator[User]:
    # A short root: Unix socket paths are limited to ~104 bytes on macOS.
    root = Path(tempfile.mkdtemp(prefix="wev-"))
    person = User(root, fake.url)
    try:
        yield person
        kill_processes_of(person)
        assert_no_token_on_disk(root, fake)
    finally:
        kill_processes_of(person)
        if not os.environ.get("WEV_TEST_KEEP"):  # set it to look at a failed test's files
            shutil.rmtree(root, ignore_errors=True)


def assert_no_token_on_disk(root: Path, fake: FakeCodeArtifact) -> None:
    """After every test: no issued token in any file of its HOME, runtime, state or logs."""
    assert_not_on_disk(root, fake.issued, "a token")


def assert_not_on_disk(root: Path, secrets: Iterable[str | bytes], what: str = "a secret") -> None:
    """None of ``secrets`` in any file under ``root`` (logs included)."""
    wanted = [s.encode() if isinstance(s, str) else s for s in secrets]
    if not wanted:
        return
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                content = path.read_bytes()
            except OSError:
                continue
            assert not [s for s in wanted if s in content], f"{what} was written to {path}"


@pytest.fixture
def daemon(user: User) -> Iterator[Daemon]:
    process = Daemon(user)
    try:
        yield process
    finally:
        process.stop()


LIBFAKETIME = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
#: Where libfaketime keeps a shared-memory segment and a semaphore per process.
SHARED_MEMORY = Path("/dev/shm")


@pytest.fixture
def libfaketime(user: User) -> Iterator[dict[str, str]]:
    """The environment that makes a process's wall clock follow ``~/.faketimerc`` (read on
    every call), its monotonic clock left alone: a laptop's sleep, moved by the test.

    libfaketime unlinks its shared memory only at a normal exit; what a killed or
    exec'd process left is removed afterwards, once that process is gone."""
    if not LIBFAKETIME:
        pytest.skip("libfaketime is not installed (Debian package faketime; .ci/run installs it)")
    (user.home / ".faketimerc").write_text("+0\n")
    before = set(os.listdir(SHARED_MEMORY))
    try:
        yield {
            "LD_PRELOAD": str(LIBFAKETIME[0]),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    finally:
        for name in set(os.listdir(SHARED_MEMORY)) - before:
            owner = name.rpartition("_")[2]
            if name.startswith(("faketime_shm_", "sem.faketime_sem_")) and not _alive(owner):
                with contextlib.suppress(FileNotFoundError):
                    (SHARED_MEMORY / name).unlink()


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


@pytest.fixture
def index(user: User, fake: FakeCodeArtifact) -> Iterator[FakePyPIIndex]:
    """The private PyPI index holding corp-lib 1.2.3; CodeArtifact's endpoints point at it."""
    wheels = user.root / "index"
    build_wheel(wheels, "corp-lib", "1.2.3")
    with FakePyPIIndex(wheels, fake) as server:
        fake.repository_base_url = server.url
        yield server


def output(result: subprocess.CompletedProcess[str]) -> str:
    """A tool's exit status and output, for an assertion's message."""
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
