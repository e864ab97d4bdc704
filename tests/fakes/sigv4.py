"""Independent, stdlib-only verifier for AWS Signature Version 4 (``AWS4-HMAC-SHA256``) requests.

Rebuilds the canonical request from what arrived on the wire and checks the signature against a
``{access_key_id: secret}`` map. Shares no code with botocore on purpose, so it can catch signing
bugs on the client side.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


class SigV4Error(Exception):
    """Verification failed; ``code`` is the error code a real AWS service would answer with."""

    code = "InvalidSignatureException"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedAuthorization(SigV4Error):
    """The Authorization header (or X-Amz-Date) is missing or cannot be parsed."""

    code = "IncompleteSignatureException"


class UnknownAccessKey(SigV4Error):
    """The access key id is not in the verifier's credentials."""

    code = "UnrecognizedClientException"


class SignatureMismatch(SigV4Error):
    """The signature, date or scope does not check out."""

    code = "InvalidSignatureException"


@dataclass(frozen=True)
class Authorization:
    """The parsed fields of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SigV4Identity:
    """Who signed a verified request, and for which region and service."""

    access_key_id: str
    region: str
    service: str


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise MalformedAuthorization(f"unsupported or missing algorithm: {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    try:
        credential, signed, signature = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
    except KeyError as exc:
        raise MalformedAuthorization(f"Authorization header lacks {exc.args[0]}") from None
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise MalformedAuthorization(f"bad credential scope: {credential!r}")
    if not all(parts[:4]) or not signed or not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise MalformedAuthorization("empty credential part, SignedHeaders or bad Signature")
    key_id, date, region, service, _ = parts
    return Authorization(key_id, date, region, service, tuple(signed.split(";")), signature)


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_uri(raw_path: str) -> str:
    """AWS (non-S3) canonical URI: dot segments and empty segments removed, each segment of the
    wire form percent-encoded once more (so ``%20`` becomes ``%2520``)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(_encode(segment))
    trailing = "/" if raw_path.endswith("/") and segments else ""
    return "/" + "/".join(segments) + trailing


def canonical_query(raw_query: str) -> str:
    """Decode every ``k=v`` pair, re-encode per RFC 3986, sort by key then value."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if item:
            key, _, val = item.partition("=")
            pairs.append((_encode(unquote(key)), _encode(unquote(val))))
    return "&".join(f"{key}={val}" for key, val in sorted(pairs))


def canonical_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    values: dict[str, list[str]] = {}
    for key, val in headers.items():  # a multidict yields repeated headers here
        values.setdefault(key.strip().lower(), []).append(" ".join(val.split()))
    lines: list[str] = []
    for name in names:
        if name not in values:
            raise SignatureMismatch(f"signed header {name!r} not present in request")
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "".join(lines)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class SigV4Verifier:
    """Checks SigV4 signatures. ``credentials`` is kept by reference, so tests may add keys later.

    ``max_skew`` (seconds) bounds the distance between ``X-Amz-Date`` and now; None disables it.
    """

    def __init__(self, credentials: Mapping[str, str], *, max_skew: float | None = 900.0) -> None:
        self.credentials = credentials
        self.max_skew = max_skew
        #: Seconds this verifier's clock is ahead of the real one.
        self.clock_offset = 0.0

    def verify(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> SigV4Identity:
        """Verify one request. ``target`` is the request-target as sent: path plus ``?query``."""
        lowered = {key.lower(): val for key, val in headers.items()}
        auth = parse_authorization(lowered.get("authorization", ""))
        secret = self.credentials.get(auth.access_key_id)
        if secret is None:
            raise UnknownAccessKey(f"unknown access key id {auth.access_key_id!r}")
        if "host" not in auth.signed_headers:
            raise SignatureMismatch("the host header is not signed")
        if list(auth.signed_headers) != sorted(auth.signed_headers):
            raise SignatureMismatch("SignedHeaders are not sorted")
        amz_date = lowered.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise MalformedAuthorization(f"missing or bad X-Amz-Date: {amz_date!r}") from None
        if amz_date[:8] != auth.date:
            raise SignatureMismatch("credential scope date does not match X-Amz-Date")
        now = time.time() + self.clock_offset
        if self.max_skew is not None and abs(now - signed_at.timestamp()) > self.max_skew:
            raise SignatureMismatch(f"signature expired or not yet valid: {amz_date}")

        path, _, query = target.partition("?")
        payload_hash = lowered.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
        canonical_request = "\n".join(
            [
                method.upper(),
                canonical_uri(path),
                canonical_query(query),
                canonical_headers(headers, auth.signed_headers),
                ";".join(auth.signed_headers),
                payload_hash,
            ]
        )
        string_to_sign = "\n".join(
            [
                ALGORITHM,
                amz_date,
                auth.scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = signing_key(secret, auth.date, auth.region, auth.service)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth.signature):
            raise SignatureMismatch("signature does not match")
        return SigV4Identity(auth.access_key_id, auth.region, auth.service)

    def check(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        service: str | None = None,
    ) -> Signer:
        """Who a request says signed it and whether that holds, without raising; with
        ``service``, the credential's scope must name it, as each AWS service checks."""
        key_id = region = signed_for = None
        try:
            auth = parse_authorization(
                next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            )
            key_id, region, signed_for = auth.access_key_id, auth.region, auth.service
            identity = self.verify(method, target, headers, body)
            if service is not None and identity.service != service:
                raise SignatureMismatch(f"credential should be scoped to service {service!r}")
        except SigV4Error as error:
            return Signer(key_id, region, signed_for, error)
        return Signer(key_id, region, signed_for, None)


@dataclass(frozen=True)
class Signer:
    """What a request's Authorization header names (even when its signature fails), and why
    the signature does not hold (``error``; None when it does)."""

    access_key_id: str | None
    region: str | None
    service: str | None
    error: SigV4Error | None

    @property
    def valid(self) -> bool:
        return self.error is None
