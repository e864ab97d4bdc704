"""`wev-daemon`: resolves and caches values for `wev` clients over a Unix socket.

One module per responsibility, in the order a request meets them:

* ``__main__`` (argv, logging, the process's hardening), ``server`` (socket,
  lifecycle, signals, idle exit), ``activation`` (sockets from systemd or
  launchd, readiness notifications), ``service`` (installing the user
  service), ``installation`` (noticing that wev or a plugin changed);
* ``app`` (HTTP routes, the peer check, errors as JSON), ``reading`` (a
  request body, bounded and read once);
* ``resolver`` (a request's entries to values), ``entries`` (an entry's
  configuration, validated once);
* ``cache`` (the scheduler: single flight, refresh ahead of expiry, backoff),
  ``cache_entry`` (one cached resolution and its clock), ``policy`` (the
  cache's decisions, pure functions of the two clocks), ``questions`` and
  ``question`` (questions to the user: who asks, who waits), ``channels``
  (programs that answer for a caller with no terminal);
* ``plugins`` (how a value is resolved: the interface, and ``echo``,
  ``awscodeartifact``, ``awsmfa``, ``awsecr``), ``aws`` (AWS sessions and
  errors in one line), ``aws_session`` (a session in the caller's context),
  ``aws_endpoints`` (botocore's endpoint table, read once for every session),
  ``aws_identity`` (who AWS takes the caller to be: the token's identity),
  ``network`` (the caller's proxies and CA bundle, one rule for every request);
* ``proxy`` (the loopback endpoint: ``access``, ``owners``, ``routes``,
  ``forward``, ``rewrite``, ``endpoint``);
* ``inprocess`` (the client's fallback without a daemon).
"""
