"""Where the socket and the config cache live (``wev_client.paths``).

The client computes the runtime folder without platformdirs (it costs as
much as starting Python), so it must always name the folder platformdirs
would: every case is compared with ``platformdirs.user_runtime_dir("wev")``
computed in a subprocess with the same environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from wev_client import paths

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the XDG rules are Linux's")

PLATFORMDIRS = (
    "import warnings, platformdirs\n"
    "warnings.simplefilter('ignore')\n"
    "print(platformdirs.user_runtime_dir('wev'))"
)


def platformdirs_answer(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PLATFORMDIRS],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.rstrip("\n")


def private(path: Path) -> str:
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return str(path)


def open_to_group(path: Path) -> str:
    path.mkdir()
    path.chmod(0o750)
    return str(path)


def world_writable(path: Path) -> str:
    path.mkdir()
    path.chmod(0o777)
    return str(path)


def missing(path: Path) -> str:
    return str(path)


def a_file(path: Path) -> str:
    path.write_text("")
    path.chmod(0o700)
    return str(path)


def symlink_to_private(path: Path) -> str:
    target = path.parent / "real"
    target.mkdir(mode=0o700)
    path.symlink_to(target)
    return str(path)


def below_a_group_writable_folder(path: Path) -> str:
    path.parent.chmod(0o770)
    return private(path)


def below_a_sticky_shared_folder(path: Path) -> str:
    path.parent.chmod(0o1777)
    return private(path)


def below_a_symlinked_folder(path: Path) -> str:
    real = path.parent / "real-parent"
    real.mkdir(mode=0o700)
    (path.parent / "linked").symlink_to(real)
    private(real / "run")
    return str(path.parent / "linked" / "run")


def with_trailing_slash(path: Path) -> str:
    return private(path) + "/"


def with_dot_segments(path: Path) -> str:
    private(path)
    return str(path.parent / "." / path.name)


def with_dot_dot(path: Path) -> str:
    private(path)
    (path.parent / "sub").mkdir(mode=0o700)
    return str(path.parent / "sub" / ".." / path.name)


def relative(path: Path) -> str:
    private(path)
    return path.name


def empty(path: Path) -> str:
    return ""


def blank(path: Path) -> str:
    return "   "


CASES: list[Callable[[Path], str]] = [
    private,
    open_to_group,
    world_writable,
    missing,
    a_file,
    symlink_to_private,
    below_a_group_writable_folder,
    below_a_sticky_shared_folder,
    below_a_symlinked_folder,
    with_trailing_slash,
    with_dot_segments,
    with_dot_dot,
    relative,
    empty,
    blank,
]


@linux_only
@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_runtime_dir_is_the_folder_platformdirs_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], str]
) -> None:
    base = tmp_path / "base"
    base.mkdir(mode=0o700)
    xdg = make(base / "run")
    # platformdirs reads the process environment: give this process the same one.
    monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
    monkeypatch.chdir(base)
    env = dict(os.environ)

    expected = subprocess.run(
        [sys.executable, "-c", PLATFORMDIRS],
        env=env,
        cwd=base,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.rstrip("\n")

    assert paths.runtime_dir(env) == expected


@linux_only
def test_runtime_dir_without_xdg_runtime_dir_is_platformdirs_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    env = dict(os.environ)

    assert paths.runtime_dir(env) == platformdirs_answer(env)


@linux_only
def test_a_private_xdg_runtime_dir_is_used_without_importing_platformdirs(tmp_path: Path) -> None:
    runtime = private(tmp_path / "run")
    env = {"PATH": os.environ.get("PATH", ""), "XDG_RUNTIME_DIR": runtime}
    code = (
        "import os, sys\n"
        "from wev_client import paths\n"
        "print(paths.runtime_dir(os.environ))\n"
        "print('platformdirs' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == [os.path.join(runtime, "wev"), "False"]
    assert platformdirs_answer(env) == os.path.join(runtime, "wev")


@linux_only
def test_a_rejected_xdg_runtime_dir_prints_no_warning(tmp_path: Path) -> None:
    runtime = open_to_group(tmp_path / "run")
    env = {"PATH": os.environ.get("PATH", ""), "XDG_RUNTIME_DIR": runtime}
    code = "import os\nfrom wev_client import paths\nprint(paths.runtime_dir(os.environ))"

    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    assert result.stderr == ""
    assert result.stdout.strip() != os.path.join(runtime, "wev")


def test_wev_socket_wins(tmp_path: Path) -> None:
    socket = str(tmp_path / "elsewhere" / "my.sock")
    environ = {"WEV_SOCKET": socket, "XDG_RUNTIME_DIR": private(tmp_path / "run")}

    assert paths.socket_path(environ) == socket


def test_an_empty_wev_socket_is_ignored(tmp_path: Path) -> None:
    runtime = private(tmp_path / "run")
    environ = {"WEV_SOCKET": "", "XDG_RUNTIME_DIR": runtime}

    assert paths.socket_path(environ) == os.path.join(paths.runtime_dir(environ), "daemon.sock")


@linux_only
def test_the_socket_lives_in_the_runtime_folder(tmp_path: Path) -> None:
    runtime = private(tmp_path / "run")
    environ = {"XDG_RUNTIME_DIR": runtime}

    assert paths.socket_path(environ) == os.path.join(runtime, "wev", "daemon.sock")


@linux_only
def test_the_config_cache_lives_beside_the_socket(tmp_path: Path) -> None:
    runtime = private(tmp_path / "run")

    assert paths.config_cache_path({"XDG_RUNTIME_DIR": runtime}) == os.path.join(
        runtime, "wev", "config-cache"
    )
    assert paths.config_cache_path({"WEV_SOCKET": "/a/b/daemon.sock"}) == "/a/b/config-cache"
