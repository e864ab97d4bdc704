"""`wev-daemon`: resolves and caches values for `wev` clients over a Unix socket.

One module per responsibility: ``plugins`` (how a value is resolved), ``aws``
(sessions in a client's AWS context, AWS errors in one line), ``network``
(the caller's proxies and CA bundle, one rule for every request), ``cache``
(single-flight fetches, refresh ahead of expiry, backoff, questions to users),
``resolver`` (a request's variables to plugins and cache keys), ``app`` (HTTP
handlers and error mapping), ``server`` (socket, lifecycle, signals, idle
exit), ``activation`` (sockets from systemd or launchd, readiness
notifications), ``service`` (installing the user service), ``inprocess`` (the
client's fallback without a daemon), ``__main__`` (argv and logging).
"""
