"""Text the user reads: ``--export`` lines, ``--explain`` and ``--status`` reports.

None of these print a resolved value except ``--export``, whose whole purpose
is to hand the values to the calling shell (quoted for it, so no value is read
as code). Everything else that reaches a terminal from a config file, the
daemon or a plugin goes through ``printable``: such text must not move the
cursor, retitle the window or hide what precedes it.

Imported lazily (warnings, errors, the status line and the reports), never on
the hot path of an unchanged configuration.
"""

from __future__ import annotations

import contextlib

from wev_client.protocol import codec
from wev_client.protocol.errors import UsageError
from wev_client.protocol.messages import ResolveResponse, VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Mapping, Sequence

#: C0 and C1 controls, DEL, and the Unicode marks that break or reorder a line
#: (line and paragraph separators, bidirectional overrides and isolates).
_UNPRINTABLE = dict.fromkeys(
    [
        *range(0x20),
        *range(0x7F, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ],
    "?",
)


def printable(text: object) -> str:
    """``text`` as one line that is safe on a terminal: each control character becomes ``?``.

    As ``ls`` shows such names: a title-setting or screen-clearing sequence
    planted in a folder name, a config string or an upstream error message
    shows up as text instead of acting on the terminal.
    """
    return str(text).translate(_UNPRINTABLE)


def is_shell_name(name: str) -> bool:
    return (
        bool(name)
        and not name[0].isdigit()
        and all(c == "_" or (c.isascii() and c.isalnum()) for c in name)
    )


def shell_quote(value: str) -> str:
    """Single-quote for POSIX shells; a quote inside becomes '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"


def fish_quote(value: str) -> str:
    """Single-quote for fish, where only ``\\`` and ``\'`` are escapes inside quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dotenv_quote(value: str) -> str:
    """Quote as python-dotenv and docker compose read a ``.env`` file.

    Single quotes are literal in both, except that they disagree on a
    backslash, and cannot hold a quote or a newline; such values are
    double-quoted with the escapes both understand: ``\\\\``, ``\\"``, ``\\n``, ``\\r``.
    """
    if not any(char in value for char in "'\\\n\r"):
        return "'" + value + "'"
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return '"' + escaped + '"'


#: ``--export --format``: each format's line for one variable.
EXPORT_FORMATS: dict[str, Callable[[str, str], str]] = {
    "sh": lambda name, value: f"export {name}={shell_quote(value)}\n",
    "fish": lambda name, value: f"set -gx {name} {fish_quote(value)}\n",
    "dotenv": lambda name, value: f"{name}={dotenv_quote(value)}\n",
}
#: Formats whose evaluating shell prints the ``::add-mask::`` lines itself
#: (``printf`` is a builtin of both); a ``.env`` file and JSON are data, and
#: wev prints those lines on stderr instead, which the runner reads too.
MASKING_FORMATS = {"sh": shell_quote, "fish": fish_quote}


def mask_command(value: str) -> str:
    """GitHub Actions' ``add-mask`` workflow command for ``value`` (without its newline).

    The runner reads a command's data with ``%``, CR and LF escaped; each of
    the value's lines is masked on its own as well, so that a multi-line secret
    is hidden wherever one of its lines shows.
    """
    escaped = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::add-mask::{escaped}"


def _masks(secrets: Sequence[str]) -> list[str]:
    commands: list[str] = []
    for value in secrets:
        parts = [value, *value.splitlines()] if "\n" in value or "\r" in value else [value]
        if "@" in value and "://" in value:  # an index URL: a tool may show its token alone
            from urllib.parse import unquote, urlsplit

            with contextlib.suppress(ValueError):
                if password := urlsplit(value.strip()).password:
                    parts += [password, unquote(password)]
        for part in parts:
            if part.strip() and mask_command(part) not in commands:
                commands.append(mask_command(part))
    return commands


def mask_lines(secrets: Sequence[str]) -> str:
    """The ``::add-mask::`` lines that make GitHub Actions hide ``secrets`` from its log."""
    return "".join(command + "\n" for command in _masks(secrets))


def announce_masks(secrets: Sequence[str]) -> None:
    """Print ``secrets``' mask lines before the command runs, where the runner reads them.

    On stdout, as the runner's own commands are written, unless stdout goes to a
    file (``wev CMD > out.json``, ``> /dev/null``): the file would then hold the
    secret and lines that are no data of the command's. The runner reads a
    step's stderr for workflow commands too, and before its stdout lines.
    """
    import os
    import stat
    import sys

    try:
        mode = os.fstat(1).st_mode
        stream = sys.stdout if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(1) else None
    except OSError:  # stdout closed
        stream = None
    stream = stream or sys.stderr
    stream.write(mask_lines(secrets))
    stream.flush()  # before exec, which drops what is buffered


def export(values: Mapping[str, str], fmt: str = "sh", secrets: Sequence[str] = ()) -> str:
    """The variables for a shell (``sh``, ``fish``), a ``.env`` file or a program (``json``).

    For a shell, each of ``secrets`` first gets a line that makes it print the
    value's ``::add-mask::`` line (GitHub Actions), so ``eval "$(wev --export)"``
    masks what it sets.
    """
    if fmt == "json":
        return codec.dumps(dict(values)) + "\n"
    line = EXPORT_FORMATS[fmt]
    lines: list[str] = []
    if quote := MASKING_FORMATS.get(fmt):
        lines.extend(f"printf '%s\\n' {quote(command)}\n" for command in _masks(secrets))
    for name, value in values.items():
        if not is_shell_name(name):
            raise UsageError(
                f"cannot export {name!r}: not a shell variable name", hint="use --format json"
            )
        lines.append(line(name, value))
    return "".join(lines)


def waiting_for(specs: Sequence[VariableSpec], environ: Mapping[str, str]) -> str:
    """What a slow answer is waiting for, from the configuration alone (no daemon asked).

    ``CodeArtifact token for corp (profile work)``; other plugins by their key.
    """
    from wev_client.protocol.aws import CODEARTIFACT_PLUGIN_ID, profile_name

    parts: list[str] = []
    for spec in specs:
        plugin = spec.plugin
        if plugin.get("id") == CODEARTIFACT_PLUGIN_ID:
            text = f"CodeArtifact token for {plugin.get('domain')}"
            configured = plugin.get("profile")
            profile = profile_name(environ, str(configured) if configured else None)
            if profile:
                text += f" (profile {profile})"
        elif plugin.get("id") == "wev-echo":
            continue  # never slow
        else:
            text = f"{spec.label} ({plugin.get('id')})"
        if text not in parts:
            parts.append(text)
    return printable(", ".join(parts) or "values")


def _when(iso: str | None, now: datetime.datetime) -> str:
    import datetime

    if not iso:
        return "never"
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return printable(iso)
    delta = int((moment - now).total_seconds())
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{text} ({'in ' + duration(delta) if delta >= 0 else duration(-delta) + ' ago'})"


def duration(seconds: float) -> str:
    """Human-sized duration: 45s, 12m05s, 3h12m, 2d03h."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def explain(specs: tuple[VariableSpec, ...], response: ResolveResponse) -> str:
    """Per variable: plugin, contributing files, cached or not, expiry. No values."""
    import datetime

    if not specs:
        return (
            "No variables are configured here "
            "(looked for .wev.yml, wev.yml, .wev.user.yml, wev.user.yml).\n"
        )
    now = datetime.datetime.now(datetime.UTC)
    infos = {entry.names: entry for entry in response.entries}
    out = []
    for spec in specs:
        info = infos.get(spec.names)
        out.append(", ".join(spec.names))
        plugin = str(spec.plugin.get("id"))
        if info and info.description:
            plugin = f"{plugin}: {info.description}"
        out.append(f"  plugin:  {plugin}")
        out.append(f"  files:   {', '.join(spec.sources)}")
        if info is None:
            out.append("  cached:  unknown")
        elif not info.cached:
            out.append("  cached:  no (resolved when a command runs)")
        else:
            out.append(f"  cached:  yes, expires {_when(info.expires_at, now)}")
            if info.refresh_at:
                out.append(f"  refresh: {_when(info.refresh_at, now)}")
    out.extend(f"warning: {w}" for w in response.warnings)
    return "".join(printable(line) + "\n" for line in out)


def status(body: Mapping[str, object], client_version: str | None = None) -> str:
    """The daemon's status document as text; ``client_version`` is this wev's by default."""
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    out = [
        f"wev-daemon {body.get('version', '?')}: running, pid {body.get('pid')}, "
        f"up {duration(float(str(body.get('uptime_seconds', 0))))}",
        f"socket: {body.get('socket', '?')}",
    ]
    out.extend(_version_notes(body, client_version))
    entries = body.get("entries")
    entries = entries if isinstance(entries, list) else []
    if isinstance(body.get("upstream_calls"), int):  # answered by AWS: shared tokens show here
        out.append(f"upstream calls since start: {body['upstream_calls']}")
    if body.get("local_failures"):  # never sent upstream, so never counted above
        out.append(f"errors found on this machine since start: {body['local_failures']}")
    out.append(f"entries: {len(entries)}")
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        names = ", ".join(str(n) for n in entry.get("names", []))
        out.append(f"  {names}: {entry.get('plugin')} {entry.get('description', '')}".rstrip())
        if entry.get("cached") or entry.get("expires_at"):
            out.append(f"    expires: {_when(entry.get('expires_at'), now)}")
            out.append(f"    refresh: {_when(entry.get('refresh_at'), now)}")
        else:  # a fetch that failed or is under way: no value, rather than one that never expires
            out.append(f"    holds: nothing{' yet (fetching)' if entry.get('fetching') else ''}")
        if entry.get("waiting_for_input"):
            out.append(f"    waiting: {_waiting_for(entry.get('names'), body.get('questions'))}")
        if entry.get("last_error"):
            out.append(f"    last error: {entry['last_error']}")
    out.extend(_question_lines(body.get("questions")))
    last = body.get("last_upstream_error")
    out.append(f"last upstream error: {last if last else 'none'}")
    if body.get("last_local_error"):
        out.append(f"last error found on this machine: {body['last_local_error']}")
    out.extend(_proxy_lines(body.get("proxy")))
    return "".join(printable(line) + "\n" for line in out)


def _waiting_for(names: object, questions: object) -> str:
    """What an entry whose question is open waits for: the channel that asks it."""
    listed = questions if isinstance(questions, list) else []
    question = next(
        (q for q in listed if isinstance(q, dict) and q.get("names") == names),
        None,
    )
    # A daemon that does not say which channel asks has a terminal ask.
    channel = None if question is None or "channel" not in question else _asked_by(question)
    if channel in (None, "a terminal"):
        return "a terminal is asking the user for input"
    if channel == "a sign-in":
        return "for the user to sign in (see questions)"
    return f"for an answer from {channel} (see questions)"


def _asked_by(question: dict[str, object]) -> str:
    """The channel asking ``question``; ``wev --answer`` until one does (the daemon's "")."""
    return str(question.get("channel") or "wev --answer")


def _question_lines(questions: object) -> list[str]:
    """The questions the daemon holds for callers with no terminal (never an answer)."""
    if not isinstance(questions, list) or not questions:
        return []
    out = [f"questions: {len(questions)}"]
    for question in questions:
        if not isinstance(question, dict):
            continue
        names = ", ".join(str(n) for n in question.get("names", []))
        text = str(question.get("text", "")).strip().rstrip(":")
        out.append(f"  {names}: question: {text}")
        waited = duration(float(str(question.get("waiting_seconds", 0))))
        left = duration(float(str(question.get("ends_in_seconds", 0))))
        out.append(f"    asked: by {_asked_by(question)}, for {waited}, {left} left")
        if question.get("note"):
            out.append(f"    note: {question['note']}")
        if not question.get("sign_in"):
            out.append("    answer it: wev --answer")
    return out


def _proxy_lines(proxy: object) -> list[str]:
    """The loopback proxy's repositories and their last error (none: no lines)."""
    if not isinstance(proxy, dict) or not (
        proxy.get("listening") or proxy.get("error") or proxy.get("repositories")
    ):
        return []  # never used: no line about it
    listening = "listening" if proxy.get("listening") else "not listening"
    if proxy.get("error"):
        listening += f": {proxy['error']}"
    out = [f"proxy: {proxy.get('url') or 'no port'} ({listening})"]
    repositories = proxy.get("repositories")
    for repository in repositories if isinstance(repositories, list) else []:
        if not isinstance(repository, dict):
            continue
        upstream = repository.get("upstream") or "upstream not asked yet"
        out.append(f"  {repository.get('url')} -> {upstream}")
        out.append(f"    requests: {repository.get('requests', 0)}")
        if repository.get("last_error"):
            out.append(f"    last error: {repository['last_error']}")
    return out


def _version_notes(body: Mapping[str, object], client_version: str | None) -> list[str]:
    """Who started the daemon, and what to do when it runs an older wev than this one."""
    from wev_client import __version__, versions

    client = client_version or __version__
    daemon = str(body.get("version", "?"))
    manager = body.get("service_manager")
    notes = [f"service: started by {manager}"] if manager else []
    if versions.compare(daemon, client) != -1:
        return notes
    if not manager:  # it stops when the next wev command asks it
        notes.append(
            f"note: wev-daemon {daemon} is older than this wev {client}; "
            "the next wev command replaces it"
        )
        return notes
    restart = body.get("restart_command")
    notes.append(
        f"note: wev-daemon {daemon} (started by {manager}) is older than this wev {client}"
    )
    if restart:
        notes.append(f"  restart the service: {restart}")
    notes.append(
        f"  {'if it still runs ' + daemon + ', ' if restart else ''}reinstall the service: "
        "wev-daemon --install-service (then run the command it prints)"
    )
    return notes
