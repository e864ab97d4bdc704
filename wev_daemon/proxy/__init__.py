"""The loopback proxy: a repository URL that never expires and holds no token.

A ``wev-awscodeartifact`` entry with ``proxy: true`` hands out
``http://127.0.0.1:PORT/<domain>/<repository>/<format>/`` instead of the
CodeArtifact endpoint. Requests to it are forwarded to the endpoint with the
entry's current token from the daemon's one cache; the token and the real
endpoint are the resolution's ``private`` part. Nothing is cached on disk
(but the secret, where one is needed) and no token is logged.

Its rooms, each with one job:

- ``access``: who may come in (the port, the secret, the door's checks of
  users, browsers and hosts), with ``owners``, the kernel's answer to who owns
  a socket;
- ``routes``: which repository a path names and the entry whose token it uses;
- ``forward``: a request to the repository and its answer back, with
  ``rewrite``, the repository's URLs in pages and headers made the proxy's;
- ``endpoint``: the listener and each request's walk through the others.

Imported by ``wev_daemon.app``, ``wev_daemon.__main__`` and ``wev_daemon.service``.
"""

from wev_daemon.proxy.access import PORT_ENV, ProxyUnavailable, default_port, port_from_environ
from wev_daemon.proxy.endpoint import Proxy
from wev_daemon.proxy.routes import route_path

__all__ = [
    "PORT_ENV",
    "Proxy",
    "ProxyUnavailable",
    "default_port",
    "port_from_environ",
    "route_path",
]
