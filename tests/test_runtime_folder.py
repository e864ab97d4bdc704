"""Where the socket goes without ``$XDG_RUNTIME_DIR``, and a socket path too long to use.

Without ``$XDG_RUNTIME_DIR`` (ssh sessions, containers) platformdirs names
``runtime-<uid>`` in the temporary folder; ``$TMPDIR`` points that at a
folder of the test's, so the real /tmp is left alone.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import throwaway_user, why_no_throwaway_user
from conftest import COMMAND_TIMEOUT, WEV_DAEMON, User

from wev_client import paths

CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: resolved\n"
ECHO_A = ("sh", "-c", 'printf %s "$A"')


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "the XDG fallback is Linux's"
    system = f"/run/user/{os.geteuid()}"
    if os.path.isdir(system) and os.stat(system).st_uid == os.geteuid():
        return f"{system} exists, and platformdirs would use it instead"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@pytest.fixture
def no_xdg(user: User) -> Iterator[Path]:
    """The user without XDG_RUNTIME_DIR; the temporary folder, sticky like /tmp."""
    temp = user.tmp  # the user's TMPDIR
    temp.chmod(0o1777)
    del user.env["XDG_RUNTIME_DIR"]
    # The fixture stops any daemon found beside user.socket when the test ends.
    user.socket = str(temp / f"runtime-{os.geteuid()}" / "wev" / "daemon.sock")
    yield temp


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_fallback_folder_is_made_private_and_said_once(user: User, no_xdg: Path) -> None:
    user.write("work/project/wev.yml", CONFIG)
    base = no_xdg / f"runtime-{os.geteuid()}"

    first = user.wev(*ECHO_A)
    second = user.wev(*ECHO_A)

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout == "resolved"
    assert first.stderr == (
        f"wev: note: XDG_RUNTIME_DIR is not set; the daemon's socket is in {base / 'wev'}, "
        "created for you alone (mode 0700)\n"
    )
    assert second.stderr == ""
    assert mode(base) == mode(base / "wev") == 0o700
    assert os.lstat(base).st_uid == os.geteuid()
    assert stat.S_ISSOCK(os.lstat(base / "wev" / "daemon.sock").st_mode)


def test_a_fallback_folder_that_is_a_symlink_is_not_used(user: User, no_xdg: Path) -> None:
    user.write("work/project/wev.yml", CONFIG)
    elsewhere = user.root / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (no_xdg / f"runtime-{os.geteuid()}").symlink_to(elsewhere)

    result = user.wev(*ECHO_A)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "resolved"
    [line] = result.stderr.splitlines()
    assert line.startswith("wev: warning: no private place for the daemon's socket: "), line
    assert "symlink" in line and line.endswith("; resolving in this process")
    assert os.listdir(elsewhere) == []


def test_a_fallback_folder_another_user_made_first_is_not_used(user: User, no_xdg: Path) -> None:
    """The temporary folder is shared: another user may create runtime-<uid> before us."""
    if reason := why_no_throwaway_user():
        pytest.skip(reason)
    user.write("work/project/wev.yml", CONFIG)
    base = no_xdg / f"runtime-{os.geteuid()}"
    with throwaway_user() as other:
        base.mkdir(mode=0o777)
        os.chown(base, other.pw_uid, other.pw_gid)
        base.chmod(0o777)

        result = user.wev(*ECHO_A)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "resolved"
    [line] = result.stderr.splitlines()
    assert "no private place for the daemon's socket" in line, line
    assert f"uid {other.pw_uid}" in line
    assert os.listdir(base) == []


def test_a_socket_path_too_long_is_one_line_and_the_command_runs(user: User) -> None:
    user.write("work/project/wev.yml", CONFIG)
    folder = user.root / ("long-" * 30)
    path = str(folder / "daemon.sock")
    limit = f"Unix sockets allow at most {paths.MAX_SOCKET_PATH} here"

    result = user.wev(*ECHO_A, env={"WEV_SOCKET": path})
    status = user.wev("--status", env={"WEV_SOCKET": path})
    daemon = subprocess.run(
        [WEV_DAEMON, "--socket", path],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "resolved"
    [line] = result.stderr.splitlines()
    assert line.startswith(f"wev: warning: not using the daemon at {path}: "), line
    assert limit in line and line.endswith("; resolving in this process")
    assert status.returncode == 69
    [line] = status.stderr.splitlines()
    assert limit in line
    assert daemon.returncode == 78
    [line] = daemon.stderr.splitlines()
    assert line.startswith(f"wev-daemon: cannot listen on {path}: ") and limit in line
    assert not folder.exists()
