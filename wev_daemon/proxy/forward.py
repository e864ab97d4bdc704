"""Forwarding one request to the repository, with the token, and its answer back.

The request goes to the route's endpoint with the token in place of whatever
credentials the tool sent, through the caller's proxy and trusting the
caller's CA bundle (``wev_daemon.network``, the one rule for both), on one
pooled upstream session for the daemon's life.

The answer comes back as it arrives, except pages and packuments, which are
rewritten (``rewrite``) and then sent whole: at most ``MAX_REWRITES`` at a
time, so that memory stays bounded whatever a tool asks for at once; and
answers of a known length up to ``CHUNK`` (a redirect, a small file), read
whole and sent in one write as a small page is. A
failure before the answer has started is a 502 with one line
(``GatewayError``); once it has started, the client's connection is aborted
(``StreamBroken``), so that a tool sees a broken download, never a second
response in the body of the first. The daemon's idle time bounds both ways:
an upload that stops arriving is cut off with a 408 (``UploadStalled``), and
a tool that stops reading its answer has its connection aborted, as a
request that never completes is on the daemon's socket.

Imported by ``wev_daemon.proxy.endpoint``.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from yarl import URL

from wev_daemon import network
from wev_daemon.proxy.rewrite import BadPage, Rewriter, Spellings

CHUNK = 256 * 1024
#: Pages and packuments rewritten at once; each holds its rewritten copy until sent.
MAX_REWRITES = 2
#: Content types whose bodies carry URLs to the endpoint.
REWRITTEN_TYPES = frozenset(
    {
        "text/html",
        "application/vnd.pypi.simple.v1+html",
        "application/vnd.pypi.simple.v1+json",
        "application/json",
        "application/vnd.npm.install-v1+json",
    }
)
#: Headers of one connection, not of the message (RFC 9110 7.6.1), and ours to set.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
REQUEST_DROPPED = HOP_BY_HOP | {"host", "authorization", "cookie", "accept-encoding"}
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length", "set-cookie", "www-authenticate"}
#: Answers without a body, whose Content-Length (if any) is not their own.
NO_BODY = frozenset({204, 304})
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)


class GatewayError(Exception):
    """The repository could not be asked or its answer not passed on; nothing sent yet."""

    status = 502


class UploadStalled(GatewayError):
    """The tool stopped sending its upload; its connection is closed after the answer."""

    status = 408


class StreamBroken(Exception):
    """The repository failed after the answer had started: the client's connection is aborted."""

    def __init__(self, message: str, response: web.StreamResponse) -> None:
        super().__init__(message)
        self.response = response


