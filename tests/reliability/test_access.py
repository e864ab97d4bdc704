"""Only the daemon's own user gets anything from it.

A throwaway user, created with ``useradd`` when the tests run as root, runs
the real client (its hot path needs only the standard library and PyYAML, so
the system Python runs it from a copy of ``wev_client``) against our daemon.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import run_client_as, throwaway_user, why_no_client_as_another_user
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact

CONFIG = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"


WHY_NOT = why_no_client_as_another_user()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


@pytest.fixture
def stranger(user: User) -> Iterator[pwd.struct_passwd]:
    with throwaway_user() as account:
        yield account


def test_another_user_gets_no_token(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, stranger: pwd.struct_passwd
) -> None:
    user.write("work/project/wev.yml", CONFIG)
    assert user.wev("true").returncode == 0  # a token is cached for the owner
    for folder in (user.root / "work", user.project):
        folder.chmod(0o755)  # the stranger may read the project, not the socket
    (user.project / "wev.yml").chmod(0o644)

    blocked = run_client_as(stranger, user, "sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')

    # Folder 0700 and socket 0600: the stranger's client cannot even look, so
    # it sends nothing and falls back to resolving in its own process (which
    # this copy of the client cannot: it has no wev_daemon).
    assert blocked.returncode != 0
    assert not any(fake.is_valid_token(word) for word in blocked.stdout.split())
    assert "Traceback" not in blocked.stderr
    warning = blocked.stderr.splitlines()[0]
    assert warning.startswith(f"wev: warning: not using the daemon at {user.socket}: "), warning
    assert "Permission denied" in warning

    # With the file modes opened, the client still sees that the socket is
    # another user's and never connects (the daemon's own peer-uid check is
    # tested in test_daemon_socket.py).
    folders = (user.runtime, Path(user.socket).parent)
    for folder in folders:
        folder.chmod(0o755)
    Path(user.socket).chmod(0o666)
    refused = run_client_as(stranger, user, "sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
    for folder in folders:
        folder.chmod(0o700)
    Path(user.socket).chmod(0o600)

    assert refused.returncode != 0
    assert f"belongs to uid {os.getuid()}, not to you" in refused.stderr.splitlines()[0]
    assert refused.stdout == "" and "Traceback" not in refused.stderr
    assert fake.call_count == 1
    assert "refused a connection" not in daemon.log


def test_the_client_as_the_owner_works_from_the_system_python(user: User, daemon: Daemon) -> None:
    """The same copy of the client, run by the owner: proves the stranger's failure is access."""
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-echo\n    value: owner\n")
    owner = pwd.getpwuid(os.getuid())

    result = run_client_as(owner, user, "sh", "-c", 'printf %s "$A"')

    assert result.returncode == 0, result.stderr
    assert result.stdout == "owner"
