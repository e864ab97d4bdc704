"""Private npm registry on 127.0.0.1 guarded like CodeArtifact's: ``Authorization: Bearer <token>``
where the token must be currently valid for a token authority (normally a ``FakeCodeArtifact``).

Serves packuments and tarballs under ``/npm/<repository>/``, the path shape of CodeArtifact npm
endpoints, for the packages added with ``add``; ``build_package`` writes such a tarball with
``tarfile``, so ``npm install`` works offline against it. Records every auth attempt.

Packuments carry absolute tarball URLs to the registry's own host, as CodeArtifact's do; with
``like_codeartifact=True`` a tarball download also answers 302 with a presigned URL on a second
host (``FakeBlobStore``), as CodeArtifact's redirect to S3. A ``PUT`` of a packument with its
tarball attached (``npm publish``) adds that version; ``published`` lists them.
``explicit_port=True`` writes tarball URLs as CodeArtifact does, with the scheme's port spelled
out (``https://host:443/`` there, ``http://host:80/`` here), serving on port 80 of a loopback
address of its own so that its endpoint URL has no port. ``readme_bytes`` pads each packument
with a readme of that size, as large real ones are (``bench/proxy.py``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from .pypi_index import FakeBlobStore, TokenAuthority
from .server import ServedWithBlobs, ThreadedAppServer


@dataclass(frozen=True)
class NpmPackage:
    """One version of a package: its tarball and the digests npm checks."""

    name: str
    version: str
    tarball: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def shasum(self) -> str:
        return hashlib.sha1(self.tarball, usedforsecurity=False).hexdigest()

    @property
    def integrity(self) -> str:
        return "sha512-" + base64.b64encode(hashlib.sha512(self.tarball).digest()).decode()


def build_package(name: str, version: str, main: str) -> NpmPackage:
    """A tarball holding ``package/package.json`` and ``package/index.js`` (``main``).

    Fixed timestamps keep its bytes, and so its digests, reproducible.
    """
    files = {
        "package/package.json": json.dumps(
            {"name": name, "version": version, "main": "index.js", "license": "MIT"}, indent=2
        ),
        "package/index.js": main,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return NpmPackage(name, version, gzip.compress(raw.getvalue(), mtime=0))


@dataclass(frozen=True)
class BearerAttempt:
    """One request's bearer token (None when absent) and the verdict."""

    path: str
    token: str | None
    valid: bool
    time: float


class FakeNpmRegistry(ServedWithBlobs):
    """``with FakeNpmRegistry(fake_codeartifact) as registry: registry.add(package)``."""

    def __init__(
        self,
        authority: TokenAuthority,
        *,
        like_codeartifact: bool = False,
        explicit_port: bool = False,
        readme_bytes: int = 0,
    ) -> None:
        self.authority = authority
        # Printable, and as incompressible as text gets: a readme, not a run of one byte.
        self.readme = base64.b64encode(os.urandom(readme_bytes * 3 // 4)).decode()
        self.blobs: FakeBlobStore | None = FakeBlobStore() if like_codeartifact else None
        self._lock = threading.Lock()
        self._attempts: list[BearerAttempt] = []
        self._packages: dict[str, dict[str, NpmPackage]] = {}
        app = web.Application(middlewares=[_require_bearer])
        app[REGISTRY] = self
        app.router.add_get("/npm/{repository}/{name}", _packument)
        app.router.add_get("/npm/{repository}/{name}/-/{filename}", _tarball)
        app.router.add_put("/npm/{repository}/{name}", _publish)
        self._published: list[NpmPackage] = []
        self.explicit_port = explicit_port
        self._server = ThreadedAppServer(app, on_port_80=explicit_port)

    def registry_url(self, repository: str) -> str:
        return f"{self.url}/npm/{repository}/"

    def add(self, package: NpmPackage) -> None:
        with self._lock:
            self._packages.setdefault(package.name, {})[package.version] = package

    @property
    def published(self) -> list[NpmPackage]:
        with self._lock:
            return list(self._published)

    @property
    def attempts(self) -> list[BearerAttempt]:
        with self._lock:
            return list(self._attempts)

    def _check(self, path: str, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        valid = bearer is not None and self.authority.is_valid_token(bearer)
        with self._lock:
            self._attempts.append(BearerAttempt(path, bearer, valid, time.monotonic()))
        return valid

    def _versions(self, name: str) -> dict[str, NpmPackage]:
        with self._lock:
            return dict(self._packages.get(name, {}))


REGISTRY = web.AppKey("fake_npm_registry", FakeNpmRegistry)


@web.middleware
async def _require_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[REGISTRY]._check(request.path, request.headers.get("Authorization", "")):
        return web.json_response(
            {"error": "Unable to authenticate, need: Bearer"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="codeartifact"'},
        )
    return await handler(request)


async def _packument(request: web.Request) -> web.Response:
    name, repository = request.match_info["name"], request.match_info["repository"]
    versions = request.app[REGISTRY]._versions(name)
    if not versions:
        return web.json_response({"error": "Not found"}, status=404)
    registry = request.app[REGISTRY]
    own = registry.url_with_port if registry.explicit_port else f"{request.scheme}://{request.host}"
    base = f"{own}/npm/{repository}/{name}/-/"
    latest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    body = {
        "name": name,
        "dist-tags": {"latest": latest},
        **({"readme": request.app[REGISTRY].readme} if request.app[REGISTRY].readme else {}),
        "versions": {
            version: {
                "name": name,
                "version": version,
                "main": "index.js",
                "dist": {
                    "tarball": base + package.filename,
                    "shasum": package.shasum,
                    "integrity": package.integrity,
                },
            }
            for version, package in versions.items()
        },
    }
    return web.json_response(body)


async def _tarball(request: web.Request) -> web.Response:
    name, filename = request.match_info["name"], request.match_info["filename"]
    registry = request.app[REGISTRY]
    for package in registry._versions(name).values():
        if package.filename == filename:
            if registry.blobs is not None:
                raise web.HTTPFound(registry.blobs.presign(filename, package.tarball))
            return web.Response(body=package.tarball, content_type="application/octet-stream")
    return web.json_response({"error": "Not found"}, status=404)


async def _publish(request: web.Request) -> web.Response:
    """``npm publish``: one new version, its tarball base64 in ``_attachments``."""
    registry, name = request.app[REGISTRY], request.match_info["name"]
    document = await request.json()
    versions = document.get("versions") if isinstance(document, dict) else None
    attachments = document.get("_attachments") if isinstance(document, dict) else None
    if not isinstance(versions, dict) or len(versions) != 1 or not isinstance(attachments, dict):
        return web.json_response({"error": "one version and its tarball, please"}, status=400)
    [version] = versions
    [attachment] = attachments.values()
    tarball = base64.b64decode(attachment["data"])
    package = NpmPackage(name, version, tarball)
    if version in registry._versions(name):
        return web.json_response({"error": f"{name}@{version} exists already"}, status=409)
    registry.add(package)
    with registry._lock:
        registry._published.append(package)
    return web.json_response({"ok": True, "id": name}, status=201)
