"""Other users' files are not configuration: which ``wev.yml`` files the real ``wev`` trusts.

A file owned by neither the user nor root is skipped with a one-line warning, and so is one in
a folder that others may write to unless the user owns that folder; a file the user cannot read
is skipped with a warning too. Needs root and a throwaway user (``useradd``, run with
``setpriv``): as the victim, root judges a file the throwaway user planted; as the throwaway
user, the client judges root's, its own and a third user's files.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator

import pytest
from accounts import run_client_as, throwaway_user, why_no_client_as_another_user
from conftest import Daemon, User

WHY_NOT = why_no_client_as_another_user()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))

#: A uid with no account: a third user, neither the throwaway user nor root.
THIRD = 2_000_000_000
ECHO = "A:\n  plugin:\n    id: wev-echo\n    value: configured\n"
BROKEN = "A: [\n"  # read, it is a configuration error (78); skipped, the command runs


@pytest.fixture
def stranger(user: User) -> Iterator[pwd.struct_passwd]:
    with throwaway_user() as account:
        yield account


def open_to_others(user: User) -> None:
    """Let another user enter the test folders (mkdtemp makes the root 0700)."""
    for folder in (user.root, user.root / "work", user.project):
        folder.chmod(0o755)


def test_a_planted_bash_env_in_a_shared_ancestor_is_skipped(
    user: User, daemon: Daemon, stranger: pwd.struct_passwd
) -> None:
    shared = user.root / "work"
    shared.chmod(0o1777)  # like /tmp: anyone may create files here
    marker = user.root / "ran"
    script = user.write("work/payload.sh", f"touch {marker}\n")
    planted = user.write(
        "work/wev.yml", f"BASH_ENV:\n  plugin:\n    id: wev-echo\n    value: {script}\n"
    )
    for path in (script, planted):
        os.chown(path, stranger.pw_uid, stranger.pw_gid)

    result = user.wev("bash", "-c", "true")

    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "the other user's script ran"
    assert result.stderr == (
        f"wev: warning: skipping {planted}: owned by uid {stranger.pw_uid}, not by you or root\n"
    )

    os.chown(
        planted, 0, 0
    )  # the same file, root's: it is configuration (the test proves something)
    assert user.wev("bash", "-c", "true").stderr == ""
    assert marker.exists()


def test_a_verdict_is_not_served_from_the_cache(
    user: User, daemon: Daemon, stranger: pwd.struct_passwd
) -> None:
    """Giving the folder away leaves the file's own stat as it was; the file is judged again."""
    config = user.write("work/project/wev.yml", ECHO)
    past = time.time() - 60
    os.utime(config, (past, past))
    time.sleep(2.1)  # past the racy window (ctime cannot be set back): this result is cached
    first = user.wev("sh", "-c", 'printf %s "$A"')
    cache = user.runtime / "wev" / "config-cache"
    assert first.stdout == "configured" and cache.is_file(), first.stderr
    cached = cache.read_bytes()

    os.chown(user.project, stranger.pw_uid, stranger.pw_gid)
    user.project.chmod(0o777)
    second = user.wev("sh", "-c", 'printf %s "$A"')

    assert second.returncode == 0 and second.stdout == ""
    assert second.stderr == (
        f"wev: warning: skipping {config}: {user.project} may be written by everyone "
        "(mode 777) and is not yours\n"
    )
    assert cache.read_bytes() != cached, "the new verdict is cached under its own signature"
    assert user.wev("sh", "-c", 'printf %s "$A"').stderr == second.stderr, "warned on every call"


def test_a_folder_name_in_a_warning_cannot_drive_the_terminal(
    user: User, daemon: Daemon, stranger: pwd.struct_passwd
) -> None:
    folder = user.project / "evil\x1b]0;owned\x07"
    folder.mkdir()
    planted = folder / "wev.yml"
    planted.write_text(ECHO)
    os.chown(planted, stranger.pw_uid, stranger.pw_gid)

    result = user.wev("true", cwd=folder)

    assert result.returncode == 0
    assert result.stderr == (
        f"wev: warning: skipping {user.project}/evil?]0;owned?/wev.yml: "
        f"owned by uid {stranger.pw_uid}, not by you or root\n"
    )


# -- as the throwaway user: root's files, its own, a third user's --------------------------


def test_root_and_own_files_are_configuration(user: User, stranger: pwd.struct_passwd) -> None:
    open_to_others(user)
    roots = user.write("work/wev.yml", BROKEN)
    roots.chmod(0o644)

    as_root_file = run_client_as(stranger, user, "true")
    assert as_root_file.returncode == 78, as_root_file.stderr
    assert str(roots) in as_root_file.stderr

    roots.unlink()
    own = user.write("work/project/wev.user.yml", BROKEN)
    os.chown(own, stranger.pw_uid, stranger.pw_gid)
    # Its own folder, group-writable (umask 002): still its own.
    os.chown(user.project, stranger.pw_uid, stranger.pw_gid)
    user.project.chmod(0o775)

    as_own_file = run_client_as(stranger, user, "true")
    assert as_own_file.returncode == 78, as_own_file.stderr
    assert str(own) in as_own_file.stderr


def test_a_third_users_file_is_skipped(user: User, stranger: pwd.struct_passwd) -> None:
    open_to_others(user)
    planted = user.write("work/wev.yml", BROKEN)
    planted.chmod(0o644)
    os.chown(planted, THIRD, THIRD)
    marker = user.root / "ran"
    user.root.chmod(0o777)  # so that the command, run as the throwaway user, can leave a mark

    result = run_client_as(stranger, user, "touch", str(marker))

    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert result.stderr == (
        f"wev: warning: skipping {planted}: owned by uid {THIRD}, not by you or root\n"
    )


@pytest.mark.parametrize("mode", [0o1777, 0o775, 0o757])
def test_a_file_in_a_folder_others_may_write_to_is_skipped(
    user: User, stranger: pwd.struct_passwd, mode: int
) -> None:
    open_to_others(user)
    planted = user.write("work/project/wev.yml", BROKEN)
    planted.chmod(0o644)  # root's, so trusted by its owner: only the folder condemns it
    user.project.chmod(mode)

    result = run_client_as(stranger, user, "true")

    who = "its group" if mode == 0o775 else "everyone"
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"wev: warning: skipping {planted}: {user.project} may be written by {who} "
        f"(mode {mode:o}) and is not yours\n"
    )


def test_an_unreadable_file_is_skipped_not_fatal(user: User, stranger: pwd.struct_passwd) -> None:
    """Root's private file above a project used to fail every ``wev`` below it."""
    open_to_others(user)
    private = user.write("work/wev.user.yml", ECHO)
    private.chmod(0o600)
    marker = user.root / "ran"
    user.root.chmod(0o777)

    result = run_client_as(stranger, user, "touch", str(marker))

    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert result.stderr == f"wev: warning: skipping {private}: cannot read: Permission denied\n"


def test_a_file_of_its_own_in_its_own_folder_is_used(
    user: User, stranger: pwd.struct_passwd
) -> None:
    """The control: the same layout with nothing amiss gives no warning."""
    open_to_others(user)
    own = user.write("work/project/wev.yml", "# nothing configured yet\n")
    os.chown(own, stranger.pw_uid, stranger.pw_gid)

    result = run_client_as(stranger, user, "true")

    assert (result.returncode, result.stderr) == (0, "")
