"""`wev-daemon`: resolves and caches values for `wev` clients over a Unix socket.

Layers, one module each: ``plugins`` (how a value is resolved), ``cache``
(single-flight fetches, refresh ahead of expiry, backoff), ``resolver`` (a
request's variables to plugins and cache keys), ``app`` (HTTP handlers and
error mapping), ``server`` (socket, lifecycle, signals), ``__main__`` (argv).
"""
