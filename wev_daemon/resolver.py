"""From a client's request to values: plugins, validation, cache keys.

Shared by the daemon's handlers and by the client's in-process fallback
(``WEV_NO_DAEMON=1``), so both give the same answers and the same errors.

An entry's cache key is its plugin's ``identity`` (for an AWS token: who asks
and for what), never its text: entries and doors that name the same identity
share one cached fetch, and each entry's values are presented from it.

Questions for the user: each entry's Context answers ``ask`` from the
request's ``answers``, by the question's id (stable for one entry and
question, so it is the same in the client's next request), else from the
answer a channel gave the daemon (``wev_daemon.questions``). A question
becomes a ``Prompt`` in the response instead of values: one for the client to
ask on its terminal, or one it waits on (sending the request again).
``mfa_process`` is a property of every entry, wev's rather than the
plugin's: a command that prints the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from wev_client.protocol import codec
from wev_client.protocol.errors import UpstreamError, WevError
from wev_client.protocol.messages import EntryInfo, ResolveRequest, ResolveResponse, VariableSpec
from wev_client.protocol.side_messages import Prompt
from wev_daemon.cache import Caller, Pending, TokenCache
from wev_daemon.entries import Configured, configure, depended_on
from wev_daemon.plugins import (
    Asker,
    Context,
    InputNeeded,
    Plugin,
    Resolution,
    identity_key,
    load_plugins,
)
from wev_daemon.question import question_id

log = logging.getLogger(__name__)

#: Entries' configurations kept validated (``Resolver._configured``); a user has a handful.
MAX_CONFIGURED = 256

T = TypeVar("T")

#: One request's fetch per cache key, shared by the request's entries of that key.
Fetches = dict[str, asyncio.Future[tuple[Resolution | None, bool]]]


@dataclass(frozen=True)
class Prepared:
    """A validated entry: its plugin, parsed settings, context and cache key.

    ``fetches``: whether its values need a fetched (cached) resolution at all.
    """

    spec: VariableSpec
    plugin: Plugin[object]
    settings: object
    context: Context
    key: str
    description: str
    fetches: bool = True
    #: The entry's command that prints the answer to its question, if any.
    mfa_process: str | None = None

    @property
    def held(self) -> bool:
        """Whether its fetch is held in the cache (else it needs none, or runs each time)."""
        return self.fetches and self.plugin.cacheable


class Resolver:
    """Validates requests and resolves them through the cache."""

    def __init__(self, *, cache: TokenCache, plugins: Mapping[str, Plugin[object]] | None = None):
        self.cache = cache
        self.plugins = dict(load_plugins() if plugins is None else plugins)
        self._configured_entries: dict[str, Configured] = {}

    def prepare(self, request: ResolveRequest) -> tuple[list[Prepared], list[str]]:
        """Validate every entry; raise ConfigError naming the file, or return warnings."""
        prepared: list[Prepared] = []
        warnings: list[str] = []
        # What this configuration sets is no context of its own entries: an
        # AWS_PROFILE exported from an earlier run (direnv, a nested wev) must
        # not change which identity an entry uses, nor an MFA session's keys
        # be used to ask for the next MFA session.
        configured = {name for spec in request.variables for name in spec.names}
        process_env = request.process_env
        if not configured.isdisjoint(process_env):  # else no copy of the whole environment
            process_env = {k: v for k, v in process_env.items() if k not in configured}
        for spec in request.variables:
            configured_entry = self._configured(spec)
            plugin, settings = configured_entry.plugin, configured_entry.settings
            warnings.extend(configured_entry.warnings)
            env = depended_on(plugin.context_vars, request.env, process_env, configured)
            context = Context(env, process_env=process_env, cwd=request.cwd)
            identity = plugin.identity(settings, context)
            key = identity_key(
                plugin.id, (configured_entry.properties, env) if identity is None else identity
            )
            context = Context(
                env,
                _asker(key, request.answers, self.cache),
                process_env,
                request.cwd,
                identity,
                key if identity is not None else "",
                reached_upstream=self.cache.count_upstream_call,
            )
            description = plugin.describe(settings, context)
            prepared.append(
                Prepared(
                    spec,
                    plugin,
                    settings,
                    context,
                    key,
                    description,
                    fetches=identity is not None,
                    mfa_process=configured_entry.mfa_process,
                )
            )
        return prepared, warnings

    def _configured(self, spec: VariableSpec) -> Configured:
        """What the entry's configuration makes, kept by its text: every call of a project
        carries the same entries. A configuration that fails is never kept."""
        try:
            text = codec.dumps((spec.names, spec.sources, spec.plugin))
        except (TypeError, ValueError):  # not plain data: made afresh each time
            return configure(spec, self.plugins)
        known = self._configured_entries.get(text)
        if known is None:
            known = configure(spec, self.plugins)
            while len(self._configured_entries) >= MAX_CONFIGURED:  # oldest first
                del self._configured_entries[next(iter(self._configured_entries))]
            self._configured_entries[text] = known
        return known

    async def resolve(
        self,
        request: ResolveRequest,
        prepared_once: tuple[list[Prepared], list[str]] | None = None,
    ) -> ResolveResponse:
        """Every variable's value; concurrent entries resolve in parallel.

        ``prepared_once``: what ``prepare`` made of this very request, when the
        caller needed it first (the loopback proxy registers its routes with it).
        """
        if request.cancel:
            self.cancel(request.cancel)
            return ResolveResponse({})
        prepared, warnings = prepared_once or self.prepare(request)
        hold = _hold(request)
        outcomes: list[tuple[Resolution, bool] | BaseException]
        if all(self.cache.peek(item.key) is not None for item in prepared if item.held):
            # Nothing waits for upstream: each entry is presented in turn, without
            # a task each (presenting is cheap, and what it may wait for once, a
            # repository's endpoint, is shared and kept).
            outcomes = [
                await _caught(self._get(item, request.answers, request.terminal, hold))
                for item in prepared
            ]
        else:
            # Entries of one identity wait for one fetch: the first asks the user, and
            # the others must not wait for that answer within the same request.
            keys = Counter(item.key for item in prepared if item.fetches)
            fetches: Fetches = {}
            outcomes = await asyncio.gather(
                *(
                    self._get(
                        item,
                        request.answers,
                        request.terminal,
                        hold,
                        fetches if keys[item.key] > 1 else None,
                    )
                    for item in prepared
                ),
                return_exceptions=True,
            )
        prompts: dict[str, Prompt] = {}
        results: list[tuple[Resolution, bool]] = []
        for item, outcome in zip(prepared, outcomes, strict=True):
            if isinstance(outcome, Pending):
                prompt = _prompt(item.spec.label, outcome)
                prompts.setdefault(prompt.id, prompt)
            elif isinstance(outcome, InputNeeded):  # a plugin the cache does not hold
                prompt_id = question_id(item.key, outcome.text)
                prompts.setdefault(
                    prompt_id, Prompt(prompt_id, item.spec.label, outcome.text, outcome.secret)
                )
            elif isinstance(outcome, BaseException):
                raise outcome  # the first failure, in the order of the configuration
            else:
                results.append(outcome)
        if prompts:  # values only once every entry has its answer
            return ResolveResponse({}, (), tuple(warnings), tuple(prompts.values()))
        values: dict[str, str] = {}
        secret: list[str] = []
        entries = []
        for item, (resolution, cached) in zip(prepared, results, strict=True):
            if len(resolution.values) != len(item.spec.names):
                raise UpstreamError(
                    f"{item.spec.label}: {item.plugin.id} returned {len(resolution.values)} "
                    f"values for {len(item.spec.names)} names (a plugin bug)"
                )
            values.update(zip(item.spec.names, resolution.values, strict=True))
            secret.extend(n for i, n in enumerate(item.spec.names) if resolution.is_secret(i))
            entries.append(self._entry_info(item, cached=cached))
        return ResolveResponse(values, tuple(entries), tuple(warnings), secret=tuple(secret))

    def explain(self, request: ResolveRequest) -> ResolveResponse:
        """What is known of each variable without fetching anything; no values."""
        prepared, warnings = self.prepare(request)
        return ResolveResponse(
            {}, tuple(self._entry_info(item) for item in prepared), tuple(warnings)
        )

    def forget(self, request: ResolveRequest | None) -> int:
        """Drop what is held for the request's entries (None: everything); how many entries.

        Plugins forget what they remember besides (endpoints, MFA devices), so
        a user who switched accounts or rotated keys is never served the old
        identity.
        """
        if request is None:
            for plugin in self.plugins.values():
                plugin.forget_all()
            return self.cache.forget()
        prepared, _ = self.prepare(request)
        for item in prepared:
            item.plugin.forget(item.settings, item.context)
        return self.cache.forget(item.key for item in prepared)

    def cancel(self, prompt_ids: tuple[str, ...]) -> None:
        """The user abandoned these prompts (Ctrl-C): the next client or channel asks."""
        for prompt_id in prompt_ids:
            if (question := self.cache.questions.find(prompt_id)) is not None:
                self.cache.questions.release(question)

    def kept(self, item: Prepared) -> Prepared:
        """``item`` to be kept past its request (a proxy's route): without the request's
        answers, its questions answered from the channels instead."""
        context = dataclasses.replace(item.context, asker=_asker(item.key, {}, self.cache))
        return dataclasses.replace(item, context=context)

    async def resolution(self, item: Prepared) -> Resolution:
        """A ``kept`` entry's resolution through the cache, for a caller with no terminal
        that waits for a question's answer up to the wait bound (the loopback proxy asks
        this way for its upstream token, on every page)."""
        resolution, _ = await self._get(item, {}, False, self.cache.policy.question_wait)
        return resolution

    async def _get(
        self,
        item: Prepared,
        answers: Mapping[str, str],
        terminal: bool,
        hold: float | None = None,
        fetches: Fetches | None = None,
    ) -> tuple[Resolution, bool]:
        """The entry's values, presented from its identity's fetch; whether that was cached.

        ``fetches``: this request's fetch per key, shared by its entries.
        """
        try:
            if fetches is None:
                fetched, cached = await self._fetched(item, answers, terminal, hold)
            else:
                shared = fetches.get(item.key)
                if shared is None:
                    shared = fetches[item.key] = asyncio.ensure_future(
                        self._fetched(item, answers, terminal, hold)
                    )
                fetched, cached = await asyncio.shield(shared)
            return await item.plugin.present(item.settings, item.context, fetched), cached
        except WevError as error:  # say which variable could not be resolved
            raise type(error)(f"{item.spec.label}: {error.message}", hint=error.hint) from None

    async def _fetched(
        self, item: Prepared, answers: Mapping[str, str], terminal: bool, hold: float | None
    ) -> tuple[Resolution | None, bool]:
        """What the entry's identity fetched (through the cache), and whether it was cached."""

        async def fetch() -> Resolution:
            return await item.plugin.resolve(item.settings, item.context)

        if not item.fetches:
            return None, False
        if not item.held:
            return await fetch(), False
        caller = Caller(
            terminal, item.context.process_env, item.context.cwd, item.mfa_process, hold
        )
        return await self.cache.get(
            item.key,
            names=item.spec.names,
            plugin_id=item.plugin.id,
            description=item.description,
            fetch=fetch,
            answered=answers.__contains__,
            caller=caller,
        )

    def _entry_info(self, item: Prepared, *, cached: bool | None = None) -> EntryInfo:
        """Facts for ``--explain``; ``cached`` says whether this answer came from the cache."""
        entry = self.cache.entries.get(item.key)
        if entry is None:
            return EntryInfo(item.spec.names, item.plugin.id, item.description, False, None, None)
        valid, expires_at, refresh_at = self.cache.schedule(entry)
        return EntryInfo(
            item.spec.names,
            item.plugin.id,
            item.description,
            valid if cached is None else cached,
            expires_at,
            refresh_at,
        )


