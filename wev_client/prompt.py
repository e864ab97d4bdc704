"""Asking the user, on their terminal, the questions a plugin sends (an MFA code).

The daemon has no terminal: a plugin's question travels to the client that
asked, which asks on ``/dev/tty`` (so it works while stdin and stdout are
pipes) and sends the answer back. Secret answers are read with echo off; the
terminal's settings are restored however the read ends (Ctrl-C included).

Imported lazily by ``connection`` and the in-process fallback, only when a
question arrives: ``termios`` is not on the client's hot path. Answers are
secrets: they are never printed nor logged. Questions are shown through
``output.printable``: a plugin's text cannot drive the terminal.
"""

from __future__ import annotations

import os
import sys
import termios

from wev_client.output import printable
from wev_client.protocol.errors import InputRequired
from wev_client.protocol.side_messages import Prompt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HINT = (
    "run wev in a terminal to answer it (the daemon then keeps the session until it expires), "
    "or give the command credentials another way"
)
#: Longest answer read; an MFA code has six digits.
MAX_ANSWER = 4096


#: In CI nobody types: a program must print the answer.
CI_HINT = "give the entry an mfa_process (or WEV_ASKPASS) that prints it"


def no_terminal(prompts: Sequence[Prompt], hint: str = HINT) -> InputRequired:
    first = prompts[0]
    label, question = printable(first.label), printable(first.text.strip().rstrip(":").strip())
    return InputRequired(
        f"{label}: needs input ({question}) but wev has no terminal to ask on", hint=hint
    )


def only_a_person_answers(prompts: Sequence[Prompt]) -> bool:
    """Whether the question waits for a person (a sign-in, or ``wev --answer``), not for a
    program (``mfa_process``, an askpass program) that may answer in CI too."""
    first = prompts[0]
    return first.sign_in or first.waiting in ("wev --answer", "a terminal")


def nobody_in_ci(prompts: Sequence[Prompt]) -> InputRequired:
    """The one line for a question that waits for a person, in CI: it fails at once."""
    first = prompts[0]
    if not first.sign_in:
        return no_terminal(prompts, CI_HINT)
    label, question = printable(first.label), printable(first.text.strip())
    return InputRequired(f"{label}: {question}")


def tell_waiting(prompts: Sequence[Prompt], *, answerable: bool = True) -> bool:
    """Say once on stderr what a call with no terminal of its own waits for, and where
    the answer can come from (``answerable``: ``wev --answer`` reaches the question, as
    it does a daemon's, not a question of this process)."""
    first = prompts[0]
    question = first.text.strip().rstrip(":").strip()
    if first.sign_in:
        line = f"{question}; waiting for the sign-in"
    elif first.waiting == "a terminal":
        line = f"waiting: another terminal is asking {question!r}"
    elif first.waiting == "mfa_process":
        line = f"waiting for mfa_process to answer {question!r}"
    elif first.waiting == "wev --answer":
        line = f"waiting for an answer to {question!r}: run `wev --answer` in a terminal"
    else:
        elsewhere = "; or run `wev --answer` in a terminal" if answerable else ""
        line = f"waiting for an answer to {question!r} ({first.waiting} asks it{elsewhere})"
    print(f"wev: {printable(first.label)}: {printable(line)}", file=sys.stderr)
    return True


def ask(prompts: Sequence[Prompt], before: Callable[[], None] | None = None) -> dict[str, str]:
    """Each prompt's answer, by id, asked on the controlling terminal.

    Raises InputRequired when there is no terminal (CI, cron, a pipe without
    one). ``before`` runs first (it clears the status line).
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal
        raise no_terminal(prompts) from None
    try:
        if before is not None:
            before()
        return {prompt.id: _ask_one(fd, prompt) for prompt in prompts}
    finally:
        os.close(fd)


def _ask_one(fd: int, prompt: Prompt) -> str:
    saved = None
    if prompt.secret:
        try:
            saved = termios.tcgetattr(fd)
        except termios.error:
            saved = None
        if saved is not None:
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
    line = b""
    try:
        # Echo goes off before the question shows: what is typed after it is never echoed.
        # The question comes from a plugin: its text must not drive the terminal.
        if prompt.note:  # why it is asked again
            os.write(fd, f"wev: {printable(prompt.note)}\n".encode(errors="replace"))
        os.write(fd, f"wev: {printable(prompt.text)}".encode(errors="replace"))
        while not line.endswith(b"\n") and len(line) < MAX_ANSWER:
            chunk = os.read(fd, MAX_ANSWER)
            if not chunk:  # Ctrl-D
                break
            line += chunk
    except KeyboardInterrupt:
        os.write(fd, b"\n")
        raise
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    if prompt.secret or not line.endswith(b"\n"):
        os.write(fd, b"\n")  # the Enter that was not echoed
    if not line:
        raise InputRequired(f"{printable(prompt.label)}: no answer was given")
    return line.decode(errors="replace").rstrip("\r\n")
