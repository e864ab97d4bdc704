"""Start-up benchmark of the ``wev`` client against ``python -c pass``.

Run ``.venv/bin/python bench/startup.py [--runs N] [--slow-runs M] [--floors]
[--runtime-on-disk] [--json]`` (about 20 s with the defaults). It sets up an
isolated user (temp HOME with fake AWS keys, a private runtime folder on the
tmpfs ``/dev/shm`` as a Linux user's ``/run/user/UID`` is, or on disk with
``--runtime-on-disk``, two projects whose ``wev.yml`` has a
``wev-echo`` and a ``wev-awscodeartifact`` entry served by the tests' fake
CodeArtifact on 127.0.0.1), starts the real ``wev-daemon``, warms it, and then
measures the wall time of spawning and reaping each command, interleaved in
random order every round so that machine noise hits all of them alike:

- ``/bin/true`` and ``python [-S] -c pass`` (the venv's python) as floors;
- ``wev true`` on the hot path: warm daemon, cached token, unchanged config;
- ``wev true`` right after an edit of ``wev.yml`` (new bytes before every run,
  in the second project, so that the first one's stays unchanged): the daemon
  parses the config;
- ``wev true`` through the launcher that pip before 25.0 writes (it imports
  ``re``), to show what installing ``scripts/wev`` as it is saves;
- ``wev true`` from cold: no daemon and no token (a fresh runtime folder each
  run): it starts the daemon, which fetches a token; measured fewer times;
- ``WEV_NO_DAEMON=1 wev true``: resolution in-process, measured fewer times;
- ``aws codeartifact get-authorization-token`` against the same fake, where
  the AWS CLI is installed ("not installed" otherwise), measured fewer times;
- with ``--floors``, what each side of a warm call costs: ``wev true`` and a
  client of one file against two daemon stand-ins that replay the daemon's
  answers, one answering at once, one from aiohttp's low-level server
  (``bench/standins.py``), and the client of one file against the real daemon.

It prints median, p90 and min per command, their ratio to ``python -c pass``,
verdicts for the targets ("wev true" warm within 1.2x of python -c pass, just
edited within 1.5x), and the client's import profile: the top cumulative ``-X
importtime`` entries of ``import wev_client.cli`` and the modules the hot path
imports beyond a bare ``python -c pass``. ``--json`` prints the same figures
as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import NoReturn, Protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")

sys.path.insert(0, os.path.join(ROOT, "tests"))  # the fakes and the wire helpers
from wire import (  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
    resolve_message,
    wait_for_socket,
)

PYTHON = os.path.join(BIN, "python")
STANDINS = os.path.join(ROOT, "bench", "standins.py")
WEV = os.path.join(BIN, "wev")
WEV_DAEMON = os.path.join(BIN, "wev-daemon")

BASELINE = "python -c pass"
HOT_PATH = "wev true"
EDITED = "wev true, wev.yml just edited"
COLD = "wev true, cold: no daemon, no token"
AWS_CLI = "aws codeartifact get-authorization-token"
#: Commands held to a ratio to BASELINE: the warm call within 1.2x, the call
#: right after an edit (the daemon parses the config) within 1.5x.
TARGETS = {HOT_PATH: 1.2, EDITED: 1.5}

#: Longest any one spawned command may take before it is killed and the run fails.
RUN_TIMEOUT = 60
DAEMON_START_TIMEOUT = 10.0
DAEMON_STOP_TIMEOUT = 10.0
IMPORTTIME_REPEATS = 5
IMPORTTIME_TOP = 8

ACCESS_KEY = "AKIABENCH00000000001"
SECRET_KEY = "bench-secret-key-000000000000000000000000"  # noqa: S105 - fake

WEV_YML = """\
GREETING:
  plugin:
    id: wev-echo
    value: hello
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""

