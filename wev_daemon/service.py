"""Installing wev-daemon as a user service: systemd socket units or a launchd agent.

Imported only by ``wev-daemon --install-service`` / ``--uninstall-service``.
The templates ship inside the package (``wev_daemon/units/``), so any install
(wheel, venv, pipx, editable) can write them; the repository's ``systemd/``
and ``launchd/`` folders hold the same files filled in for a pipx install, and
a test keeps the two in step. Nothing here talks to the service manager: the
files are written, and the one command that enables them is printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from xml.sax.saxutils import escape

from wev_client import paths
from wev_client.protocol.errors import WevError

#: The LaunchAgent's label, and the name of its plist.
LABEL = "io.github.wev.daemon"
SYSTEMD_UNITS = ("wev.socket", "wev.service", "wev-proxy.socket")
#: In every template: where the absolute path of ``wev-daemon`` goes.
EXECUTABLE = "@WEV_DAEMON@"
SOCKET = "@SOCKET@"
LOG_FILE = "@LOG_FILE@"
#: The loopback proxy's port (``wev_daemon.proxy``), fixed when installing.
PROXY_PORT = "@PROXY_PORT@"
#: Longest wait for the service manager to answer whether it runs.
MANAGER_TIMEOUT = 5.0

#: How to restart, and to stop for good, the daemon of each service manager.
RESTART_COMMANDS = {
    "systemd": "systemctl --user restart wev.service",
    "launchd": f"launchctl kickstart -k gui/$(id -u)/{LABEL}",
}
STOP_COMMANDS = {
    "systemd": "systemctl --user stop wev.socket wev-proxy.socket wev.service",
    "launchd": f"launchctl bootout gui/$(id -u)/{LABEL}",
}


class UnsupportedPlatform(WevError):
    """No service manager wev knows how to install into."""

    code = "unsupported_platform"
    exit_status = 69  # EX_UNAVAILABLE


class NoServiceManager(WevError):
    """The service manager the files are for does not run for this user."""

    code = "no_service_manager"
    exit_status = 69  # EX_UNAVAILABLE


class NoExecutable(WevError):
    """The installed ``wev-daemon`` script cannot be found."""

    code = "no_executable"
    exit_status = 69


def template(name: str) -> str:
    """A template from ``wev_daemon/units/``, as shipped."""
    return (resources.files("wev_daemon") / "units" / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Layout:
    """One user's service files: which manager, where they go, what they run."""

    manager: str  # "systemd" or "launchd"
    folder: str  # the user unit folder, or ~/Library/LaunchAgents
    home: str
    uid: int
    executable: str = ""  # absolute path of wev-daemon; needed to install only
    socket_path: str = ""  # launchd's SockPathName (systemd's unit names %t itself)
    proxy_port: int = 0  # the loopback proxy's, as the daemon would choose it

    @classmethod
    def for_user(cls, platform: str, environ: Mapping[str, str], *, executable: str = "") -> Layout:
        from wev_daemon.proxy import port_from_environ

        home = environ.get("HOME") or os.path.expanduser("~")
        port = port_from_environ(environ)
        if platform.startswith("linux"):
            config = environ.get("XDG_CONFIG_HOME", "")
            if not os.path.isabs(config):  # the XDG spec: a relative one is ignored
                config = os.path.join(home, ".config")
            folder = os.path.join(config, "systemd", "user")
            return cls("systemd", folder, home, os.getuid(), executable, proxy_port=port)
        if platform == "darwin":
            folder = os.path.join(home, "Library", "LaunchAgents")
            # platformdirs' user_runtime_dir on macOS, where the client puts the
            # socket (a test compares); launchd expands no "~", so it is absolute.
            runtime = os.path.join(home, "Library", "Caches", "TemporaryItems", paths.APP_NAME)
            socket_path = os.path.join(runtime, paths.SOCKET_NAME)
            return cls("launchd", folder, home, os.getuid(), executable, socket_path, port)
        raise UnsupportedPlatform(
            f"--install-service knows systemd (Linux) and launchd (macOS), not {platform!r}",
            hint="run wev-daemon under your service manager yourself, or let wev start it",
        )

    @property
    def log_file(self) -> str:
        return os.path.join(self.home, "Library", "Logs", paths.APP_NAME, "daemon.log")

    def files(self) -> dict[str, str]:
        """Each file to write (absolute path) and its content."""
        if self.manager == "systemd":
            return {
                os.path.join(self.folder, name): template(name)
                .replace(EXECUTABLE, systemd_word(self.executable))
                .replace(PROXY_PORT, str(self.proxy_port))
                for name in SYSTEMD_UNITS
            }
        text = (
            template("launchd.plist")
            .replace(EXECUTABLE, escape(self.executable))
            .replace(SOCKET, escape(self.socket_path))
            .replace(LOG_FILE, escape(self.log_file))
            .replace(PROXY_PORT, str(self.proxy_port))
        )
        return {os.path.join(self.folder, f"{LABEL}.plist"): text}


def systemd_word(word: str) -> str:
    """``word`` as one literal word of an ``ExecStart=`` line (systemd.service(5), Quoting)."""
    if any(ord(char) < 32 for char in word):
        raise NoExecutable(f"{word!r}: a path with control characters cannot go in a unit")
    # Without doubling, "%h" or "$HOME" in a folder name would be expanded.
    literal = word.replace("%", "%%").replace("$", "$$")
    if not any(char in literal for char in " \t\"'\\;"):
        return literal
    return '"' + literal.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_executable(argv0: str) -> str:
    """The absolute path of the ``wev-daemon`` being run, for the service to run too.

    The script as invoked comes first (pipx's link in ~/.local/bin outlives an
    upgrade), then the one beside this interpreter (a venv), then the user
    scheme's scripts folder (``pip install --user``).
    """
    candidates = []
    if os.path.basename(argv0) == "wev-daemon":
        candidates.append(os.path.abspath(argv0))
    candidates.append(os.path.join(os.path.dirname(sys.executable), "wev-daemon"))
    user_scripts = sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user"))
    candidates.append(os.path.join(user_scripts, "wev-daemon"))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise NoExecutable(
        "cannot find the wev-daemon script of this installation "
        f"(looked for {', '.join(dict.fromkeys(candidates))})",
        hint="run --install-service with the wev-daemon the service should run",
    )


