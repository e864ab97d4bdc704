"""What is installed: the daemon notices when wev or its plugins change under it.

The daemon runs for days, while wev is upgraded or reinstalled and plugins
are installed into its environment; what it loaded at start must not answer
after that (an "unknown plugin" until someone kills it by hand). Like a
newer client, a changed installation makes the daemon give way, and the
client that noticed starts the current one (``app``).

Requests compare cheap stamps (one look per 10 ms at most, shared by the
requests of a burst): the modification times of the folders on
``sys.path``, which change whenever a distribution is added, removed or
replaced there, and of wev's own package folders (a checkout under an
editable install). Only when a stamp moved is the snapshot taken again and
compared with the one taken at start: every distribution that provides
``wev.plugins`` entry points (wev itself too), by name, version, entry
points and RECORD, and wev's own source files. Installing anything else (a
package beside wev) changes no snapshot, so the daemon keeps its tokens.

Imported by ``wev_daemon.__main__`` and ``app``.
"""

from __future__ import annotations

import hashlib
import os
import site
import sys
import sysconfig
import time
from collections.abc import Sequence
from importlib.metadata import entry_points

import wev_client
import wev_daemon
from wev_daemon.plugins import ENTRY_POINT_GROUP

#: Seconds during which one look at the stamps answers every request.
LOOK_INTERVAL = 0.01
#: wev's own package folders, where an editable install's sources live.
PACKAGES = (wev_client, wev_daemon)


class Installation:
    """A snapshot of wev and its plugins as installed, and whether it has changed."""

    def __init__(self, search_path: Sequence[str] | None = None) -> None:
        self.folders = [
            *_install_folders(sys.path if search_path is None else search_path),
            *_package_folders(),
        ]
        self._stamps = self._stamp()
        self._snapshot = snapshot()
        self._looked = time.monotonic() - LOOK_INTERVAL

    def changed(self) -> bool:
        """Whether wev or a plugin was installed, removed or replaced since the start.

        Requests within LOOK_INTERVAL of a look share it: a burst of concurrent
        calls costs one, and nothing is installed between two calls so close.
        """
        now = time.monotonic()
        if now - self._looked < LOOK_INTERVAL:
            return False
        self._looked = now
        stamps = self._stamp()
        if stamps == self._stamps:
            return False
        if snapshot() == self._snapshot:
            self._stamps = stamps  # something else changed there: nothing to restart for
            return False
        return True

    def _stamp(self) -> tuple[int, ...]:
        stamps = []
        for folder in self.folders:
            try:
                stamps.append(os.stat(folder).st_mtime_ns)
            except OSError:
                stamps.append(-1)
        return tuple(stamps)


def snapshot() -> str:
    """A digest of the distributions that provide plugins, and of wev's own sources."""
    digest = hashlib.sha256()
    providers = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.dist is not None:
            providers[entry.dist.name] = entry.dist
    for name in sorted(providers):
        dist = providers[name]
        for part in (
            name,
            dist.version,
            dist.read_text("entry_points.txt") or "",
            dist.read_text("RECORD") or "",
        ):
            digest.update(part.encode(errors="replace") + b"\0")
    for folder in _package_folders():
        for file in sorted(os.listdir(folder)):
            if file.endswith(".py"):
                try:
                    st = os.stat(os.path.join(folder, file))
                except OSError:
                    continue
                digest.update(f"{folder}/{file} {st.st_size} {st.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _install_folders(search_path: Sequence[str]) -> list[str]:
    """The folders where a distribution is (or would be) installed, for the stamps.

    The interpreter's site folders (where pip installs into this
    environment), and every folder on the path that holds a distribution.
    """
    candidates = [*sysconfig.get_paths().values(), site.getusersitepackages(), *search_path]
    folders: list[str] = []
    for folder in dict.fromkeys(os.path.abspath(c) for c in candidates if c):
        if not os.path.isdir(folder):
            continue
        if folder in (sysconfig.get_path("purelib"), sysconfig.get_path("platlib")) or any(
            name.endswith(".dist-info") for name in os.listdir(folder)
        ):
            folders.append(folder)
    return folders


def _package_folders() -> list[str]:
    """wev's package folders and their sub-packages (``protocol``, ``plugins``)."""
    folders = []
    for package in PACKAGES:
        for top in package.__path__:
            for folder, subfolders, files in os.walk(top):
                subfolders[:] = sorted(s for s in subfolders if s != "__pycache__")
                if "__init__.py" in files:
                    folders.append(folder)
    return folders
