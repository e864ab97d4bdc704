"""Repository URLs in pages, packuments and ``Location``, rewritten to the proxy's.

CodeArtifact writes its endpoint in more than one way: npm packuments name
tarballs with an explicit ``:443``, JSON may escape ``/`` as ``\\/``, a host
may come in another case, and a redirect may be relative. ``Spellings``
matches every one of them (scheme and host in any case, the scheme's port
written or not, ``/`` or ``\\/``), so that no URL leads a tool to the
repository itself, where it has no token.

``Rewriter`` takes a body as it arrives, inflates it with ``zlib`` step by
step and never past ``MAX_INFLATED`` (a bigger page fails as ``TooLarge``),
and keeps one copy: the rewritten page. Standard library and yarl only;
imported by ``wev_daemon.proxy.forward``.
"""

from __future__ import annotations

import re
import zlib
from urllib.parse import urlsplit

from yarl import URL

#: Largest page or packument rewritten, once inflated; bigger ones answer 502.
MAX_INFLATED = 128 * 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
SLASH = rb"(?:/|\\/)"


class BadPage(Exception):
    """A page that cannot be rewritten: its encoding is unknown or broken."""


class TooLarge(BadPage):
    """A page that inflates past the cap."""


class Spellings:
    """Every way a body or a ``Location`` may write ``endpoint``, and its local stand-in."""

    def __init__(self, endpoint: str, local: str) -> None:
        parts = urlsplit(endpoint)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        default = DEFAULT_PORTS.get(scheme)
        port = parts.port if parts.port is not None else default
        netloc = re.escape(f"[{host}]" if ":" in host else host).encode()
        port_text = str(port).encode()
        port_part = rb"(?::" + port_text + rb")" + (b"?" if port == default else b"")
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        path_part = SLASH.join(re.escape(piece).encode() for piece in path.split("/"))
        self.pattern = re.compile(
            rb"(?i:"
            + re.escape(scheme).encode()
            + rb"):"
            + SLASH
            + SLASH
            + rb"(?i:"
            + netloc
            + rb")"
            + port_part
            + path_part
        )
        #: The longest text a match can have: how much of a chunk's end waits for the next.
        self.longest = len(scheme) + 3 * 2 + len(netloc) + 1 + len(port_text) + 2 * len(path)
        self.local = local.encode()
        self.endpoint = endpoint

    def location(self, value: str, requested: URL) -> str:
        """A ``Location`` header: to the proxy when it leads into the repository.

        A relative one is made absolute against the upstream URL first: the
        tool would otherwise resolve it against the proxy's.
        """
        try:
            given = URL(value, encoded=True)  # as written: no %-escape escaped again
            absolute = value if given.absolute else str(requested.join(given))
        except ValueError:  # not a URL: passed on as it came
            return value
        raw = absolute.encode(errors="surrogateescape")
        match = self.pattern.match(raw)
        if match is None:
            return absolute
        return (self.local + raw[match.end() :]).decode(errors="surrogateescape")


class Rewriter:
    """One body through the inflater and the spellings, into one rewritten copy."""

    def __init__(self, spellings: Spellings, coding: str, cap: int = MAX_INFLATED) -> None:
        self._spellings = spellings
        self._cap = cap
        self._coding = coding.strip().lower()
        if self._coding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise BadPage(f"a page in an unknown Content-Encoding {coding!r}")
        self._inflater: zlib._Decompress | None = None
        self._inflated = 0
        self._carry = b""
        self.output = bytearray()

    def feed(self, data: bytes) -> None:
        """Take the next chunk as it came from upstream."""
        if self._coding in ("", "identity"):
            self._count(len(data))
            self._scan(data, final=False)
            return
        if self._inflater is None:
            self._inflater = zlib.decompressobj(self._wbits(data))
        pending = data
        try:
            while pending and not self._inflater.eof:
                room = self._cap - self._inflated + 1
                piece = self._inflater.decompress(pending, room)
                pending = self._inflater.unconsumed_tail
                self._count(len(piece))
                self._scan(piece, final=False)
        except zlib.error as error:
            raise BadPage(f"a page that cannot be inflated: {error}") from None

    def finish(self) -> bytearray:
        """The whole rewritten page, once upstream has sent all of it."""
        if self._inflater is not None:
            try:
                rest = self._inflater.flush()
            except zlib.error as error:
                raise BadPage(f"a page that cannot be inflated: {error}") from None
            self._count(len(rest))
            self._scan(rest, final=False)
        self._scan(b"", final=True)
        return self.output

    def _wbits(self, first: bytes) -> int:
        if self._coding in ("gzip", "x-gzip"):
            return 16 + zlib.MAX_WBITS
        # "deflate" is meant to be zlib-wrapped, but some servers send it raw.
        return zlib.MAX_WBITS if first[:1] and first[0] & 0x0F == 8 else -zlib.MAX_WBITS

    def _count(self, size: int) -> None:
        self._inflated += size
        if self._inflated > self._cap:
            raise TooLarge(f"a page larger than {self._cap // (1024 * 1024)} MiB once inflated")

    def _scan(self, data: bytes, *, final: bool) -> None:
        """Rewrite what can no longer be the start of a match cut by the chunk's end."""
        text = self._carry + data if self._carry else data
        limit = len(text) if final else max(0, len(text) - self._spellings.longest + 1)
        position = 0
        local, output = self._spellings.local, self.output
        for match in self._spellings.pattern.finditer(text):
            if match.start() >= limit:
                break
            output += text[position : match.start()]
            output += local
            position = match.end()
        cut = max(position, limit)
        output += text[position:cut]
        self._carry = text[cut:]
