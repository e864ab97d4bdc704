"""Fake AWS STS and IAM endpoint speaking the real query protocol (form POST, XML), on 127.0.0.1.

Serves STS ``GetSessionToken``, ``GetCallerIdentity``, ``AssumeRole`` and
``AssumeRoleWithWebIdentity`` and IAM ``ListMFADevices`` on one port (point both
``AWS_ENDPOINT_URL_STS`` and ``AWS_ENDPOINT_URL_IAM`` at ``url``). Verifies SigV4 on
every call but ``AssumeRoleWithWebIdentity``, which AWS serves unsigned and which
checks its token against ``web_identity_token`` instead. Checks the MFA token code
against ``code`` (settable by the test), records each call, and registers
the session credentials it issues in ``issued`` (pass the same dict as another fake's
credentials to let it accept them).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from aiohttp import web

from .server import ServedFake, ThreadedAppServer
from .sigv4 import SigV4Error, SigV4Verifier

ACCOUNT = "123456789012"
USER = "alice"
DEVICE = f"arn:aws:iam::{ACCOUNT}:mfa/{USER}"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
WRONG_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."


@dataclass(frozen=True)
class StsCall:
    """One request as received."""

    action: str
    access_key_id: str | None
    service: str | None
    serial_number: str | None
    token_code: str | None
    duration: int | None
    role_arn: str | None
    signature_valid: bool
    web_identity_token: str | None = None
    #: The region of the signature's credential scope.
    region: str | None = None


@dataclass(frozen=True)
class Session:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float


class FakeSts(ServedFake):
    """``with FakeSts(credentials) as sts: sts.url``; ``sts.code`` is the valid MFA code."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        issued: MutableMapping[str, str] | None = None,
        devices: tuple[str, ...] = (DEVICE,),
    ) -> None:
        self.verifier = SigV4Verifier(credentials)
        self.code = "123456"
        self.web_identity_token = "eyJ.web-identity.token"
        self.devices = devices
        self.issued: MutableMapping[str, str] = {} if issued is None else issued
        self._lock = threading.Lock()
        self._calls: list[StsCall] = []
        self._sessions: list[Session] = []
        app = web.Application()
        app[FAKE] = self
        app.router.add_post("/", _handle)
        self._server = ThreadedAppServer(app)

    @property
    def calls(self) -> list[StsCall]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, action: str) -> list[StsCall]:
        return [call for call in self.calls if call.action == action]

    @property
    def sessions(self) -> list[Session]:
        """Sessions issued (GetSessionToken and AssumeRole), in order."""
        with self._lock:
            return list(self._sessions)

    def secrets(self) -> list[str]:
        """Every secret this fake handed out: session secret keys and tokens."""
        return [
            s
            for session in self.sessions
            for s in (session.secret_access_key, session.session_token)
        ]

    def _record(self, call: StsCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _issue(self, duration: int) -> Session:
        session = Session(
            "ASIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            "FQoG" + secrets.token_urlsafe(120),
            round(time.time() + duration),
        )
        with self._lock:
            self._sessions.append(session)
            self.issued[session.access_key_id] = session.secret_access_key
        return session


FAKE = web.AppKey("fake_sts", FakeSts)


def _xml(action: str, namespace: str, result: str) -> web.Response:
    body = (
        f'<{action}Response xmlns="{namespace}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return web.Response(text=body, content_type="text/xml")


def _error(status: int, code: str, message: str) -> web.Response:
    body = (
        f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return web.Response(text=body, status=status, content_type="text/xml")


def _credentials(session: Session) -> str:
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.expiration))
    return (
        f"<Credentials><AccessKeyId>{session.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{session.secret_access_key}</SecretAccessKey>"
        f"<SessionToken>{session.session_token}</SessionToken>"
        f"<Expiration>{expiration}</Expiration></Credentials>"
    )


async def _handle(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await request.read()
    form = dict(parse_qsl(body.decode()))
    action = form.get("Action", "")
    key_id = service = region = None
    auth_error: SigV4Error | None = None
    if action == "AssumeRoleWithWebIdentity":  # unsigned: the token is the proof
        if "Authorization" in request.headers:
            auth_error = SigV4Error("AssumeRoleWithWebIdentity is called unsigned")
    else:
        signer = fake.verifier.check(request.method, request.raw_path, request.headers, body)
        key_id, service, region = signer.access_key_id, signer.service, signer.region
        auth_error = signer.error
    duration = form.get("DurationSeconds", "")
    fake._record(
        StsCall(
            action=action,
            access_key_id=key_id,
            service=service,
            serial_number=form.get("SerialNumber"),
            token_code=form.get("TokenCode"),
            duration=int(duration) if duration.isdigit() else None,
            role_arn=form.get("RoleArn"),
            signature_valid=auth_error is None,
            web_identity_token=form.get("WebIdentityToken"),
            region=region,
        )
    )
    if auth_error is not None:
        return _error(403, auth_error.code, auth_error.reason)
    if action == "GetCallerIdentity":
        arn = f"arn:aws:iam::{ACCOUNT}:user/{USER}"
        return _xml(
            action,
            STS_NS,
            f"<Arn>{arn}</Arn><UserId>AIDAFAKE</UserId><Account>{ACCOUNT}</Account>",
        )
    if action == "ListMFADevices":
        if form.get("UserName") != USER:
            return _error(404, "NoSuchEntity", f"The user {form.get('UserName')} cannot be found.")
        members = "".join(
            f"<member><UserName>{USER}</UserName><SerialNumber>{device}</SerialNumber>"
            "<EnableDate>2020-01-01T00:00:00Z</EnableDate></member>"
            for device in fake.devices
        )
        return _xml(
            action, IAM_NS, f"<IsTruncated>false</IsTruncated><MFADevices>{members}</MFADevices>"
        )
    if action in ("GetSessionToken", "AssumeRole"):
        serial = form.get("SerialNumber")
        if action == "GetSessionToken" or serial is not None:
            if serial not in fake.devices:
                return _error(403, "AccessDenied", f"MFA device {serial} is not registered.")
            if form.get("TokenCode") != fake.code:
                return _error(403, "AccessDenied", WRONG_CODE)
        default = 43200 if action == "GetSessionToken" else 3600
        session = fake._issue(int(duration) if duration.isdigit() else default)
        if action == "GetSessionToken":
            return _xml(action, STS_NS, _credentials(session))
        role = form.get("RoleArn", "")
        name = form.get("RoleSessionName", "session")
        user = (
            f"<AssumedRoleUser><Arn>{role.replace(':iam:', ':sts:')}/{name}</Arn>"
            f"<AssumedRoleId>AROAFAKE:{name}</AssumedRoleId></AssumedRoleUser>"
        )
        return _xml(action, STS_NS, _credentials(session) + user)
    if action == "AssumeRoleWithWebIdentity":
        if form.get("WebIdentityToken") != fake.web_identity_token:
            return _error(400, "InvalidIdentityToken", "The web identity token is not valid.")
        session = fake._issue(int(duration) if duration.isdigit() else 3600)
        role = form.get("RoleArn", "")
        name = form.get("RoleSessionName", "session")
        result = (
            f"<SubjectFromWebIdentityToken>system:serviceaccount:ci:builder"
            f"</SubjectFromWebIdentityToken>"
            f"<AssumedRoleUser><Arn>{escape(role.replace(':iam:', ':sts:'))}/{escape(name)}</Arn>"
            f"<AssumedRoleId>AROAFAKE:{escape(name)}</AssumedRoleId></AssumedRoleUser>"
            "<Provider>oidc.example.com</Provider><Audience>sts.amazonaws.com</Audience>"
        )
        return _xml(action, STS_NS, _credentials(session) + result)
    return _error(400, "InvalidAction", f"Could not find operation {action}")
