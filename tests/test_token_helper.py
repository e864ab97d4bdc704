"""``wev-token``: pnpm's ``tokenHelper`` gets the daemon's CodeArtifact token.

The helper runs as pnpm runs it (an absolute path, no arguments, in the project's folder);
pnpm itself installs from the private npm registry stub when it is on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.npm_registry import FakeNpmRegistry, build_package

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


def test_without_an_entry_one_line(user: User) -> None:
    result = run(user, WEV_TOKEN)

    assert (result.returncode, result.stdout) == (78, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("wev-token: no entry of the wev.yml files for ")
    assert "uses wev-awscodeartifact" in line


@pytest.fixture
def registry(fake: FakeCodeArtifact) -> Iterator[FakeNpmRegistry]:
    with FakeNpmRegistry(fake) as server:
        server.add(build_package("corp-widget", "1.0.0", "module.exports = 'widget 1.0.0';\n"))
        fake.repository_base_url = server.url
        yield server


def test_pnpm_installs_with_the_token_helper(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    pnpm = shutil.which("pnpm")
    if pnpm is None:
        pytest.skip("pnpm is not installed (npm install -g pnpm)")
    registry_url = registry.registry_url("shared")
    # pnpm takes tokenHelper from the user's ~/.npmrc only; the project names the registry.
    user.write("home/.npmrc", f"{registry_url.partition(':')[2]}:tokenHelper={WEV_TOKEN}\n")
    user.write("work/project/.npmrc", f"registry={registry_url}\n")
    user.write("work/project/wev.yml", NPM_WEV_YML)
    user.write(
        "work/project/package.json",
        '{"name": "app", "version": "1.0.0", "private": true,'
        ' "dependencies": {"corp-widget": "1.0.0"}}\n',
    )

    result = subprocess.run(
        [pnpm, "install", "--store-dir", str(user.root / "pnpm-store")],
        cwd=user.project,
        env={
            **user.env,
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
            "npm_config_update_notifier": "false",
            "PATH": f"{BIN}{os.pathsep}{user.env['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    installed = user.project / "node_modules" / "corp-widget" / "index.js"
    assert installed.read_text() == "module.exports = 'widget 1.0.0';\n"
    assert registry.attempts and all(attempt.valid for attempt in registry.attempts)
