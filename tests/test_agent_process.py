"""The daemon keeps nothing of the shell or the folder it was started from.

The real ``wev`` starts the real daemon from a project folder holding modules
named like the standard library's, in a shell holding secrets; the daemon's
process is then read from ``/proc``. Once a process is not dumpable, its
``/proc/PID`` files belong to root, so most checks need root; the one that
shows it is not dumpable runs the daemon as a throwaway user.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import as_user, throwaway_user, why_no_throwaway_user
from conftest import WEV_DAEMON, Daemon, User
from readme import README
from wire import wait_for_socket

from wev_client.paths import DAEMON_ENV, DAEMON_ENV_PREFIXES

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="reads the daemon's process from Linux's /proc"
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="a process that is not dumpable has /proc files only root can read",
)

#: What a shell that runs `wev` may hold: none of it belongs in a long-lived daemon.
SECRETS = {
    "CODEARTIFACT_AUTH_TOKEN": "token-of-an-earlier-project",
    "PIP_INDEX_URL": "https://aws:token-in-an-index-url@corp.example/simple/",
    "SOME_APP_PASSWORD": "password-of-another-app",
    "AWS_SECRET_ACCESS_KEY": "secret-key-of-the-shell",
    "PYTHONPATH": "/nowhere/a-project/src",
    # The starter's proxy (its password too): each request carries the caller's own.
    "HTTPS_PROXY": "http://alice:proxy-password@proxy.corp:3128",
    "no_proxy": ".corp",
}
#: Modules any daemon imports; a project folder may hold files of these names.
PLANTED = ("json", "logging", "argparse", "asyncio", "socket")
CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: from-wev\n"
ECHO_A = ("sh", "-c", 'printf %s "$A"')


def plant_modules(user: User) -> Path:
    """Modules in the project folder that leave a mark when imported; the marks' folder."""
    marks = user.root / "imported"
    marks.mkdir()
    marks.chmod(0o777)  # whoever runs the daemon can leave a mark
    for name in PLANTED:
        (user.project / f"{name}.py").write_text(f"open({str(marks / name)!r}, 'w').close()\n")
    return marks


def daemon_pid(user: User) -> int:
    """The pid of the daemon serving the user's socket, from its lock file."""
    return int(Path(user.socket + ".lock").read_text().strip())


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(
        item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item
    )


def core_limit(pid: int) -> list[str]:
    """Soft and hard core-file limits, as /proc/PID/limits shows them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


@needs_root
def test_the_started_daemon_has_none_of_the_shells_secrets_nor_its_folder(user: User) -> None:
    user.write("work/project/wev.yml", CONFIG)
    marks = plant_modules(user)

    result = user.wev(*ECHO_A, env=SECRETS)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "from-wev"
    pid = daemon_pid(user)
    environ = environ_of(pid)
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    for name, value in SECRETS.items():
        assert name not in environ, f"{name} reached the daemon"
        assert value.encode() not in raw
    assert environ["HOME"] == user.env["HOME"]
    assert environ["XDG_RUNTIME_DIR"] == user.env["XDG_RUNTIME_DIR"]
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    assert sorted(path.name for path in marks.iterdir()) == []
    assert core_limit(pid) == ["0", "0"]
    assert b"-P" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


@needs_root
def test_a_daemon_started_by_hand_leaves_its_folder(user: User) -> None:
    """However it was started (a shell, a service manager), it chdirs to / and drops core files."""
    log = (user.root / "daemon.log").open("w")
    with log:
        process = subprocess.Popen(
            [WEV_DAEMON, "--socket", user.socket],
            cwd=user.project,
            env={**user.env, **SECRETS},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_socket(user.socket, process)

        assert os.readlink(f"/proc/{process.pid}/cwd") == "/"
        assert core_limit(process.pid) == ["0", "0"]
    finally:
        process.terminate()
        process.wait(10)


#: A plugin that answers with the names in the daemon's environment, installed
#: beside wev as any third-party plugin is.
ENV_NAMES_PLUGIN = """
import os
from wev_daemon.plugins import Plugin, Resolution


