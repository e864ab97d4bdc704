"""`wev-daemon` command line: arguments, logging, the process's hardening, and the run.

The daemon serves on a socket handed over by systemd or launchd when started
as a service (``activation``), else on one it binds itself; ``--install-service``
and ``--uninstall-service`` write or remove the service files (``service``).

It holds every project's tokens for hours, so before serving it does what
ssh-agent does, however it was started: no core files, not dumpable (other
processes of the user cannot read its memory or ``/proc/PID/environ``), ``/``
as its working folder, no working folder on ``sys.path``, and an environment
cut down to ``paths.DAEMON_ENV``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from wev_client import __version__, paths
from wev_client.protocol.errors import WevError
from wev_daemon.policy import Policy

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from wev_daemon.activation import Inherited, Notifier

log = logging.getLogger("wev_daemon")

#: ``--idle-exit`` when a service manager holds the socket and starts the daemon again.
ACTIVATED_IDLE_EXIT = 4 * 3600.0
#: syslog priorities for journald's "<N>" line prefix (sd-daemon(3)).
JOURNAL_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
#: prctl(2) and ptrace(2) requests (linux/prctl.h, macOS sys/ptrace.h).
PR_SET_DUMPABLE = 4
PT_DENY_ATTACH = 31


class SocketPathTooLong(WevError):
    """The socket path does not fit in a Unix socket address."""

    code = "socket_path_too_long"
    exit_status = 78  # EX_CONFIG: systemd does not restart it in a loop


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line and EX_USAGE, as wev's own, not argparse's usage and 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(64, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="wev-daemon",
        description="Resolve and cache values for wev clients on a Unix socket.",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="socket to listen on (default: $WEV_SOCKET, else daemon.sock in the runtime folder)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity on stderr (default INFO); values are never logged",
    )
    parser.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="longest a client waits for AWS before it gets an error (default 20); "
        "the fetch goes on in the background",
    )
    parser.add_argument(
        "--question-wait",
        type=_seconds,
        default=Policy.question_wait,
        metavar="SECONDS",
        help="longest a question (an MFA code) asked for a caller without a terminal "
        f"waits for its answer, and a sign-in for its login (default {Policy.question_wait:g})",
    )
    parser.add_argument(
        "--idle-exit",
        type=_seconds,
        metavar="SECONDS",
        help="exit after this long without a request, 0 for never (default: "
        f"{ACTIVATED_IDLE_EXIT / 3600:.0f} h on a socket from systemd or launchd, else never)",
    )
    parser.add_argument(
        "--idle-exit-with-entries",
        action="store_true",
        help="exit when idle even while holding tokens that it keeps fresh",
    )
    service = parser.add_mutually_exclusive_group()
    service.add_argument(
        "--install-service",
        action="store_true",
        help="write systemd user units (Linux) or a LaunchAgent (macOS) that start this "
        "wev-daemon on demand, and print the command that enables them",
    )
    service.add_argument(
        "--uninstall-service",
        action="store_true",
        help="remove what --install-service wrote",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --install-service: write the files even where the service manager "
        "does not run for you now (a home folder or an image prepared for later)",
    )
    parser.add_argument("--version", action="version", version=f"wev-daemon {__version__}")
    args = parser.parse_args(argv)
    if args.force and not args.install_service:
        parser.error("--force goes with --install-service")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGTERM, SIGINT or idle; or write/remove the service files."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.install_service or args.uninstall_service:
        return _service(install=args.install_service, force=args.force)
    _log_to_stderr(args.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiohttp logs each malformed request with a traceback; it already answers
    # 400, and a client spamming garbage must not fill the log.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # It logs a traceback for each MFA question round of an assume-role profile;
    # the client gets the outcome in one line anyway.
    logging.getLogger("aiobotocore.credentials").setLevel(logging.ERROR)
    try:
        from wev_daemon import activation

        # Taken out of the environment first: nothing the daemon starts may see them.
        notifier = activation.Notifier.from_environ(os.environ)
        inherited = activation.inherited_sockets(os.environ)
        # The loopback proxy's TCP sockets are the proxy's alone, never the daemon's routes'.
        proxy_socks = [item.sock for item in inherited if item.is_proxy]
        inherited = [item for item in inherited if not item.is_proxy]
        if inherited:
            path = inherited[0].path
            if args.socket and os.path.abspath(args.socket) != path:
                log.warning("serving the socket from %s, not --socket", inherited[0].manager)
        else:
            path = os.path.abspath(args.socket or paths.socket_path(os.environ))
            if problem := paths.socket_path_problem(path):
                raise SocketPathTooLong(
                    f"cannot listen on {path}: {problem}",
                    hint="use a shorter --socket or WEV_SOCKET, in a folder only you can enter",
                )
        harden()
        idle_exit = args.idle_exit
        if idle_exit is None:
            idle_exit = ACTIVATED_IDLE_EXIT if inherited else 0.0
        return asyncio.run(
            _run(
                path,
                inherited,
                notifier,
                wait_timeout=args.wait_timeout,
                question_wait=args.question_wait,
                idle_exit=idle_exit,
                idle_exit_with_entries=args.idle_exit_with_entries,
                proxy_socks=proxy_socks,
            )
        )
    except WevError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return error.exit_status
    except OSError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return 71  # EX_OSERR
    except KeyboardInterrupt:
        return 130


async def _run(
    path: str,
    inherited: list[Inherited],
    notifier: Notifier,
    *,
    wait_timeout: float,
    question_wait: float,
    idle_exit: float,
    idle_exit_with_entries: bool,
    proxy_socks: Sequence[socket.socket] = (),
) -> int:
    # Imported here so that `wev-daemon --help` stays quick.
    from wev_daemon import server
    from wev_daemon.app import make_app
    from wev_daemon.cache import TokenCache
    from wev_daemon.installation import Installation
    from wev_daemon.proxy import Proxy
    from wev_daemon.resolver import Resolver

    lock, inode = None, None
    if inherited:
        socks = [item.sock for item in inherited]
        if path.startswith("/"):
            server.ensure_private_folder(os.path.dirname(path))
            try:
                lock = server.take_lock(path)
            except server.AlreadyRunning as error:
                # The service manager bound the path over that daemon's socket:
                # no client reaches it, and it exits once it notices. Failing
                # here would only make the service manager restart us in a loop.
                log.warning("%s; serving the socket from %s", error, inherited[0].manager)
    else:
        server.ensure_private_folder(os.path.dirname(path) or ".")
        lock = server.take_lock(path)
    try:
        if not inherited:
            sock, inode = server.bind_socket(path)
            socks = [sock]
        policy = Policy(fetch_timeout=wait_timeout, question_wait=question_wait)
        cache = TokenCache(policy=policy, after_fetches=server.collect_what_fetches_left)
        resolver = Resolver(cache=cache)  # loads the plugins
        app = make_app(
            resolver=resolver,
            socket_path=path,
            service_manager=inherited[0].manager if inherited else "",
            proxy=Proxy.from_environ(os.environ, proxy_socks),
            installation=Installation(),  # after the plugins: what they are now
        )
        await server.serve(
            app,
            socks,
            path,
            inode=inode,
            notifier=notifier,
            idle=server.IdleExit(idle_exit, with_entries=idle_exit_with_entries),
        )
    finally:
        if lock is not None:
            os.close(lock)
    return 0


def harden() -> None:
    """Keep the daemon's memory and environment to itself, as ssh-agent does.

    Called once the socket path is absolute: it leaves the working folder.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _not_dumpable()
    try:
        started_in: str | None = os.getcwd()
    except OSError:  # the folder is gone already
        started_in = None
    # It kept the folder it was started in busy (an unmountable disk, a
    # project that cannot be removed), and modules imported from now on must
    # not come from there. wev itself may live there (a source checkout).
    home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [
        entry
        for entry in sys.path
        if entry == home or (os.path.isabs(entry) and entry != started_in)
    ]
    os.chdir("/")
    # The daemon resolves in each client's AWS context, never its own, and
    # what it starts (a credential_process) gets no secrets of the shell
    # that started it. /proc/PID/environ keeps the original block: a
    # started daemon gets the cut-down one from its client already.
    for name in set(os.environ) - set(paths.daemon_environ(os.environ)):
        del os.environ[name]


