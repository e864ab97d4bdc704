"""Private PEP 503 "simple" index on 127.0.0.1 guarded like CodeArtifact's: HTTP Basic auth
``aws:<token>`` where the token must be currently valid for a given token authority (normally a
``FakeCodeArtifact``). Serves the wheels found in a folder and records every auth attempt.

Routes exist both at the root (``/simple/``) and under ``/pypi/<repository>/``, the path shape of
CodeArtifact repository endpoints; links are relative so they work under either prefix. A ``POST``
to the root or to ``/pypi/<repository>/`` is the legacy upload API that twine speaks (multipart
form, ``:action=file_upload``); an uploaded wheel is stored in the folder and served from then on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from .server import ServedFake, ThreadedAppServer

USERNAME = "aws"
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


class FakePyPIIndex(ServedFake):
    """``with FakePyPIIndex(wheel_dir, fake_codeartifact) as index: index.index_url(token)``.

    The folder is read on every request, so wheels may be added while the index runs.
    """

    def __init__(self, wheel_dir: Path, authority: TokenAuthority) -> None:
        self.wheel_dir = wheel_dir
        self.authority = authority
        self._lock = threading.Lock()
        self._attempts: list[AuthAttempt] = []
        self._uploads: list[Upload] = []
        app = web.Application(middlewares=[_require_token])
        app[INDEX] = self
        for prefix in ("", "/pypi/{repository}"):
            app.router.add_post(prefix + "/", _upload)
            app.router.add_get(prefix + "/simple/", _project_list)
            app.router.add_get(prefix + "/simple/{project}/", _project_page)
            app.router.add_get(prefix + "/packages/{filename}", _package)
        self._server = ThreadedAppServer(app)

    def index_url(self, token: str, repository: str | None = None) -> str:
        """The ``--index-url`` for pip, credentials included."""
        prefix = f"/pypi/{repository}" if repository else ""
        return f"http://{USERNAME}:{token}@127.0.0.1:{self._server.port}{prefix}/simple/"

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
    wheels = request.app[INDEX]._wheels().get(normalize(request.match_info["project"]))
    if not wheels:
        raise web.HTTPNotFound()
    links = "".join(
        f'<a href="../../packages/{html.escape(wheel.name)}'
        f'#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}">{html.escape(wheel.name)}</a>\n'
        for wheel in wheels
    )
    return _page(links)


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
