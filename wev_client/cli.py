"""The ``wev`` command line: options, the main path, and errors turned into exit statuses.

``main`` is the one place where a WevError becomes a line on stderr and an exit
status. Options come before the command, as with ``env``; everything from the
first non-option word on is the command.
"""

from __future__ import annotations

import os
import sys

from wev_client import __version__, config_files, connection, paths
from wev_client.execute import exec_command, interrupted, reader_gone
from wev_client.protocol.context import context_env
from wev_client.protocol.errors import UsageError, WevError
from wev_client.protocol.messages import ResolveRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

USAGE = """\
usage: wev [OPTIONS] COMMAND [ARGS...]
       wev --export [--format FORMAT] | --explain | --status [--json]
       wev --forget [--all] | --stop | --answer | --version
       wev --aws-credentials NAME
       wev --install-docker-helper [ECR_REGISTRY_HOST...]

Run COMMAND with the environment variables that the wev.yml files of this
folder and its parents configure, resolved by wev-daemon. ${NAME} in the
arguments is replaced for the variables wev sets, unless COMMAND is a shell
(it expands "${NAME}" itself) or the value holds more than A-Za-z0-9_.~+/=:,%-.

options:
  --explain          show how each variable would be resolved (never its value)
  --export           print export NAME='value' lines, for eval "$(wev --export)"
  --format FORMAT    with --export: sh (default), fish, dotenv or json
  --status           show the daemon's pid, uptime and entries
  --json             with --status: print one JSON object
  --forget           make the daemon drop what it holds for this configuration
                     (after switching accounts where wev cannot see it)
  --all              with --forget: drop everything the daemon holds
  --stop             make the daemon drop every value and exit
  --aws-credentials NAME
                     print the AWS credential_process JSON of the entry that
                     sets NAME (credential_process = wev --aws-credentials NAME)
  --install-docker-helper [HOST...]
                     make Docker and the containers tools ask wev for these ECR
                     registries' passwords (default: those wev.yml names)
  --answer           answer here the questions (MFA codes) that the daemon
                     holds for callers without a terminal
  --log-level LEVEL  DEBUG, INFO, WARNING or ERROR (default WARNING), on stderr
  --version          print wev's version
  -h, --help         show this help

environment:
  WEV_NO_DAEMON=1    resolve in this process, without a daemon (CI)
  WEV_SOCKET=PATH    the daemon's socket (default: daemon.sock in the runtime folder)
  WEV_ASKPASS=PROG   asks questions when there is no terminal (as SSH_ASKPASS)
  CI=true            nobody answers questions: fail at once instead of waiting
  GITHUB_ACTIONS=true
                     print ::add-mask:: for each secret value before the command
"""

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXPORT_FORMATS = ("sh", "fish", "dotenv", "json")
INTERNAL_ERROR = 70  # EX_SOFTWARE


class Options:
    """The parsed command line."""

    __slots__ = ("action", "as_json", "command", "entry", "every", "format", "log_level")

    def __init__(self) -> None:
        self.action = "run"
        self.as_json = False
        self.every = False
        self.entry = ""
        self.format: str | None = None
        self.log_level = "WARNING"
        self.command: list[str] = []


def parse_args(argv: Sequence[str]) -> Options:
    """Parse options up to the command (argparse would cost the hot path ~7 ms)."""
    options = Options()
    actions = {
        "--explain": "explain",
        "--export": "export",
        "--status": "status",
        "--forget": "forget",
        "--install-docker-helper": "install-docker-helper",
        "--stop": "stop",
        "--answer": "answer",
    }
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg in actions:
            if options.action != "run":
                raise UsageError(f"{arg} cannot be combined with --{options.action}")
            options.action = actions[arg]
        elif arg in ("-h", "--help"):
            options.action = "help"
        elif arg == "--version":
            options.action = "version"
        elif arg == "--json":
            options.as_json = True
        elif arg == "--all":
            options.every = True
        elif arg == "--aws-credentials" or arg.startswith("--aws-credentials="):
            if options.action != "run":
                raise UsageError(f"--aws-credentials cannot be combined with --{options.action}")
            options.action = "aws-credentials"
            options.entry, index = _option_value(argv, index, "a name the entry sets")
        elif arg == "--log-level" or arg.startswith("--log-level="):
            level, index = _option_value(argv, index, "a level: " + ", ".join(LEVELS))
            if level.upper() not in LEVELS:
                raise UsageError(f"unknown log level {level!r}: use " + ", ".join(LEVELS))
            options.log_level = level.upper()
        elif arg == "--format" or arg.startswith("--format="):
            fmt, index = _option_value(argv, index, "a format: " + ", ".join(EXPORT_FORMATS))
            if fmt not in EXPORT_FORMATS:
                raise UsageError(f"unknown format {fmt!r}: use " + ", ".join(EXPORT_FORMATS))
            options.format = fmt
        else:
            raise UsageError(f"unknown option {arg}", hint="see wev --help")
        index += 1
    options.command = list(argv[index:])
    if options.as_json and options.action != "status":
        raise UsageError("--json goes with --status")
    if options.every and options.action != "forget":
        raise UsageError("--all goes with --forget")
    if options.format is not None and options.action != "export":
        raise UsageError("--format goes with --export")
    if options.action == "run" and not options.command:
        raise UsageError("no command given", hint="usage: wev [OPTIONS] COMMAND [ARGS...]")
    takes_words = options.action in ("run", "help", "version", "install-docker-helper")
    if options.command and not takes_words:
        raise UsageError(f"--{options.action} takes no command")
    return options


