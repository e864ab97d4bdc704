"""Self-tests of the network-edge fakes in ``tests/fakes``: SigV4 verifier, fake CodeArtifact
driven by a real aiobotocore client, wheel builder and private index driven by a real pip."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.client import HTTPMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.utils import percent_encode_sequence
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from fakes.sigv4 import (
    MalformedAuthorization,
    SignatureMismatch,
    SigV4Error,
    SigV4Verifier,
    UnknownAccessKey,
)
from fakes.wheels import build_wheel

KEY_ID = "AKIAFAKEEXAMPLE00001"
SECRET = "fake/secret+key/for/tests"
CREDENTIALS = {KEY_ID: SECRET}
DOMAIN = "my-domain"
OWNER = "123456789012"

# -- SigV4 verifier against botocore's own signer --------------------------------------------


def _signed(
    secret: str = SECRET, headers: dict[str, str] | None = None
) -> tuple[str, str, dict[str, str], bytes]:
    """A request signed by botocore, as (method, target, headers, body) seen on the wire."""
    # Encoded the way botocore encodes real query strings; the path has dot segments, a double
    # slash and an encoded space to exercise canonical URI rules.
    query = percent_encode_sequence({"domain": "my dom/ü", "duration": "900", "z": "+~*", "e": ""})
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8080/v1/a%20b/./c//d/?{query}",
        data=b'{"x": 1}',
        headers={"X-Custom": "  spaced   value ", **(headers or {})},
    )
    SigV4Auth(Credentials(KEY_ID, secret), "codeartifact", "eu-west-1").add_auth(request)
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    wire_headers = {"Host": split.netloc, **dict(prepared.headers.items())}
    body = prepared.body if isinstance(prepared.body, bytes) else b""
    return prepared.method, f"{split.path}?{split.query}", wire_headers, body


@pytest.mark.parametrize(
    "extra", [{}, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "X-Amz-Security-Token": "tok"}]
)
def test_sigv4_accepts_botocore_signature(extra: dict[str, str]) -> None:
    method, target, headers, body = _signed(headers=extra)
    identity = SigV4Verifier(CREDENTIALS).verify(method, target, headers, body)
    assert (identity.access_key_id, identity.region, identity.service) == (
        KEY_ID,
        "eu-west-1",
        "codeartifact",
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda m, t, h, b: ("PUT", t, h, b), SignatureMismatch),
        (lambda m, t, h, b: (m, t.replace("=900", "=901"), h, b), SignatureMismatch),
        (lambda m, t, h, b: (m, t.replace("/c/", "/C/"), h, b), SignatureMismatch),
        (lambda m, t, h, b: (m, t, {**h, "X-Custom": "other"}, b), SignatureMismatch),
        (lambda m, t, h, b: (m, t, {**h, "Host": "127.0.0.1:8081"}, b), SignatureMismatch),
        (lambda m, t, h, b: (m, t, h, b + b" "), SignatureMismatch),
        (lambda m, t, h, b: (m, t, {k: v for k, v in h.items() if k != "Authorization"}, b),
         MalformedAuthorization),
    ],
)  # fmt: skip
def test_sigv4_rejects_tampered_request(change: Any, error: type[SigV4Error]) -> None:
    method, target, headers, body = change(*_signed())
    with pytest.raises(error):
        SigV4Verifier(CREDENTIALS).verify(method, target, headers, body)


def test_sigv4_rejects_wrong_secret_unknown_key_and_old_signature() -> None:
    with pytest.raises(SignatureMismatch, match="does not match") as mismatch:
        SigV4Verifier(CREDENTIALS).verify(*_signed(secret="wrong"))
    assert mismatch.value.code == "InvalidSignatureException"
    with pytest.raises(UnknownAccessKey) as unknown:
        SigV4Verifier({"AKIAOTHER": SECRET}).verify(*_signed())
    assert unknown.value.code == "UnrecognizedClientException"
    method, target, headers, body = _signed()
    with pytest.raises(SignatureMismatch, match="expired"):
        SigV4Verifier(CREDENTIALS, max_skew=-1).verify(method, target, headers, body)


# -- fake CodeArtifact through a real aiobotocore client --------------------------------------


async def _call(fake: FakeCodeArtifact, operation: str, secret: str, **params: Any) -> Any:
    config = AioConfig(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2)
    session = AioSession()
    async with session.create_client(
        "codeartifact",
        region_name="us-east-1",
        endpoint_url=fake.url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=config,
    ) as client:
        return await getattr(client, operation)(**params)


def get_token(fake: FakeCodeArtifact, secret: str = SECRET, **params: Any) -> Any:
    return asyncio.run(_call(fake, "get_authorization_token", secret, domain=DOMAIN, **params))


def test_token_success_is_recorded_and_valid() -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS) as fake:
        before = time.time()
        reply = get_token(fake, domainOwner=OWNER, durationSeconds=3600)
        token = reply["authorizationToken"]
        assert token.startswith("eyJ") and len(token) >= 200
        assert before + 3600 - 1 <= reply["expiration"].timestamp() <= time.time() + 3600 + 1
        assert fake.is_valid_token(token) and not fake.is_valid_token(token + "x")
        assert fake.issued == {token: pytest.approx(reply["expiration"].timestamp(), abs=0.01)}
        assert fake.call_count == 1 and fake.endpoint_call_count == 0
        [call] = fake.calls
        assert (call.access_key_id, call.region, call.signature_valid) == (
            KEY_ID,
            "us-east-1",
            True,
        )
        assert (call.domain, call.domain_owner, call.duration) == (DOMAIN, OWNER, 3600)
        assert get_token(fake)["authorizationToken"] != token
        assert fake.wait_for_call_count(2, timeout=1)


def test_token_default_duration_and_lifetime_override() -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS) as fake:
        reply = get_token(fake)
        assert reply["expiration"].timestamp() == pytest.approx(time.time() + 43200, abs=5)
        assert fake.calls[0].duration is None and fake.calls[0].domain_owner is None
        reply = get_token(fake, durationSeconds=0)
        assert reply["expiration"].timestamp() == pytest.approx(time.time() + 43200, abs=5)
        fake.set_lifetime(60)
        reply = get_token(fake, durationSeconds=3600)
        assert reply["expiration"].timestamp() == pytest.approx(time.time() + 60, abs=5)
        fake.set_lifetime(0)
        assert not fake.is_valid_token(get_token(fake)["authorizationToken"])


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "AccessDeniedException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
    ],
)
def test_injected_failures_surface_as_client_errors(status: int, code: str) -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS) as fake:
        fake.fail_with(status, code, "nope", times=2)
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                get_token(fake)
            assert caught.value.response["Error"] == {"Code": code, "Message": "nope"}
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert "authorizationToken" in get_token(fake)
        fake.fail_with(status, code)
        for _ in range(2):
            with pytest.raises(ClientError):
                get_token(fake)
        fake.clear_failures()
        assert "authorizationToken" in get_token(fake)
        assert fake.call_count == 6 and len(fake.issued) == 2


def test_bad_signature_unknown_key_and_unknown_domain() -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS, domains={DOMAIN}) as fake:
        with pytest.raises(ClientError, match="InvalidSignatureException"):
            get_token(fake, secret="wrong")
        assert fake.calls[-1].access_key_id == KEY_ID and not fake.calls[-1].signature_valid
        with pytest.raises(ClientError, match="ResourceNotFoundException") as caught:
            asyncio.run(_call(fake, "get_authorization_token", SECRET, domain="other"))
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with FakeCodeArtifact(credentials={"AKIAOTHER": SECRET}) as fake:
        with pytest.raises(ClientError, match="UnrecognizedClientException"):
            get_token(fake)
        assert fake.calls[-1].access_key_id == KEY_ID and fake.issued == {}


def test_malformed_reply_and_dropped_connection() -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS) as fake:
        fake.malformed_reply = True
        assert "authorizationToken" not in get_token(fake)
        fake.malformed_reply = False
        fake.close_connections = True
        with pytest.raises(ConnectionClosedError):
            get_token(fake)
        fake.close_connections = False
        assert "authorizationToken" in get_token(fake)


def test_stall_times_out_client_and_shutdown_is_bounded() -> None:
    outcome: list[BaseException] = []

    def waiting_client(fake: FakeCodeArtifact) -> None:
        try:
            get_token(fake)  # its read timeout is 2 s, but the fake is stopped before that
        except Exception as exc:
            outcome.append(exc)

    with FakeCodeArtifact(credentials=CREDENTIALS) as fake:
        fake.stall(0.5)
        assert "authorizationToken" in get_token(fake)
        fake.stall(60)
        with pytest.raises(ReadTimeoutError):
            get_token(fake)
        client = threading.Thread(target=waiting_client, args=(fake,))
        client.start()
        assert fake.wait_for_call_count(3, timeout=2)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    client.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosedError)


def test_repository_endpoint_is_counted_separately() -> None:
    with FakeCodeArtifact(credentials=CREDENTIALS, repository_base_url="http://index") as fake:
        reply = asyncio.run(
            _call(
                fake,
                "get_repository_endpoint",
                SECRET,
                domain=DOMAIN,
                domainOwner=OWNER,
                repository="repo",
                format="pypi",
            )
        )
        assert reply["repositoryEndpoint"] == "http://index/pypi/repo/"
        assert (fake.endpoint_call_count, fake.call_count) == (1, 0)
        assert fake.calls[0].repository == "repo" and fake.calls[0].domain_owner == OWNER


# -- wheels and the private index through a real pip ------------------------------------------


def test_build_wheel_layout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "wev-probe", "1.2.3")
    assert wheel.name == "wev_probe-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("wev_probe.py") == b'VERSION = "1.2.3"\n'
        record = archive.read("wev_probe-1.2.3.dist-info/RECORD").decode()
    assert "wev_probe.py,sha256=" in record and record.endswith("RECORD,,\n")
    assert build_wheel(tmp_path / "again", "wev-probe", "1.2.3").read_bytes() == wheel.read_bytes()


def _get(base_url: str, path: str, userinfo: str | None) -> tuple[int, HTTPMessage, str]:
    headers = {}
    if userinfo is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def _pip_install(index_url: str, target: Path, name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    # fmt: off
    command = [
        sys.executable, "-m", "pip", "install", "--isolated", "--no-input", "--no-deps",
        "--no-cache-dir", "--disable-pip-version-check", "--keyring-provider", "disabled",
        "--timeout", "10", "--retries", "0",
        "--index-url", index_url, "--target", str(target), name,
    ]
    # fmt: on
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_pip_installs_through_index_with_valid_token_only(tmp_path: Path) -> None:
    build_wheel(tmp_path / "wheels", "wev-probe", "1.2.3")
    with (
        FakeCodeArtifact(credentials=CREDENTIALS) as fake,
        FakePyPIIndex(tmp_path / "wheels", fake) as index,
    ):
        token = get_token(fake)["authorizationToken"]
        result = _pip_install(index.index_url(token), tmp_path / "good", "wev-probe")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "good" / "wev_probe.py").read_text() == 'VERSION = "1.2.3"\n'
        attempts = index.attempts
        assert attempts and all(a.valid and a.token == token for a in attempts)
        assert any(a.path.startswith("/packages/") for a in attempts)

        result = _pip_install(index.index_url("eyJbogus"), tmp_path / "bad", "wev-probe")
        assert result.returncode != 0
        assert not (tmp_path / "bad" / "wev_probe.py").exists()
        refused = index.attempts[len(attempts) :]
        assert refused and all(not a.valid and a.token == "eyJbogus" for a in refused)

        status, headers, _ = _get(index.url, "/simple/wev-probe/", None)
        assert (status, headers["WWW-Authenticate"]) == (401, 'Basic realm="codeartifact"')


def test_index_serves_under_repository_prefix(tmp_path: Path) -> None:
    build_wheel(tmp_path, "wev-probe", "1.0")
    with FakeCodeArtifact(credentials=CREDENTIALS) as fake, FakePyPIIndex(tmp_path, fake) as index:
        token = get_token(fake)["authorizationToken"]
        path = urlsplit(index.index_url(token, repository="repo")).path
        status, _, page = _get(index.url, f"{path}wev-probe/", f"aws:{token}")
        assert status == 200 and path == "/pypi/repo/simple/"
        assert 'href="../../packages/wev_probe-1.0-py3-none-any.whl#sha256=' in page
        status, _, _ = _get(index.url, "/pypi/repo/packages/wev_probe-1.0-py3-none-any.whl", None)
        assert status == 401
