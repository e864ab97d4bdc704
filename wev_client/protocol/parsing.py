"""The messages of parsing an edited configuration: its files' text, and what it makes.

``ParseRequest`` is the body of the parse route, and rides on a resolve
request right after an edit (its ``files``); ``ParseResponse`` answers the
one and is the resolve response's ``parsed``. Apart from ``messages`` so that
a call whose configuration did not change never loads them; the same rules
hold: ``from_json`` validates and raises ProtocolError, unknown fields are
ignored, a repr names the files, never their text.
"""

from __future__ import annotations

from wev_client.protocol import MAX_FILES
from wev_client.protocol.errors import ProtocolError
from wev_client.protocol.messages import VariableSpec, expect, optional


class ParseRequest:
    """Configuration files to parse and merge: ``(absolute path, text)``, lowest precedence
    first. The client has read them (and judged who may have written them); the
    daemon only parses the text it is sent and never opens the files itself."""

    __slots__ = ("files",)

    def __init__(self, files: tuple[tuple[str, str], ...]) -> None:
        self.files = files

    def __repr__(self) -> str:
        return f"ParseRequest(paths={[path for path, _ in self.files]!r})"

    def to_json(self) -> dict[str, object]:
        return {"files": [{"path": path, "text": text} for path, text in self.files]}

    @classmethod
    def from_json(cls, data: object) -> ParseRequest:
        body = expect(data, dict, "the request")
        assert isinstance(body, dict)
        items = expect(body.get("files"), list, "files")
        assert isinstance(items, list)
        if len(items) > MAX_FILES:
            raise ProtocolError(f"a request may hold at most {MAX_FILES} files")
        files = []
        for data_item in items:
            item = expect(data_item, dict, "a file")
            assert isinstance(item, dict)
            path = expect(item.get("path"), str, "a file's path")
            text = expect(item.get("text"), str, "a file's text")
            assert isinstance(path, str) and isinstance(text, str)
            if not path.startswith("/") or "\0" in path:
                raise ProtocolError("a file's path must be absolute")
            files.append((path, text))
        return cls(tuple(files))


class ParseResponse:
    """The merged configuration, and the version of wev that parsed it: a client
    keeps only what its own version's loader would have made."""

    __slots__ = ("variables", "version")

    def __init__(self, variables: tuple[VariableSpec, ...], version: str) -> None:
        self.variables = variables
        self.version = version

    def __repr__(self) -> str:
        return f"ParseResponse(variables={self.variables!r}, version={self.version!r})"

    def to_json(self) -> dict[str, object]:
        return {"variables": [v.to_json() for v in self.variables], "version": self.version}

    @classmethod
    def from_json(cls, data: object) -> ParseResponse:
        body = expect(data, dict, "the response")
        assert isinstance(body, dict)
        variables = expect(body.get("variables"), list, "variables")
        version = optional(body, "version", str, "")
        assert isinstance(variables, list) and isinstance(version, str)
        return cls(tuple(VariableSpec.from_json(v) for v in variables), version)
