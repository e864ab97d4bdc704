"""The daemon's socket and lifecycle: a private folder, one daemon per socket, clean exit.

The socket folder is created 0700 by ``mkdir`` itself (no chmod race), and a
folder that others can enter makes the daemon refuse to start. A lock file
beside the socket makes a second daemon on the same path exit with a clear
message, and so does a daemon still answering on the socket when the lock file
is gone; a socket file left by a dead daemon is replaced. SIGTERM or SIGINT
stop accepting, drain requests, cancel the refresher and remove the socket.

A socket handed over by systemd or launchd (``activation``) is served the same
way but never removed: the service manager owns it and keeps listening, so the
next client starts the daemon again. That is what makes ``IdleExit`` safe.
A daemon whose own socket file was removed or replaced (a service manager took
the path over, a cleaner of /tmp) can be reached by no client: it exits.

Imported by ``wev_daemon.__main__`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import gc
import logging
import os
import signal
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from wev_client import paths
from wev_client.protocol.errors import ConfigError, WevError
from wev_daemon.activation import Notifier
from wev_daemon.app import PROXY, RESOLVER, STOP, Handler

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0
#: Allocations (less deallocations) of objects that may hold cycles between two
#: collections of the young generation (Python's default: 700).
GC_YOUNG_OBJECTS = 10_000
#: A connection that has not sent a whole request for this long is closed.
CONNECTION_IDLE_TIMEOUT = 10.0
#: How long a daemon still bound to the socket has to accept our probe.
PROBE_TIMEOUT = 1.0
BACKLOG = 256
#: How often a daemon checks that its own socket file is still the one it bound.
SOCKET_CHECK_INTERVAL = 5.0
#: How often an idle daemon kept up by its entries looks again (the cache drops
#: entries unused for ``Policy.idle_after``).
IDLE_RECHECK = 60.0


#: How to make way for a daemon started by hand (``wev-daemon --log-level DEBUG``).
STOP_HINT = "stop it with `wev --stop`, or give this one another --socket"


class AlreadyRunning(WevError):
    """Another daemon holds this socket path."""

    code = "already_running"
    exit_status = 75  # EX_TEMPFAIL: the client that started us keeps waiting


class UnsafeFolder(WevError):
    """The socket folder is not private to this user."""

    code = "unsafe_folder"
    exit_status = 77  # EX_NOPERM


def ensure_private_folder(folder: str) -> None:
    """Create ``folder`` 0700, or check that an existing one is this user's alone.

    Missing folders above it are created 0700 too (the runtime folder that
    platformdirs names when ``$XDG_RUNTIME_DIR`` is unset), and the folder
    above it must be one where no other user can swap it for theirs.
    """
    try:
        created = paths.make_private_folder(folder)
    except PermissionError as error:
        raise UnsafeFolder(str(error), hint=paths.private_folder_hint(folder)) from None
    for made in created:
        log.info("created %s (mode 0700)", made)


def take_lock(socket_path: str) -> int:
    """Hold ``<socket>.lock`` for the daemon's life; AlreadyRunning if another does."""
    lock_path = socket_path + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AlreadyRunning(
            f"another wev-daemon (pid {holder}) is already running on {socket_path}",
            hint=STOP_HINT,
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def bind_socket(path: str) -> tuple[socket.socket, int]:
    """A listening socket at ``path``, mode 0600, replacing a dead daemon's file.

    Also the inode of the socket file, read at once: whatever is at ``path``
    later may be another daemon's (see ``serve``).
    """
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"{path} exists and is not a socket; remove it or set WEV_SOCKET")
        # Binding would delete the file silently, so a live daemon whose lock file
        # was removed (a cleaner in /tmp) would lose its socket to us.
        if _accepts(path):
            raise AlreadyRunning(f"another wev-daemon is already running on {path}", hint=STOP_HINT)
        log.info("replacing the stale socket %s", path)
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # born 0600: no window in which others may connect
    try:
        sock.bind(path)
        inode = os.stat(path).st_ino
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock, inode


def _accepts(path: str) -> bool:
    """Whether something listens on ``path``; a dead daemon's file refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except TimeoutError:  # alive, with a full backlog
            pass
        return True


@dataclass(frozen=True)
class IdleExit:
    """Exit after ``after`` seconds without a request (0: never).

    Unless ``with_entries``, not while the cache holds entries it keeps fresh:
    their tokens would be lost and fetched again by the next client.
    """

    after: float = 0.0
    with_entries: bool = False


class Activity:
    """Requests in flight and when the last one ended, for ``IdleExit``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._active = 0
        self._last = clock()

    def idle_for(self) -> float:
        return 0.0 if self._active else self._clock() - self._last

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._active += 1
        try:
            return await handler(request)
        finally:
            self._active -= 1
            self._last = self._clock()


