"""Throwaway local users for tests of what another user can and cannot do.

Made with ``useradd`` and removed with ``userdel``, so only when the tests run
as root; processes run as one under ``setpriv``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator

SYSTEM_PYTHON = "/usr/bin/python3"


def why_no_throwaway_user() -> str | None:
    """Why no throwaway user can be made here, or None."""
    if os.geteuid() != 0:
        return "creating a throwaway user needs root"
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextlib.contextmanager
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    """A new user with no home and no login shell, removed afterwards."""
    name = f"wevt{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        timeout=30,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, timeout=30)


def as_user(account: pwd.struct_passwd) -> list[str]:
    """The command prefix that runs what follows as ``account``, without root's groups."""
    return [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--clear-groups",
        "--",
    ]
