"""The daemon's HTTP handlers, through ``make_app`` and aiohttp's test client.

Real resolver and cache, the real echo plugin, and small plugins defined here
for expiring values, list keys and failures. The Unix socket itself is tested
in ``test_daemon_socket.py``.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from wev_client import __version__, protocol
from wev_client.protocol import codec
from wev_daemon import app as app_module
from wev_daemon.app import make_app
from wev_daemon.aws import FetchError
from wev_daemon.cache import TokenCache
from wev_daemon.plugins import (
    Context,
    Plugin,
    PropertyError,
    Resolution,
    optional_int,
    optional_str,
    required_str,
)
from wev_daemon.plugins.echo import EchoPlugin
from wev_daemon.resolver import Resolver

Client = TestClient[web.Request, web.Application]

SOURCE = "/home/someone/project/wev.yml"
SOCKET = "/run/user/1000/wev/daemon.sock"


@dataclass(frozen=True)
class TokenSettings:
    value: str
    lifetime: int
    mode: str


class TokenPlugin(Plugin[TokenSettings]):
    """An expiring token ``<value>-<call number>``; ``mode`` makes it fail or crash."""

    id = "test-token"
    properties = frozenset({"value", "lifetime", "mode"})

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fetched = asyncio.Event()  # set by every call

    def parse(self, properties: Mapping[str, object]) -> TokenSettings:
        mode = optional_str(properties, "mode") or "ok"
        if mode == "parse-crash":
            raise TypeError("a bug in parse")
        lifetime = optional_int(properties, "lifetime")
        return TokenSettings(required_str(properties, "value"), lifetime or 3600, mode)

    def describe(self, settings: TokenSettings, context: Context) -> str:
        return f"a test token living {settings.lifetime} s"

    async def resolve(self, settings: TokenSettings, context: Context) -> Resolution:
        self.calls += 1
        context.reached_upstream()  # as a plugin reports each request its upstream answered
        self.fetched.set()
        if self.gate is not None:
            await self.gate.wait()
        if settings.mode == "crash":
            raise RuntimeError("a bug in resolve")
        if settings.mode == "fail":
            raise FetchError("upstream is down", transient=True)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=settings.lifetime
        )
        return Resolution((f"{settings.value}-{self.calls}",), expires)


class PairPlugin(Plugin[tuple[str, str]]):
    """Two values, for a list key ``[A, B]``."""

    id = "test-pair"
    properties = frozenset({"left", "right"})

    def parse(self, properties: Mapping[str, object]) -> tuple[str, str]:
        left, right = optional_str(properties, "left"), optional_str(properties, "right")
        if left is None or right is None:
            raise PropertyError("'left' and 'right' are required")
        return left, right

    def value_count(self, settings: tuple[str, str]) -> int:
        return 2

    async def resolve(self, settings: tuple[str, str], context: Context) -> Resolution:
        return Resolution(settings)


@pytest.fixture
def tokens() -> TokenPlugin:
    return TokenPlugin()


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tokens: TokenPlugin) -> Client:
    plugins: dict[str, Plugin[Any]] = {
        EchoPlugin.id: EchoPlugin(),
        TokenPlugin.id: tokens,
        PairPlugin.id: PairPlugin(),
    }
    resolver = Resolver(cache=TokenCache(), plugins=plugins)
    return await aiohttp_client(make_app(resolver=resolver, socket_path=SOCKET))


def variable(names: str | list[str], **plugin: object) -> dict[str, object]:
    return {
        "names": [names] if isinstance(names, str) else names,
        "plugin": plugin,
        "sources": [SOURCE],
    }


def echo(name: str, value: object) -> dict[str, object]:
    return variable(name, id="wev-echo", value=value)


def token(name: str, value: str, **more: object) -> dict[str, object]:
    return variable(name, id="test-token", value=value, **more)


def body(*variables: dict[str, object], env: dict[str, str] | None = None) -> dict[str, object]:
    return {"variables": list(variables), "env": env or {}}


async def decoded(response: ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/json"
    answer = codec.loads(await response.read())
    assert isinstance(answer, dict)
    return answer


async def post(client: Client, route: str, payload: object, *, status: int = 200) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else codec.dumps(payload).encode()
    response = await client.post(route, data=data)
    answer = await decoded(response)
    assert response.status == status, answer
    return answer


async def resolve(client: Client, *variables: dict[str, object]) -> dict[str, Any]:
    return await post(client, protocol.RESOLVE_ROUTE, body(*variables))


async def error(
    client: Client, payload: object, status: int, route: str = protocol.RESOLVE_ROUTE
) -> dict[str, Any]:
    """The error detail of a refused request, after checking its shape."""
    answer = await post(client, route, payload, status=status)
    assert set(answer) == {"error"}
    detail = answer["error"]
    assert isinstance(detail["code"], str) and isinstance(detail["message"], str)
    return dict(detail)


async def status(client: Client) -> dict[str, Any]:
    response = await client.get(protocol.STATUS_ROUTE)
    assert response.status == 200
    return await decoded(response)


# -- resolve, explain, status --------------------------------------------------------


async def test_resolve_returns_the_values(client: Client) -> None:
    answer = await resolve(
        client,
        echo("PROFILE", "work"),
        echo("FLAGS", ["-v", "--color"]),
        variable(["LEFT", "RIGHT"], id="test-pair", left="l", right="r"),
    )
    assert answer["values"] == {
        "PROFILE": "work",
        "FLAGS": "-v --color",
        "LEFT": "l",
        "RIGHT": "r",
    }
    assert [entry["names"] for entry in answer["entries"]] == [
        ["PROFILE"],
        ["FLAGS"],
        ["LEFT", "RIGHT"],
    ]
    assert answer["warnings"] == []


async def test_an_expiring_value_is_fetched_once_and_served_from_the_cache(
    client: Client, tokens: TokenPlugin
) -> None:
    first = await resolve(client, token("TOKEN", "t"))
    second = await resolve(client, token("TOKEN", "t"))
    assert first["values"] == second["values"] == {"TOKEN": "t-1"}
    assert tokens.calls == 1
    (entry,) = second["entries"]
    assert entry["cached"] is True
    assert entry["expires_at"] is not None and entry["refresh_at"] is not None


async def test_concurrent_requests_share_one_fetch(client: Client, tokens: TokenPlugin) -> None:
    tokens.gate = asyncio.Event()
    requests = [asyncio.create_task(resolve(client, token("TOKEN", "t"))) for _ in range(20)]
    await asyncio.sleep(0.05)
    tokens.gate.set()
    answers = await asyncio.gather(*requests)
    assert tokens.calls == 1
    assert {answer["values"]["TOKEN"] for answer in answers} == {"t-1"}


async def test_the_cache_key_includes_the_client_context(
    client: Client, tokens: TokenPlugin
) -> None:
    # The token plugin declares no context variables: the env does not split it...
    await post(client, protocol.RESOLVE_ROUTE, body(token("T", "t"), env={"AWS_PROFILE": "a"}))
    await post(client, protocol.RESOLVE_ROUTE, body(token("T", "t"), env={"AWS_PROFILE": "b"}))
    assert tokens.calls == 1
    # ...but other settings do.
    await resolve(client, token("T", "t", lifetime=60))
    assert tokens.calls == 2


async def test_explain_never_returns_values(client: Client, tokens: TokenPlugin) -> None:
    before = await post(client, protocol.EXPLAIN_ROUTE, body(token("TOKEN", "marker-x1")))
    assert before["values"] == {}
    assert before["entries"][0]["cached"] is False
    assert tokens.calls == 0  # explain never fetches

    await resolve(client, token("TOKEN", "marker-x1"), echo("PLAIN", "marker-x2"))
    response = await client.post(
        protocol.EXPLAIN_ROUTE,
        data=codec.dumps(body(token("TOKEN", "marker-x1"), echo("PLAIN", "marker-x2"))),
    )
    assert response.status == 200
    text = await response.text()
    assert "marker-x1-1" not in text
    answer = codec.loads(text)
    assert isinstance(answer, dict)
    assert answer["values"] == {}
    entries = answer["entries"]
    assert [entry["names"] for entry in entries] == [["TOKEN"], ["PLAIN"]]
    assert entries[0]["cached"] is True
    assert entries[0]["description"] == "a test token living 3600 s"
    assert tokens.calls == 1


async def test_status_describes_the_daemon_without_values(client: Client) -> None:
    await resolve(client, token("TOKEN", "marker-s1"))
    response = await client.get(protocol.STATUS_ROUTE)
    assert response.status == 200
    text = await response.text()
    assert "marker-s1" not in text
    answer = codec.loads(text)
    assert isinstance(answer, dict)
    assert answer["pid"] == os.getpid()
    assert answer["version"] == __version__
    assert answer["api_version"] == protocol.API_VERSION
    assert answer["socket"] == SOCKET
    assert isinstance(answer["uptime_seconds"], int | float) and answer["uptime_seconds"] >= 0
    assert answer["upstream_calls"] == 1
    assert answer["last_upstream_error"] is None
    (entry,) = answer["entries"]
    assert entry["names"] == ["TOKEN"]
    assert entry["plugin"] == "test-token"
    assert entry["cached"] is True


async def test_status_reports_the_last_upstream_error(client: Client) -> None:
    await error(client, body(token("TOKEN", "t", mode="fail")), 502)
    answer = await status(client)
    assert "upstream is down" in answer["last_upstream_error"]
    assert answer["entries"][0]["failures"] == 1


async def test_the_background_refresh_runs_while_the_app_is_up(
    client: Client, tokens: TokenPlugin
) -> None:
    await resolve(client, token("TOKEN", "t", lifetime=1))
    tokens.fetched.clear()
    await asyncio.wait_for(tokens.fetched.wait(), 5)  # nobody asked: the refresher did
    await asyncio.sleep(0.01)  # let the fetch be recorded
    assert tokens.calls == 2
    assert (await resolve(client, token("TOKEN", "t", lifetime=1)))["values"]["TOKEN"] != "t-1"


# -- bad requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"",
        b'{"variables": []} trailing',
        b"\xff\xfe\x00",
        b'{"variables": [], "x": NaN}',
    ],
    ids=["broken", "empty", "trailing", "not-utf8", "nan"],
)
async def test_invalid_json_is_a_protocol_error(client: Client, payload: bytes) -> None:
    detail = await error(client, payload, 400)
    assert detail["code"] == "protocol"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"variables": 3},
        {"variables": [{"names": "A", "plugin": {"id": "wev-echo"}}]},
        {"variables": [{"names": [], "plugin": {"id": "wev-echo"}}]},
        {"variables": [{"names": ["A"], "plugin": "wev-echo"}]},
        {"variables": [], "env": {"AWS_PROFILE": 1}},
    ],
    ids=["list", "variables", "names-str", "names-empty", "plugin-str", "env"],
)
async def test_a_request_of_the_wrong_shape_is_a_protocol_error(
    client: Client, payload: object
) -> None:
    detail = await error(client, payload, 400)
    assert detail["code"] == "protocol"


async def test_a_request_over_the_size_limit_is_refused_with_413(client: Client) -> None:
    filler = "x" * protocol.MAX_REQUEST_BYTES
    detail = await error(client, body(echo("BIG", filler)), 413)
    assert detail["code"] == "protocol"
    assert "large" in detail["message"]
    # The daemon is fine afterwards.
    assert (await resolve(client, echo("A", "a")))["values"] == {"A": "a"}


@pytest.mark.parametrize("depth", [65, 500, 5000, 100_000])
async def test_deeply_nested_json_is_a_protocol_error(client: Client, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    payload = (
        '{"variables": [{"names": ["A"], "plugin": {"id": "wev-echo", "value": "x", '
        f'"deep": {nested}}}}}]}}'
    ).encode()
    detail = await error(client, payload, 400)
    assert detail["code"] == "protocol"


async def test_no_nesting_depth_makes_an_internal_error(client: Client) -> None:
    # Around the interpreter's recursion limit, parsing may succeed and a later
    # step (hashing the settings, encoding the answer) fail: never a 500.
    for depth in range(900, 1010, 3):
        nested = '{"a":' * depth + "1" + "}" * depth
        payload = (
            '{"variables": [{"names": ["A"], "plugin": {"id": "wev-echo", "value": "x", '
            f'"deep": {nested}}}}}]}}'
        ).encode()
        response = await client.post(protocol.RESOLVE_ROUTE, data=payload)
        assert response.status == 400, depth


async def test_unknown_fields_are_ignored(client: Client) -> None:
    payload = {
        "variables": [
            {
                "names": ["A"],
                "plugin": {"id": "wev-echo", "value": "a"},
                "sources": [SOURCE],
                "comment": "from a newer client",
            }
        ],
        "env": {},
        "options": {"something": "new"},
        "protocol_extension": [1, 2, 3],
    }
    answer = await post(client, protocol.RESOLVE_ROUTE, payload)
    assert answer["values"] == {"A": "a"}


async def test_an_unknown_plugin_property_is_a_warning(client: Client) -> None:
    answer = await resolve(client, variable("A", id="wev-echo", value="a", valeu="typo"))
    assert answer["values"] == {"A": "a"}
    (warning,) = answer["warnings"]
    assert "valeu" in warning and SOURCE in warning


async def test_another_api_version_gets_its_own_status(client: Client) -> None:
    for method, route in [("POST", "/v2/resolve"), ("GET", "/v2/status"), ("GET", "/v0/x")]:
        response = await client.request(method, route, data=b"{}")
        answer = await decoded(response)
        assert response.status == 501, route
        message = answer["error"]["message"]
        assert f"v{protocol.API_VERSION}" in message and route in message
        assert "restart" in answer["error"]["hint"]


async def test_unknown_routes_and_methods_get_json_errors(client: Client) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await decoded(response))["error"]["code"] == "protocol"

    response = await client.get("/v1/nowhere")
    assert response.status == 404

    response = await client.get(protocol.RESOLVE_ROUTE)
    assert response.status == 405
    assert "GET" in (await decoded(response))["error"]["message"]


async def test_another_client_version_is_still_served(client: Client) -> None:
    response = await client.post(
        protocol.RESOLVE_ROUTE,
        data=codec.dumps(body(echo("A", "a"))),
        headers={protocol.CLIENT_VERSION_HEADER: "0.0.1"},
    )
    assert response.status == 200


# -- configuration errors ----------------------------------------------------------------


async def test_an_unknown_plugin_is_a_config_error_naming_the_file_and_known_plugins(
    client: Client,
) -> None:
    detail = await error(client, body(variable("A", id="wev-nope", value="a")), 422)
    assert detail["code"] == "config"
    message = detail["message"]
    assert SOURCE in message and "wev-nope" in message
    for known in ("wev-echo", "test-token", "test-pair"):
        assert known in message


async def test_a_missing_required_property_is_a_config_error(client: Client) -> None:
    detail = await error(client, body(variable("A", id="wev-echo")), 422)
    assert detail["code"] == "config"
    assert SOURCE in detail["message"] and "'value'" in detail["message"]

    detail = await error(client, body(variable("T", id="test-token")), 422)
    assert "'value'" in detail["message"]


async def test_a_missing_plugin_id_is_a_config_error(client: Client) -> None:
    detail = await error(client, body(variable("A", value="a")), 422)
    assert detail["code"] == "config"


@pytest.mark.parametrize(
    "entry",
    [
        variable(["A", "B"], id="wev-echo", value="a"),
        variable("A", id="test-pair", left="l", right="r"),
        variable(["A", "B", "C"], id="test-pair", left="l", right="r"),
    ],
    ids=["two-names-one-value", "one-name-two-values", "three-names-two-values"],
)
async def test_a_list_key_with_the_wrong_number_of_names_is_a_config_error(
    client: Client, entry: dict[str, object]
) -> None:
    detail = await error(client, body(echo("OK", "fine"), entry), 422)
    assert detail["code"] == "config"
    assert SOURCE in detail["message"]


# -- failures inside the daemon -----------------------------------------------------


async def test_an_upstream_failure_is_an_upstream_error(client: Client) -> None:
    detail = await error(client, body(token("TOKEN", "t", mode="fail")), 502)
    assert detail["code"] == "upstream"
    assert "upstream is down" in detail["message"]
    assert "TOKEN" in detail["message"]


async def test_a_plugin_crash_is_an_error_response_and_the_daemon_keeps_serving(
    client: Client,
) -> None:
    detail = await error(client, body(token("TOKEN", "t", mode="crash")), 502)
    assert detail["code"] == "upstream"
    assert "test-token" in detail["message"]

    detail = await error(client, body(token("TOKEN", "t", mode="parse-crash")), 500)
    assert detail["code"] == "error"
    assert "a bug in parse" not in detail["message"]  # details go to the log only

    assert (await resolve(client, echo("A", "a")))["values"] == {"A": "a"}
    assert (await status(client))["running"] is True


async def test_a_peer_of_another_user_is_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real SO_PEERCRED path is tested through the socket in test_daemon_socket.
    monkeypatch.setattr(app_module, "peer_uid", lambda request: os.getuid() + 1)
    for method, route in [("GET", protocol.STATUS_ROUTE), ("POST", protocol.RESOLVE_ROUTE)]:
        response = await client.request(method, route, data=codec.dumps(body(echo("A", "a"))))
        assert response.status == 403
        assert (await decoded(response))["error"]["code"] == "forbidden"

    monkeypatch.setattr(app_module, "peer_uid", lambda request: os.getuid())
    assert (await resolve(client, echo("A", "a")))["values"] == {"A": "a"}
