"""Fake container credentials endpoint (ECS / EKS Pod Identity), on 127.0.0.1.

``GET /creds`` answers ``{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}``
when the ``Authorization`` header equals ``authorization`` (what the client puts in
AWS_CONTAINER_AUTHORIZATION_TOKEN), else 401. Any other request gets 404 and is
recorded too, so the fake doubles as a metadata endpoint that must not be asked
(point AWS_EC2_METADATA_SERVICE_ENDPOINT at ``url`` and check ``requests``).
Issued keys are registered in ``issued`` (share it with another fake's credentials).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass

from aiohttp import web

from .server import ServedFake, ThreadedAppServer

PATH = "/creds"


@dataclass(frozen=True)
class Request:
    """One request as received."""

    method: str
    path: str
    authorization: str | None


class FakeContainerCredentials(ServedFake):
    """``with FakeContainerCredentials("token", issued=creds) as c: c.url + PATH``."""

    def __init__(
        self, authorization: str, *, issued: MutableMapping[str, str] | None = None
    ) -> None:
        self.authorization = authorization
        self.issued: MutableMapping[str, str] = {} if issued is None else issued
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._keys: list[str] = []
        app = web.Application()
        app[FAKE] = self
        app.router.add_route("*", "/{tail:.*}", _handle)
        self._server = ThreadedAppServer(app)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def keys(self) -> list[str]:
        """Access key ids handed out, in order."""
        with self._lock:
            return list(self._keys)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _issue(self) -> dict[str, str]:
        key, secret = "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
        with self._lock:
            self._keys.append(key)
            self.issued[key] = secret
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return {
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "Token": "IQoJ" + secrets.token_urlsafe(100),
            "Expiration": expiration,
        }


FAKE = web.AppKey("fake_container", FakeContainerCredentials)


async def _handle(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    authorization = request.headers.get("Authorization")
    fake._record(Request(request.method, request.path, authorization))
    if request.method != "GET" or request.path != PATH:
        return web.json_response({"message": "not found"}, status=404)
    if authorization != fake.authorization:
        return web.json_response({"message": "invalid authorization token"}, status=401)
    return web.json_response(fake._issue())
