"""Throwaway local users for tests of what another user can and cannot do.

Made with ``useradd`` and removed with ``userdel``, so only when the tests run
as root; processes run as one under ``setpriv``. ``run_client_as`` runs the
real client as such a user: its hot path needs only the standard library and
PyYAML, so the system Python runs it from a copy of ``wev_client``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from conftest import User

SYSTEM_PYTHON = "/usr/bin/python3"


def why_no_throwaway_user() -> str | None:
    """Why no throwaway user can be made here, or None."""
    if os.geteuid() != 0:
        return "creating a throwaway user needs root"
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def why_no_client_as_another_user() -> str | None:
    """Why the client cannot run as a throwaway user here, or None."""
    if reason := why_no_throwaway_user():
        return reason
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import yaml"], capture_output=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} with PyYAML is needed to run the client as another user"
    return None


@contextlib.contextmanager
def throwaway_user(home: Path | None = None) -> Iterator[pwd.struct_passwd]:
    """A new user with no login shell, removed afterwards.

    ``home`` (made by the caller, who also removes it) is its home in the user
    database; without one it has none.
    """
    name = f"wevt{uuid.uuid4().hex[:8]}"
    where = ["--home-dir", str(home)] if home else []
    subprocess.run(
        ["useradd", "--no-create-home", *where, "--shell", "/usr/sbin/nologin", name],
        check=True,
        timeout=30,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        removed = subprocess.run(
            ["userdel", name], capture_output=True, text=True, check=False, timeout=30
        )
        # A user left behind (one of its processes still runs) must not pass unseen.
        assert removed.returncode == 0, f"userdel {name}: {removed.stderr.strip()}"


def as_user(account: pwd.struct_passwd) -> list[str]:
    """The command prefix that runs what follows as ``account``, without root's groups."""
    return [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--clear-groups",
        "--",
    ]


def run_client_as(
    account: pwd.struct_passwd, user: User, *args: str
) -> subprocess.CompletedProcess[str]:
    """The real client, as ``account``, in ``user``'s project, from a copy it can read."""
    client = user.root / "client"
    if not client.exists():
        shutil.copytree(Path(__file__).parents[1] / "wev_client", client / "wev_client")
        for folder in (user.root, client, *client.rglob("*")):
            folder.chmod(folder.stat().st_mode | 0o005 | (0o001 if folder.is_dir() else 0))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(user.project),
        "PYTHONPATH": str(client),
        "WEV_SOCKET": user.socket,
        "XDG_RUNTIME_DIR": str(user.root / "client"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [*as_user(account), SYSTEM_PYTHON, "-m", "wev_client", *args],
        cwd=user.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
