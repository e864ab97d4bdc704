"""``wev --answer``: answer here the questions the daemon holds for callers with no terminal.

An SDK's ``credential_process``, a keyring lookup or a request to the loopback
proxy has no terminal to ask an MFA code on; when no ``mfa_process`` or
askpass program answers either, the question waits in the daemon (``wev
--status`` lists it). ``wev --answer`` asks each one here, on ``/dev/tty``
with echo off, and sends the answers; every caller waiting for one resumes.
A refused code is asked once more. A sign-in the daemon waits for is only
named (with the command to run): it has no answer to type.

Imported by ``cli`` only for this option: not on the hot path.
"""

from __future__ import annotations

from wev_client import __version__, control, paths, prompt, protocol, transport
from wev_client.output import printable
from wev_client.protocol import errors
from wev_client.protocol.errors import DaemonUnavailable, InputRequired, UpstreamError
from wev_client.protocol.side_messages import AnswerRequest, Prompt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Rounds of questions one call asks: a refused code is asked once more.
MAX_ROUNDS = 3


def run(environ: Mapping[str, str]) -> int:
    """Ask and answer the open questions; 0 when each was answered (or none waits)."""
    for _ in range(MAX_ROUNDS):
        questions = _open_questions(environ)
        if not questions:
            print("wev: no question is waiting for an answer")
            return 0
        for question in questions:
            if question.sign_in:
                print(f"wev: {printable(question.label)}: {printable(question.text)}")
        to_ask = [question for question in questions if not question.sign_in]
        if not to_ask:
            return 0
        try:
            answers = prompt.ask(to_ask)
        except errors.InputRequired:  # run from a script: nowhere to type the code
            raise prompt.no_terminal(to_ask, "run `wev --answer` in a terminal") from None
        results = send(answers, environ)
        again = False
        for result in results:
            label = next((q.label for q in to_ask if q.id == result.get("id")), "?")
            outcome, message = result.get("outcome"), str(result.get("message") or "")
            if outcome == "answered":
                print(f"wev: {printable(label)}: answered")
            elif outcome == "asked again":  # its note, the refusal, shows as it is asked
                again = True
            elif outcome == "pending":
                print(f"wev: {printable(label)}: answered; the fetch is still running")
            elif outcome == "gone":
                print(f"wev: {printable(label)}: no longer waiting (answered elsewhere)")
            elif outcome == "ended":
                raise InputRequired(
                    f"{label}: the question ended unanswered before this answer (its wait "
                    "bound passed); the call that asked it failed: run it again"
                )
            else:
                raise UpstreamError(f"{label}: {message}")
        if not again:
            return 0
    return 0


def _open_questions(environ: Mapping[str, str]) -> list[Prompt]:
    """The daemon's open questions, as prompts (never with an answer)."""
    body = control.status(environ)
    listed = body.get("questions")
    found = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        names = item.get("names")
        label = ", ".join(str(n) for n in names) if isinstance(names, list) and names else "wev"
        found.append(
            Prompt(
                str(item.get("id", "")),
                label,
                str(item.get("text", "")),
                item.get("secret") is not False,
                note=str(item.get("note") or ""),
                sign_in=item.get("sign_in") is True,
            )
        )
    return found


def send(answers: Mapping[str, str], environ: Mapping[str, str]) -> list[dict[str, object]]:
    """Give the running daemon's questions their answers; what became of each."""
    path = paths.socket_path(environ)
    body = AnswerRequest(answers).to_json()
    try:
        code, reply = transport.request(
            path, "POST", protocol.ANSWER_ROUTE, body, version=__version__
        )
    except transport.NotListening:
        raise DaemonUnavailable(f"no wev-daemon is running (socket {path})") from None
    results = reply.get("results") if isinstance(reply, dict) else None
    if code != 200 or not isinstance(results, list):
        raise errors.error_from_json(reply)
    return [result for result in results if isinstance(result, dict)]
