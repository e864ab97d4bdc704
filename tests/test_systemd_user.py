"""A real ``systemd --user`` runs wev's units: socket activation, restarts, status, removal.

Root only. A throwaway user gets what a login would give it: a delegated cgroup
(a folder under the cgroup2 mount, chowned to it, the manager's starting shell
moved in by root) and a runtime folder; ``/run/systemd/system``, the sign the
manager looks for that systemd booted the machine, is made for the test when
missing. ``/lib/systemd/systemd --user`` then runs as that user, and
``systemctl --user`` reaches it on its private socket (no D-Bus needed). The
user installs and enables the units as the README says and runs ``wev``
against the fake CodeArtifact endpoint.

Afterwards the user's processes are ended by pid, and the cgroup, the user, its
folder and a ``/run/systemd/system`` the test made are removed; a lock in
``/run`` keeps another run of it (another checkout) from removing that folder
under this one's manager. Where the manager cannot start (not root, no
writable cgroup2 hierarchy, as in most containers), the test is skipped and
says why.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from accounts import as_user, throwaway_user, why_no_throwaway_user
from conftest import BIN, CREDENTIALS, User
from fakes.codeartifact import FakeCodeArtifact

# It changes the machine (/run/systemd/system) and starts a service manager.
pytestmark = pytest.mark.serial

SYSTEMD = Path("/lib/systemd/systemd")
BOOTED = Path("/run/systemd/system")
#: Where the user's folder goes: not /tmp, which wev.service's PrivateTmp= hides.
HOMES = Path("/home")
TIMEOUT = 60.0
START_TIMEOUT = 30.0
#: Held while the test runs: one run of it at a time on a machine.
LOCK = Path("/run/wev-test-systemd-user.lock")
LOCK_TIMEOUT = 120.0
SOCKETS = ("wev.socket", "wev-proxy.socket")
WEV_YML = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')


@dataclass
class Session:
    """A user logged in as far as systemd cares: its manager runs and ``systemctl --user`` works."""

    account: pwd.struct_passwd
    user: User  # its HOME, AWS files, project and environment
    bin: Path  # the folder of the wev and wev-daemon it runs

    def run(
        self, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_user(self.account), *command],
            cwd=self.user.project,
            env={**self.user.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def wev(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "wev"), *args)

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run("systemctl", "--user", *args)
        assert result.returncode == 0, f"systemctl --user {' '.join(args)}: {result.stderr}"
        return result

    def show(self, unit: str, prop: str) -> str:
        return self.systemctl("show", "--value", "-p", prop, unit).stdout.strip()

    def main_pid(self) -> int:
        return int(self.show("wev.service", "MainPID"))

    def daemons(self) -> set[int]:
        """The pids of this user's wev-daemon processes, however started."""
        return {pid for pid in pids_of(self.account.pw_uid) if b"wev-daemon" in cmdline(pid)}


def test_systemd_user_manager_runs_wev_by_socket_activation(session: Session) -> None:
    with FakeCodeArtifact(CREDENTIALS) as fake:
        session.user.env["AWS_ENDPOINT_URL_CODEARTIFACT"] = fake.url
        daemon = str(session.bin / "wev-daemon")
        port = free_loopback_port()
        units = Path(session.user.env["XDG_CONFIG_HOME"], "systemd", "user")

        installed = session.run(daemon, "--install-service", env={"WEV_PROXY_PORT": str(port)})
        assert installed.returncode == 0, installed.stderr
        assert sorted(p.name for p in units.glob("wev*")) == sorted([*SOCKETS, "wev.service"])
        session.systemctl("daemon-reload")
        session.systemctl("enable", "--now", *SOCKETS)
        assert [session.show(unit, "ActiveState") for unit in SOCKETS] == ["active", "active"]
        assert session.show("wev.service", "ActiveState") == "inactive"
        print(f"installed and enabled: {', '.join(SOCKETS)} (proxy port {port})")

        # The first call starts wev.service through wev.socket; nothing else starts a daemon.
        first = session.wev(*PRINT_TOKEN)
        assert first.returncode == 0, first.stderr
        assert fake.is_valid_token(first.stdout)
        started = session.main_pid()
        assert started > 0 and session.daemons() == {started}
        assert session.show("wev.service", "ActiveState") == "active"
        status = session.show("wev.service", "StatusText")
        assert status.startswith("listening on"), status
        print(f"first call served by wev.service, pid {started}; StatusText={status}")

        os.kill(started, signal.SIGKILL)
        wait_until_gone(started)
        after_kill = session.wev(*PRINT_TOKEN)
        assert after_kill.returncode == 0, after_kill.stderr
        assert fake.is_valid_token(after_kill.stdout)
        restarted = session.main_pid()
        assert restarted not in (0, started) and session.daemons() == {restarted}
        print(f"after kill -9 of pid {started}: call served by pid {restarted}")

        # A tool that kept a proxy URL starts the daemon alone (after a reboot, say).
        session.systemctl("stop", "wev.service")
        assert session.daemons() == set()
        assert [session.show(unit, "ActiveState") for unit in SOCKETS] == ["active", "active"]
        answer = proxy_request(port, "/corp/pypi-store/pypi/simple/")
        by_proxy = session.main_pid()
        assert by_proxy not in (0, restarted) and session.daemons() == {by_proxy}
        print(f"a request to 127.0.0.1:{port} alone started pid {by_proxy}: {answer}")

        removed = session.run(daemon, "--uninstall-service")
        assert removed.returncode == 0, removed.stderr
        session.systemctl("stop", *SOCKETS, "wev.service")
        session.systemctl("daemon-reload")
        assert [p.name for p in units.rglob("wev*")] == []
        assert session.show("wev.service", "LoadState") == "not-found"
        assert session.daemons() == set()
        assert not Path(session.user.socket).exists()
        print("uninstalled: no unit file, no socket, no daemon left")


