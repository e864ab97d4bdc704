"""Resolution inside the client's process, for ``WEV_NO_DAEMON=1`` and no daemon.

The client imports this lazily, only off its hot path. Same resolver, same
plugins, same errors as the daemon; nothing is kept after the call.

A plugin's question is asked through ``ask`` (the client's terminal) between
rounds, with the same resolver and cache, so the plugin's own memory (a
discovered MFA device) and the prompt protocol work as in the daemon. A
caller with no terminal gets its answer from ``mfa_process`` or an askpass
program, as from the daemon; ``wev --answer`` cannot reach this process, so
without either the question fails at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from wev_client import protocol
from wev_client.prompt import tell_waiting
from wev_client.protocol.messages import ResolveRequest, ResolveResponse
from wev_client.protocol.side_messages import Prompt
from wev_daemon.cache import TokenCache
from wev_daemon.resolver import Resolver


def nobody_answers(request: ResolveRequest, prompts: tuple[Prompt, ...]) -> bool:
    """Whether a question waits for a person where none is (CI, no terminal)."""
    from wev_client.connection import in_ci
    from wev_client.prompt import only_a_person_answers

    return not request.terminal and in_ci(request.process_env) and only_a_person_answers(prompts)


def answer(
    route: str,
    request: ResolveRequest,
    ask: Callable[[tuple[Prompt, ...]], dict[str, str]] | None = None,
) -> ResolveResponse:
    """Answer ``route`` (resolve or explain) as the daemon would.

    Without ``ask``, a response may carry prompts, as the daemon's does.
    """

    root = logging.getLogger()
    if not root.handlers:
        # The client reports a failure in one line of its own; without a
        # handler, the daemon's and botocore's log records (tracebacks
        # included) would reach the user's stderr through logging.lastResort.
        root.addHandler(logging.NullHandler())

    async def run() -> ResolveResponse:
        resolver = Resolver(cache=TokenCache(answerable=False))
        try:
            if route == protocol.EXPLAIN_ROUTE:
                return resolver.explain(request)
            current = request
            response = await resolver.resolve(current)
            rounds = 0
            while response.prompts and ask is not None:
                mine = tuple(prompt for prompt in response.prompts if not prompt.waiting)
                if not mine and nobody_answers(current, response.prompts):
                    break  # the client says so in one line
                if mine:  # else a channel of this process asks: wait on, within its bound
                    rounds += 1
                    if rounds > protocol.MAX_PROMPT_ROUNDS:
                        break
                    # Blocks the loop while the user types: nothing else is running
                    # (every entry of the round has finished), and botocore's own
                    # MFA prompter is synchronous anyway.
                    current = current.with_answers(ask(mine))
                else:  # held until the channel answers or the bound ends, never polled
                    if not current.terminal and not current.wait:
                        # Once, as the daemon's client does; `wev --answer` cannot reach here.
                        tell_waiting(response.prompts, answerable=False)
                    current = current.but(wait=True)
                response = await resolver.resolve(current)
            return response
        finally:
            await resolver.cache.close()

    return asyncio.run(run())