class Forwarder:
    """The upstream session, the TLS settings of each CA bundle, and the rewrite limit."""

    def __init__(self, idle: float) -> None:
        #: How long a tool may send nothing of its upload, or read nothing of its answer.
        self.idle = idle
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[tuple[str, float], ssl.SSLContext] = {}
        self._rewrites = asyncio.Semaphore(MAX_REWRITES)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        request: web.BaseRequest,
        *,
        url: str,
        authorization: str,
        spellings: Spellings,
        env: Mapping[str, str],
        profile_ca_bundle: str | None = None,
    ) -> web.StreamResponse:
        """Send ``request`` to ``url`` (the endpoint and the rest of its path), with the
        token's ``authorization`` in place of the tool's, and answer it, through the
        caller's network: ``env``'s proxies and CA bundle, or the profile's bundle."""
        target = URL(url, encoded=True)
        dropped = REQUEST_DROPPED | _listed_in_connection(request.headers)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        headers["Authorization"] = authorization
        accepted = request.headers.get("Accept-Encoding", "").lower()
        codings = [c for c in ("gzip", "deflate") if c in accepted]
        headers["Accept-Encoding"] = ", ".join(codings) or "identity"
        upload = _Upload(request.content, self.idle) if request.body_exists else None
        try:
            upstream = await self._upstream().request(
                request.method,
                target,
                headers=headers,
                data=upload.chunks() if upload is not None else None,
                allow_redirects=False,
                proxy=network.proxy_for(url, env),
                ssl=self._tls(env, profile_ca_bundle),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            if upload is not None and upload.stalled:
                raise UploadStalled(
                    f"the upload sent nothing for {self.idle:.0f} s: cut off"
                ) from None
            raise GatewayError(f"{target.host}: {_reason(error)}") from None
        try:
            dropped = RESPONSE_DROPPED | _listed_in_connection(upstream.headers)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
            if "Location" in upstream.headers:
                out["Location"] = spellings.location(upstream.headers["Location"], target)
            kind = upstream.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if request.method != "HEAD":
                if kind in REWRITTEN_TYPES:
                    return await self._rewritten(request, upstream, out, spellings)
                length = upstream.content_length
                if length is not None and length <= CHUNK and upstream.status not in NO_BODY:
                    return await self._whole(upstream, out)
            return await self._streamed(request, upstream, out)
        finally:
            upstream.release()

    async def _rewritten(
        self,
        request: web.BaseRequest,
        upstream: aiohttp.ClientResponse,
        headers: dict[str, str],
        spellings: Spellings,
    ) -> web.StreamResponse:
        async with self._rewrites:
            try:
                rewriter = Rewriter(spellings, upstream.headers.get("Content-Encoding", ""))
                while chunk := await self._page_read(upstream):
                    rewriter.feed(chunk)
                page = rewriter.finish()
            except (aiohttp.ClientError, TimeoutError, BadPage) as error:
                raise GatewayError(f"{upstream.url.host}: {_reason(error)}") from None
            headers.pop("Content-Encoding", None)
            if len(page) <= CHUNK:  # most pages: headers and body in one write
                return web.Response(status=upstream.status, headers=headers, body=page)
            response = web.StreamResponse(status=upstream.status, headers=headers)
            response.content_length = len(page)
            await response.prepare(request)
            with memoryview(page) as view:
                for start in range(0, len(page), CHUNK):
                    await self._send(request, response, view[start : start + CHUNK])
            await response.write_eof()
            return response

    async def _page_read(self, upstream: aiohttp.ClientResponse) -> bytes:
        """The next part of a page to rewrite; a page that stalls for the idle time is cut
        off (TimeoutError): it holds one of the few rewrites every other page waits for."""
        try:
            async with asyncio.timeout(self.idle):
                return await upstream.content.read(CHUNK)
        except TimeoutError:
            raise TimeoutError(f"the page stalled for {self.idle:.0f} s") from None

    async def _whole(
        self, upstream: aiohttp.ClientResponse, headers: dict[str, str]
    ) -> web.StreamResponse:
        """A small answer read whole and sent in one write: no stream to prepare nor a
        bound to arm for a write, and a failure is still a 502."""
        try:
            body = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise GatewayError(f"{upstream.url.host}: {_reason(error)}") from None
        return web.Response(status=upstream.status, headers=headers, body=body)

    async def _streamed(
        self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=headers)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        while True:
            try:
                chunk = await upstream.content.read(CHUNK)
            except (aiohttp.ClientError, TimeoutError) as error:
                if request.transport is not None:
                    request.transport.abort()
                message = f"{upstream.url.host}: {_reason(error)}"
                raise StreamBroken(message, response) from None
            if not chunk:
                break
            await self._send(request, response, chunk)
        await response.write_eof()
        return response

    async def _send(
        self, request: web.BaseRequest, response: web.StreamResponse, chunk: bytes | memoryview
    ) -> None:
        """Write to the tool; StreamBroken when it reads nothing for the idle time."""
        try:
            async with asyncio.timeout(self.idle):
                await response.write(chunk)  # a client gone: ConnectionError, for aiohttp
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()
            message = f"the tool read nothing for {self.idle:.0f} s"
            raise StreamBroken(message, response) from None

    def _upstream(self) -> aiohttp.ClientSession:
        """One session for the daemon's life: its pool keeps upstream connections open."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=32, ttl_dns_cache=300),
                timeout=UPSTREAM_TIMEOUT,
                auto_decompress=False,  # bodies pass through as they came
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookie of one tool goes to another
            )
        return self._session

    def _tls(self, env: Mapping[str, str], configured: str | None) -> ssl.SSLContext | bool:
        """The caller's CA bundle as a TLS context (one per file version); True: the default."""
        bundle = network.ca_bundle(env, configured)
        if bundle is None:
            return True
        try:
            key = (bundle, os.stat(bundle).st_mtime)
            context = self._contexts.get(key)
            if context is None:
                context = ssl.create_default_context(cafile=bundle)
                if len(self._contexts) >= 16:
                    self._contexts.clear()
                self._contexts[key] = context
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise GatewayError(f"the CA bundle {bundle} cannot be read: {reason}") from None
        return context


class _Upload:
    """A request's body as the tool sends it; ``stalled`` once it stopped for ``idle`` s."""

    def __init__(self, content: aiohttp.StreamReader, idle: float) -> None:
        self._content = content
        self._idle = idle
        self.stalled = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self._idle):
                    chunk = await self._content.readany()
            except TimeoutError:
                self.stalled = True
                raise
            if not chunk:
                return
            yield chunk


def _listed_in_connection(headers: Mapping[str, str]) -> frozenset[str]:
    """The headers a ``Connection`` header names: hop-by-hop too (RFC 9110, 7.6.1)."""
    getall = getattr(headers, "getall", None)
    values = getall("Connection", []) if getall is not None else [headers.get("Connection", "")]
    return frozenset(name.strip().lower() for value in values for name in value.split(","))


#: A URL's user information (``user:password@``), which no message shows.
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def _reason(error: BaseException) -> str:
    """The error in one line, without the password of a URL it quotes (a proxy's)."""
    return _USERINFO.sub("***@", " ".join(str(error).split())) or type(error).__name__
