"""Starting wev-daemon when none answers, and waiting for one of this version.

``start_daemon`` starts it detached (one client at a time, under a lock
beside the socket) and waits until it listens; ``await_current_daemon``
waits for an outdated daemon to give way to one of this client's version;
``take_over_for_plugin`` replaces a daemon that another copy of wev started
without a plugin this one has.
Imported only on those paths, never by a call that a running daemon answers.
"""

from __future__ import annotations

import os
import sys
import time

from wev_client import __version__, paths, protocol, transport
from wev_client.protocol import errors
from wev_client.protocol.errors import WevError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: How long a client waits for a daemon it started to listen.
START_TIMEOUT = 10.0
#: An auto-started daemon's log past this size is rotated when a new one starts.
MAX_LOG_BYTES = 1024 * 1024
#: Exit status with which a daemon says another one already holds the socket.
ALREADY_RUNNING = 75


def await_current_daemon(
    path: str, environ: Mapping[str, str], debug: Callable[[str], None]
) -> None:
    """Wait for the outdated daemon to go, and a daemon of this version to answer.

    Not for one that a service manager started: it would only start that same
    version again, so waiting cannot help (and such a daemon serves newer clients).
    """
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            code, body = transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
        except transport.NotListening:
            if not start_daemon(path, environ, debug):
                return  # it said why; the caller resolves in its own process
            continue
        except WevError:
            code, body = 0, None  # going away mid-answer
        if code == 200 and isinstance(body, dict) and not body.get("stopping"):
            if body.get("version") == __version__:
                return
            if body.get("service_manager"):
                debug(f"{body.get('service_manager')} runs wev-daemon {body.get('version')}")
                return
        time.sleep(0.05)


def take_over_for_plugin(
    path: str, environ: Mapping[str, str], error: errors.UnknownPlugin, debug: Callable[[str], None]
) -> None:
    """Replace a daemon of this version that lacks a plugin this installation has; else
    raise ``error``.

    A tool's own environment (keyring's, twine's) may hold another copy of wev, and
    whichever starts the daemon first decides what it loads. A daemon of a newer
    wev stays: it would be replaced again by the next newer client.
    """
    from importlib.metadata import entry_points

    from wev_client import control

    here = {entry.name for entry in entry_points(group=protocol.PLUGIN_ENTRY_POINTS)}
    if error.plugin not in here:
        raise error
    code, body = transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
    if code != 200 or not isinstance(body, dict) or body.get("version") != __version__:
        raise error
    debug(f"{error.message}, but this wev has it: replacing the daemon")
    try:
        control.stop(environ)
    except WevError:  # a service manager's: it would start that same one again
        raise error from None
    await_current_daemon(path, environ, debug)


def start_daemon(path: str, environ: Mapping[str, str], debug: Callable[[str], None]) -> bool:
    """Start ``wev-daemon`` detached and wait until it listens; False if it cannot.

    Of many clients starting at once, the one holding ``<socket>.spawn`` starts
    the daemon; the others wait for it to listen.
    """
    import fcntl  # only when no daemon runs

    folder = os.path.dirname(path) or "."
    try:
        created = paths.make_private_folder(folder)
    except PermissionError as error:  # the daemon would refuse it too
        print(
            f"wev: warning: not starting a daemon at {path}: {error}; resolving in this process",
            file=sys.stderr,
        )
        return False
    except OSError as error:
        debug(f"cannot prepare {folder}: {error.strerror}")
        return False
    if os.path.dirname(os.path.abspath(folder)) in created and not environ.get("WEV_SOCKET"):
        # The runtime folder itself was missing: platformdirs fell back to a
        # temporary one (ssh sessions, containers). Said once, when made.
        why = "is not private" if environ.get("XDG_RUNTIME_DIR") else "is not set"
        print(
            f"wev: note: XDG_RUNTIME_DIR {why}; the daemon's socket is in {folder}, "
            "created for you alone (mode 0700)",
            file=sys.stderr,
        )
    try:
        spawn_lock = os.open(path + ".spawn", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        debug(f"cannot prepare {folder}: {error.strerror}")
        return False
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                fcntl.flock(spawn_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another client is starting it
                if _listening(path):
                    return True
                time.sleep(0.02)
                continue
            return _listening(path) or _spawn(path, environ, debug, deadline)
        return _listening(path)
    finally:
        os.close(spawn_lock)


def _spawn(
    path: str, environ: Mapping[str, str], debug: Callable[[str], None], deadline: float
) -> bool:
    import subprocess

    log_path = os.path.join(paths.log_dir(), "daemon.log")
    try:
        os.makedirs(os.path.dirname(log_path), mode=0o700, exist_ok=True)
        if os.path.exists(log_path) and os.path.getsize(log_path) > MAX_LOG_BYTES:
            os.replace(log_path, log_path + ".1")  # one old log is kept, no more
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as error:
        debug(f"cannot open the daemon log {log_path}: {error.strerror}")
        return False
    # The daemon outlives this call and serves every later project: it gets
    # none of this shell's secrets (each request carries the caller's AWS
    # context), and nothing of this project's folder: "/" as its working folder
    # and, with -P, not on sys.path, where a json.py there would be imported.
    env = paths.daemon_environ(environ)
    try:
        while time.monotonic() < deadline:
            try:
                child = subprocess.Popen(
                    [sys.executable, "-P", "-m", "wev_daemon", "--socket", os.path.abspath(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    cwd="/",
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as error:
                debug(f"cannot start wev-daemon: {error.strerror}")
                return False
            debug(f"started wev-daemon (pid {child.pid}, log {log_path})")
            while (exit_status := child.poll()) is None and time.monotonic() < deadline:
                if _listening(path):
                    return True
                time.sleep(0.02)
            if exit_status is None or _listening(path):
                break
            if exit_status != ALREADY_RUNNING:
                from wev_client.output import printable  # the log is the daemon's text

                why = printable(_last_line(log_path))
                print(
                    f"wev: warning: wev-daemon could not start ({why}); resolving in this process",
                    file=sys.stderr,
                )
                return False
            time.sleep(0.1)  # another daemon holds the socket: it is starting or stopping
    finally:
        os.close(log)
    if _listening(path):
        return True
    print(
        f"wev: warning: wev-daemon did not listen within {START_TIMEOUT:.0f} s (see {log_path}); "
        "resolving in this process",
        file=sys.stderr,
    )
    return False


def _last_line(log_path: str) -> str:
    try:
        with open(log_path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 4096))
            lines = file.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return f"see {log_path}"
    return lines[-1] if lines else f"see {log_path}"


def _listening(path: str) -> bool:
    try:
        transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
    except (transport.NotListening, transport.DaemonGone):
        return False
    except WevError:
        return True  # something answers; the real request will tell what
    return True
