"""`wev-daemon` command line: arguments, logging, and the run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from wev_client import __version__, paths
from wev_client.protocol import WevError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="longest a client waits for AWS before it gets an error (default 20); "
        "the fetch goes on in the background",
    )
    parser.add_argument("--version", action="version", version=f"wev-daemon {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s wev-daemon[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # The daemon resolves in each client's AWS context, never its own: drop
    # AWS_* so that nothing of the starting shell leaks into a resolution.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    try:
        path = os.path.abspath(args.socket or paths.socket_path(os.environ))
        return asyncio.run(_run(path, wait_timeout=args.wait_timeout))
    except WevError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return error.exit_status
    except OSError as error:
        print(f"wev-daemon: {error}", file=sys.stderr)
        return 71  # EX_OSERR
    except KeyboardInterrupt:
        return 130


async def _run(path: str, *, wait_timeout: float) -> int:
    # Imported here so that `wev-daemon --help` stays quick.
    from wev_daemon import server
    from wev_daemon.app import make_app
    from wev_daemon.cache import Policy, TokenCache
    from wev_daemon.resolver import Resolver

    server.ensure_private_folder(os.path.dirname(path) or ".")
    lock = server.take_lock(path)
    try:
        sock = server.bind_socket(path)
        app = make_app(resolver=Resolver(cache=TokenCache(policy=Policy(fetch_timeout=wait_timeout))), socket_path=path)
        await server.serve(app, sock, path)
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
