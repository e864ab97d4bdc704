"""Advice for a socket folder that is not private: never one that harms.

``chmod 0700`` is the next step only for a folder of the user's own that was
left open; a shared sticky folder (``/tmp``, root's own) or another user's
folder gets "set WEV_SOCKET elsewhere" instead, from the client and the
daemon alike. The README's sample lines are the program's own text: they are
produced here by the real ``wev`` and compared.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import COMMAND_TIMEOUT, WEV_DAEMON, User
from readme import sample_line

from wev_client import paths

CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: resolved\n"
ECHO_A = ("sh", "-c", 'printf %s "$A"')


def daemon_refusal(user: User, socket: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WEV_DAEMON, "--socket", str(socket)],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder of root's own, like /tmp, needs root")
def test_a_shared_sticky_folder_of_ones_own_gets_no_chmod_advice(user: User) -> None:
    shared = user.root / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp is: root's, open to all, sticky
    user.write("work/project/wev.yml", CONFIG)
    socket = shared / "wev.sock"

    client = user.wev(*ECHO_A, env={"WEV_SOCKET": str(socket)})
    daemon = daemon_refusal(user, socket)

    assert client.returncode == 0 and client.stdout == "resolved", client.stderr
    assert daemon.returncode == 77, daemon.stderr
    for stderr in (client.stderr, daemon.stderr):
        assert "chmod" not in stderr
        assert f"({paths.ELSEWHERE_HINT})" in stderr
    assert shared.stat().st_mode & 0o7777 == 0o1777


@pytest.mark.skipif(os.geteuid() != 0, reason="/ and /home are root's own")
@pytest.mark.parametrize(
    "socket",
    ["/wev-test-unused.sock", *(["/home/wev-test-unused.sock"] if os.path.isdir("/home") else [])],
)
def test_roots_own_system_folders_get_no_chmod_advice(user: User, socket: str) -> None:
    """As root, / and /home are "yours": closing them would lock every other user out."""
    user.write("work/project/wev.yml", CONFIG)

    client = user.wev(*ECHO_A, env={"WEV_SOCKET": socket})
    daemon = daemon_refusal(user, Path(socket))

    assert client.returncode == 0 and client.stdout == "resolved", client.stderr
    assert daemon.returncode == 77, daemon.stderr
    for stderr in (client.stderr, daemon.stderr):
        assert "chmod" not in stderr and f"({paths.ELSEWHERE_HINT})" in stderr
    assert not os.path.lexists(socket)


def test_a_folder_of_ones_own_left_open_gets_the_chmod_to_run(user: User) -> None:
    folder = user.root / "mine"
    folder.mkdir()
    folder.chmod(0o755)
    user.write("work/project/wev.yml", CONFIG)
    socket = folder / "wev.sock"

    client = user.wev(*ECHO_A, env={"WEV_SOCKET": str(socket)})
    daemon = daemon_refusal(user, socket)

    assert client.returncode == 0 and client.stdout == "resolved", client.stderr
    assert daemon.returncode == 77, daemon.stderr
    for stderr in (client.stderr, daemon.stderr):
        assert f"{folder} is open to other users, mode 0755 (chmod 0700 {folder})" in stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the README's /tmp/shared is root's own here")
def test_the_readmes_sample_for_a_shared_folder_is_the_programs_own_text(user: User) -> None:
    sample = sample_line("wev: warning: not using the daemon at")
    socket = re.search(r"at (\S+): ", sample)
    assert socket, sample
    # The README's folder, made under the test's root instead of /tmp.
    shared = user.root / Path(socket[1]).parent.relative_to("/tmp")
    shared.mkdir()
    shared.chmod(0o1777)
    user.write("work/project/wev.yml", CONFIG)

    result = user.wev(*ECHO_A, env={"WEV_SOCKET": str(shared / Path(socket[1]).name)})

    assert result.returncode == 0, result.stderr
    assert result.stderr.replace(str(user.root), "/tmp") == sample + "\n"


def test_the_readmes_sample_note_for_a_runtime_folder_is_the_programs_own_text(
    user: User,
) -> None:
    sample = sample_line("wev: note: XDG_RUNTIME_DIR is not set")
    temp = user.tmp  # the user's TMPDIR
    temp.chmod(0o1777)
    del user.env["XDG_RUNTIME_DIR"]
    user.socket = str(temp / f"runtime-{os.geteuid()}" / "wev" / "daemon.sock")
    user.write("work/project/wev.yml", CONFIG)
    system = f"/run/user/{os.geteuid()}"
    if os.path.isdir(system) and os.stat(system).st_uid == os.geteuid():
        pytest.skip(f"{system} exists, and platformdirs would use it instead")

    result = user.wev(*ECHO_A)

    assert result.returncode == 0, result.stderr
    shown = result.stderr.replace(str(temp), "/tmp").replace(
        f"runtime-{os.geteuid()}", "runtime-1000"
    )
    assert shown == sample + "\n"
