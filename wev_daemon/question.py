"""One open question: its state, its id, what a request does about it, and how it ends unanswered.

A Question belongs to one cache entry; ``questions`` opens, hands out and
settles them. A sign-in (an expired SSO login) is a question without an
answer, waited for by watching the folder the sign-in changes (``snapshot``).
The error a question fails with once its wait bound passes is made here
(``unanswered``), so every waiter reads the same line.

Answers are secrets: a Question's repr never shows its answer. Imported by
``questions`` (and, through it, ``cache``).
"""

from __future__ import annotations

import asyncio
import copy
import enum
import os
from dataclasses import dataclass, field
from typing import Any, NoReturn

from wev_client.protocol.errors import InputRequired, UpstreamError, WevError
from wev_daemon.channels import ChannelError
from wev_daemon.plugins import digest

#: What to do when nothing else can ask (the hint of a question no one answered).
ANSWER_HINT = (
    "answer it with `wev --answer` in a terminal, or give the entry an mfa_process "
    "(or WEV_ASKPASS) that prints it"
)


class Turn(enum.Enum):
    """What a request does about its entry's open question."""

    ASK = "ask"  # its client asks on its terminal
    WAIT = "wait"  # another channel asks; wait for the answer
    FETCH = "fetch"  # an answer is there: fetch with it


class Pending(Exception):
    """The request's answer is a question: its client asks it (``ask``), or waits on."""

    def __init__(self, question: Question, *, ask: bool) -> None:
        super().__init__(question.text)
        self.question = question
        self.ask = ask


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


def _outcome() -> asyncio.Future[WevError | None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class SignIn:
    """A sign-in waited for: the error that says what to run, and the folder that changes."""

    error: WevError
    watch: str
    seen: tuple[tuple[str, int, int], ...]


def question_id(key: str, text: str, refused: int = 0) -> str:
    """The id of the entry ``key``'s question ``text``, after ``refused`` refusals.

    The same in this request and the client's next. Before any refusal it is the
    same whether the cache holds the question or a plugin asks it outside the
    cache (a repository's endpoint, looked up with the same login), so one
    answer serves both.
    """
    if not refused:
        return digest(key, text)[:24]
    return digest(key, text, refused)[:24]


@dataclass(eq=False)
class Question:
    """One entry's open question and its state. Its repr never shows the answer."""

    key: str
    names: tuple[str, ...]
    text: str
    secret: bool
    opened: float
    deadline: float
    #: The command that prints the answer (``mfa_process``), if any.
    process: str | None = None
    sign_in: SignIn | None = None
    refused: int = 0
    #: Why it is asked again (upstream's refusal of the last answer).
    note: str = ""
    #: A terminal client asks it until then.
    owner_until: float = 0.0
    answer: str | None = field(default=None, repr=False)
    #: A fetch with an answer has started: its failure is a refusal.
    answering: bool = False
    #: Where it is being asked: a terminal, mfa_process, askpass, wev --answer.
    channel: str = ""
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    changed: asyncio.Future[None] = field(default_factory=_future, repr=False)
    outcome: asyncio.Future[WevError | None] = field(default_factory=_outcome, repr=False)

    @property
    def id(self) -> str:
        """The same for one entry, question and refusal: a stale answer matches no more."""
        return question_id(self.key, self.text, self.refused)

    def events(self) -> set[asyncio.Future[Any]]:
        """What a waiter wakes for: a change, or the end."""
        return {self.changed, self.outcome}

    def poke(self) -> None:
        """Wake every waiter: it looks again."""
        changed, self.changed = self.changed, _future()
        if not changed.done():
            changed.set_result(None)

    @property
    def shown_text(self) -> str:
        """The text an askpass program shows: the question, after the refusal if any."""
        return f"{self.note}\n{self.text}" if self.note else self.text

    @property
    def subject(self) -> str:
        """What is asked for, as a one-line error names it: the text without its colon."""
        return self.text.strip().rstrip(":").strip()


def unanswered(question: Question, wait: float) -> WevError:
    """The error of a question still open after ``wait`` seconds (the wait bound)."""
    if question.sign_in is not None:
        error = question.sign_in.error
        return UpstreamError(
            f"{error.message} (waited {wait:g} s for the sign-in)", hint=error.hint
        )
    if question.runner is not None and not question.runner.done():  # it hangs
        return ChannelError(
            f"{question.channel} gave no answer within {wait:g} s",
            hint="answer it with `wev --answer` in a terminal",
        )
    return InputRequired(
        f"needs input ({question.subject}) and nobody answered within {wait:g} s",
        hint=ANSWER_HINT,
    )


def raise_copy(error: WevError) -> NoReturn:
    # Each waiter gets its own object: one raised many times would grow its traceback.
    raise copy.copy(error).with_traceback(None)


def snapshot(folder: str) -> tuple[tuple[str, int, int], ...]:
    """What a sign-in changes in ``folder``: its files' names, sizes and times."""
    try:
        with os.scandir(folder) as entries:
            stats = [(e.name, e.stat()) for e in entries if e.is_file()]
    except OSError:
        return ()
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats))
