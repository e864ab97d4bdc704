"""Fake Amazon ECR and ECR Public endpoints speaking the real awsJson1_1 protocol, on 127.0.0.1.

Serves ``GetAuthorizationToken`` of both services on one port (``X-Amz-Target``
``AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`` signed for
``ecr``, ``SpencerFrontendService.GetAuthorizationToken`` signed for
``ecr-public``): point ``AWS_ENDPOINT_URL_ECR`` and ``AWS_ENDPOINT_URL_ECR_PUBLIC``
at ``url``. Verifies SigV4 on every call, records each call, and answers as ECR
does: base64 ``AWS:<password>``, ``expiresAt`` (epoch seconds) and, for ECR,
``proxyEndpoint`` of the registry asked for (``registryIds``) or the caller's own
(``accounts`` maps access keys to accounts). ``is_valid_password`` is what a
registry asks (``fakes.registry``); knobs inject errors, shorten lifetimes and
move this fake's wall clock.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from .server import ServedFake, ThreadedAppServer
from .sigv4 import SigV4Error, SigV4Verifier, parse_authorization

ACCOUNT = "123456789012"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
PUBLIC_TARGET = "SpencerFrontendService.GetAuthorizationToken"
SERVICES = {ECR_TARGET: "ecr", PUBLIC_TARGET: "ecr-public"}
LIFETIME = 12 * 3600.0  # what ECR gives


@dataclass(frozen=True)
class EcrCall:
    """One request as received."""

    service: str | None
    access_key_id: str | None
    region: str | None
    registry_ids: tuple[str, ...]
    signature_valid: bool


@dataclass(frozen=True)
class Issued:
    password: str
    #: The registry host the password was issued for ("public.ecr.aws" for ECR Public).
    registry: str
    expires_at: float


class FakeEcr(ServedFake):
    """``with FakeEcr(credentials) as ecr: ecr.url``; ``ecr.issued`` lists passwords handed out."""

    def __init__(
        self, credentials: Mapping[str, str], *, accounts: Mapping[str, str] | None = None
    ) -> None:
        self.verifier = SigV4Verifier(credentials)
        self.accounts = dict(accounts or {})
        self._lock = threading.Lock()
        self._calls: list[EcrCall] = []
        self._issued: list[Issued] = []
        self._failure: tuple[int, str] | None = None
        self._lifetime = LIFETIME
        self._clock_offset = 0.0
        app = web.Application()
        app[FAKE] = self
        app.router.add_post("/", _handle)
        self._server = ThreadedAppServer(app)

    # -- knobs -----------------------------------------------------------------------------

    def fail_with(self, status: int, code: str) -> None:
        """Answer every call with this AWS error until ``clear_failures``."""
        with self._lock:
            self._failure = (status, code)

    def clear_failures(self) -> None:
        with self._lock:
            self._failure = None

    def set_lifetime(self, seconds: float) -> None:
        with self._lock:
            self._lifetime = seconds

    def shift_clock(self, seconds: float) -> None:
        """Move this fake's wall clock (a laptop's sleep, as AWS sees it)."""
        with self._lock:
            self._clock_offset = seconds
        self.verifier.clock_offset = seconds

    def now(self) -> float:
        with self._lock:
            return time.time() + self._clock_offset

    # -- observations ----------------------------------------------------------------------

    @property
    def calls(self) -> list[EcrCall]:
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def issued(self) -> list[Issued]:
        with self._lock:
            return list(self._issued)

    @property
    def passwords(self) -> list[str]:
        return [issued.password for issued in self.issued]

    def is_valid_password(self, registry: str, password: str) -> bool:
        """Whether ``password`` was issued for ``registry`` and has not expired."""
        now = self.now()
        return any(
            issued.password == password and issued.registry == registry and now < issued.expires_at
            for issued in self.issued
        )

    # -- used by the handler ---------------------------------------------------------------

    def _record(self, call: EcrCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _issue(self, registry: str) -> tuple[str, float]:
        password = "eyJwYXlsb2FkIjoi" + secrets.token_urlsafe(600)
        with self._lock:
            expires_at = round(time.time() + self._clock_offset + self._lifetime, 3)
            self._issued.append(Issued(password, registry, expires_at))
        return password, expires_at


FAKE = web.AppKey("fake_ecr", FakeEcr)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"__type": code, "message": message}
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    return web.Response(
        status=status,
        body=json.dumps(body),
        content_type="application/x-amz-json-1.1",
        headers=headers,
    )


async def _handle(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await request.read()
    service = SERVICES.get(request.headers.get("X-Amz-Target", ""))
    key_id = region = None
    auth_error: SigV4Error | None = None
    try:
        auth = parse_authorization(request.headers.get("Authorization", ""))
        key_id, region = auth.access_key_id, auth.region
        identity = fake.verifier.verify(request.method, request.raw_path, request.headers, body)
        if identity.service != service:
            auth_error = SigV4Error(f"credential should be scoped to service {service!r}")
    except SigV4Error as error:
        auth_error = error
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = None
    ids = document.get("registryIds") if isinstance(document, dict) else None
    registry_ids = tuple(str(i) for i in ids) if isinstance(ids, list) else ()
    fake._record(EcrCall(service, key_id, region, registry_ids, auth_error is None))
    if service is None:
        return _error(400, "UnknownOperationException", "unknown X-Amz-Target")
    if auth_error is not None:
        return _error(403, auth_error.code, auth_error.reason)
    with fake._lock:
        failure = fake._failure
    if failure is not None:
        return _error(failure[0], failure[1], "injected failure")
    if not isinstance(document, dict):
        return _error(400, "SerializationException", "the body is not a JSON object")
    if service == "ecr-public":
        if region != "us-east-1":
            return _error(400, "InvalidSignatureException", "ECR Public is served in us-east-1")
        password, expires_at = fake._issue("public.ecr.aws")
        data: object = {"authorizationToken": _encode(password), "expiresAt": expires_at}
        return _reply({"authorizationData": data})
    accounts = registry_ids or (fake.accounts.get(key_id or "", ACCOUNT),)
    answers = []
    for account in accounts:
        host = f"{account}.dkr.ecr.{region}.amazonaws.com"
        password, expires_at = fake._issue(host)
        answers.append(
            {
                "authorizationToken": _encode(password),
                "expiresAt": expires_at,
                "proxyEndpoint": f"https://{host}",
            }
        )
    return _reply({"authorizationData": answers})


def _encode(password: str) -> str:
    return base64.b64encode(f"AWS:{password}".encode()).decode()


def _reply(document: object) -> web.Response:
    return web.Response(
        body=json.dumps(document),
        content_type="application/x-amz-json-1.1",
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )
