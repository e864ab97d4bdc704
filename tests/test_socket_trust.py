"""The client sends a request only to its own user's daemon, and keeps only what it asked for.

A request carries the caller's AWS keys. Another user's listener, reachable
through ``WEV_SOCKET``, is run by a throwaway user (``useradd``, ``setpriv``)
and records every byte it receives; the real ``wev`` must send it nothing,
say why in one line and resolve in its own process.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import SYSTEM_PYTHON, as_user, throwaway_user, why_no_throwaway_user
from conftest import ENV_KEY, ENV_SECRET, User

#: A stand-in for a daemon: it records what it receives, answers any request
#: with the values it chooses, and stops on SIGTERM.
LISTENER = r"""
import os, signal, socket, sys
path, record, answer = sys.argv[1], sys.argv[2], sys.argv[3].encode()
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o777)
server.listen(8)
server.settimeout(0.1)
open(record + ".ready", "w").close()
with open(record, "ab", buffering=0) as out:
    while not stopping:
        try:
            conn, _ = server.accept()
        except (socket.timeout, InterruptedError):
            continue
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        while len(body) < int(value) and (chunk := conn.recv(65536)):
                            body += chunk
                            data += chunk
                if data:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer
                    )
            except OSError:
                pass
            out.write(b"connection %d\n" % len(data))
"""
CONFIG = "A:\n  plugin:\n    id: wev-echo\n    value: from-this-process\n"
#: What the command shows: the variable asked for, one it did not ask for, and PATH.
SHOW = ("sh", "-c", 'printf "%s|%s|%s" "$A" "$EXTRA" "$PATH"')
#: The caller's AWS keys: what another user's listener is after.
KEYS = {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}


def answer(value: str) -> str:
    """A daemon's answer setting ``A``, and two variables nobody asked for."""
    body = {"values": {"A": value, "EXTRA": "chosen-by-it", "PATH": "/nowhere"}}
    return json.dumps({**body, "entries": [], "warnings": []})


class Listener:
    """The listener script, run as ``account`` (None: as the tests' own user)."""

    def __init__(self, path: Path, record: Path, account: pwd.struct_passwd | None) -> None:
        self.record = record
        prefix = [*as_user(account), SYSTEM_PYTHON] if account else [sys.executable]
        self.process = subprocess.Popen(
            [*prefix, "-c", LISTENER, str(path), str(record), answer("from-the-listener")],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not Path(f"{record}.ready").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"the listener did not start ({self.process.returncode})")
            time.sleep(0.02)

    def stop(self) -> list[str]:
        """Stop it; one line per connection it accepted, with the bytes it received."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.record.read_text().splitlines() if self.record.exists() else []


def one_warning(stderr: str, path: str) -> str:
    """The single stderr line, checked to be the fallback warning about ``path``."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    [line] = lines
    assert line.startswith(f"wev: warning: not using the daemon at {path}: "), line
    assert line.endswith("; resolving in this process"), line
    return line


@pytest.fixture
def attacker(user: User) -> Iterator[pwd.struct_passwd]:
    """Another local user, who may enter the test's root folder but not its runtime folder."""
    if reason := why_no_throwaway_user():
        pytest.skip(reason)
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.skip(f"{SYSTEM_PYTHON} runs the other user's listener")
    with throwaway_user() as account:
        user.root.chmod(0o711)
        yield account


def attackers_folder(user: User, account: pwd.struct_passwd) -> Path:
    folder = user.root / "theirs"
    folder.mkdir()
    os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o755)
    return folder


def shared_folder(user: User) -> Path:
    folder = user.root / "shared"
    folder.mkdir()
    folder.chmod(0o1777)  # like /tmp
    return folder


@pytest.mark.parametrize("where", ["shared", "theirs"])
def test_another_users_listener_gets_nothing(
    user: User, attacker: pwd.struct_passwd, where: str
) -> None:
    user.write("work/project/wev.yml", CONFIG)
    records = attackers_folder(user, attacker)
    folder = shared_folder(user) if where == "shared" else records
    path = folder / "daemon.sock"
    listener = Listener(path, records / "record", attacker)
    try:
        result = user.wev(*SHOW, env={**KEYS, "WEV_SOCKET": str(path)})
    finally:
        received = listener.stop()

    assert received == []  # not even a connection
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"from-this-process||{user.env['PATH']}"
    line = one_warning(result.stderr, str(path))
    if where == "shared":
        assert f"{folder} is open to other users, mode 1777" in line
    else:
        assert f"{folder} belongs to uid {attacker.pw_uid}, not to you" in line
    assert not [name for name in os.listdir(folder) if name.startswith("daemon.sock.")]


