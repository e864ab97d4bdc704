"""Where wev keeps its socket, its config cache and its logs, and who may own them.

Imported by the client on its hot path and by the daemon, so both agree on the
socket path, on what makes its folder private and on what of an environment
the daemon keeps. ``platformdirs`` costs about as much as starting Python, so
the common cases are computed here directly (a test checks they match
``platformdirs``) and it is imported only for the rest.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP_NAME = "wev"
SOCKET_NAME = "daemon.sock"
CONFIG_CACHE_NAME = "config-cache"

#: Longest socket path, in bytes: ``sun_path`` (108 bytes on Linux, 104 on macOS
#: and the BSDs) less the NUL that C programs (curl, systemd's ListenStream=) need.
MAX_SOCKET_PATH = 107 if sys.platform == "linux" else 103

#: What of its starter's environment the daemon keeps: where the user's files
#: are, the locale and the system's CA certificates. Never the starter's secrets
#: nor its proxies: each request carries the caller's AWS context and network
#: (``protocol.context.context_env``), and a caller without proxies gets none.
DAEMON_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        # The interpreter may need it to start at all (a Python built --enable-shared).
        "LD_LIBRARY_PATH",
        # A keyring-backed credential_process talks to the session bus.
        "DBUS_SESSION_BUS_ADDRESS",
        # OpenSSL's CA certificates (a TLS-inspecting firewall's CA).
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
DAEMON_ENV_PREFIXES = ("LC_", "XDG_", "WEV_")


def runtime_dir(environ: Mapping[str, str]) -> str:
    """The user's private runtime folder for wev (socket, config cache).

    Always the folder ``platformdirs.user_runtime_dir("wev")`` names. The fast
    rules below apply only where platformdirs would certainly agree; anything
    unusual (an ``$XDG_RUNTIME_DIR`` that is missing, a symlink, not 0700, below
    a folder others can write to, ...) is left to platformdirs, which then reads
    the process environment rather than ``environ``.
    """
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if sys.platform == "linux" and _accepted_runtime_base(xdg):
        return os.path.join(xdg, APP_NAME)
    home = environ.get("HOME", "")
    if sys.platform == "darwin" and not xdg and os.path.isabs(home):
        return os.path.join(home, "Library", "Caches", "TemporaryItems", APP_NAME)
    import warnings

    import platformdirs  # only where no fast rule applies: costs ~14 ms

    with warnings.catch_warnings():  # its fallback is fine for us; no warning on every call
        warnings.simplefilter("ignore")
        return platformdirs.user_runtime_dir(APP_NAME)


def _accepted_runtime_base(path: str) -> bool:
    """Whether ``path`` is a runtime folder platformdirs accepts as it is.

    That is (XDG base directory spec, as platformdirs checks it): an absolute
    path to a real folder owned by this user with mode 0700, every folder above
    it a real folder owned by root or this user that no one else can write to
    (or that is sticky, like /tmp). False only means "ask platformdirs".
    """
    if not os.path.isabs(path):
        return False
    parts = [part for part in path.split("/") if part and part != "."]
    if ".." in parts:
        return False
    uid = os.geteuid()
    current = ""
    for index, part in enumerate(parts):
        current += "/" + part
        try:
            st = os.lstat(current)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):  # a symlink too: platformdirs follows it its own way
            return False
        if index == len(parts) - 1:
            return st.st_uid == uid and stat.S_IMODE(st.st_mode) & 0o777 == 0o700
        if st.st_uid not in (0, uid):
            return False
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return False
    return False  # the root folder itself is no runtime folder


def socket_path(environ: Mapping[str, str]) -> str:
    """``$WEV_SOCKET``, else ``daemon.sock`` in the runtime folder."""
    return environ.get("WEV_SOCKET") or os.path.join(runtime_dir(environ), SOCKET_NAME)


def config_cache_path(environ: Mapping[str, str]) -> str:
    """The parsed-config cache lives beside the socket, in the private runtime folder."""
    return config_cache_beside(socket_path(environ))


def config_cache_beside(socket: str) -> str:
    """``config_cache_path`` for a socket path already known."""
    return os.path.join(os.path.dirname(socket), CONFIG_CACHE_NAME)


def socket_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a Unix socket's address here, or None."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        return f"the path is {size} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH} here"
    return None


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` is not a folder of this user's that no one else may enter, or None.

    ``lstat``: a symbolic link is refused, whoever owns it, since whoever can
    change it chooses where the socket is. A missing folder raises
    FileNotFoundError.
    """
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise
    except OSError as error:
        return f"{folder}: {error.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    uid = os.geteuid()
    if st.st_uid != uid:
        return f"{folder} belongs to uid {st.st_uid}, not to you (uid {uid})"
    if st.st_mode & 0o077:
        return f"{folder} is open to other users, mode {stat.S_IMODE(st.st_mode):04o}"
    return None


