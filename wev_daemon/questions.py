"""Questions to the user, one per cache entry: who asks, who waits, where the answer comes from.

This room holds the open questions and hands out their turns; one question's
state, its id and the error its wait bound ends with are in ``question``.

A fetch that needs the user's input (an MFA code) raises InputNeeded; the
cache opens a Question for its entry, and every request for that entry, from
whichever door, waits for one answer, which one fetch then uses: one question,
one upstream call. The answer comes from, in this order:

1. a waiting client's terminal: a client that can ask on its terminal owns
   the question for ``Policy.prompt_lease`` and gets it as a prompt; its next
   request carries the answer. Another terminal is asked once that one gives
   up (Ctrl-C, or its lease ends);
2. ``mfa_process``: when configured (the entry's property, else the AWS
   profile's key) it runs at once, in the context of the request that opened
   the question, and no terminal is asked;
3. an askpass program, started for a caller with no terminal while no
   terminal is asking (see ``channels``);
4. ``wev --answer`` in any terminal (``give``), which the question waits for
   when nothing else can ask; ``wev --status`` lists it, never an answer.

Bounds: a question waits at most ``Policy.question_wait`` in all (the wait
bound); its programs are killed then, and every waiter fails with one line.
One request waits at most its ``Caller.hold``; its client then sends it again.

An answer that the fetch's upstream refuses (a wrong code: an error marked
``refused``) reopens the question once, under a new id, with upstream's words
as its note; a second refusal fails every waiter with that line.

A sign-in (an expired SSO login, an error that names a folder to ``watch``)
asked for by a caller with no terminal is a question without an answer: its
waiters wait while the user runs the command its hint names, and the first
one to see the folder change fetches again. A caller with a terminal gets the
error at once, as the line that says what to run.

Answers are secrets: held in memory only until their fetch ends (for a lookup
with the same login right after it, a repository's endpoint, until the
question's wait bound: ``reuse``), never logged nor shown. Imported by ``cache``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from wev_client.protocol.errors import InputRequired, WevError
from wev_daemon import channels
from wev_daemon.channels import Caller, ChannelError, NoDisplay
from wev_daemon.plugins import InputNeeded
from wev_daemon.policy import Policy
from wev_daemon.question import Pending, Question, SignIn, Turn, raise_copy, snapshot, unanswered

__all__ = ["Pending", "Question", "Questions", "Turn"]

log = logging.getLogger(__name__)

#: How often a waiting sign-in looks at the folder it watches.
SIGN_IN_POLL = 0.5
#: Answers refused before the question fails: one wrong code is asked again.
REFUSALS_ASKED_AGAIN = 1
#: How many questions that ended unanswered are remembered (their ids only).
MAX_FAILED = 64


class Questions:
    """The open questions, by cache key."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        policy: Policy,
        *,
        reachable: bool = True,
        answered: Callable[[Question, Caller], None] | None = None,
    ) -> None:
        """``reachable``: ``wev --answer`` can reach this room (a daemon, not one call's
        own process). ``answered`` starts the fetch once a channel gave an answer."""
        self._monotonic = monotonic
        self.policy = policy
        self.reachable = reachable
        self.answered = answered
        self.open: dict[str, Question] = {}
        #: Each entry's last answered question: its text, answer and wait bound (``reuse``).
        self._answers: dict[str, tuple[str, str, float]] = {}
        #: The ids of the latest questions that ended unanswered, for a late ``wev --answer``.
        self._failed: dict[str, None] = {}

    def current(self, key: str) -> Question | None:
        """The entry's open question; one past the wait bound fails its waiters and goes."""
        question = self.open.get(key)
        if question is not None and self._monotonic() >= question.deadline:
            self.settle(question, unanswered(question, self.policy.question_wait))
            return None
        return question

    def expire(self) -> None:
        """Settle every question past its wait bound, whether or not a request looks again."""
        for key in list(self.open):
            self.current(key)

    def find(self, question_id: str) -> Question | None:
        self.expire()
        return next((q for q in self.open.values() if q.id == question_id), None)

    def failed(self, question_id: str) -> bool:
        """Whether that question ended lately without an answer (its waiters failed)."""
        return question_id in self._failed

    def ask(
        self, key: str, names: tuple[str, ...], needed: InputNeeded, caller: Caller
    ) -> Question:
        """Open the question a fetch raised; the open one if it asks the same."""
        question = self.open.get(key)
        if question is not None and question.text == needed.text and question.sign_in is None:
            return question
        if question is not None:  # another question: its waiters look again
            self.settle(question, None)
        now = self._monotonic()
        question = Question(
            key,
            names,
            needed.text,
            needed.secret,
            now,
            now + self.policy.question_wait,
            process=caller.mfa_process or needed.process,
        )
        self.open[key] = question
        log.info("a question for %s", ", ".join(names))
        self._start_process(question, caller)
        return question

    def turn(self, question: Question, caller: Caller, answered: Callable[[str], bool]) -> Turn:
        """What this request does now; may start a channel, or raise a sign-in's error."""
        now = self._monotonic()
        if question.sign_in is not None:
            if caller.terminal:
                raise_copy(question.sign_in.error)
            if snapshot(question.sign_in.watch) != question.sign_in.seen:
                question.sign_in.seen = snapshot(question.sign_in.watch)
                return Turn.FETCH
            if question.runner is None:
                self._start_askpass(question, caller, notice=True)
            return Turn.WAIT
        if question.answer is not None or answered(question.id):
            question.answering = True
            return Turn.FETCH
        if question.process is None and now >= question.owner_until:
            if caller.terminal:
                question.owner_until = now + self.policy.prompt_lease
                question.channel = "a terminal"
                return Turn.ASK
            if question.runner is None:
                self._start_askpass(question, caller)
        return Turn.WAIT

    async def wait(self, question: Question, caller: Caller, until: float) -> None:
        """Wait for ``question`` to change, up to ``until`` (monotonic).

        Returns to look again; raises its failure, the wait bound's, or Pending
        when this request has waited its share (its client sends it again).
        """
        now = self._monotonic()
        limits = [(until, "hold"), (question.deadline, "bound")]
        if caller.terminal and question.owner_until > now:
            limits.append((question.owner_until, "lease"))  # then this terminal may be asked
        if question.sign_in is not None:
            limits.append((now + SIGN_IN_POLL, "poll"))
        limit, reason = min(limits)
        done, _ = await asyncio.wait(
            question.events(),
            timeout=max(0.0, limit - now),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if question.outcome.done():
            error = question.outcome.result()
            if error is not None:
                raise_copy(error)
            return
        if done:
            return
        if reason == "bound":
            error = unanswered(question, self.policy.question_wait)
            self.settle(question, error)
            raise_copy(error)
        if reason == "hold":
            raise Pending(question, ask=False)

    def give(self, question: Question, answer: str, channel: str, caller: Caller) -> None:
        """An answer from a channel or ``wev --answer``: the next fetch uses it."""
        if self.open.get(question.key) is not question or question.sign_in is not None:
            return
        question.answer, question.channel = answer, channel
        log.info("%s answered the question for %s", channel, ", ".join(question.names))
        question.poke()
        if self.answered is not None:
            self.answered(question, caller)

    async def result(self, question: Question, within: float) -> tuple[str, str]:
        """What became of the answer just given, within ``within`` seconds: ("answered",
        ""), ("failed", why), ("asked again", why) or ("pending", "")."""
        refused = question.refused
        deadline = self._monotonic() + within
        while True:
            if question.outcome.done():
                error = question.outcome.result()
                return ("failed", str(error)) if error is not None else ("answered", "")
            if question.refused != refused:
                return "asked again", question.note
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return "pending", ""
            await asyncio.wait(
                question.events(), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )

    def fetched(
        self,
        key: str,
        names: tuple[str, ...],
        outcome: WevError | InputNeeded | None,
        caller: Caller,
    ) -> None:
        """A fetch of the entry ended: settle, reopen or open its question."""
        question = self.open.get(key)
        if outcome is None:
            if question is not None:
                self.settle(question, None)
            return
        if isinstance(outcome, InputNeeded):
            return
        watch = getattr(outcome, "watch", None)
        if question is None:
            if watch and not caller.terminal:
                self._sign_in(key, names, outcome, watch, caller)
            return
        if question.sign_in is not None:
            if not watch:
                self.settle(question, outcome)
            return
        refused = getattr(outcome, "refused", False)
        if question.answering and refused and question.refused < REFUSALS_ASKED_AGAIN:
            self._reopen(question, outcome, caller)
            return
        self.settle(question, outcome)

    def reuse(self, key: str, text: str) -> str | None:
        """The answer that just let a fetch through, asked ``text`` again by a lookup with
        the same login, as a terminal's request would answer it again: the entry's own (a
        repository's endpoint), else another entry's whose question was the same (the same
        MFA device: a keyring lookup's endpoint, then its token). Kept no longer than the
        question's wait bound, nor past the entry's own next fetch (``fetching``), which
        asks afresh."""
        now = self._monotonic()
        for held, (_, _, until) in list(self._answers.items()):
            if now >= until:
                del self._answers[held]
        own = self._answers.get(key)
        if own is not None and own[1] and own[0] == text:
            return own[1]
        kept = (answer for asked, answer, _ in self._answers.values() if answer and asked == text)
        return next(kept, None)

    def fetching(self, key: str) -> None:
        """The entry's next fetch starts: an answer kept for the last one is no answer to it."""
        self._answers.pop(key, None)

    def settle(self, question: Question, outcome: WevError | None) -> None:
        """The question is answered (``outcome``: None or the error), or abandoned."""
        if self.open.get(question.key) is question:
            del self.open[question.key]
        if outcome is None and question.answering and question.answer is not None:
            self._answers[question.key] = (question.text, question.answer, question.deadline)
        if outcome is not None:
            self._failed[question.id] = None
            while len(self._failed) > MAX_FAILED:
                del self._failed[next(iter(self._failed))]
        if question.runner is not None and not question.runner.done():
            question.runner.cancel()
        if not question.outcome.done():
            question.outcome.set_result(outcome)
        question.poke()

    def release(self, question: Question) -> None:
        """The terminal asking it gave up (Ctrl-C): the next terminal or channel asks."""
        question.owner_until = 0.0
        log.info("a client abandoned the question for %s", ", ".join(question.names))
        question.poke()

    def close(self, outcome: WevError | None = None) -> list[asyncio.Task[None]]:
        """Abandon every question (its waiters end with ``outcome``, or look again);
        returns their programs' tasks, being cancelled."""
        runners = [q.runner for q in self.open.values() if q.runner is not None]
        self._answers.clear()
        for question in list(self.open.values()):
            self.settle(question, outcome)
        return runners

    def status(self) -> list[dict[str, object]]:
        """The open questions for ``wev --status`` and ``wev --answer``: no answer, ever."""
        self.expire()
        now = self._monotonic()
        return [
            {
                "id": question.id,
                "names": list(question.names),
                "text": question.text,
                "secret": question.secret,
                "note": question.note,
                "sign_in": question.sign_in is not None,
                "channel": question.channel,
                "waiting_seconds": round(now - question.opened, 1),
                "ends_in_seconds": round(max(0.0, question.deadline - now), 1),
            }
            for question in self.open.values()
        ]

    # -- channels ------------------------------------------------------------------------

    def _start_process(self, question: Question, caller: Caller) -> None:
        if question.process is not None:
            argv = channels.mfa_process_argv(question.process)
            self._run(question, caller, argv, "mfa_process", notice=False)

    def _start_askpass(self, question: Question, caller: Caller, *, notice: bool = False) -> None:
        argv = channels.askpass_argv(
            caller, question.shown_text, secret=question.secret, notice=notice
        )
        if argv is not None:
            self._run(question, caller, argv, f"askpass {os.path.basename(argv[0])}", notice)
        elif not notice:
            self._leave_to_wev_answer(question)

    def _leave_to_wev_answer(self, question: Question) -> None:
        """No program asks: the question waits for ``wev --answer``, where it can reach."""
        if not self.reachable:
            self.settle(
                question,
                InputRequired(
                    f"needs input ({question.subject}) but wev has no terminal to ask on",
                    hint="give the entry an mfa_process (or WEV_ASKPASS) that prints it, "
                    "or run wev in a terminal",
                ),
            )
        else:
            question.channel = "wev --answer"
            question.poke()

    def _run(
        self, question: Question, caller: Caller, argv: list[str], what: str, notice: bool
    ) -> None:
        question.channel = what

        async def run() -> None:
            within = max(0.0, question.deadline - self._monotonic())
            try:
                answer = await channels.run(argv, caller, within, what, notice=notice)
            except NoDisplay as error:
                log.warning("%s", error)
                if not notice and self.open.get(question.key) is question:
                    self._leave_to_wev_answer(question)
                return
            except ChannelError as error:
                log.warning("%s", error)
                if not notice:
                    self.settle(question, error)
                return
            if not notice:
                self.give(question, answer, what, caller)

        question.runner = asyncio.create_task(run(), name=f"{what} {question.key[:40]}")

    def _reopen(self, question: Question, refusal: WevError, caller: Caller) -> None:
        """Ask once more: a new id, the refusal as its note, its channels afresh."""
        question.refused += 1
        question.answer, question.answering = None, False
        question.owner_until = 0.0
        question.note = f"refused: {refusal.message}"
        if question.runner is not None and not question.runner.done():
            question.runner.cancel()
        question.runner = None
        log.info("the answer for %s was refused: asking again", ", ".join(question.names))
        self._start_process(question, caller)
        question.poke()

    def _sign_in(
        self, key: str, names: tuple[str, ...], error: WevError, watch: str, caller: Caller
    ) -> None:
        now = self._monotonic()
        text = error.message + (f": run `{error.hint}`" if error.hint else "")
        question = Question(
            key, names, text, False, now, now + self.policy.question_wait, channel="a sign-in"
        )
        question.sign_in = SignIn(error, watch, snapshot(watch))
        self.open[key] = question
        log.info("waiting for a sign-in: %s", text)
        self._start_askpass(question, caller, notice=True)