def test_a_listener_of_another_user_behind_a_socket_file_of_yours_gets_nothing(
    user: User, attacker: pwd.struct_passwd
) -> None:
    """The file checks pass (root hands the socket over); the kernel's word on the peer decides."""
    user.write("work/project/wev.yml", CONFIG)
    records = attackers_folder(user, attacker)
    listener = Listener(records / "daemon.sock", records / "record", attacker)
    try:
        Path(user.socket).parent.mkdir(mode=0o700)
        os.rename(records / "daemon.sock", user.socket)
        os.chown(user.socket, os.getuid(), os.getgid(), follow_symlinks=False)
        result = user.wev(*SHOW, env=KEYS)
    finally:
        received = listener.stop()

    # Connected (to have the configuration parsed, then to resolve), and each
    # time closed without a byte.
    assert received and set(received) == {"connection 0"}
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"from-this-process||{user.env['PATH']}"
    line = one_warning(result.stderr, user.socket)
    assert f"it runs as uid {attacker.pw_uid}, not as you (uid {os.getuid()})" in line
    assert not Path(user.socket + ".lock").exists()  # no daemon was started over it


def test_a_socket_in_a_shared_folder_is_refused_even_when_it_is_yours(user: User) -> None:
    """Anyone could have put it there, so the folder decides; nothing is started there either."""
    user.write("work/project/wev.yml", CONFIG)
    folder = shared_folder(user)
    path = folder / "daemon.sock"
    listener = Listener(path, user.root / "record", None)
    try:
        result = user.wev(*SHOW, env={**KEYS, "WEV_SOCKET": str(path)})
        missing = user.wev(*SHOW, env={"WEV_SOCKET": str(folder / "other.sock")})
    finally:
        received = listener.stop()

    assert received == []
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("from-this-process|")
    assert "open to other users, mode 1777" in one_warning(result.stderr, str(path))
    # With nothing listening there, no daemon is started in such a folder either.
    assert missing.returncode == 0, missing.stderr
    assert "open to other users" in one_warning(missing.stderr, str(folder / "other.sock"))
    assert sorted(os.listdir(folder)) == ["daemon.sock"]


def test_the_warning_shows_control_characters_of_the_path_as_text(user: User) -> None:
    """A socket path with a screen-clearing sequence in it is named, never acted on."""
    user.write("work/project/wev.yml", CONFIG)
    path = shared_folder(user) / "a\x1b[2Jb.sock"

    result = user.wev(*SHOW, env={"WEV_SOCKET": str(path)})

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr
    assert "open to other users" in one_warning(result.stderr, str(path).replace("\x1b", "?"))


def test_only_the_variables_asked_for_are_kept_from_an_answer(user: User) -> None:
    """Even the user's own daemon cannot set PATH or anything else nobody configured."""
    user.write("work/project/wev.yml", CONFIG)
    Path(user.socket).parent.mkdir(mode=0o700)
    listener = Listener(Path(user.socket), user.root / "record", None)
    try:
        result = user.wev(*SHOW)
    finally:
        received = listener.stop()

    # It was asked: to parse the configuration (the new file), then to resolve.
    assert len(received) == 2 and "connection 0" not in received
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"from-the-listener||{user.env['PATH']}"
    assert result.stderr == ""


def test_no_daemon_is_started_below_a_folder_others_can_write(user: User) -> None:
    """Others could rename the socket's folder there and put theirs in its place."""
    user.write("work/project/wev.yml", CONFIG)
    open_folder = user.root / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # not sticky, unlike /tmp
    path = open_folder / "wev" / "daemon.sock"

    result = user.wev(*SHOW, env={"WEV_SOCKET": str(path)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("from-this-process|")
    assert result.stderr == (
        f"wev: warning: not starting a daemon at {path}: {open_folder} can be written by "
        "other users and is not sticky; resolving in this process\n"
    )
    assert os.listdir(open_folder) == []