#: The way out when the socket's folder is not one to make private.
ELSEWHERE_HINT = "set WEV_SOCKET to a path in a folder only you can enter"


def private_folder_hint(folder: str) -> str:
    """The next step for a socket folder that is not private.

    ``chmod 0700`` only for a folder of this user's own left open: never for
    another user's, nor for one shared on purpose, which root owns: a sticky
    one such as ``/tmp``, ``/`` and those just below it (``/home``, ``/run``),
    or one that holds what other users own. Closing it would lock them out.
    """
    try:
        st = os.lstat(folder)
    except OSError:
        return ELSEWHERE_HINT
    if (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and st.st_mode & 0o077
        and not st.st_mode & stat.S_ISVTX
        and not _shared_by_design(folder, st.st_uid)
    ):
        return f"chmod 0700 {folder}"
    return ELSEWHERE_HINT


def _shared_by_design(folder: str, uid: int) -> bool:
    if os.path.dirname(os.path.abspath(folder)) == "/":  # / itself, /home, /run, /var ...
        return True
    try:
        with os.scandir(folder) as entries:
            return any(entry.stat(follow_symlinks=False).st_uid != uid for entry in entries)
    except OSError:
        return False


def make_private_folder(folder: str) -> list[str]:
    """Create ``folder`` and any missing folder above it, each born 0700 by ``mkdir``.

    Returns the folders created, outermost first. Raises PermissionError when
    ``folder`` is not private afterwards, or when the folder above it is one
    where others could swap it for theirs (writable by others without the
    sticky bit, or owned by another user).
    """
    folder = os.path.abspath(folder)
    missing = []
    current = folder
    while not os.path.lexists(current) and os.path.dirname(current) != current:
        missing.append(current)
        current = os.path.dirname(current)
    if missing and (problem := _parent_problem(current)):
        raise PermissionError(problem)
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)  # no chmod afterwards: that would leave a window
            created.append(path)
        except FileExistsError:  # made meanwhile; checked below like any other
            pass
    problem = _parent_problem(os.path.dirname(folder)) or folder_problem(folder)
    if problem:
        raise PermissionError(problem)
    return created


def _parent_problem(parent: str) -> str | None:
    """Why others could rename or replace what is in ``parent``, or None.

    ``stat`` follows a symbolic link (``/tmp`` is one on macOS): what counts
    is the folder it leads to.
    """
    try:
        st = os.stat(parent)
    except OSError as error:
        return f"{parent}: {error.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{parent} is not a folder"
    if st.st_uid not in (0, os.geteuid()):
        return f"{parent} belongs to uid {st.st_uid}, who could replace what is in it"
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return f"{parent} can be written by other users and is not sticky"
    return None


def daemon_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a daemon keeps (``DAEMON_ENV``)."""
    return {
        name: value
        for name, value in environ.items()
        if name in DAEMON_ENV or name.startswith(DAEMON_ENV_PREFIXES)
    }


def log_dir() -> str:
    """Folder of the auto-started daemon's log file."""
    import platformdirs

    return platformdirs.user_log_dir(APP_NAME)