def collect_what_fetches_left() -> None:
    """Collect the garbage of the fetches that just ended (the cache's ``after_fetches``).

    What a fetch builds (an AWS SDK session: its models, clients, credential
    chain) is garbage with cycles once it ends. Collected at once, before
    requests' objects settle among it, its memory goes back: ten fetches
    leave the RSS within a MiB of one, where waiting for the next full
    collection kept 31 MiB more. Fetches are rare (a token lives hours), and
    the collection skips what ``collect_garbage_for_a_server`` froze. Then
    glibc hands the free pages of its heap back to the system (1.3 MiB more).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None where the C library has none (macOS, musl)."""
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def collect_garbage_for_a_server() -> None:
    """Tune the cycle collector for a process that lives long and answers many requests.

    What the daemon loaded to start (its modules, plugins, the application)
    lives as long as it does: frozen, no full collection walks it again (a
    full collection of it took tens of milliseconds under load, an answer's
    whole budget many times over). And the young generation is collected
    after GC_YOUNG_OBJECTS allocations rather than 700: a request's objects
    are freed by their reference counts as it ends, but a hundred requests in
    flight hold enough of them to set off a collection every few requests,
    each walking every request's environment (about 7% of the daemon's time
    at 100 concurrent clients, less than 1% with this threshold).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_OBJECTS, older, oldest)


async def serve(
    app: web.Application,
    socks: Sequence[socket.socket],
    path: str,
    *,
    inode: int | None,
    notifier: Notifier | None = None,
    idle: IdleExit = IdleExit(),
) -> None:
    """Serve until SIGTERM/SIGINT (or idle), then shut down in order.

    ``inode`` is that of the socket file this daemon bound at ``path``, or None
    for a socket the service manager owns. Only a file with that inode is
    removed at exit, and the daemon exits when the file is gone or replaced.
    """
    loop = asyncio.get_running_loop()
    stop = app[STOP]
    notifier = notifier or Notifier()
    activity = Activity(loop.time)
    app.middlewares.append(activity.middleware)  # innermost: refused peers are no activity
    if PROXY in app:  # a tool using the loopback proxy is activity too
        app[PROXY].middlewares.append(activity.middleware)

    def on_signal(signum: int) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting for the drain
            os._exit(128 + signum)
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    collect_garbage_for_a_server()
    # keepalive_timeout also closes a connection whose request never completes
    # (slowloris); the body has its own timeout in ``reading``.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=CONNECTION_IDLE_TIMEOUT,
        # After an error answer, don't keep reading a body nobody wants: on a
        # Unix socket closing at once loses nothing.
        lingering_time=0,
    )
    await runner.setup()
    watchers: list[asyncio.Task[None]] = []
    try:
        for sock in socks:
            await web.SockSite(runner, sock, backlog=BACKLOG).start()
        log.info(
            "listening on %s (pid %d%s)",
            path,
            os.getpid(),
            "" if inode is not None else ", socket from the service manager",
        )
        notifier.notify("READY=1", f"STATUS=listening on {path}")
        if idle.after > 0:
            watchers.append(asyncio.create_task(_exit_when_idle(app, activity, idle)))
        if inode is not None:
            watchers.append(asyncio.create_task(_exit_when_unreachable(app, path, inode)))
        await stop.wait()
    finally:
        notifier.notify("STOPPING=1")
        app[RESOLVER].cache.stop_serving()  # before the drain: held requests end now
        for watcher in watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            if inode is not None and os.stat(path).st_ino == inode:  # never a newer daemon's
                os.unlink(path)
        log.info("stopped")


async def _exit_when_idle(app: web.Application, activity: Activity, idle: IdleExit) -> None:
    cache = app[RESOLVER].cache
    while True:
        remaining = idle.after - activity.idle_for()
        if remaining > 0:
            await asyncio.sleep(remaining)
            continue
        refreshing = cache.refreshing()
        if idle.with_entries or not refreshing:
            log.info(
                "no request for %.0f s%s: exiting until the next connection",
                idle.after,
                f", dropping {len(refreshing)} entries" if refreshing else "",
            )
            app[STOP].set()
            return
        log.debug("idle, but keeping %d entries fresh", len(refreshing))
        await asyncio.sleep(min(idle.after, IDLE_RECHECK))


async def _exit_when_unreachable(app: web.Application, path: str, inode: int) -> None:
    # Held on to, such a daemon would also keep the lock from the one that
    # clients start next, and refresh tokens nobody can ask for.
    while True:
        await asyncio.sleep(SOCKET_CHECK_INTERVAL)
        try:
            current: int | None = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current != inode:
            log.warning(
                "%s was %s: no client can reach this daemon any more; exiting",
                path,
                "removed" if current is None else "replaced by another socket",
            )
            app[STOP].set()
            return