def check_manager(layout: Layout, environ: Mapping[str, str]) -> None:
    """NoServiceManager unless the service manager of ``layout`` runs for this user.

    Units that nothing reads would only make the printed command fail ("Failed
    to connect to bus" on WSL1, in containers, in an ``su`` shell). systemd's
    user manager listens on ``$XDG_RUNTIME_DIR/systemd/private``, which
    ``systemctl --user`` talks to; launchd has a ``gui/UID`` domain while the
    user is logged in.
    """
    if layout.manager == "systemd":
        runtime = environ.get("XDG_RUNTIME_DIR", "")
        private = os.path.join(runtime, "systemd", "private")
        if runtime and _accepts(private):
            return
        why = f"nothing listens on {private}" if runtime else "XDG_RUNTIME_DIR is not set"
        what = "no systemd user manager runs for you"
    else:
        try:
            found = subprocess.run(
                ["launchctl", "print", f"gui/{layout.uid}"],
                capture_output=True,
                timeout=MANAGER_TIMEOUT,
                check=False,
            )
            if found.returncode == 0:
                return
            why = f"launchctl print gui/{layout.uid} failed"
        except (OSError, subprocess.TimeoutExpired) as error:
            why = f"launchctl cannot be run: {error}"
        what = "launchd has no login session of yours"
    raise NoServiceManager(
        f"--install-service: {what} ({why}); nothing written",
        hint="wev starts the daemon itself; --force writes the files anyway",
    )


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(MANAGER_TIMEOUT)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


def install(layout: Layout, environ: Mapping[str, str]) -> list[str]:
    """Write the files (idempotent); lines for the user, the last one the command to run."""
    lines = []
    replaced = False
    for path, content in layout.files().items():
        try:
            with open(path, encoding="utf-8") as file:
                old: str | None = file.read()
        except FileNotFoundError:
            old = None
        if old == content:
            lines.append(f"unchanged: {path}")
            continue
        _write(path, content)
        replaced = replaced or old is not None
        lines.append(f"{'updated' if old is not None else 'wrote'}: {path}")
    if layout.manager == "systemd":
        runtime = environ.get("XDG_RUNTIME_DIR", "")
        served = os.path.join(runtime, paths.APP_NAME, paths.SOCKET_NAME) if runtime else None
        if environ.get("WEV_SOCKET", served) != served:
            lines.append(
                "note: WEV_SOCKET is set; the service listens on "
                "$XDG_RUNTIME_DIR/wev/daemon.sock, where wev looks without it"
            )
        if shutil.which("systemctl", path=environ.get("PATH")) is None:
            lines.append("note: systemctl is not on PATH; these are systemd user units")
        command = (
            "systemctl --user daemon-reload && "
            "systemctl --user enable --now wev.socket wev-proxy.socket"
        )
        if replaced:  # a daemon already running keeps the old ExecStart until restarted
            command += " && systemctl --user try-restart wev.service"
    else:
        _private_folder(os.path.dirname(layout.socket_path))
        os.makedirs(os.path.dirname(layout.log_file), mode=0o700, exist_ok=True)
        if environ.get("WEV_SOCKET", layout.socket_path) != layout.socket_path:
            lines.append(
                f"note: WEV_SOCKET is set; the agent listens on {layout.socket_path}, "
                "where wev looks without it"
            )
        (plist,) = layout.files()
        domain = f"gui/{layout.uid}"
        command = f"launchctl bootstrap {domain} {shlex.quote(plist)}"
        if replaced:  # a loaded agent must be unloaded to read the new plist
            command = f"launchctl bootout {domain}/{LABEL}; {command}"
    lines += ["enable it with:", command]
    return lines


def uninstall(layout: Layout) -> list[str]:
    """Remove the files (idempotent); lines for the user, the last one the command that stops
    the service they ran (none when nothing was installed)."""
    lines = []
    targets = list(layout.files())
    if layout.manager == "systemd":
        # What `systemctl enable` made: once the unit files are gone,
        # `systemctl disable` no longer knows them, so the links go here.
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(layout.folder):
                if entry.is_dir(follow_symlinks=False) and entry.name.endswith(
                    (".wants", ".requires")
                ):
                    targets += [os.path.join(entry.path, name) for name in SYSTEMD_UNITS]
    for path in targets:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
            lines.append(f"removed: {path}")
    if not lines:  # nothing installed here, so no service of these files to stop
        return [f"nothing to remove in {layout.folder}: no wev-daemon service is installed there"]
    command = STOP_COMMANDS[layout.manager]
    if layout.manager == "systemd":
        command += "; systemctl --user daemon-reload"
    lines += ["stop a running one with:", command]
    return lines


def _write(path: str, content: str) -> None:
    """Replace ``path`` whole: a service manager never reads half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.tmp"
    try:
        with open(partial, "w", encoding="utf-8") as file:
            file.write(content)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def _private_folder(folder: str) -> None:
    """Create the socket's folder 0700, as the daemon would; an existing one is left alone."""
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