# -- the session: a throwaway user with its own systemd --user ------------------------------


@pytest.fixture
def session() -> Iterator[Session]:
    if reason := why_no_user_manager():
        pytest.skip(reason)
    with alone_on_this_machine():
        yield from _session()


@contextlib.contextmanager
def alone_on_this_machine() -> Iterator[None]:
    """Hold the machine's lock of this test: another run (another checkout) must not remove
    the ``/run/systemd/system`` this one's manager started with."""
    with LOCK.open("w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"another run of this test held {LOCK} for {LOCK_TIMEOUT:.0f} s")
                time.sleep(0.2)
        yield  # the lock goes with the file


def _session() -> Iterator[Session]:
    root = Path(tempfile.mkdtemp(prefix="wevsd-", dir=HOMES))
    made: list[Path] = []  # /run/systemd/system and, if it was missing too, /run/systemd
    try:
        user = User(root, "http://127.0.0.1:9")  # the fake's URL is set once it runs
        user.write("work/project/wev.yml", WEV_YML)
        with throwaway_user(user.home) as account:
            for path in (root, *root.rglob("*")):
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
            bin_folder = wev_for(account, root)
            cgroup = cgroup2_mount() / f"wev-test-{account.pw_name}"
            manager = None
            try:
                delegate(cgroup, account)
                made = [folder for folder in (BOOTED.parent, BOOTED) if not folder.exists()]
                for folder in made:
                    folder.mkdir()
                manager = start_manager(account, user, cgroup)
                yield Session(account, user, bin_folder)
            finally:
                try:
                    end_processes(account.pw_uid, manager)
                finally:
                    remove_cgroup(cgroup)
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # gone, or in use by something else now
                folder.rmdir()
        shutil.rmtree(root, ignore_errors=True)


def why_no_user_manager() -> str | None:
    """Why no systemd user manager can be started here, or None."""
    if sys.platform != "linux":
        return "systemd runs on Linux"
    if reason := why_no_throwaway_user():
        return f"{reason} (the user of the systemd --user manager)"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} is not installed (Debian package: systemd)"
    if shutil.which("systemctl") is None:
        return "systemctl is not installed (Debian package: systemd)"
    if not HOMES.is_dir():
        return f"no {HOMES} folder for the user's home"
    try:
        mount = cgroup2_mount()
    except LookupError as error:
        return str(error)
    if not os.access(mount, os.W_OK):  # read-only, as in most containers
        return f"the cgroup2 hierarchy at {mount} is read-only here: no cgroup to delegate"
    return None


def cgroup2_mount() -> Path:
    """Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or .../unified when hybrid)."""
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup2":
                return Path(fields[4])
    raise LookupError("no cgroup2 hierarchy is mounted: systemd --user needs one")


def delegate(cgroup: Path, account: pwd.struct_passwd) -> None:
    """Make ``cgroup`` the user's to manage, as systemd delegates one (systemd.resource-control)."""
    cgroup.mkdir()
    for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
        if (cgroup / name).exists():
            os.chown(cgroup / name, account.pw_uid, account.pw_gid)