def _option_value(argv: Sequence[str], index: int, wanted: str) -> tuple[str, int]:
    """The value of ``--name=value`` or ``--name value``, and the index of its last word."""
    arg = argv[index]
    if "=" in arg:
        return arg.partition("=")[2], index
    if index + 1 == len(argv):
        raise UsageError(f"{arg} needs {wanted}")
    return argv[index + 1], index + 1


class Log:
    """Diagnostics on stderr, ``wev:``-prefixed; never values (logging costs ~10 ms)."""

    __slots__ = ("level",)

    def __init__(self, level: str) -> None:
        self.level = LEVELS.index(level)

    def debug(self, message: str) -> None:
        if self.level == 0:
            print(f"wev: debug: {message}", file=sys.stderr)

    def warning(self, message: str) -> None:
        if self.level <= 2:
            from wev_client.output import printable  # rare: not on the hot path

            print(f"wev: warning: {printable(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run ``wev``; returns an exit status unless the command replaced this process."""
    argv = sys.argv[1:] if argv is None else argv
    # One copy: os.environ decodes every variable each time it is read through.
    environ = dict(os.environ) if environ is None else environ
    log = Log("WARNING")
    try:
        options = parse_args(argv)
        log = Log(options.log_level)
        status = run(options, environ, log)
        sys.stdout.flush()  # here, where a reader that has gone is caught
        return status
    except WevError as error:
        from wev_client.output import printable  # an error may quote a config or AWS

        print(f"wev: {printable(error)}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:  # `wev --status | head -1`: the reader has gone
        return reader_gone()
    except Exception as error:  # the unexpected: one line, the stack on DEBUG
        if log.level == 0:
            import traceback

            traceback.print_exc()
        print(
            f"wev: internal error: {type(error).__name__}: {error} "
            "(run with --log-level DEBUG for the details)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR


def run(options: Options, environ: Mapping[str, str], log: Log) -> int:
    if options.action == "help":
        sys.stdout.write(USAGE)
        return 0
    if options.action == "version":
        print(f"wev {__version__}")
        return 0
    if options.action == "status":
        from wev_client import control  # the daemon's management: not the hot path

        return control.show_status(environ, as_json=options.as_json)
    if options.action == "aws-credentials":
        from wev_client import aws_credentials  # a credential_process: not the hot path

        return aws_credentials.run(options.entry, environ, log.warning)
    if options.action == "install-docker-helper":
        from wev_client import docker_setup  # rare: not the hot path

        return docker_setup.run(options.command, environ)
    if options.action == "stop":
        from wev_client import control

        return control.show_stopped(control.stop(environ), environ)
    if options.action == "answer":
        from wev_client import answer  # asks on the terminal: not the hot path

        return answer.run(environ)
    if options.action == "forget" and options.every:
        from wev_client import control

        return control.show_forgotten(control.forget(None, environ), "everything it held")

    try:
        cwd = os.getcwd()
    except OSError as error:
        raise UsageError(f"the working folder is gone: {error.strerror}") from None
    socket = _socket_path(environ, log)
    config = config_files.read(
        cwd,
        environ.get("HOME"),
        None if socket is None else paths.config_cache_beside(socket),
        log.warning,
    )
    # A status line, on a terminal (and not with DEBUG, which writes lines of its own).
    progress = log.level > 0 and environ.get("TERM") != "dumb" and os.isatty(2)
    specs = config.variables
    files: tuple[tuple[str, str], ...] = ()
    if specs is None:  # an edit: the daemon parses the files as it resolves, in one round trip
        if options.action in ("run", "export") and not progress and socket is not None:
            files = () if connection.no_daemon(environ) else config.utf8_texts
        if not files:  # or on their own first (a status line names the entries at once)
            specs = config.parse(
                lambda texts: connection.parse_config(texts, environ, log.debug, socket=socket)
            )
    request = ResolveRequest(
        specs or (), context_env(environ, cwd), process_env=environ, cwd=cwd, files=files
    )
    log.debug(f"{len(files)} edited files to parse" if files else f"{len(specs or ())} entries")
    if options.action == "forget":
        from wev_client import control

        return control.show_forgotten(control.forget(request, environ), "this configuration")
    if options.action == "explain":
        from wev_client import output

        known = connection.explain(request, environ, log.debug, socket=socket)
        sys.stdout.write(output.explain(request.variables, known))
        return 0
    secrets: list[str] = []
    if not specs and not files:
        values: Mapping[str, str] = {}
    else:
        if progress and specs:
            from wev_client.progress import Progress  # not in scripts nor in CI

            with Progress(specs, environ) as line:
                response = connection.resolve(
                    request, environ, log.debug, line.pause, socket=socket
                )
        else:
            response = connection.resolve(request, environ, log.debug, socket=socket)
        if files and response.parsed is not None:
            config.parsed(response.parsed.variables)
        for warning in response.warnings:
            log.warning(warning)
        values = response.values
        if environ.get("GITHUB_ACTIONS") == "true":  # the runner masks them in its log
            secrets = response.secret_values()
    if options.action == "export":
        from wev_client import output

        fmt = options.format or "sh"
        if secrets and fmt not in output.MASKING_FORMATS:  # the data is stdout's alone
            sys.stderr.write(output.mask_lines(secrets))
        sys.stdout.write(output.export(values, fmt, secrets))
        return 0
    if secrets:
        from wev_client import output

        output.announce_masks(secrets)
    return exec_command(substitute(options.command, values, log.warning), {**environ, **values})


#: Shells: they expand ``${NAME}`` themselves, from the environment wev sets,
#: and would run a value pasted into their arguments as code.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "csh", "tcsh"})
#: What a value may hold to be pasted into an argument: every character of a
#: token (base64, base64url, hex, URL-safe), and none that quotes, expands,
#: separates or escapes in a shell or a programming language.
INERT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~+/=:,%-")


def substitute(
    command: Sequence[str], values: Mapping[str, str], warn: Callable[[str], None] | None = None
) -> list[str]:
    """Replace ``${NAME}`` in the arguments for the variables wev resolved, and only those.

    So ``wev pip install --index-url 'https://aws:${TOKEN}@host/simple/'`` works
    without a shell in between. A value never becomes code: a shell's arguments
    are left alone (the shell expands ``"${NAME}"`` itself, from the
    environment), and a value holding anything but ``INERT`` characters, or one
    that would start an argument with ``-`` (an option), is not pasted at all:
    ``${NAME}`` stays as it is, and ``warn`` says so. Other ``$`` text is
    passed through untouched.
    """
    if not values or not command or os.path.basename(command[0]) in SHELLS:
        return list(command)
    expanded = []
    refused: list[str] = []
    for arg in command:
        parts = []
        start = 0
        while (opening := arg.find("${", start)) >= 0:
            closing = arg.find("}", opening + 2)
            name = arg[opening + 2 : closing] if closing >= 0 else ""
            value = values.get(name)
            # At the start of an argument, a value starting with "-" would be an option.
            if value is not None and not (
                INERT.issuperset(value) and (opening or not value.startswith("-"))
            ):
                if name not in refused:
                    refused.append(name)
                value = None
            if value is None:  # not ours, or not safe: leave it, and look after the "${"
                parts.append(arg[start : opening + 2])
                start = opening + 2
                continue
            parts.append(arg[start:opening])
            parts.append(value)  # never rescanned (and never holds "${")
            start = closing + 1
        parts.append(arg[start:])
        expanded.append("".join(parts))
    if warn is not None:
        for name in refused:
            warn(
                f"${{{name}}} is left as it is: its value could be read as code or as an "
                f"option; let the command read {name} from its environment"
            )
    return expanded


def _socket_path(environ: Mapping[str, str], log: Log) -> str | None:
    """The daemon's socket, found once per call: the config cache is beside it. None when
    there is no private place for it (then nothing is cached, and resolving says why)."""
    try:
        return connection.socket_path(environ)
    except WevError as error:
        log.debug(f"no config cache: {error}")
        return None
