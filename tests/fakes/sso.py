"""Fake IAM Identity Center (SSO) portal speaking the real restJson protocol, on 127.0.0.1.

Serves ``GetRoleCredentials`` (``GET /federation/credentials?role_name=R&account_id=A``
with the access token in the ``x-amz-sso_bearer_token`` header; the call is unsigned).
Accepts the access tokens given to ``accept`` (as ``aws sso login`` would have
issued them), records each call, and registers the role credentials it
issues in ``issued`` (pass the same dict as another fake's credentials to let it
accept them). Point ``AWS_ENDPOINT_URL_SSO`` at ``url``.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass

from aiohttp import web

from .server import ServedFake, ThreadedAppServer

ACCOUNT = "111122223333"
ROLE = "Developer"
UNAUTHORIZED = "Session token not found or invalid"


@dataclass(frozen=True)
class SsoCall:
    """One GetRoleCredentials request as received."""

    role_name: str | None
    account_id: str | None
    access_token: str | None


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float


class FakeSso(ServedFake):
    """``with FakeSso(issued=credentials) as sso: sso.accept(token); sso.url``."""

    def __init__(
        self,
        *,
        issued: MutableMapping[str, str] | None = None,
        roles: frozenset[tuple[str, str]] = frozenset({(ACCOUNT, ROLE)}),
        lifetime: int = 3600,
    ) -> None:
        self._tokens: set[str] = set()
        self.roles = roles
        self.lifetime = lifetime
        self.issued: MutableMapping[str, str] = {} if issued is None else issued
        self._lock = threading.Lock()
        self._calls: list[SsoCall] = []
        self._sessions: list[RoleCredentials] = []
        app = web.Application()
        app[FAKE] = self
        app.router.add_get("/federation/credentials", _get_role_credentials)
        self._server = ThreadedAppServer(app)

    def accept(self, token: str) -> None:
        """Take ``token`` as a valid access token from now on (thread-safe)."""
        with self._lock:
            self._tokens.add(token)

    @property
    def calls(self) -> list[SsoCall]:
        with self._lock:
            return list(self._calls)

    @property
    def sessions(self) -> list[RoleCredentials]:
        """Role credentials issued, in order."""
        with self._lock:
            return list(self._sessions)

    def _accepts(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and token in self._tokens

    def _record(self, call: SsoCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _issue(self) -> RoleCredentials:
        role = RoleCredentials(
            "ASIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            "IQoJ" + secrets.token_urlsafe(120),
            time.time() + self.lifetime,
        )
        with self._lock:
            self._sessions.append(role)
            self.issued[role.access_key_id] = role.secret_access_key
        return role


FAKE = web.AppKey("fake_sso", FakeSso)


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"x-amzn-errortype": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return web.json_response({"message": message}, status=status, headers=headers)


async def _get_role_credentials(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    role_name = request.query.get("role_name")
    account_id = request.query.get("account_id")
    token = request.headers.get("x-amz-sso_bearer_token")
    fake._record(SsoCall(role_name, account_id, token))
    if not fake._accepts(token):
        return _error(401, "UnauthorizedException", UNAUTHORIZED)
    if (account_id, role_name) not in fake.roles:
        return _error(403, "ForbiddenException", "No access")
    role = fake._issue()
    return web.json_response(
        {
            "roleCredentials": {
                "accessKeyId": role.access_key_id,
                "secretAccessKey": role.secret_access_key,
                "sessionToken": role.session_token,
                "expiration": int(role.expiration * 1000),
            }
        }
    )