def start_manager(account: pwd.struct_passwd, user: User, cgroup: Path) -> subprocess.Popen[bytes]:
    """``systemd --user`` as ``account``, started from a shell moved into ``cgroup``; ready."""
    log = user.root / "manager.log"
    with log.open("wb") as out:
        manager = subprocess.Popen(
            [
                "sh",
                "-c",
                'echo $$ > "$0" && exec "$@"',
                str(cgroup / "cgroup.procs"),
                *as_user(account),
                str(SYSTEMD),
                "--user",
            ],
            cwd=user.home,
            env={**user.env, "USER": account.pw_name, "LOGNAME": account.pw_name},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        if manager.poll() is not None:
            pytest.skip(
                f"systemd --user could not start here (exit {manager.returncode}): "
                + log.read_text(errors="replace").strip()[-500:]
            )
        state = subprocess.run(
            [*as_user(account), "systemctl", "--user", "is-system-running"],
            env=user.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        ).stdout.strip()
        if state in ("running", "degraded"):
            bus = Path(user.env["XDG_RUNTIME_DIR"], "bus")
            if bus.exists():  # the user's D-Bus (dbus-user-session), as pam_systemd tells a login
                user.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
            return manager
        time.sleep(0.1)
    manager.kill()
    manager.wait(TIMEOUT)
    pytest.skip(f"systemd --user was not ready after {START_TIMEOUT:.0f} s (state {state!r})")


def end_processes(uid: int, manager: subprocess.Popen[bytes] | None) -> None:
    """End every process of ``uid``: the manager stops its units on SIGTERM, then SIGKILL by pid."""
    if manager is not None and manager.poll() is None:
        manager.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            manager.wait(10)
    deadline = time.monotonic() + 10
    while pids := pids_of(uid):
        assert time.monotonic() < deadline, f"processes of uid {uid} outlived SIGKILL: {pids}"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    if manager is not None:
        manager.wait(TIMEOUT)


def remove_cgroup(cgroup: Path) -> None:
    """Remove ``cgroup`` and what the manager made in it, deepest first, once they are empty."""
    if not cgroup.exists():
        return
    folders = sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    deadline = time.monotonic() + 10
    for folder in [*folders, cgroup]:
        while True:
            try:
                folder.rmdir()
                break
            except OSError as error:  # EBUSY until the last process has left
                if error.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def pids_of(uid: int) -> list[int]:
    """The live processes whose real or effective uid is ``uid`` (not zombies)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        real, effective = fields["Uid"].split()[:2]
        if str(uid) in (real, effective) and not fields["State"].strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while cmdline(pid):
        assert time.monotonic() < deadline, f"pid {pid} still runs after SIGKILL"
        time.sleep(0.02)


# -- what the user runs ----------------------------------------------------------------------


def wev_for(account: pwd.struct_passwd, root: Path) -> Path:
    """The folder of this checkout's ``wev`` and ``wev-daemon`` as ``account`` may run them.

    The venv's own when the user may run its interpreter; else (a Python under
    root's 0700 home, say) a venv of the system's Python of the same version
    that imports everything from this venv, the interpreter alone differing.
    """
    if runs_as(account, str(BIN / "wev-daemon"), "--version"):
        return BIN
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin")
    if system_python is None or not runs_as(account, system_python, "-c", "pass"):
        pytest.skip(
            f"another user cannot run this venv's Python ({sys.executable}) "
            f"and there is no system python{version} to run it with"
        )
    venv = root / "venv"
    subprocess.run(
        [system_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT
    )
    ours = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    (venv / "lib" / f"python{version}" / "site-packages" / "wev-checkout.pth").write_text(
        "".join(f"import site; site.addsitedir({folder!r})\n" for folder in ours)
    )
    for name in ("wev", "wev-daemon"):
        _, body = (BIN / name).read_text().split("\n", 1)
        script = venv / "bin" / name
        script.write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
        script.chmod(0o755)
    if not runs_as(account, str(venv / "bin" / "wev-daemon"), "--version"):
        pytest.skip(f"another user cannot read this checkout or its venv ({BIN.parent})")
    return venv / "bin"


def runs_as(account: pwd.struct_passwd, *command: str) -> bool:
    """Whether ``command`` runs as ``account`` from one of its processes, as its services do."""
    # Through a shell: exec from a process of the user, not from setpriv, which was root.
    result = subprocess.run(
        [*as_user(account), "sh", "-c", 'exec "$@"', "sh", *command],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return result.returncode == 0


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 and, where there is IPv6, on ::1 (the proxy may listen on both)."""
    for _ in range(50):
        with socket.socket() as v4:
            v4.bind(("127.0.0.1", 0))
            port: int = v4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6) as v6:
                    v6.bind(("::1", port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue
            return port
    raise RuntimeError("no port is free on both 127.0.0.1 and ::1")


def proxy_request(port: int, path: str) -> str:
    """GET ``path`` from the proxy's port, as a package tool would; its status line."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode(errors="replace").strip()
        assert 100 <= response.status < 600
        return f"{response.status} {body[:120]}"
    finally:
        connection.close()
