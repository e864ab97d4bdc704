"""Where wev keeps its socket, its config cache and its logs.

Imported by the client on its hot path and by the daemon, so both agree on the
socket path. ``platformdirs`` costs about as much as starting Python, so the
common cases are computed here directly (a test checks they match
``platformdirs``) and it is imported only for the rest.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP_NAME = "wev"
SOCKET_NAME = "daemon.sock"
CONFIG_CACHE_NAME = "config-cache"


def runtime_dir(environ: Mapping[str, str]) -> str:
    """The user's private runtime folder for wev (socket, config cache)."""
    if sys.platform == "linux" and environ.get("XDG_RUNTIME_DIR", "").strip():
        return os.path.join(environ["XDG_RUNTIME_DIR"], APP_NAME)
    if sys.platform == "darwin" and environ.get("HOME"):
        return os.path.join(environ["HOME"], "Library", "Caches", "TemporaryItems", APP_NAME)
    import platformdirs  # only where no fast rule applies: costs ~14 ms

    return platformdirs.user_runtime_dir(APP_NAME)


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