def _not_dumpable() -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if sys.platform == "linux":
            failed = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
        elif sys.platform == "darwin":
            failed = libc.ptrace(PT_DENY_ATTACH, 0, None, 0) != 0
        else:
            return
    except (OSError, AttributeError) as error:
        log.warning("cannot keep other processes out of this one's memory: %s", error)
        return
    if failed:
        log.warning(
            "cannot keep other processes out of this one's memory: %s",
            os.strerror(ctypes.get_errno()),
        )


def _service(*, install: bool, force: bool = False) -> int:
    """``--install-service`` / ``--uninstall-service``: write or remove, then say what to run."""
    from wev_daemon import service

    try:
        layout = service.Layout.for_user(sys.platform, os.environ)  # refuses unknown ones
        if install and not force:
            service.check_manager(layout, os.environ)
        if install:
            executable = service.find_executable(sys.argv[0])
            lines = service.install(dataclasses.replace(layout, executable=executable), os.environ)
        else:
            lines = service.uninstall(layout)
    except WevError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return error.exit_status
    except OSError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return 73  # EX_CANTCREAT
    print("\n".join(lines))
    return 0


class _JournalFormatter(logging.Formatter):
    """journald timestamps and tags each line itself; "<N>" sets its priority."""

    def format(self, record: logging.LogRecord) -> str:
        priority = JOURNAL_PRIORITY.get(record.levelname, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def _log_to_stderr(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if _stderr_is_journal():
        handler.setFormatter(_JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s wev-daemon[%(process)d] %(levelname)s %(name)s: %(message)s"
            )
        )
    logging.basicConfig(level=level, handlers=[handler])


def _stderr_is_journal() -> bool:
    """Whether systemd connected stderr to the journal (``$JOURNAL_STREAM``, systemd.exec(5))."""
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return os.environ.get("JOURNAL_STREAM") == f"{st.st_dev}:{st.st_ino}"


if __name__ == "__main__":
    sys.exit(main())
