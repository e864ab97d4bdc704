"""Where wev keeps its socket, its config cache and its logs.

Imported by the client on its hot path and by the daemon, so both agree on the
socket path. ``platformdirs`` costs about as much as starting Python, so the
common cases are computed here directly (a test checks they match
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
    return os.path.join(os.path.dirname(socket_path(environ)), CONFIG_CACHE_NAME)


def log_dir() -> str:
    """Folder of the auto-started daemon's log file."""
    import platformdirs

    return platformdirs.user_log_dir(APP_NAME)
