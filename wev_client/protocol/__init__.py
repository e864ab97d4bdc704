"""The wire protocol between the `wev` client and `wev-daemon`: one package, read in one place.

Both sides import it, so it stays on the client's start-up budget: standard
library C modules only (``_json``), no ``json``, ``re``, ``typing`` or
``dataclasses`` at run time. The protocol is HTTP/1.1 with JSON bodies over a
Unix socket, so ``curl --unix-socket SOCK http://wev/v1/status`` works too.

Rooms: this module (the API version, routes, headers and limits), ``errors``
(failures with their wire code and exit status), ``codec`` (JSON without the
``json`` package), ``messages`` (requests and responses, validated as they
arrive), ``context`` (the caller's context a request carries), and off the
hot path ``side_messages`` (questions and answers), ``parsing`` (an edited
configuration's files and what they make) and ``aws`` (AWS conventions).

Routes carry the API version; unknown fields are ignored in both directions so
that older and newer clients and daemons keep talking.
"""

from __future__ import annotations

API_VERSION = 1
RESOLVE_ROUTE = f"/v{API_VERSION}/resolve"
EXPLAIN_ROUTE = f"/v{API_VERSION}/explain"
STATUS_ROUTE = f"/v{API_VERSION}/status"
#: Drop what the daemon holds for the request's entries; answers {"forgotten": N}.
FORGET_ROUTE = f"/v{API_VERSION}/forget"
#: The same for everything the daemon holds; the body may be empty.
FORGET_ALL_ROUTE = f"/v{API_VERSION}/forget-all"
#: Drop everything, then exit unless a service manager started the daemon (it
#: would start it again); answers {"forgotten", "pid", "stopping", "stop_command"}.
STOP_ROUTE = f"/v{API_VERSION}/stop"
#: Parse and merge configuration files whose text the client sends (the daemon
#: has PyYAML loaded; the client would pay ~20 ms to import it after each edit).
PARSE_ROUTE = f"/v{API_VERSION}/parse"
#: Answers to questions the daemon holds (``wev --answer``); the open questions
#: themselves are in the status document, never with an answer.
ANSWER_ROUTE = f"/v{API_VERSION}/answer"

#: The entry-point group of plugins: a client checks its own installation's
#: when the daemon, started from another one, lacks a plugin.
PLUGIN_ENTRY_POINTS = "wev.plugins"

#: Header with the client's package version, so a daemon can tell it is older.
CLIENT_VERSION_HEADER = "Wev-Client-Version"

#: Largest request body the daemon reads; a real request is a few kilobytes.
MAX_REQUEST_BYTES = 1024 * 1024
#: Most configured entries one request may carry (a real project has a handful).
MAX_VARIABLES = 1000
#: Most rounds of questions one call answers (a plugin asks one or two), in the
#: client and in the in-process resolution alike.
MAX_PROMPT_ROUNDS = 3
#: Most configuration files one parse request may carry (four names per folder).
MAX_FILES = 1000
