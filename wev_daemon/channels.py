"""Programs that answer a question for a caller with no terminal: ``mfa_process`` and askpass.

Each runs in the caller's context, as its ``credential_process`` would: its
whole environment, its working folder, no terminal (a new session, stdin from
/dev/null), and is killed with its process group when the question ends or
its time is up. A program that fails, prints nothing or runs too long is one
line (``ChannelError``), never a hang.

* ``mfa_process`` (aws-vault's convention): a shell command that prints the
  code, e.g. ``ykman oath accounts code --single NAME``.
* askpass, as ssh's ``SSH_ASKPASS``: the question's text is its one argument,
  the answer its first line of output. ``WEV_ASKPASS`` from the caller's
  environment, else the desktop's own dialog: ``osascript`` on macOS,
  ``zenity`` or ``kdialog`` on Linux when the caller has ``DISPLAY`` or
  ``WAYLAND_DISPLAY``. A notice (sign in with ``aws sso login``) is shown
  the same way with ``WEV_ASKPASS_PROMPT=none`` set, as ``SSH_ASKPASS_PROMPT``
  does for ssh: the program shows the text and its output is ignored.

Answers are secrets: never logged. Imported by ``questions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wev_client.protocol.errors import UpstreamError

log = logging.getLogger(__name__)

ASKPASS_VAR = "WEV_ASKPASS"
#: Set to "none" for a program that should only show its text (a notice).
ASKPASS_PROMPT_VAR = "WEV_ASKPASS_PROMPT"
#: Most bytes of an answer read; an MFA code has six digits.
MAX_OUTPUT = 4096
TITLE = "wev"


class ChannelError(UpstreamError):
    """A program asked for an answer failed, printed nothing or ran out of time."""


class NoDisplay(ChannelError):
    """A dialog could not open the caller's display (one left over from a closed
    session): nobody saw it, so its failure is no answer, and no Cancel either."""


#: What dialog programs print when they cannot reach the display: GTK's zenity,
#: Qt's kdialog, ssh-askpass.
NO_DISPLAY = ("cannot open display", "could not connect to display", "can't open display")


@dataclass(frozen=True)
class Caller:
    """Where a request comes from, for the channels: can it ask, and with which context.

    ``terminal``: its client asks on its own terminal. ``mfa_process`` is the
    entry's command (the AWS profile's comes with the question). ``hold``: the
    longest this request waits for an answer (None: ``Policy.prompt_wait``).
    """

    terminal: bool = True
    process_env: Mapping[str, str] | None = None
    cwd: str | None = None
    mfa_process: str | None = None
    hold: float | None = None

    def __repr__(self) -> str:
        return f"Caller(terminal={self.terminal!r}, cwd={self.cwd!r})"


def mfa_process_argv(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]


def askpass_argv(
    caller: Caller, text: str, *, secret: bool, notice: bool = False
) -> list[str] | None:
    """The askpass program and arguments for this caller, or None when it has none."""
    env = caller.process_env or {}
    if program := env.get(ASKPASS_VAR, "").strip():
        return [program, text]
    if sys.platform == "darwin":
        return _osascript(text, secret=secret, notice=notice)
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    path = env.get("PATH", os.defpath)
    if zenity := shutil.which("zenity", path=path):
        markup = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if notice:
            return [zenity, "--info", f"--title={TITLE}", f"--text={markup}"]
        hidden = ["--hide-text"] if secret else []
        return [zenity, "--entry", *hidden, f"--title={TITLE}", f"--text={markup}"]
    if kdialog := shutil.which("kdialog", path=path):
        kind = "--msgbox" if notice else "--password" if secret else "--inputbox"
        return [kdialog, "--title", TITLE, kind, text]
    return None


def _osascript(text: str, *, secret: bool, notice: bool) -> list[str]:
    # The text is an argument, never part of the script: it cannot run as AppleScript.
    if notice:
        show = 'display dialog (item 1 of argv) buttons {"OK"} default button 1'
    else:
        hidden = " with hidden answer" if secret else ""
        show = f'display dialog (item 1 of argv) default answer ""{hidden}'
    lines = ["on run argv", f'{show} with title "{TITLE}"']
    if not notice:
        lines.append("return text returned of result")
    lines.append("end run")
    return ["osascript", *(part for line in lines for part in ("-e", line)), text]


async def run(
    argv: Sequence[str], caller: Caller, within: float, what: str, *, notice: bool = False
) -> str:
    """The first line ``argv`` prints, run in the caller's context within ``within`` seconds.

    ChannelError, in one line, when it cannot start, fails, prints nothing or
    outlives ``timeout``; it is killed with its process group then, and when
    the caller gives up (cancelled).
    """
    env = dict(caller.process_env or os.environ)
    if notice:
        env[ASKPASS_PROMPT_VAR] = "none"
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=caller.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:  # not found, or the caller's folder is gone
        raise ChannelError(f"{what} cannot start: {error.strerror or error}") from None
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    except TimeoutError:
        raise ChannelError(f"{what} gave no answer within {within:.0f} s") from None
    finally:
        if process.returncode is None:
            _kill(process)
            await process.wait()
    if notice:
        return ""
    if process.returncode != 0:
        said = err.decode(errors="replace")
        last = said.strip().splitlines()[-1:] or [""]
        detail = f": {' '.join(last[0].split())[:200]}" if last[0] else ""
        failure = NoDisplay if any(m in said.lower() for m in NO_DISPLAY) else ChannelError
        raise failure(f"{what} exited with status {process.returncode}{detail}")
    answer = out[:MAX_OUTPUT].decode(errors="replace").strip().splitlines()
    if not answer or not answer[0].strip():
        raise ChannelError(f"{what} printed no answer")
    return answer[0].strip()


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
