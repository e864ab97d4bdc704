"""Private PEP 503 "simple" index on 127.0.0.1 guarded like CodeArtifact's: HTTP Basic auth
``aws:<token>`` where the token must be currently valid for a given token authority (normally a
``FakeCodeArtifact``). Serves the wheels found in a folder and records every auth attempt.

Routes exist both at the root (``/simple/``) and under ``/pypi/<repository>/``, the path shape of
CodeArtifact repository endpoints; links are relative so they work under either prefix. A ``POST``
to the root or to ``/pypi/<repository>/`` is the legacy upload API that twine speaks (multipart
form, ``:action=file_upload``); an uploaded wheel is stored in the folder and served from then on.

``like_codeartifact=True`` makes it behave as CodeArtifact's endpoint does: project pages carry
absolute links to its own host (``<url>/pypi/<repository>/simple/<project>/<version>/<file>``),
and each such download answers 302 with a presigned URL on a second host, a ``FakeBlobStore``
(as CodeArtifact's redirect to S3), which wants no token and records each download.
``explicit_port=True`` also writes those links as CodeArtifact does, with the scheme's port
spelled out (``https://host:443/`` there, ``http://host:80/`` here): the index then serves on
port 80 of a loopback address of its own, so that its endpoint URL has no port.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from .server import ServedFake, ServedWithBlobs, ThreadedAppServer

USERNAME = "aws"
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
REALM = 'Basic realm="codeartifact"'


class TokenAuthority(Protocol):
    def is_valid_token(self, token: str) -> bool: ...


@dataclass(frozen=True)
class Upload:
    """One accepted upload: the stored file's name and the form's project name and version."""

    filename: str
    name: str
    version: str


@dataclass(frozen=True)
class AuthAttempt:
    """One request's credentials (None when absent or unparsable) and the verdict."""

    path: str
    username: str | None
    token: str | None
    valid: bool
    time: float


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


class FakeBlobStore(ServedFake):
    """The second host of CodeArtifact downloads (S3): serves a file only at a presigned URL."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._files: dict[str, Path | bytes] = {}
        self._downloads: list[str] = []
        app = web.Application()
        app[BLOBS] = self
        app.router.add_get("/blobs/{name}", _blob)
        self._server = ThreadedAppServer(app)

    def presign(self, name: str, content: Path | bytes) -> str:
        """A URL that serves ``content`` as ``name``, without credentials, as S3's do."""
        with self._lock:
            self._files[name] = content
        return f"{self.url}/blobs/{name}?X-Amz-Expires=900&X-Amz-Signature={self._sign(name)}"

    @property
    def downloads(self) -> list[str]:
        with self._lock:
            return list(self._downloads)

    def _sign(self, name: str) -> str:
        return hmac.new(self._key, name.encode(), "sha256").hexdigest()


BLOBS = web.AppKey("fake_blob_store", FakeBlobStore)


async def _blob(request: web.Request) -> web.StreamResponse:
    store, name = request.app[BLOBS], request.match_info["name"]
    signature = request.query.get("X-Amz-Signature", "")
    with store._lock:
        content = store._files.get(name)
    if content is None or not hmac.compare_digest(signature, store._sign(name)):
        return web.Response(status=403, text="SignatureDoesNotMatch")
    with store._lock:
        store._downloads.append(name)
    if isinstance(content, Path):
        return web.FileResponse(content)
    return web.Response(body=content, content_type="application/octet-stream")


