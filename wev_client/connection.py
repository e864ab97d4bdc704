"""Getting answers: from the daemon, starting it when none answers, or in-process.

The order mirrors what a user expects: a running daemon answers; when no
daemon listens, one is started detached (``spawn``, imported only then) and
asked once more; when none can be started, or ``WEV_NO_DAEMON=1`` is set
(CI), the same resolution runs inside this process.

A plugin may need the user's input (an MFA code): the daemon answers with
prompts instead of values, the client asks on its terminal (``prompt``,
imported only then) and sends the same request again with the answers. A
client with no terminal says so; the daemon then asks on another channel and
answers with prompts to wait on, and the client sends its request again until
the answer came (the daemon bounds the wait), saying once on stderr what it
waits for.
"""

from __future__ import annotations

import os
import sys
import time

from wev_client import __version__, config_files, paths, protocol, transport
from wev_client.protocol import errors
from wev_client.protocol.errors import WevError
from wev_client.protocol.messages import ResolveRequest, ResolveResponse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from wev_client.protocol.messages import VariableSpec
    from wev_client.protocol.parsing import ParseResponse
    from wev_client.protocol.side_messages import Prompt

#: Longest a client waits on a question the daemon holds; the daemon's own
#: bound (``Policy.question_wait``) ends it long before.
WAIT_LIMIT = 3600.0


def no_daemon(environ: Mapping[str, str]) -> bool:
    return environ.get("WEV_NO_DAEMON", "").strip().lower() not in ("", "0", "false", "no")


def resolve(
    request: ResolveRequest,
    environ: Mapping[str, str],
    debug: Callable[[str], None],
    before_prompt: Callable[[], None] | None = None,
    *,
    socket: str | None = None,
) -> ResolveResponse:
    """Resolve every variable of ``request``, asking the user what plugins need.

    ``before_prompt`` runs before the terminal is used (it clears the status line).
    ``socket``: the daemon's socket path, when the caller has it already (else
    ``socket_path``), here and in ``explain`` and ``parse_config``. A request
    with ``files`` gets the variables they make in its response's ``parsed``.
    """

    def ask(prompts: tuple[Prompt, ...]) -> dict[str, str]:
        from wev_client import prompt  # termios: only when a question arrives

        debug(f"{len(prompts)} question(s) for the user")
        return prompt.ask(prompts, before_prompt)

    route = protocol.RESOLVE_ROUTE
    request = request.but(terminal=_has_terminal())
    response, parsed = None, None
    if request.files:  # right after an edit: parsed by the daemon, if one runs that does
        response = _ask_with_files(request, environ, debug, socket)
        parsed = None if response is None else response.parsed
        if parsed is None or parsed.version != __version__:  # another version may read otherwise
            debug("parsing the configuration in this process")
            parsed, response = _parse_here(request.files), None
        request = request.with_variables(parsed.variables)
        if not request.variables:  # nothing configured: no daemon is needed, nor started
            return ResolveResponse({}, parsed=parsed)
    if response is None:
        response = _ask(route, request, environ, debug, start=True, ask=ask, socket=socket)
    rounds, told, deadline = 0, False, time.monotonic() + WAIT_LIMIT
    while response.prompts:
        mine = tuple(prompt for prompt in response.prompts if not prompt.waiting)
        if not mine:  # asked elsewhere: the daemon holds the question, and this request
            if not request.terminal and not told:  # a terminal shows the status line
                from wev_client import prompt  # a rare path: not on the hot path

                if in_ci(environ) and prompt.only_a_person_answers(response.prompts):
                    raise prompt.nobody_in_ci(response.prompts)
                told = prompt.tell_waiting(response.prompts)
            request = request.but(wait=True)
            if time.monotonic() > deadline:
                raise errors.InputRequired(f"{response.prompts[0].label}: still waiting")
        elif rounds == protocol.MAX_PROMPT_ROUNDS:
            raise WevError(f"{mine[0].label}: still asking after {rounds} answers")
        else:
            rounds += 1
            try:
                answers = ask(mine)
            except (KeyboardInterrupt, errors.InputRequired):
                # Free the question at once, so another terminal is asked without
                # waiting (an older daemon asks a caller with no terminal, too).
                cancel = request.with_answers({}, tuple(p.id for p in mine))
                try:
                    _ask(route, cancel, environ, debug, start=False, socket=socket)
                except WevError as error:
                    debug(f"could not cancel the question: {error}")
                raise
            request = request.with_answers(answers)
        response = _ask(route, request, environ, debug, start=True, ask=ask, socket=socket)
    response = _asked_for(request, response, debug)
    response.parsed = parsed
    return response