#: Runs the real hot path of ``wev true`` and prints ``sys.modules`` where it would exec
#: (``os.execve``, under ``os.execvpe``'s PATH search, which imports modules of its own).
HOT_PATH_MODULES = """\
import os, sys
def _dump(path, args, env):
    sys.stdout.write("\\n".join(sorted(sys.modules)))
    sys.stdout.flush()
    os._exit(0)
os.execve = _dump
from wev_client.cli import main
sys.exit(main(["true"]))
"""
BARE_MODULES = 'import sys; sys.stdout.write("\\n".join(sorted(sys.modules)))'

#: The launcher that pip before 25.0 (distlib's template) writes for a console script.
OLD_PIP_LAUNCHER = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from wev_client.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


@dataclass(frozen=True)
class Command:
    """One measured command line, run in ``cwd``.

    ``edit``: new bytes in its wev.yml before each run; ``cold``: a fresh
    runtime folder (no daemon, no token) before each run, and the daemon that
    the run started stopped after it. Neither is timed.
    """

    label: str
    argv: tuple[str, ...]
    cwd: str
    slow: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    edit: bool = False
    cold: bool = False


@dataclass(frozen=True)
class Figures:
    label: str
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    ratio: float


@dataclass(frozen=True)
class ImportEntry:
    module: str
    cumulative_us: int
    self_us: int


class Endpoint(Protocol):
    """What the bench uses of the tests' FakeCodeArtifact."""

    @property
    def url(self) -> str: ...

    @property
    def call_count(self) -> int: ...


class RunTimeout(Exception):
    """A spawned command outlived RUN_TIMEOUT."""


# -- the isolated user -----------------------------------------------------------------


@dataclass(frozen=True)
class User:
    root: str
    project: str
    #: A second project, whose wev.yml is touched before each of its runs.
    touched: str
    socket: str
    env: dict[str, str]


#: Where a Linux user's runtime folder is: a tmpfs, as systemd-logind's /run/user/UID is.
TMPFS = "/dev/shm"  # noqa: S108 - only a private folder made by mkdtemp goes there


def make_user(root: str, endpoint: str, runtime_parent: str | None = None) -> User:
    """An isolated user under ``root``; its runtime folder in ``runtime_parent`` if given."""
    home = os.path.join(root, "home")
    runtime = os.path.join(root, "run")
    if runtime_parent is not None:
        runtime = tempfile.mkdtemp(prefix="wev-bench-run-", dir=runtime_parent)  # mode 0700
    project = os.path.join(root, "work", "project")
    touched = os.path.join(root, "work", "touched")
    os.makedirs(os.path.join(home, ".aws"))
    for folder in (project, touched):
        os.makedirs(folder)
        _write(os.path.join(folder, "wev.yml"), WEV_YML)
    if runtime_parent is None:
        os.mkdir(runtime, 0o700)
    _write(os.path.join(home, ".aws", "config"), "[default]\nregion = eu-west-1\n")
    _write(
        os.path.join(home, ".aws", "credentials"),
        f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n",
    )
    sock = os.path.join(runtime, "wev", "daemon.sock")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": runtime,
        "XDG_STATE_HOME": os.path.join(root, "state"),
        "XDG_CACHE_HOME": os.path.join(root, "cache"),
        "XDG_CONFIG_HOME": os.path.join(root, "config"),
        "WEV_SOCKET": sock,
        "AWS_ENDPOINT_URL_CODEARTIFACT": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return User(root, project, touched, sock, env)


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


@contextmanager
def fake_codeartifact() -> Iterator[Endpoint]:
    """The tests' fake CodeArtifact endpoint on 127.0.0.1."""
    # `mypy bench` alone does not see tests/ as a root; the whole-repo run does.
    from fakes.codeartifact import FakeCodeArtifact  # type: ignore[import-not-found,unused-ignore]

    with FakeCodeArtifact({ACCESS_KEY: SECRET_KEY}) as fake:
        yield fake


