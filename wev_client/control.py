"""Managing the running daemon: its status, dropping what it holds, stopping it.

``wev --status``, ``--forget`` and ``--stop``: each asks the daemon on the
socket whatever ``WEV_NO_DAEMON`` says (a daemon started before it was set
holds tokens too), never starts one, and prints its answer.

Imported by ``wev_client.cli`` for these options only, never on the hot path.
"""

from __future__ import annotations

import sys
import time

from wev_client import __version__, connection, paths, protocol, spawn, transport
from wev_client.protocol import errors
from wev_client.protocol.errors import DaemonUnavailable, WevError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from wev_client.protocol.messages import ResolveRequest


def forget(request: ResolveRequest | None, environ: Mapping[str, str]) -> int | None:
    """Make the running daemon drop what it holds for ``request``'s entries (None: all).

    Returns how many entries it dropped, or None when no daemon runs. Asks
    whatever ``WEV_NO_DAEMON`` says: a daemon started before it was set holds
    tokens too.
    """
    path = connection.socket_path(environ)
    if request is None:
        route, body = protocol.FORGET_ALL_ROUTE, None
    else:
        route, body = protocol.FORGET_ROUTE, request.to_json()
    try:
        code, answer = transport.request(path, "POST", route, body, version=__version__)
        if code == 409:  # going away (stopping, outdated): ask the one that follows
            spawn.await_current_daemon(path, environ, lambda message: None)
            code, answer = transport.request(path, "POST", route, body, version=__version__)
    except transport.NotListening:
        return None
    if code != 200 or not isinstance(answer, dict):
        raise errors.error_from_json(answer)
    forgotten = answer.get("forgotten")
    return forgotten if isinstance(forgotten, int) else 0


class ServiceManaged(WevError):
    """``wev --stop`` where a service manager would start the daemon again at once."""

    code = "service_managed"
    exit_status = 69  # EX_UNAVAILABLE: not stopped; the hint says how


def stop(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """Make the running daemon drop every value and exit; wait until it has gone.

    Returns its pid and how many entries it dropped, or None when none runs.
    Asks whatever ``WEV_NO_DAEMON`` says. A daemon that systemd or launchd
    started drops its values but keeps running (the service manager would
    start it again): ServiceManaged names the command that stops the service.
    """
    path = connection.socket_path(environ)
    try:
        code, answer = transport.request(path, "POST", protocol.STOP_ROUTE, version=__version__)
    except (transport.NotListening, transport.DaemonGone):
        return None
    if code == 409:  # stopping already (asked twice, or outdated): wait for it as well
        code, answer = transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
        if isinstance(answer, dict):
            answer = {**answer, "forgotten": 0, "stopping": True}
    if code != 200 or not isinstance(answer, dict):
        raise errors.error_from_json(answer)
    pid, forgotten = answer.get("pid"), answer.get("forgotten")
    dropped = forgotten if isinstance(forgotten, int) else 0
    if not answer.get("stopping"):
        raise ServiceManaged(
            f"wev-daemon (pid {pid}) runs under {answer.get('service_manager')}, which would "
            f"start it again at the next call; it dropped every value it held ({dropped})",
            hint=f"stop the service: {answer.get('stop_command')}",
        )
    deadline = time.monotonic() + spawn.START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            code, body = transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
        except (transport.NotListening, transport.DaemonGone):
            return (pid if isinstance(pid, int) else 0), dropped
        if code == 200 and isinstance(body, dict) and body.get("pid") != pid:
            return (pid if isinstance(pid, int) else 0), dropped  # another one took over
        time.sleep(0.05)
    raise WevError(
        f"wev-daemon (pid {pid}) did not stop within {spawn.START_TIMEOUT:.0f} s",
        hint=f"kill {pid}" if isinstance(pid, int) else None,
    )


def status(environ: Mapping[str, str]) -> dict[str, object]:
    """The running daemon's status document; DaemonUnavailable when none runs."""
    path = connection.socket_path(environ)
    try:
        code, body = transport.request(path, "GET", protocol.STATUS_ROUTE, version=__version__)
    except transport.NotListening:
        raise DaemonUnavailable(f"no wev-daemon is running (socket {path})") from None
    if code != 200 or not isinstance(body, dict):
        raise errors.error_from_json(body)
    body.setdefault("socket", path)
    return body


def show_forgotten(forgotten: int | None, what: str) -> int:
    if forgotten is None:
        print("wev: no wev-daemon is running: nothing is held")
    else:
        entries = "entry" if forgotten == 1 else "entries"
        print(f"wev: the daemon dropped {forgotten} {entries} for {what}")
    return 0


def show_stopped(stopped: tuple[int, int] | None, environ: Mapping[str, str]) -> int:
    if stopped is None:
        print(f"wev: no wev-daemon is running (socket {paths.socket_path(environ)})")
    else:
        pid, forgotten = stopped
        entries = "entry" if forgotten == 1 else "entries"
        print(f"wev: stopped wev-daemon (pid {pid}); it dropped {forgotten} {entries} first")
    return 0


def show_status(environ: Mapping[str, str], *, as_json: bool) -> int:
    try:
        body = status(environ)
    except WevError as error:
        if not as_json:
            raise
        from wev_client.protocol import codec

        body = {"running": False, "pid": None, "error": error.message}
        print(codec.dumps(body))
        return error.exit_status
    if as_json:
        import json

        print(json.dumps(body, indent=2))
    else:
        from wev_client import output

        sys.stdout.write(output.status(body))
    return 0
