"""Package tools and the keyring CLI as tests run them beside ``wev``.

``isolated_env`` is what every tool run needs: this venv's scripts first on PATH, local fakes
reached directly, pip and uv isolated from this machine's configuration. ``keyring_env`` is a
tool's whole environment when keyring finds wev's backend; ``run_tool`` runs one in the user's
project with nothing on stdin, bounded; ``start_keyring_lookup`` starts a lookup with no
terminal. The repository the keyring tests ask for is here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import BIN, User

TOOL_TIMEOUT = 120.0

#: A CodeArtifact host: it names the domain, its owner and the region by itself.
CODEARTIFACT_HOST = "corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com"
CODEARTIFACT_URL = f"https://{CODEARTIFACT_HOST}/pypi/shared/simple/"
#: The repository of CODEARTIFACT_URL in wev.yml: its token and its index URL (whose
#: endpoint a stand-in, the tests' index, may answer instead).
REPOSITORY_WEV_YML = """\
[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL]:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: pypi
"""


def isolated_env(user: User) -> dict[str, str]:
    """What every tool run needs: this venv's scripts first on PATH, local fakes reached
    directly, pip and uv isolated from this machine's configuration (its pip.conf may add
    indexes: a package must come from the private one only)."""
    return {
        "PATH": f"{BIN}{os.pathsep}{user.env['PATH']}",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
    }


def keyring_env(user: User) -> dict[str, str]:
    """The user's environment for a tool that asks keyring: keyring picks its backends itself
    (wev's, through its entry point), its data under the test's root."""
    return {**user.env, **isolated_env(user), "XDG_DATA_HOME": str(user.root / "data")}


def start_keyring_lookup(
    user: User, script: str, url: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    """``script`` (``python -c``, given ``url``) asking wev's keyring backend as pip or an IDE
    does, in a process with no terminal: a session of its own, nothing on stdin."""
    return subprocess.Popen(
        (sys.executable, "-c", script, url),
        cwd=user.project,
        env={**user.env, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_tool(user: User, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd or user.project,
        env=keyring_env(user),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