class FakePyPIIndex(ServedWithBlobs):
    """``with FakePyPIIndex(wheel_dir, fake_codeartifact) as index: index.index_url(token)``.

    The folder is read on every request, so wheels may be added while the index runs.
    """

    def __init__(
        self,
        wheel_dir: Path,
        authority: TokenAuthority,
        *,
        like_codeartifact: bool = False,
        explicit_port: bool = False,
    ) -> None:
        self.wheel_dir = wheel_dir
        self.authority = authority
        self.blobs: FakeBlobStore | None = FakeBlobStore() if like_codeartifact else None
        self._lock = threading.Lock()
        self._attempts: list[AuthAttempt] = []
        self._uploads: list[Upload] = []
        self._digests: dict[tuple[Path, int, int], str] = {}
        app = web.Application(middlewares=[_require_token])
        app[INDEX] = self
        for prefix in ("", "/pypi/{repository}"):
            app.router.add_post(prefix + "/", _upload)
            app.router.add_get(prefix + "/simple/", _project_list)
            app.router.add_get(prefix + "/simple/{project}/", _project_page)
            app.router.add_get(prefix + "/simple/{project}/{version}/{filename}", _download)
            app.router.add_get(prefix + "/packages/{filename}", _package)
        self.explicit_port = explicit_port
        self._server = ThreadedAppServer(app, on_port_80=explicit_port)

    def index_url(self, token: str, repository: str | None = None) -> str:
        """The ``--index-url`` for pip, credentials included."""
        prefix = f"/pypi/{repository}" if repository else ""
        return f"http://{USERNAME}:{token}@{self.url.removeprefix('http://')}{prefix}/simple/"

    @property
    def attempts(self) -> list[AuthAttempt]:
        with self._lock:
            return list(self._attempts)

    @property
    def uploads(self) -> list[Upload]:
        with self._lock:
            return list(self._uploads)

    def _check(self, path: str, header: str) -> bool:
        username = token = None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                username, _, token = decoded.partition(":")
        valid = username == USERNAME and token is not None and self.authority.is_valid_token(token)
        with self._lock:
            self._attempts.append(AuthAttempt(path, username, token, valid, time.monotonic()))
        return valid

    def _sha256(self, wheel: Path) -> str:
        """The wheel's digest, computed once per version of the file (some are 50 MB)."""
        st = wheel.stat()
        key = (wheel, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._digests.get(key)
        if known is None:
            with wheel.open("rb") as file:
                known = hashlib.file_digest(file, "sha256").hexdigest()
            with self._lock:
                self._digests[key] = known
        return known

    def _wheels(self) -> dict[str, list[Path]]:
        projects: dict[str, list[Path]] = {}
        for wheel in sorted(self.wheel_dir.glob("*.whl")):
            projects.setdefault(normalize(wheel.name.split("-")[0]), []).append(wheel)
        return projects


INDEX = web.AppKey("fake_pypi_index", FakePyPIIndex)


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[INDEX]._check(request.path, request.headers.get("Authorization", "")):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": REALM})
    return await handler(request)


def _page(links: str) -> web.Response:
    body = f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n"
    return web.Response(text=body, content_type="text/html")


async def _project_list(request: web.Request) -> web.Response:
    names = request.app[INDEX]._wheels()
    return _page("".join(f'<a href="{name}/">{name}</a>\n' for name in names))


async def _project_page(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    project = normalize(request.match_info["project"])
    wheels = index._wheels().get(project)
    if not wheels:
        raise web.HTTPNotFound()
    repository = request.match_info.get("repository")
    own = index.url_with_port if index.explicit_port else index.url
    base = f"{own}/pypi/{repository}" if repository else own
    links = []
    files = []
    for wheel in wheels:
        if index.blobs is not None:  # CodeArtifact: absolute, to its own host
            version = wheel.name.split("-")[1]
            href = f"{base}/simple/{project}/{version}/{wheel.name}"
        else:
            href = f"../../packages/{wheel.name}"
        links.append(
            f'<a href="{html.escape(href)}#sha256={index._sha256(wheel)}">'
            f"{html.escape(wheel.name)}</a>\n"
        )
        files.append(
            {"filename": wheel.name, "url": href, "hashes": {"sha256": index._sha256(wheel)}}
        )
    if index.blobs is None:
        return _page("".join(links))
    # The CodeArtifact shape also answers PEP 691 JSON to those who ask (pip and uv do),
    # gzipped to those who accept it: both must reach a proxy's rewriting.
    if JSON_PAGE in request.headers.get("Accept", ""):
        body = {"meta": {"api-version": "1.0"}, "name": project, "files": files}
        response = web.json_response(body, content_type=JSON_PAGE)
    else:
        response = _page("".join(links))
    response.enable_compression()
    return response


async def _download(request: web.Request) -> web.Response:
    """CodeArtifact's download: a redirect to the file's presigned URL on another host."""
    index = request.app[INDEX]
    filename = request.match_info["filename"]
    path = index.wheel_dir / filename
    if index.blobs is None or "/" in filename or not path.is_file():
        raise web.HTTPNotFound()
    raise web.HTTPFound(index.blobs.presign(filename, path))


async def _package(request: web.Request) -> web.FileResponse:
    filename = request.match_info["filename"]
    path = request.app[INDEX].wheel_dir / filename
    if "/" in filename or not filename.endswith(".whl") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


async def _upload(request: web.Request) -> web.Response:
    """The legacy upload API (``twine upload``): store one wheel, refuse what would clash."""
    index = request.app[INDEX]
    form = await request.post()
    if form.get(":action") != "file_upload":
        raise web.HTTPBadRequest(text="unsupported :action")
    content = form.get("content")
    if not isinstance(content, web.FileField):
        raise web.HTTPBadRequest(text="no content file")
    filename = content.filename
    if "/" in filename or "\\" in filename or not filename.endswith(".whl"):
        raise web.HTTPBadRequest(text=f"not a wheel file name: {filename!r}")
    data = content.file.read()
    digest = form.get("sha256_digest")
    if isinstance(digest, str) and digest != hashlib.sha256(data).hexdigest():
        raise web.HTTPBadRequest(text="sha256_digest does not match the content")
    name, version = form.get("name"), form.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise web.HTTPBadRequest(text="name and version are required")
    if normalize(filename.split("-")[0]) != normalize(name):
        raise web.HTTPBadRequest(text=f"{filename} is not a file of {name}")
    target = index.wheel_dir / filename
    if target.exists():
        raise web.HTTPConflict(text=f"{filename} exists already")
    target.write_bytes(data)
    with index._lock:
        index._uploads.append(Upload(filename, name, version))
    return web.Response(text="OK")