def named_as(error: WevError, door: VariableSpec, entry: VariableSpec | None) -> WevError:
    """``error`` about a door's own entry (``door``: names no file holds) with the key of the
    user's ``entry`` it was made from in their place, or with no key at all."""
    error.message = error.message.replace(f"{door.label}: ", f"{entry.label}: " if entry else "", 1)
    return error


def in_ci(environ: Mapping[str, str]) -> bool:
    """Whether this runs in CI (``CI=true``, as GitHub Actions, GitLab and most others set
    it): nobody there signs in or types a code, so nothing waits for a person."""
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _has_terminal() -> bool:
    """Whether a question can be asked on this process's terminal (``/dev/tty``)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal
        return False
    os.close(fd)
    return True


def _asked_for(
    request: ResolveRequest, response: ResolveResponse, debug: Callable[[str], None]
) -> ResolveResponse:
    """``response`` with only the variables ``request`` names: no answer sets others
    (``LD_PRELOAD``, ``PATH``) in the command's environment."""
    names = {name for spec in request.variables for name in spec.names}
    if names.issuperset(response.values):
        return response
    debug(f"ignored variables nobody asked for: {', '.join(sorted(set(response.values) - names))}")
    values = {name: value for name, value in response.values.items() if name in names}
    return ResolveResponse(values, response.entries, response.warnings, response.prompts)


def explain(
    request: ResolveRequest,
    environ: Mapping[str, str],
    debug: Callable[[str], None],
    *,
    socket: str | None = None,
) -> ResolveResponse:
    """What the daemon knows of each variable, values left out; never starts a daemon."""
    return _ask(protocol.EXPLAIN_ROUTE, request, environ, debug, start=False, socket=socket)


def parse_config(
    files: list[tuple[str, bytes]],
    environ: Mapping[str, str],
    debug: Callable[[str], None],
    *,
    socket: str | None = None,
) -> tuple[VariableSpec, ...] | None:
    """Have the running daemon parse and merge edited config files (``config_files.Parser``).

    The daemon has PyYAML loaded; importing it here would cost more than the
    rest of the call. None when no daemon of this very version answers (its
    loader could read values otherwise): the caller parses in its own process.
    Never starts a daemon; a ConfigError naming the file is raised as is.
    """
    if no_daemon(environ):
        return None
    from wev_client.protocol.parsing import ParseRequest, ParseResponse  # after an edit only

    texts = config_files.as_text(files)
    if texts is None:  # other bytes (UTF-16, binary) are left to the local parser
        return None
    try:
        body = ParseRequest(texts).to_json()
        path = socket or socket_path(environ)
        code, answer = transport.request(
            path, "POST", protocol.PARSE_ROUTE, body, version=__version__
        )
    except (WevError, OSError) as error:  # none to ask, or none to trust: resolving says so
        debug(f"parsing the configuration in this process: {error}")
        return None
    if code != 200:
        refusal = errors.error_from_json(answer)
        if isinstance(refusal, errors.ConfigError):
            raise refusal
        debug(f"parsing the configuration in this process: {refusal}")
        return None
    try:
        parsed = ParseResponse.from_json(answer)
    except WevError as error:
        debug(f"parsing the configuration in this process: {error}")
        return None
    if parsed.version != __version__:
        debug(f"parsing the configuration in this process: the daemon runs {parsed.version}")
        return None
    return parsed.variables


def socket_path(environ: Mapping[str, str]) -> str:
    """The daemon's socket path; UntrustedDaemon when there is no private place for it."""
    try:
        return paths.socket_path(environ)
    except OSError as error:  # platformdirs found no private runtime folder
        raise transport.UntrustedDaemon(
            f"no private place for the daemon's socket: {error}",
            hint="set XDG_RUNTIME_DIR, or WEV_SOCKET to a path in a folder only you can enter",
        ) from None


