"""Fake ECR registry: the Docker Registry HTTP API v2, letting in only a valid ECR password.

Serves one small image, ``app:1.0`` (an OCI manifest, its config and one
layer), under ``host`` (an ``ACCOUNT.dkr.ecr.REGION.amazonaws.com`` name,
reached over HTTPS through ``fakes.internet``). As ECR does, a request without
credentials, or with a password that ``FakeEcr`` did not issue for this host or
that has expired, gets 401 with ``WWW-Authenticate: Basic``; ``let_in`` and
``turned_away`` count the outcomes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading

from aiohttp import web

from .ecr import FakeEcr
from .server import ServedFake, ThreadedAppServer

REPOSITORY = "app"
TAG = "1.0"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
#: The file the image's one layer holds.
LAYER_FILE = "hello.txt"
LAYER_TEXT = b"hello from the fake registry\n"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer() -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(LAYER_FILE)
        info.size = len(LAYER_TEXT)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(LAYER_TEXT))
    return gzip.compress(archive.getvalue(), mtime=0)


class Image:
    """The one image: its manifest and blobs by digest."""

    def __init__(self) -> None:
        layer = _layer()
        diff_id = _digest(gzip.decompress(layer))
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        self.blobs = {_digest(config): config, _digest(layer): layer}
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {
                    "mediaType": CONFIG_TYPE,
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [{"mediaType": LAYER_TYPE, "digest": _digest(layer), "size": len(layer)}],
            }
        ).encode()
        self.digest = _digest(self.manifest)


class FakeRegistry(ServedFake):
    """``with FakeRegistry(host, ecr) as registry: registry.url`` (route ``host`` to it)."""

    def __init__(self, host: str, ecr: FakeEcr) -> None:
        self.host = host
        self.ecr = ecr
        self.image = Image()
        self._lock = threading.Lock()
        self._let_in = 0
        self._turned_away = 0
        app = web.Application()
        app[FAKE] = self
        app.router.add_get("/v2/", _base)
        app.router.add_route("*", "/v2/{name}/manifests/{reference}", _manifest)
        app.router.add_route("*", "/v2/{name}/blobs/{digest}", _blob)
        app.router.add_get("/v2/{name}/tags/list", _tags)
        self._server = ThreadedAppServer(app)

    @property
    def let_in(self) -> int:
        """Requests made with a valid password."""
        with self._lock:
            return self._let_in

    @property
    def turned_away(self) -> int:
        """Requests refused: no credentials, or a password that is not valid (any more)."""
        with self._lock:
            return self._turned_away

    def admits(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            username = password = ""
        admitted = (
            scheme == "Basic"
            and username == "AWS"
            and self.ecr.is_valid_password(self.host, password)
        )
        with self._lock:
            if admitted:
                self._let_in += 1
            else:
                self._turned_away += 1
        return admitted


FAKE = web.AppKey("fake_registry", FakeRegistry)
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


def _errors(status: int, code: str, message: str, headers: dict[str, str]) -> web.Response:
    body = {"errors": [{"code": code, "message": message}]}
    return web.json_response(body, status=status, headers={**API_VERSION, **headers})


def _refusal(request: web.Request) -> web.Response | None:
    """The answer to a request that may not go on, or None."""
    registry = request.app[FAKE]
    if request.host.partition(":")[0] != registry.host:
        return _errors(404, "NAME_UNKNOWN", f"no registry {request.host} here", {})
    if registry.admits(request):
        return None
    challenge = f'Basic realm="https://{registry.host}/",service="ecr.amazonaws.com"'
    return _errors(401, "DENIED", "Not Authorized", {"WWW-Authenticate": challenge})


async def _base(request: web.Request) -> web.Response:
    return _refusal(request) or web.json_response({}, headers=API_VERSION)


def _found(request: web.Request, body: bytes, content_type: str, digest: str) -> web.Response:
    headers = {**API_VERSION, "Docker-Content-Digest": digest, "Content-Type": content_type}
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return web.Response(headers=headers)
    return web.Response(body=body, headers=headers)


async def _manifest(request: web.Request) -> web.Response:
    if refusal := _refusal(request):
        return refusal
    image = request.app[FAKE].image
    name, reference = request.match_info["name"], request.match_info["reference"]
    if request.method not in ("GET", "HEAD"):
        return _errors(405, "UNSUPPORTED", "this registry is read-only", {})
    if name != REPOSITORY or reference not in (TAG, image.digest):
        return _errors(404, "MANIFEST_UNKNOWN", f"{name}:{reference} is not here", {})
    return _found(request, image.manifest, MANIFEST_TYPE, image.digest)


async def _blob(request: web.Request) -> web.Response:
    if refusal := _refusal(request):
        return refusal
    blobs = request.app[FAKE].image.blobs
    digest = request.match_info["digest"]
    if request.method not in ("GET", "HEAD"):
        return _errors(405, "UNSUPPORTED", "this registry is read-only", {})
    if request.match_info["name"] != REPOSITORY or digest not in blobs:
        return _errors(404, "BLOB_UNKNOWN", f"{digest} is not here", {})
    return _found(request, blobs[digest], "application/octet-stream", digest)


async def _tags(request: web.Request) -> web.Response:
    if refusal := _refusal(request):
        return refusal
    if request.match_info["name"] != REPOSITORY:
        return _errors(404, "NAME_UNKNOWN", "no such repository", {})
    return web.json_response({"name": REPOSITORY, "tags": [TAG]}, headers=API_VERSION)
