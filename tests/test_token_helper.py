"""``wev-token``: pnpm's ``tokenHelper`` gets the daemon's CodeArtifact token.

The helper runs as pnpm runs it (an absolute path, no arguments, in the project's folder);
pnpm itself runs the README's recipe in ``tests/test_door_recipes.py`` when it is installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from conftest import BIN, WORK_KEY, Daemon, User
from fakes.codeartifact import FakeCodeArtifact

WEV_TOKEN = str(BIN / "wev-token")
TIMEOUT = 120.0
NPM_WEV_YML = """\
[CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: npm
"""


def run(user: User, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd or user.project,
        env={**user.env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def test_the_helper_prints_a_bearer_header_value(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", NPM_WEV_YML)

    bearer = run(user, WEV_TOKEN)
    raw = run(user, WEV_TOKEN, "--raw")
    named = run(user, WEV_TOKEN, "--raw", "CODEARTIFACT_AUTH_TOKEN")

    assert bearer.returncode == 0, bearer.stderr
    [token] = fake.issued
    assert bearer.stdout == f"Bearer {token}\n"
    assert raw.stdout == named.stdout == f"{token}\n"
    assert fake.call_count == 1  # the daemon's cache answered the others


def test_the_project_entry_wins_over_homes(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    home_entry = NPM_WEV_YML.replace("[CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]", "HOME_NPM")
    user.write("home/.wev.yml", home_entry)
    user.write("work/project/wev.yml", NPM_WEV_YML + "    profile: work\n")

    result = run(user, WEV_TOKEN, "--raw")

    assert result.returncode == 0, result.stderr
    [call] = fake.calls
    assert call.access_key_id == WORK_KEY


def test_an_error_names_the_entry_as_written(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", NPM_WEV_YML + "    profile: nosuch\n")

    result = run(user, WEV_TOKEN)

    assert result.returncode == 69, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("wev-token: [CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]: ")
    assert "'nosuch'" in line and "WEV_CODEARTIFACT" not in line


def test_without_an_entry_one_line(user: User) -> None:
    result = run(user, WEV_TOKEN)

    assert (result.returncode, result.stdout) == (78, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("wev-token: no entry of the wev.yml files for ")
    assert "uses wev-awscodeartifact" in line


def test_a_reader_that_has_gone_ends_it_as_it_ends_cat(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", NPM_WEV_YML)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [WEV_TOKEN],
            cwd=user.project,
            env={**user.env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (-signal.SIGPIPE, "")