def _ask(
    route: str,
    request: ResolveRequest,
    environ: Mapping[str, str],
    debug: Callable[[str], None],
    *,
    start: bool,
    ask: Callable[[tuple[Prompt, ...]], dict[str, str]] | None = None,
    socket: str | None = None,
) -> ResolveResponse:
    if no_daemon(environ):
        debug("WEV_NO_DAEMON is set: resolving in this process")
        return _in_process(route, request, ask)
    body = request.to_json()
    try:
        path = socket or socket_path(environ)
        code, answer = transport.request(path, "POST", route, body, version=__version__)
    except transport.UnusableSocket as unusable:
        # Nothing was sent; say why on every call, since each one is slower for it.
        _warn_unusable(unusable)
        return _in_process(route, request, ask)
    except (transport.NotListening, transport.DaemonGone) as absent:
        # No daemon, or it died while answering (killed, crashed): start one, ask once more.
        if not start:
            debug(f"{absent}: answering from this process")
            return _in_process(route, request, ask)
        debug(f"{absent}: starting a daemon")
        from wev_client import spawn  # no daemon answers: not the hot path

        if not spawn.start_daemon(path, environ, debug):
            debug("the daemon could not start: resolving in this process")
            return _in_process(route, request, ask)
        try:
            code, answer = transport.request(path, "POST", route, body, version=__version__)
        except (transport.NotListening, transport.DaemonGone) as again:
            debug(f"{again}, once more: resolving in this process")
            return _in_process(route, request, ask)
        except transport.UnusableSocket as unusable:  # swapped while the daemon started
            _warn_unusable(unusable)
            return _in_process(route, request, ask)
    if code != 200:
        error = errors.error_from_json(answer)
        if not isinstance(error, errors.VersionMismatch | errors.UnknownPlugin) or not start:
            raise error
        from wev_client import spawn  # another daemon than this wev's: not the hot path

        if isinstance(error, errors.UnknownPlugin):
            spawn.take_over_for_plugin(path, environ, error, debug)
        else:
            debug(f"{error.message}: restarting it")
            spawn.await_current_daemon(path, environ, debug)
        try:
            code, answer = transport.request(path, "POST", route, body, version=__version__)
        except (transport.NotListening, transport.DaemonGone) as absent:  # none could start
            debug(f"{absent}: resolving in this process")
            return _in_process(route, request, ask)
        if code != 200:
            raise errors.error_from_json(answer)
    try:
        return ResolveResponse.from_json(answer)
    except errors.ProtocolError as error:
        raise transport.not_ours(path, error) from None


def _in_process(
    route: str,
    request: ResolveRequest,
    ask: Callable[[tuple[Prompt, ...]], dict[str, str]] | None = None,
) -> ResolveResponse:
    # Imported here, never on the hot path: it brings asyncio, aiohttp and botocore.
    from wev_daemon.inprocess import answer

    return answer(route, request, ask)


def _ask_with_files(
    request: ResolveRequest,
    environ: Mapping[str, str],
    debug: Callable[[str], None],
    socket: str | None,
) -> ResolveResponse | None:
    """The running daemon's answer to a request that carries the configuration's files.

    None when no daemon answers it as this client's own would (none runs, one
    of another version that restarts or lacks a plugin, or one that cannot read
    it: larger than a request may be): the caller then parses the files here
    and asks with their variables, as for any request, so that a folder with
    nothing configured starts no daemon.
    """
    path = socket or socket_path(environ)
    try:
        code, answer = transport.request(
            path, "POST", protocol.RESOLVE_ROUTE, request.to_json(), version=__version__
        )
    except (transport.UnusableSocket, transport.NotListening, transport.DaemonGone) as absent:
        debug(f"no daemon to parse the configuration: {absent}")
        return None
    if code != 200:
        refusal = errors.error_from_json(answer)
        if isinstance(refusal, errors.ProtocolError | errors.UnknownPlugin):
            debug(f"no daemon to parse the configuration: {refusal.message}")
            return None
        raise refusal
    try:
        return ResolveResponse.from_json(answer)
    except errors.ProtocolError as error:
        raise transport.not_ours(path, error) from None


def _warn_unusable(unusable: transport.UnusableSocket) -> None:
    from wev_client.output import printable  # the path is the user's; its reason the OS's

    print(f"wev: warning: {printable(unusable)}; resolving in this process", file=sys.stderr)


def _parse_here(files: tuple[tuple[str, str], ...]) -> ParseResponse:
    """What the configuration files' text makes, parsed in this process (PyYAML: ~20 ms)."""
    from wev_client.config_parse import parse_texts
    from wev_client.protocol.parsing import ParseResponse

    variables = parse_texts([(path, text.encode()) for path, text in files])
    return ParseResponse(variables, __version__)
