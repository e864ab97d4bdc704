"""Fake AWS CodeArtifact endpoint speaking the real restJson wire protocol, on 127.0.0.1.

Serves ``GetAuthorizationToken`` and ``GetRepositoryEndpoint``, verifies SigV4 on every call,
records each call, issues random tokens, and has thread-safe knobs (settable from the test thread
at any time) to inject AWS-shaped errors, stalls, dropped connections and malformed replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web

from .aws import AwsFake
from .server import CLOSING, ThreadedAppServer

SERVICE = "codeartifact"
GET_AUTHORIZATION_TOKEN = "GetAuthorizationToken"
GET_REPOSITORY_ENDPOINT = "GetRepositoryEndpoint"
DEFAULT_DURATION = 43200  # also used for duration=0 ("the session's remaining lifetime")


@dataclass(frozen=True)
class CallRecord:
    """One request as received; ``time`` is ``time.monotonic()`` at arrival."""

    operation: str
    access_key_id: str | None
    region: str | None
    session_token: str | None
    domain: str | None
    domain_owner: str | None
    duration: int | None
    repository: str | None
    time: float
    signature_valid: bool


class FakeCodeArtifact(AwsFake[CallRecord]):
    """``with FakeCodeArtifact(credentials={"AKIA...": "secret"}) as fake: fake.url``.

    ``domains``: if given, any other domain gets 404 ResourceNotFoundException.
    ``repository_base_url``: base of GetRepositoryEndpoint answers (default: this fake's url).
    ``close_connections`` / ``malformed_reply``: plain flags, drop the connection without a reply
    or answer 200 with a truncated JSON body. ``port`` and ``tls``: see ThreadedAppServer.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        domains: Iterable[str] | None = None,
        repository_base_url: str | None = None,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(credentials)
        self.domains = None if domains is None else set(domains)
        self.repository_base_url = repository_base_url
        self.close_connections = False
        self.malformed_reply = False
        self._issued: dict[str, float] = {}
        self._stall = 0.0
        self._lifetime: float | None = None
        app = web.Application()
        app[FAKE] = self
        app.router.add_post("/v1/authorization-token", _get_authorization_token)
        app.router.add_get("/v1/repository/endpoint", _get_repository_endpoint)
        self._server = ThreadedAppServer(app, port=port, tls=tls)

    # -- knobs -----------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Delay answers to requests arriving from now on; shutdown cuts the delay short."""
        with self._cond:
            self._stall = seconds

    def set_lifetime(self, seconds: float | None) -> None:
        """Cap the lifetime of newly issued tokens (None: back to the requested duration)."""
        with self._cond:
            self._lifetime = seconds

    # -- observations ----------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        """Number of GetAuthorizationToken calls received (whatever their outcome)."""
        with self._cond:
            return self._count(GET_AUTHORIZATION_TOKEN)

    @property
    def endpoint_call_count(self) -> int:
        with self._cond:
            return self._count(GET_REPOSITORY_ENDPOINT)

    @property
    def issued(self) -> dict[str, float]:
        """Issued tokens, in order, mapped to their expiration (epoch seconds)."""
        with self._cond:
            return dict(self._issued)

    def is_valid_token(self, token: str) -> bool:
        with self._cond:
            expiry = self._issued.get(token)
        return expiry is not None and self.now() < expiry

    def wait_for_call_count(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``call_count >= count``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._count(GET_AUTHORIZATION_TOKEN) >= count, timeout
            )

    # -- used by the handlers (event loop thread) ------------------------------------------

    def _count(self, operation: str) -> int:
        return sum(1 for call in self._calls if call.operation == operation)

    def _issue(self, duration: int) -> tuple[str, float]:
        token = "eyJ" + secrets.token_urlsafe(150)
        with self._cond:
            lifetime = float(duration or DEFAULT_DURATION)
            if self._lifetime is not None:
                lifetime = min(lifetime, self._lifetime)
            expiration = round(time.time() + self._clock_offset + lifetime, 3)
            self._issued[token] = expiration
        return token, expiration

    async def _wait_stall(self, closing: asyncio.Event) -> None:
        with self._cond:
            seconds = self._stall
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), seconds)


FAKE = web.AppKey("fake_codeartifact", FakeCodeArtifact)


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return web.json_response({"message": message}, status=status, headers=headers)


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)  # never reaches the client


async def _handle(request: web.Request, operation: str) -> web.Response | None:
    """Common part of both operations: record, stall, inject faults, check auth and domain.

    Returns the response to send instead, or None when the operation should proceed.
    """
    fake = request.app[FAKE]
    body = await request.read()
    query = request.query
    signer = fake.verifier.check(
        request.method, request.raw_path, request.headers, body, service=SERVICE
    )
    domain, duration = query.get("domain"), query.get("duration", "")
    fake._record(
        CallRecord(
            operation=operation,
            access_key_id=signer.access_key_id,
            region=signer.region,
            session_token=request.headers.get("X-Amz-Security-Token"),
            domain=domain,
            domain_owner=query.get("domain-owner"),
            duration=int(duration) if duration.isdigit() else None,
            repository=query.get("repository"),
            time=time.monotonic(),
            signature_valid=signer.valid,
        )
    )
    closing = request.app[CLOSING]
    await fake._wait_stall(closing)
    if fake.close_connections or closing.is_set():
        return _drop(request)
    if signer.error is not None:
        return _error(403, signer.error.code, signer.error.reason)
    failure = fake._take_failure()
    if failure is not None:
        return _error(failure.status, failure.code, failure.message)
    if not domain:
        return _error(400, "ValidationException", "domain is required")
    if fake.domains is not None and domain not in fake.domains:
        return _error(404, "ResourceNotFoundException", f"Domain {domain} not found")
    if fake.malformed_reply:
        truncated = b'{"authorizationToken": "eyJ'
        return web.Response(body=truncated, content_type="application/json")
    return None


async def _get_authorization_token(request: web.Request) -> web.Response:
    early = await _handle(request, GET_AUTHORIZATION_TOKEN)
    if early is not None:
        return early
    raw = request.query.get("duration", "0")
    if not raw.isdigit() or not (int(raw) == 0 or 900 <= int(raw) <= 43200):
        return _error(400, "ValidationException", "duration must be 0 or 900..43200 seconds")
    token, expiration = request.app[FAKE]._issue(int(raw))
    return web.json_response({"authorizationToken": token, "expiration": expiration})


async def _get_repository_endpoint(request: web.Request) -> web.Response:
    early = await _handle(request, GET_REPOSITORY_ENDPOINT)
    if early is not None:
        return early
    fake = request.app[FAKE]
    repository, fmt = request.query.get("repository"), request.query.get("format")
    if not repository or not fmt:
        return _error(400, "ValidationException", "repository and format are required")
    base = fake.repository_base_url or fake.url
    return web.json_response({"repositoryEndpoint": f"{base}/{fmt}/{repository}/"})
