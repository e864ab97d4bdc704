"""A real package client: pip installs from a private index that only accepts a
currently valid token from the fake CodeArtifact endpoint."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import BIN, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from fakes.wheels import build_wheel

CONFIG = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""

PIP_FLAGS = (
    "--no-input",
    "--no-deps",
    "--no-cache-dir",
    "--disable-pip-version-check",
    "--keyring-provider",
    "disabled",
)


def test_wev_pip_install_from_private_index(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    wheels = user.root / "wheels"
    wheels.mkdir()
    build_wheel(wheels, "corp-lib", "1.2.3")
    user.write("work/project/wev.yml", CONFIG)
    target = user.root / "target"
    env = {"PATH": f"{BIN}{os.pathsep}{user.env['PATH']}", "NO_PROXY": "127.0.0.1"}

    with FakePyPIIndex(wheels, fake) as index:
        port = index.url.rsplit(":", 1)[1]
        result = user.wev(
            "pip",
            "install",
            *PIP_FLAGS,
            "--target",
            str(target),
            "--index-url",
            f"http://aws:${{CODEARTIFACT_AUTH_TOKEN}}@127.0.0.1:{port}/simple/",
            "corp-lib",
            env=env,
            timeout=180,
        )
        attempts = index.attempts

    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert attempts and all(attempt.valid for attempt in attempts)
    assert fake.call_count == 1


def test_pip_is_refused_without_wev(user: User, fake: FakeCodeArtifact, tmp_path: Path) -> None:
    """The index really checks the token: the same command without wev fails."""
    wheels = user.root / "wheels"
    wheels.mkdir()
    build_wheel(wheels, "corp-lib", "1.2.3")
    env = {"PATH": f"{BIN}{os.pathsep}{user.env['PATH']}", "NO_PROXY": "127.0.0.1"}

    with FakePyPIIndex(wheels, fake) as index:
        port = index.url.rsplit(":", 1)[1]
        import subprocess

        result = subprocess.run(
            [
                str(BIN / "pip"),
                "install",
                *PIP_FLAGS,
                "--target",
                str(tmp_path / "t"),
                "--index-url",
                f"http://aws:not-a-token@127.0.0.1:{port}/simple/",
                "corp-lib",
            ],
            env={**user.env, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )

    assert result.returncode != 0
    assert not (tmp_path / "t" / "corp_lib.py").exists()
