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
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from .aws import AwsFake
from .server import ThreadedAppServer

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


class FakeEcr(AwsFake[EcrCall]):
    """``with FakeEcr(credentials) as ecr: ecr.url``; ``ecr.issued`` lists passwords handed out."""

    def __init__(
        self, credentials: Mapping[str, str], *, accounts: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(credentials)
        self.accounts = dict(accounts or {})
        self._issued: list[Issued] = []
        self._lifetime = LIFETIME
        app = web.Application()
        app[FAKE] = self
        app.router.add_post("/", _handle)
        self._server = ThreadedAppServer(app)

    # -- knobs -----------------------------------------------------------------------------

    def set_lifetime(self, seconds: float) -> None:
        with self._cond:
            self._lifetime = seconds

    # -- observations ----------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def issued(self) -> list[Issued]:
        with self._cond:
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

    def _issue(self, registry: str) -> tuple[str, float]:
        password = "eyJwYXlsb2FkIjoi" + secrets.token_urlsafe(600)
        with self._cond:
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
    signer = fake.verifier.check(
        request.method, request.raw_path, request.headers, body, service=service
    )
    key_id, region = signer.access_key_id, signer.region
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = None
    ids = document.get("registryIds") if isinstance(document, dict) else None
    registry_ids = tuple(str(i) for i in ids) if isinstance(ids, list) else ()
    fake._record(EcrCall(service, key_id, region, registry_ids, signer.valid))
    if service is None:
        return _error(400, "UnknownOperationException", "unknown X-Amz-Target")
    if signer.error is not None:
        return _error(403, signer.error.code, signer.error.reason)
    failure = fake._take_failure()
    if failure is not None:
        return _error(failure.status, failure.code, failure.message)
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
