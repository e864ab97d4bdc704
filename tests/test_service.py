"""``wev-daemon --install-service`` and the service files it writes.

The real command installs into a temporary HOME; the systemd units it writes
are checked by ``systemd-analyze verify`` (a warning fails the test), the plist
by ``plistlib``; every file must run an existing ``wev-daemon``. The
repository's ``systemd/`` and ``launchd/`` files must be the shipped templates.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WEV_DAEMON

from wev_client import paths
from wev_daemon import service
from wev_daemon.activation import LAUNCHD_SOCKET_NAME, PROXY_SOCKET_NAME

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
ENABLE = (
    "systemctl --user daemon-reload && systemctl --user enable --now wev.socket wev-proxy.socket"
)

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package: systemd)",
)


@pytest.fixture
def home() -> Iterator[Path]:
    """A HOME whose runtime folder has a stand-in for systemd's user manager listening.

    ``--install-service`` writes units only where the manager runs for the
    user (its ``systemd/private`` socket answers); nothing else of it is used.
    """
    folder = Path(tempfile.mkdtemp(prefix="wevs-"))
    private = folder / "run" / "systemd" / "private"
    private.parent.mkdir(parents=True)
    (folder / "run").chmod(0o700)
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        manager.bind(str(private))
        manager.listen(8)
        yield folder
    finally:
        manager.close()
        shutil.rmtree(folder, ignore_errors=True)


def environment(home: Path) -> dict[str, str]:
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(runtime),
    }


def run(
    home: Path, *args: str, executable: str = WEV_DAEMON, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [executable, *args],
        env={**environment(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def unit_folder(home: Path) -> Path:
    return home / ".config" / "systemd" / "user"


def exec_start(unit: Path) -> list[str]:
    (line,) = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    # The quoting --install-service uses is the shell's subset of systemd's.
    return shlex.split(line.removeprefix("ExecStart="))


def verify(home: Path, *units: Path) -> None:
    """``systemd-analyze --user verify``: exit 0 and not one warning."""
    result = subprocess.run(
        ["systemd-analyze", "--user", "verify", *map(str, units)],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# -- systemd -------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="systemd units are installed on Linux")
@pytest.mark.parametrize("folder", ["bin", "my tools"])
def test_install_writes_units_that_systemd_accepts(home: Path, folder: str) -> None:
    # The service runs the wev-daemon that was run, here through a link whose
    # path needs quoting in ExecStart= when it has a space.
    link = home / folder / "wev-daemon"
    link.parent.mkdir()
    link.symlink_to(WEV_DAEMON)

    result = run(home, "--install-service", executable=str(link))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ENABLE

    socket_unit, service_unit, proxy_unit = (
        unit_folder(home) / name for name in service.SYSTEMD_UNITS
    )
    assert socket_unit.read_text() == service.template("wev.socket")
    # The loopback proxy's port, as the daemon of this user chooses it.
    port = 23000 + os.getuid() % 8000
    assert f"ListenStream=127.0.0.1:{port}\nListenStream=[::1]:{port}\n" in proxy_unit.read_text()
    command = exec_start(service_unit)
    assert command == [str(link), "--log-level", "INFO"]
    assert os.access(command[0], os.X_OK)
    assert "ListenStream=%t/wev/daemon.sock" in socket_unit.read_text()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    verify(home, socket_unit, service_unit, proxy_unit)


def test_a_note_only_for_a_wev_socket_the_service_does_not_listen_on(home: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("systemd units are installed on Linux")
    served = str(home / "run" / "wev" / "daemon.sock")
    same = run(home, "--install-service", env={"WEV_SOCKET": served})
    other = run(home, "--install-service", env={"WEV_SOCKET": str(home / "other.sock")})

    assert same.returncode == other.returncode == 0, same.stderr + other.stderr
    assert "WEV_SOCKET" not in same.stdout
    assert "note: WEV_SOCKET is set; the service listens on" in other.stdout


def test_install_is_idempotent_and_says_what_changed(home: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("systemd units are installed on Linux")
    first = run(home, "--install-service")
    assert first.returncode == 0, first.stderr
    unit = unit_folder(home) / "wev.service"
    written = unit.read_text()
    assert oct(unit.stat().st_mode & 0o777) == oct(0o644)

    again = run(home, "--install-service")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged: ") == 3
    assert again.stdout.splitlines()[-1] == ENABLE
    assert unit.read_text() == written

    unit.write_text(written.replace("--log-level INFO", "--log-level DEBUG"))
    updated = run(home, "--install-service")
    assert f"updated: {unit}" in updated.stdout
    # A daemon that runs the old ExecStart= is restarted, if one runs.
    assert (
        updated.stdout.splitlines()[-1] == f"{ENABLE} && systemctl --user try-restart wev.service"
    )
    assert unit.read_text() == written
    assert not list(unit.parent.glob("*.tmp"))


def test_uninstall_removes_the_units_and_what_enable_linked(home: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("systemd units are installed on Linux")
    assert run(home, "--install-service").returncode == 0
    folder = unit_folder(home)
    wants = folder / "sockets.target.wants"
    wants.mkdir()
    (wants / "wev.socket").symlink_to("../wev.socket")  # as `systemctl --user enable` does
    (folder / "other.service").write_text("[Service]\nExecStart=/bin/true\n")

    result = run(home, "--uninstall-service")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.rglob("*")) == ["other.service", "sockets.target.wants"]
    stop = "systemctl --user stop wev.socket wev-proxy.socket wev.service"
    assert stop in result.stdout.splitlines()[-1]

    again = run(home, "--uninstall-service")
    assert again.returncode == 0 and "nothing to remove" in again.stdout
    assert "systemctl" not in again.stdout  # nothing installed: no service to stop


def test_install_follows_xdg_config_home(home: Path) -> None:
    layout = service.Layout.for_user(
        "linux", {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg")}
    )
    assert layout.folder == str(home / "cfg" / "systemd" / "user")
    relative = service.Layout.for_user("linux", {"HOME": str(home), "XDG_CONFIG_HOME": "cfg"})
    assert relative.folder == str(unit_folder(home))


def test_exec_start_quoting() -> None:
    assert service.systemd_word("/usr/bin/wev-daemon") == "/usr/bin/wev-daemon"
    assert service.systemd_word("/opt/my tools/wev-daemon") == '"/opt/my tools/wev-daemon"'
    assert service.systemd_word("/opt/100%/$HOME/x") == "/opt/100%%/$$HOME/x"
    assert service.systemd_word('/a "b"\\c') == '"/a \\"b\\"\\\\c"'
    with pytest.raises(service.NoExecutable, match="control characters"):
        service.systemd_word("/a\nb")


# -- launchd ---------------------------------------------------------------------------------


def test_launch_agent_plist(home: Path) -> None:
    environ = environment(home)
    layout = service.Layout.for_user("darwin", environ, executable=WEV_DAEMON)
    lines = service.install(layout, environ)
    plist_path = home / "Library" / "LaunchAgents" / f"{service.LABEL}.plist"
    assert lines[-1] == f"launchctl bootstrap gui/{os.getuid()} {plist_path}"

    with plist_path.open("rb") as file:
        plist = plistlib.load(file)
    assert plist["Label"] == service.LABEL
    program = plist["ProgramArguments"]
    assert program == [WEV_DAEMON, "--log-level", "INFO"]
    assert os.path.isabs(program[0]) and os.access(program[0], os.X_OK)
    listener = plist["Sockets"][LAUNCHD_SOCKET_NAME]
    # Both loopback addresses: no other user may answer a "localhost" URL on ::1.
    assert plist["Sockets"][PROXY_SOCKET_NAME] == [
        {
            "SockNodeName": host,
            "SockServiceName": str(23000 + os.getuid() % 8000),
            "SockFamily": family,
        }
        for host, family in (("127.0.0.1", "IPv4"), ("::1", "IPv6"))
    ]
    assert listener["SockPathMode"] == 0o600
    # Where the client looks on macOS: platformdirs' user_runtime_dir there.
    assert listener["SockPathName"] == os.path.join(macos_runtime_dir(home), paths.SOCKET_NAME)
    assert len(listener["SockPathName"].encode()) < 104  # sun_path on macOS
    log_folder = home / "Library" / "Logs" / "wev"
    assert plist["StandardErrorPath"] == plist["StandardOutPath"] == str(log_folder / "daemon.log")
    assert set(plist) == {
        "Label",
        "ProgramArguments",
        "Sockets",
        "StandardOutPath",
        "StandardErrorPath",
    }
    # launchd creates neither folder.
    assert log_folder.is_dir()
    socket_folder = Path(listener["SockPathName"]).parent
    assert socket_folder.stat().st_mode & 0o777 == 0o700

    assert service.install(layout, environ)[-1] == lines[-1]  # unchanged: same command
    removed = service.uninstall(layout)
    assert f"removed: {plist_path}" in removed
    assert not plist_path.exists()
    assert removed[-1] == f"launchctl bootout gui/$(id -u)/{service.LABEL}"
    assert service.uninstall(layout)[-1].startswith("nothing to remove")  # and nothing to stop


def macos_runtime_dir(home: Path) -> str:
    """platformdirs' answer on macOS, computed here on any platform."""
    code = (
        "from platformdirs.macos import MacOS\n"
        "import sys\n"
        "sys.stdout.write(MacOS('wev').user_runtime_dir)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout


def test_plist_values_are_escaped(home: Path) -> None:
    layout = service.Layout(
        "launchd", str(home), str(home), 501, "/opt/R&D <x>/wev-daemon", "/tmp/s&s/daemon.sock"
    )
    ((_, text),) = layout.files().items()
    plist = plistlib.loads(text.encode())
    assert plist["ProgramArguments"][0] == "/opt/R&D <x>/wev-daemon"
    assert plist["Sockets"][LAUNCHD_SOCKET_NAME]["SockPathName"] == "/tmp/s&s/daemon.sock"


# -- other platforms, and the files in the repository ---------------------------------------


def test_an_unknown_platform_is_refused_clearly(home: Path) -> None:
    code = (
        "import sys\n"
        "sys.platform = 'freebsd14'\n"
        "from wev_daemon.__main__ import main\n"
        "sys.exit(main(['--install-service']))"
    )
    result = run(home, "-c", code, executable=sys.executable)
    assert result.returncode == 69
    assert "knows systemd (Linux) and launchd (macOS), not 'freebsd14'" in result.stderr
    assert list(home.iterdir()) == [home / "run"]  # nothing written


def test_the_repository_files_are_the_shipped_templates() -> None:
    assert (REPO / "systemd" / "wev.socket").read_text() == service.template("wev.socket")
    pipx = "%h/.local/bin/wev-daemon"
    assert (REPO / "systemd" / "wev.service").read_text() == service.template(
        "wev.service"
    ).replace(service.EXECUTABLE, pipx)
    # The proxy's port of uid 1000, and of uid 501 on macOS.
    assert (REPO / "systemd" / "wev-proxy.socket").read_text() == service.template(
        "wev-proxy.socket"
    ).replace(service.PROXY_PORT, "24000")

    you = "/Users/you"
    expected = (
        service.template("launchd.plist")
        .replace(service.EXECUTABLE, f"{you}/.local/bin/wev-daemon")
        .replace(service.SOCKET, f"{you}/Library/Caches/TemporaryItems/wev/daemon.sock")
        .replace(service.LOG_FILE, f"{you}/Library/Logs/wev/daemon.log")
        .replace(service.PROXY_PORT, "23501")
    )
    assert (REPO / "launchd" / f"{service.LABEL}.plist").read_text() == expected


@pytest.mark.parametrize(
    "mistake",
    [("--idle-exit", "soon"), ("--socket", "open/daemon.sock"), ("--socket", "x" * 200)],
    ids=["wrong option", "socket folder open to others", "socket path too long"],
)
def test_systemd_does_not_restart_a_daemon_that_would_fail_again(
    home: Path, mistake: tuple[str, str]
) -> None:
    """A start that fails the same way every time (an edited ExecStart=, a bad socket)
    exits with a status the unit's RestartPreventExitStatus= names, not in a restart loop."""
    [line] = [
        line
        for line in service.template("wev.service").splitlines()
        if line.startswith("RestartPreventExitStatus=")
    ]
    prevented = {int(status) for status in line.partition("=")[2].split()}
    (home / "open").mkdir(mode=0o777)
    (home / "open").chmod(0o777)
    option, value = mistake
    value = str(home / value) if option == "--socket" else value

    result = run(home, option, value)

    assert result.returncode in prevented, result.stderr


@needs_systemd_analyze
def test_the_repository_units_verify_for_a_pipx_install(home: Path) -> None:
    pipx_bin = home / ".local" / "bin"
    pipx_bin.mkdir(parents=True)
    (pipx_bin / "wev-daemon").symlink_to(WEV_DAEMON)
    units = ("wev.socket", "wev.service", "wev-proxy.socket")
    verify(home, *(REPO / "systemd" / name for name in units))


@pytest.mark.skipif(sys.platform != "linux", reason="systemd units are installed on Linux")
@pytest.mark.parametrize("runtime", ["no manager", "no XDG_RUNTIME_DIR"])
def test_install_refuses_in_one_line_where_no_user_manager_runs(runtime: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="wevs-"))
    try:
        env = environment(folder)  # a runtime folder where nothing listens
        if runtime == "no XDG_RUNTIME_DIR":
            del env["XDG_RUNTIME_DIR"]
        result = subprocess.run(
            [WEV_DAEMON, "--install-service"],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

        assert result.returncode == 69, result.stderr
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(
            "wev-daemon: --install-service: no systemd user manager runs for you ("
        )
        assert line.endswith(
            "); nothing written (wev starts the daemon itself; --force writes the files anyway)"
        )
        assert not unit_folder(folder).exists()

        forced = subprocess.run(
            [WEV_DAEMON, "--install-service", "--force"],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        assert forced.returncode == 0, forced.stderr
        assert sorted(p.name for p in unit_folder(folder).iterdir()) == sorted(
            service.SYSTEMD_UNITS
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