@contextmanager
def running_daemon(user: User, command: str = WEV_DAEMON) -> Iterator[subprocess.Popen[bytes]]:
    """The real ``wev-daemon`` (``command``) on the user's socket, always stopped on exit."""
    log_path = os.path.join(user.root, "daemon.log")
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [command, "--socket", user.socket],
            env=user.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        try:
            wait_for_socket(user.socket, daemon, DAEMON_START_TIMEOUT)
        except RuntimeError as error:  # it exited: say why
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"{error}:\n{log.read()}") from None
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(DAEMON_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(DAEMON_STOP_TIMEOUT)
        _stop_auto_started_daemon(user, daemon.pid)


def _stop_auto_started_daemon(user: User, ours: int) -> None:
    """If ours died mid-run, a client auto-started another on our socket: stop it."""
    stop_daemon_at(user.socket, ours)


def stop_daemon_at(socket_path: str, ours: int = 0) -> None:
    """Stop the daemon a client started on ``socket_path`` (not ours), and wait until it is gone."""
    try:
        with open(socket_path + ".lock") as lock:
            pid = int(lock.read().strip() or 0)
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read()
    except (OSError, ValueError):
        return
    if not pid or pid == ours or not (b"wev_daemon" in command or b"wev-daemon" in command):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for init to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def fresh_runtime(user: User) -> dict[str, str]:
    """A new private runtime folder beside the user's: no daemon, no token, no parsed config."""
    folder = tempfile.mkdtemp(dir=os.path.dirname(user.env["XDG_RUNTIME_DIR"]))  # mode 0700
    return {"XDG_RUNTIME_DIR": folder, "WEV_SOCKET": os.path.join(folder, "wev", "daemon.sock")}


# -- timing -----------------------------------------------------------------------------


def _on_alarm(signum: int, frame: FrameType | None) -> NoReturn:
    raise RunTimeout


def make_runner(user: User, devnull: int) -> Callable[[Command], int]:
    """A function that spawns a command once and returns its wall time in ns.

    ``posix_spawn`` + ``waitpid`` with a precomputed environment keeps the
    harness's share small and the same for every command; the watchdog alarm
    is armed and disarmed outside the timed span.
    """
    envs: dict[str, dict[str, str]] = {}
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]

    def run(command: Command) -> int:
        env = envs.get(command.label)
        if env is None:
            env = envs[command.label] = {**user.env, **command.extra_env}
        if command.cold:
            env = {**env, **fresh_runtime(user)}
        prepare(command)
        signal.alarm(RUN_TIMEOUT)
        pid = 0
        try:
            start = time.perf_counter_ns()
            pid = os.posix_spawn(command.argv[0], command.argv, env, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            elapsed = time.perf_counter_ns() - start
        except RunTimeout:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            raise RunTimeout(f"{command.label} took longer than {RUN_TIMEOUT} s") from None
        finally:
            signal.alarm(0)
            if command.cold:
                stop_daemon_at(env["WEV_SOCKET"])
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{command.label} failed:\n{check(user, command)}")
        return elapsed

    return run


def prepare(command: Command) -> None:
    """Untimed: posix_spawn has no cwd, so the harness changes its own."""
    if os.getcwd() != command.cwd:
        os.chdir(command.cwd)
    if command.edit:  # new bytes, as an editor would save them: timestamps play no part
        _write("wev.yml", f"{WEV_YML}# edited {time.time_ns()}\n")


def check(user: User, command: Command) -> str:
    """Run a command once with its output captured; its stderr, if it failed."""
    prepare(command)
    env = {**user.env, **command.extra_env}
    if command.cold:
        env.update(fresh_runtime(user))
    try:
        result = subprocess.run(
            command.argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    finally:
        if command.cold:
            stop_daemon_at(env["WEV_SOCKET"])
    if result.returncode != 0:
        return f"exit status {result.returncode}\n{result.stderr}"
    return ""


def measure(
    run: Callable[[Command], int], commands: Sequence[Command], runs: int, slow_runs: int
) -> dict[str, list[int]]:
    """Round-robin: each round runs every command once, in a fresh random order.

    Slow commands join ``slow_runs`` rounds spread evenly over all of them.
    """
    times: dict[str, list[int]] = {command.label: [] for command in commands}
    for round_ in range(runs):
        slow_due = (round_ + 1) * slow_runs // runs != round_ * slow_runs // runs
        due = [command for command in commands if slow_due or not command.slow]
        random.shuffle(due)
        for command in due:
            times[command.label].append(run(command))
    return times


def summarise(times: Mapping[str, list[int]]) -> list[Figures]:
    baseline = statistics.median(times[BASELINE])
    figures = []
    for label, samples in times.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
        figures.append(
            Figures(
                label, len(samples), median / 1e6, p90 / 1e6, min(samples) / 1e6, median / baseline
            )
        )
    return figures


# -- import profile --------------------------------------------------------------------


def import_profile(user: User) -> list[ImportEntry]:
    """Top cumulative ``-X importtime`` entries of ``import wev_client.cli``, best of 5.

    Only modules that a bare ``python -c pass`` does not already import count.
    """
    startup = {entry.module for entry in _importtime(user, "pass")}
    best: dict[str, ImportEntry] = {}
    for _ in range(IMPORTTIME_REPEATS):
        for entry in _importtime(user, "import wev_client.cli"):
            if entry.module in startup:
                continue
            known = best.get(entry.module)
            if known is None or entry.cumulative_us < known.cumulative_us:
                best[entry.module] = entry
    ranked = sorted(best.values(), key=lambda entry: entry.cumulative_us, reverse=True)
    return ranked[:IMPORTTIME_TOP]


def _importtime(user: User, code: str) -> list[ImportEntry]:
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code],
        env=user.env,
        cwd=user.project,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    entries = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, module = line.removeprefix("import time:").split("|")
        entries.append(ImportEntry(module.strip(), int(cumulative), int(own)))
    return entries


def extra_modules(user: User) -> list[str]:
    """Modules loaded on the real hot path of ``wev true`` but not by ``python -c pass``."""
    hot = _modules(user, HOT_PATH_MODULES)
    bare = _modules(user, BARE_MODULES)
    return sorted(set(hot) - set(bare))


def _modules(user: User, code: str) -> list[str]:
    result = subprocess.run(
        [PYTHON, "-c", code],
        env=user.env,
        cwd=user.project,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    return result.stdout.split()


# -- reporting -------------------------------------------------------------------------


def report(
    figures: Sequence[Figures],
    imports: Sequence[ImportEntry],
    extra: Sequence[str],
    codeartifact_calls: int,
    aws_cli: str | None,
    runtime_folder: str = "on disk",
) -> dict[str, object]:
    ratios = {item.label: item.ratio for item in figures}
    return {
        "python": sys.version.split()[0],
        "runtime_folder": runtime_folder,
        "codeartifact_calls": codeartifact_calls,
        "aws_cli": aws_cli or "not installed",
        "targets": [
            {
                "command": label,
                "baseline": BASELINE,
                "limit": limit,
                "ratio": round(ratios[label], 3),
                "pass": ratios[label] <= limit,
            }
            for label, limit in TARGETS.items()
        ],
        "commands": [
            {
                "command": item.label,
                "runs": item.runs,
                "median_ms": round(item.median_ms, 3),
                "p90_ms": round(item.p90_ms, 3),
                "min_ms": round(item.min_ms, 3),
                "ratio": round(item.ratio, 3),
            }
            for item in figures
        ],
        "importtime_top": [
            {"module": item.module, "cumulative_us": item.cumulative_us, "self_us": item.self_us}
            for item in imports
        ],
        "hot_path_extra_modules": list(extra),
    }


def print_text(
    figures: Sequence[Figures],
    imports: Sequence[ImportEntry],
    extra: Sequence[str],
    aws_cli: str | None,
) -> None:
    width = max(len(item.label) for item in figures)
    print(
        f"{'command':<{width}}  {'runs':>5}  {'median ms':>9}  {'p90 ms':>7}  {'min ms':>7}  ratio"
    )
    for item in figures:
        print(
            f"{item.label:<{width}}  {item.runs:>5}  {item.median_ms:>9.2f}  "
            f"{item.p90_ms:>7.2f}  {item.min_ms:>7.2f}  {item.ratio:>4.2f}x"
        )
    if aws_cli is None:
        print(f"{AWS_CLI:<{width}}  not installed")
    print()
    for label, limit in TARGETS.items():
        ratio = next(item.ratio for item in figures if item.label == label)
        verdict = "PASS" if ratio <= limit else "MISS"
        print(f"target: {label} within {limit}x of {BASELINE}: {verdict} ({ratio:.2f}x)")
    print(f"\nimport wev_client.cli, -X importtime best of {IMPORTTIME_REPEATS}, top cumulative:")
    for entry in imports:
        print(f"  {entry.cumulative_us:>7} us  (self {entry.self_us:>5} us)  {entry.module}")
    print(f"\nmodules on the hot path beyond python -c pass ({len(extra)}):")
    print("  " + " ".join(extra))


# -- main ------------------------------------------------------------------------------


def find_aws_cli() -> str | None:
    """The AWS CLI's own launcher, or None when it is not installed."""
    found = shutil.which("aws")
    if found is None or "/shims/" not in found or shutil.which("pyenv") is None:
        return found
    # A pyenv shim is a shell script that adds its own start-up: time the CLI itself.
    result = subprocess.run(
        ["pyenv", "which", "aws"], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def old_pip_launcher(user: User) -> str:
    """``wev`` as pip before 25.0 would launch it (distlib's template imports ``re``)."""
    path = os.path.join(user.root, "old-pip-wev")
    _write(path, OLD_PIP_LAUNCHER.format(python=PYTHON))
    os.chmod(path, 0o700)
    return path


def commands_for(user: User, aws_cli: str | None) -> list[Command]:
    wev_true = (WEV, "true")
    no_daemon = {"WEV_NO_DAEMON": "1"}
    commands = [
        Command("/bin/true", ("/bin/true",), user.project),
        Command("python -S -c pass", (PYTHON, "-S", "-c", "pass"), user.project),
        Command(BASELINE, (PYTHON, "-c", "pass"), user.project),
        Command(HOT_PATH, wev_true, user.project),
        Command(EDITED, wev_true, user.touched, edit=True),
        Command("wev true, old pip's launcher", (old_pip_launcher(user), "true"), user.project),
        Command(COLD, wev_true, user.project, slow=True, cold=True),
        Command("WEV_NO_DAEMON=1 wev true", wev_true, user.project, slow=True, extra_env=no_daemon),
    ]
    if aws_cli is not None:
        argv = (aws_cli, "codeartifact", "get-authorization-token", "--domain", "corp")
        commands.append(Command(AWS_CLI, argv, user.project, slow=True))
    return commands


def floor_commands(user: User, sockets: Mapping[str, str], request_file: str) -> list[Command]:
    """``wev true`` and a one-file client against each daemon stand-in (``standins``),
    and the one-file client against the real daemon."""
    argv = (PYTHON, STANDINS, "client", user.socket, request_file, "true")
    commands = [Command("one-file client, the daemon", argv, user.project)]
    for kind, label in (
        ("at-once", "a stand-in answering at once"),
        ("aiohttp", "an aiohttp stand-in"),
    ):
        path = sockets[kind]
        commands.append(
            Command(
                f"wev true, {label}", (WEV, "true"), user.project, extra_env={"WEV_SOCKET": path}
            )
        )
        argv = (PYTHON, STANDINS, "client", path, request_file, "true")
        commands.append(Command(f"one-file client, {label}", argv, user.project))
    return commands


@contextmanager
def daemon_standins(user: User, folder: str) -> Iterator[dict[str, str]]:
    """The ``standins`` daemons, each on a socket in a private folder, answering as the
    user's daemon does; the sockets by kind."""
    sockets: dict[str, str] = {}
    processes = []
    try:
        for kind in ("at-once", "aiohttp"):
            path = os.path.join(tempfile.mkdtemp(dir=folder), "daemon.sock")  # mode 0700
            process = subprocess.Popen(
                [PYTHON, STANDINS, kind, path, user.socket],
                env=user.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            processes.append(process)
            wait_for_socket(path, process, DAEMON_START_TIMEOUT)
            sockets[kind] = path
        yield sockets
    finally:
        for process in processes:
            process.kill()
            process.wait(DAEMON_STOP_TIMEOUT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="runs of each fast command")
    parser.add_argument(
        "--slow-runs", type=int, default=30, help="runs of cold start, WEV_NO_DAEMON=1 and aws"
    )
    parser.add_argument(
        "--runtime-on-disk",
        action="store_true",
        help=f"keep the runtime folder on disk rather than on the tmpfs {TMPFS}",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also time wev and a one-file client against daemon stand-ins (bench/standins.py)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.slow_runs < 2:
        parser.error("--runs and --slow-runs need at least 2 runs each")
    slow_runs = min(args.slow_runs, args.runs)

    root = tempfile.mkdtemp(prefix="wev-bench-")  # short: socket paths are limited
    # The runtime folder (socket, parsed-config cache) where Linux has it: on a tmpfs.
    on_tmpfs = not args.runtime_on_disk and os.path.isdir(TMPFS) and os.access(TMPFS, os.W_OK)
    runtime_parent = tempfile.mkdtemp(prefix="wev-bench-", dir=TMPFS) if on_tmpfs else None
    previous_alarm = signal.signal(signal.SIGALRM, _on_alarm)
    previous_cwd = os.getcwd()
    try:
        with fake_codeartifact() as fake:
            user = make_user(root, fake.url, runtime_parent)
            aws_cli = find_aws_cli()
            with running_daemon(user), contextlib.ExitStack() as stack:
                commands = commands_for(user, aws_cli)
                floors: list[Command] = []
                if args.floors:
                    sockets = stack.enter_context(daemon_standins(user, root))
                    request_file = os.path.join(root, "request")
                    message = resolve_message(user.project, user.env["HOME"], user.env)
                    with open(request_file, "wb") as file:
                        file.write(message)
                    floors = floor_commands(user, sockets, request_file)
                    commands += floors
                # Warm-up: the daemon caches the token, wev the config, python its .pyc
                # files; the stand-ins the daemon's answers (twice: an edit, then a call).
                for command in [*commands, *floors]:
                    error = check(user, command)
                    if error:
                        raise RuntimeError(f"{command.label} failed:\n{error}")
                if not os.path.exists(os.path.join(os.path.dirname(user.socket), "config-cache")):
                    raise RuntimeError("wev wrote no config cache: the hot path is not measured")
                print(f"measuring {args.runs} rounds...", file=sys.stderr)
                calls_before = fake.call_count
                with open(os.devnull, "r+b") as devnull:
                    run = make_runner(user, devnull.fileno())
                    times = measure(run, commands, args.runs, slow_runs)
                # Only cold, WEV_NO_DAEMON=1 and aws runs reach CodeArtifact; the daemon has
                # the token for the others.
                upstream_calls = fake.call_count - calls_before
                imports = import_profile(user)
                extra = extra_modules(user)
    finally:
        os.chdir(previous_cwd)
        signal.signal(signal.SIGALRM, previous_alarm)
        shutil.rmtree(root, ignore_errors=True)
        if runtime_parent is not None:
            shutil.rmtree(runtime_parent, ignore_errors=True)

    figures = summarise(times)
    if args.json:
        where = f"on the tmpfs {TMPFS}" if on_tmpfs else "on disk"
        print(json.dumps(report(figures, imports, extra, upstream_calls, aws_cli, where), indent=2))
    else:
        print(
            f"python {sys.version.split()[0]}, {args.runs} rounds in random order "
            f"({slow_runs} of the slow ones); CodeArtifact calls: {upstream_calls}; "
            f"runtime folder {'on the tmpfs ' + TMPFS if on_tmpfs else 'on disk'}\n"
        )
        print_text(figures, imports, extra, aws_cli)
    return 0


if __name__ == "__main__":
    sys.exit(main())
