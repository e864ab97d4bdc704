"""Hostile configuration through the real ``wev``: huge, binary, alias bombs,
symlink loops. Each gives one clear line and a non-zero exit
within bounded time and memory, never a traceback, and the command never runs."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import WEV, User

#: Address space the client may use: a YAML bomb that expanded would need far more.
MEMORY_LIMIT = 512 * 1024 * 1024
TIME_BOUND = 5.0

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)),
        "X:\n  plugin:\n    id: wev-echo\n    value: *i",
    ]
)


def huge(project: Path) -> None:
    (project / "wev.yml").write_text("# padding\n" * 300_000)


def binary(project: Path) -> None:
    (project / "wev.yml").write_bytes(bytes(range(256)) * 64)


def bomb(project: Path) -> None:
    (project / "wev.yml").write_text(BILLION_LAUGHS)


def self_loop(project: Path) -> None:
    (project / "wev.yml").symlink_to(project / "wev.yml")


def mutual_loop(project: Path) -> None:
    (project / "wev.yml").symlink_to(project / ".wev.yml")
    (project / ".wev.yml").symlink_to(project / "wev.yml")


def a_folder(project: Path) -> None:
    (project / "wev.yml").mkdir()


def deep(project: Path) -> None:
    (project / "wev.yml").write_text("A: " + "[" * 20_000 + "]" * 20_000)


CASES: list[tuple[Callable[[Path], None], str]] = [
    (huge, "larger than"),
    (binary, "wev.yml"),
    (bomb, "alias"),
    (self_loop, "loop"),
    (mutual_loop, "loop"),
    (a_folder, "wev.yml"),
    (deep, "wev.yml"),
]


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize(("make", "expected"), CASES, ids=[make.__name__ for make, _ in CASES])
@pytest.mark.parametrize("no_daemon", ["0", "1"])
def test_hostile_config_is_one_clear_line(
    user: User, make: Callable[[Path], None], expected: str, no_daemon: str
) -> None:
    make(user.project)
    marker = user.root / "ran"

    started = time.monotonic()
    result = subprocess.run(
        [WEV, "touch", str(marker)],
        cwd=user.project,
        env={**user.env, "WEV_NO_DAEMON": no_daemon},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited_memory,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 78, result.stderr
    assert not marker.exists()
    [line] = result.stderr.splitlines()
    assert line.startswith("wev: ") and expected in line, line
    assert elapsed < TIME_BOUND


def test_a_folder_symlink_loop_above_the_project_is_harmless(user: User) -> None:
    """A link from a folder to its own parent: the walk up from the working folder ends."""
    (user.project / "wev.yml").write_text("A:\n  plugin:\n    id: wev-echo\n    value: ok\n")
    (user.project / "again").symlink_to(user.project)
    deep = user.project.joinpath(*["again"] * 30)

    result = user.wev("sh", "-c", 'printf %s "$A"', cwd=deep, env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_skipped_with_one_warning(user: User) -> None:
    config = user.project / "wev.yml"
    config.write_text("A:\n  plugin:\n    id: wev-echo\n    value: x\n")
    config.chmod(0)

    result = user.wev("sh", "-c", 'printf %s "${A-unset}"', env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "unset"
    assert result.stderr == f"wev: warning: skipping {config}: cannot read: Permission denied\n"