class EnvNames(Plugin[None]):
    id = "wev-env-names"

    def parse(self, properties):
        return None

    async def resolve(self, settings, context):
        return Resolution((",".join(sorted(os.environ)),))
"""


def install_env_names_plugin(site: Path) -> None:
    (site / "wev_env_names").mkdir(parents=True)
    (site / "wev_env_names" / "__init__.py").write_text(ENV_NAMES_PLUGIN)
    info = site / "wev_env_names-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wev-env-names\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[wev.plugins]\nwev-env-names = wev_env_names:EnvNames\n"
    )


def test_what_a_daemon_started_by_hand_runs_sees_none_of_the_shells_secrets(user: User) -> None:
    """Its /proc/PID/environ cannot change, but what it and its children read can."""
    site = user.root / "site"
    install_env_names_plugin(site)
    user.write("work/project/wev.yml", "NAMES:\n  plugin:\n    id: wev-env-names\n")
    daemon = Daemon(user, env={**SECRETS, "PYTHONPATH": str(site)})
    try:
        result = user.wev("sh", "-c", 'printf %s "$NAMES"')
    finally:
        daemon.stop()

    assert result.returncode == 0, result.stderr
    names = result.stdout.split(",")
    assert "HOME" in names and "XDG_RUNTIME_DIR" in names
    assert [name for name in SECRETS if name in names] == []


@pytest.fixture
def runner(user: User) -> Iterator[pwd.struct_passwd | None]:
    """Who runs the daemon: a throwaway user when the tests are root, else the tests' own.

    Root may read any process's memory, so a daemon of root's shows nothing.
    """
    if os.geteuid() != 0:
        yield None
        return
    if reason := why_no_throwaway_user():
        pytest.skip(reason)
    with throwaway_user() as account:
        probe = subprocess.run(
            [*as_user(account), WEV_DAEMON, "--version"], capture_output=True, timeout=60
        )
        if probe.returncode != 0:
            pytest.skip(f"a throwaway user cannot run {WEV_DAEMON}: {probe.stderr!r}")
        for path in (user.root, *user.root.rglob("*")):
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        yield account


def test_the_daemon_is_not_dumpable(user: User, runner: pwd.struct_passwd | None) -> None:
    """Other processes of its own user can read neither its memory nor its environ."""
    prefix = as_user(runner) if runner else []
    uid = runner.pw_uid if runner else os.getuid()
    log = (user.root / "daemon.log").open("w")
    with log:
        process = subprocess.Popen(
            [*prefix, WEV_DAEMON, "--socket", user.socket],
            cwd=user.project,
            env={**user.env, **SECRETS},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_socket(user.socket, process)
        pid = process.pid  # setpriv execs the daemon: the same process
        assert f"Uid:\t{uid}\t" in Path(f"/proc/{pid}/status").read_text()

        # The kernel gives a process that is not dumpable /proc files of root's.
        assert os.stat(f"/proc/{pid}/status").st_uid == 0
        read_it = subprocess.run(
            [*prefix, "cat", f"/proc/{pid}/environ"], capture_output=True, timeout=30
        )
        assert read_it.returncode != 0 and b"Permission denied" in read_it.stderr
        # An ordinary process of the same user is readable: the refusal is the daemon's doing.
        own = subprocess.run(
            [*prefix, "sh", "-c", "cat /proc/$$/environ"], capture_output=True, timeout=30
        )
        assert own.returncode == 0 and b"PATH=" in own.stdout
    finally:
        process.terminate()
        process.wait(10)


def test_the_readme_lists_what_the_daemon_keeps() -> None:
    text = " ".join(README.read_text().split())
    listed = text.split("Of the shell's environment it gets only ", 1)[1].split(":", 1)[0]

    kept = {*DAEMON_ENV, *(prefix + "*" for prefix in DAEMON_ENV_PREFIXES)}
    assert set(re.findall(r"`([A-Z_*]+)`", listed)) == kept