async def _caught(step: Awaitable[T]) -> T | BaseException:
    """``step``'s result, or what it raised, as ``gather(..., return_exceptions=True)``
    gives them; a cancellation of the request itself goes on."""
    try:
        return await step
    except Exception as error:
        return error


def _hold(request: ResolveRequest) -> float | None:
    """How long the request may wait for a question's answer (None: the policy's).

    A client with no terminal is answered at once the first time, so that it
    can say what it waits for; it then sends the request again, saying ``wait``.
    """
    return 0.0 if not request.terminal and not request.wait else None


def _asker(key: str, answers: Mapping[str, str], cache: TokenCache) -> Asker:
    """The request's answer to the entry's open question, else the one a channel gave."""

    def ask(text: str, secret: bool, process: str | None) -> str:
        question = cache.questions.open.get(key)
        if question is not None and question.text == text:
            answer = answers.get(question.id, question.answer)
        else:  # a plugin the cache does not hold asks by the text's own id
            answer = answers.get(question_id(key, text)) or cache.questions.reuse(key, text)
        if answer is None:
            raise InputNeeded(text, secret=secret, process=process)
        return answer

    return ask


def _prompt(label: str, pending: Pending) -> Prompt:
    """The response's prompt for an open question: to ask, or to wait on."""
    question = pending.question
    waiting = "" if pending.ask else question.channel or "wev --answer"
    return Prompt(
        question.id,
        label,
        question.text,
        question.secret,
        note=question.note,
        waiting=waiting,
        sign_in=question.sign_in is not None,
    )
