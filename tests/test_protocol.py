"""The wire format shared by client and daemon (``wev_client.protocol``).

The JSON codec drives ``_json`` directly to stay off ``import json``; these
tests hold it to the standard library's behaviour for plain data, and check
that anything else is a ProtocolError, never another exception.
"""

from __future__ import annotations

import contextlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wev_client.protocol import codec, context, errors
from wev_client.protocol.errors import (
    ConfigError,
    DaemonUnavailable,
    ProtocolError,
    UpstreamError,
    UsageError,
    VersionMismatch,
    WevError,
)
from wev_client.protocol.messages import EntryInfo, ResolveRequest, ResolveResponse, VariableSpec

EXAMPLES = settings(max_examples=150, deadline=None)

# Every code point but surrogates (which UTF-8 cannot carry): non-ASCII, control
# characters, quotes and backslashes included.
text = st.text(st.characters(codec="utf-8"), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=25,
)


# -- the codec against the json module ---------------------------------------------


@EXAMPLES
@given(json_values)
def test_json_reads_what_dumps_writes(value: object) -> None:
    assert json.loads(codec.dumps(value)) == value


@EXAMPLES
@given(json_values)
def test_loads_reads_what_json_writes(value: object) -> None:
    assert codec.loads(json.dumps(value)) == value
    assert codec.loads(json.dumps(value, ensure_ascii=False)) == value
    assert codec.loads(json.dumps(value, indent=2).encode()) == value


@EXAMPLES
@given(json_values)
def test_dumps_writes_ascii_as_json_does(value: object) -> None:
    encoded = codec.dumps(value)

    assert encoded.isascii()
    assert encoded == json.dumps(value, separators=(",", ":"))


@EXAMPLES
@given(st.text(max_size=50))
def test_loads_agrees_with_json_on_any_text(data: str) -> None:
    try:
        expected = json.loads(data, parse_constant=_refuse)
    except (ValueError, RecursionError):
        with pytest.raises(ProtocolError):
            codec.loads(data)
    else:
        assert codec.loads(data) == expected


def _refuse(name: str) -> object:
    raise ValueError(name)


@EXAMPLES
@given(st.binary(max_size=50))
def test_garbage_bytes_are_a_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        codec.loads(data)


@EXAMPLES
@given(st.text(st.sampled_from('[]{}",:0123456789.eE+-tfnaulrsTFN \\u\t\n'), max_size=30))
def test_json_like_garbage_is_a_value_or_a_protocol_error(data: str) -> None:
    try:
        value = codec.loads(data)
    except ProtocolError:
        return
    assert value == json.loads(data)


@pytest.mark.parametrize(
    "data",
    [
        "",
        " \n\t",
        "{",
        "[1,]",
        "{'a': 1}",
        '{"a" 1}',
        "01",
        "1.",
        ".5",
        "+1",
        "tru",
        "None",
        '"\\x41"',
        '"unterminated',
        '"raw\ncontrol"',
        "\ufeff[]",
        "[] x",
        "{} {}",
        "1 2",
        "[]]",
        '"a"b',
        "\x00",
        "1" * 5000,  # more digits than int() converts
        b"\xff\xfe[]",
        b'"\xc3\x28"',
        b"[\xed\xa0\x80]",
    ],
)
def test_invalid_documents_are_a_protocol_error(data: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        codec.loads(data)


@pytest.mark.parametrize("data", ["NaN", "Infinity", "-Infinity", '{"a": [NaN]}'])
def test_nan_and_infinity_are_refused_when_read(data: str) -> None:
    with pytest.raises(ProtocolError):
        codec.loads(data)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"a": [math.inf]}])
def test_nan_and_infinity_are_refused_when_written(value: object) -> None:
    with pytest.raises(ValueError, match="NaN and Infinity") as caught:
        codec.dumps(value)
    assert isinstance(caught.value, ProtocolError), "wev reports it as its own error"


@pytest.mark.parametrize(
    "data",
    ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000, b"[" * 100_000],
)
def test_deeply_nested_input_is_a_protocol_error(data: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        codec.loads(data)


def test_whitespace_around_a_document_is_fine() -> None:
    assert codec.loads(' \r\n\t{"a": [1, 2.5, "x"]} \n') == {"a": [1, 2.5, "x"]}


@pytest.mark.parametrize("data", [b'{"a": 1}', bytearray(b'{"a": 1}'), memoryview(b'{"a": 1}')])
def test_loads_takes_bytes_like_input(data: bytes) -> None:
    assert codec.loads(data) == {"a": 1}


def test_loads_keeps_the_last_of_duplicate_keys_as_json_does() -> None:
    assert codec.loads('{"a": 1, "a": 2}') == json.loads('{"a": 1, "a": 2}') == {"a": 2}


def test_dumps_writes_tuples_as_lists() -> None:
    assert codec.dumps({"names": ("A", "B")}) == '{"names":["A","B"]}'


def test_dumps_writes_non_string_keys_as_json_does() -> None:
    value = {7: "a", True: "b", False: "c", None: "d", 2.5: "e"}

    assert json.loads(codec.dumps(value)) == json.loads(json.dumps(value))


def test_dumps_escapes_what_json_escapes() -> None:
    value = 'quote " backslash \\ newline \n nul \x00 del \x7f é ☃ 🐍 \u2028'

    assert codec.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", {"a": object()}])
def test_dumps_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        codec.dumps(value)


# -- messages -----------------------------------------------------------------------


def wire(body: dict[str, object]) -> object:
    """As the other side sees ``body``: encoded, sent, decoded."""
    return codec.loads(codec.dumps(body).encode())


SPEC = VariableSpec(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    {"id": "wev-echo", "values": ["a", "b"], "nested": {"x": 1.5, "y": None}},
    ("/home/me/wev.yml", "/home/me/project/wev.user.yml"),
)
ENTRY = EntryInfo(
    ("TOKEN",),
    "wev-awscodeartifact",
    "domain d, profile work",
    True,
    "2030-01-01T00:00:00+00:00",
    None,
)

names = st.lists(
    st.text(st.characters(codec="utf-8", exclude_characters="=\x00"), min_size=1),
    min_size=1,
    max_size=3,
)


@EXAMPLES
@given(
    names,
    st.dictionaries(text, json_values, max_size=4),
    st.lists(text, max_size=3),
)
def test_a_variable_spec_survives_the_wire(
    spec_names: list[str], properties: dict[str, object], sources: list[str]
) -> None:
    spec = VariableSpec(tuple(spec_names), {"id": "wev-echo", **properties}, tuple(sources))

    assert VariableSpec.from_json(wire(spec.to_json())) == spec


def test_a_resolve_request_survives_the_wire() -> None:
    request = ResolveRequest(
        (SPEC, VariableSpec(("B",), {"id": "x"}, ())), {"AWS_PROFILE": "work", "HOME": "/h"}
    )

    received = ResolveRequest.from_json(wire(request.to_json()))

    assert received == request
    assert received.variables[0].names == SPEC.names
    assert received.variables[0].plugin == SPEC.plugin
    assert received.variables[0].sources == SPEC.sources
    assert dict(received.env) == {"AWS_PROFILE": "work", "HOME": "/h"}


def test_a_resolve_response_survives_the_wire() -> None:
    response = ResolveResponse(
        {"TOKEN": "s3cr3t", "EMPTY": ""},
        (ENTRY, EntryInfo(("A", "B"), "wev-echo", "", False, None, "2030-01-01T00:00:00+00:00")),
        ("a warning", "another"),
    )

    received = ResolveResponse.from_json(wire(response.to_json()))

    assert received == response
    assert dict(received.values) == {"TOKEN": "s3cr3t", "EMPTY": ""}
    assert received.entries[0].cached is True
    assert received.entries[0].expires_at == "2030-01-01T00:00:00+00:00"
    assert received.entries[1].refresh_at == "2030-01-01T00:00:00+00:00"
    assert received.warnings == ("a warning", "another")


def test_equality_tells_messages_apart() -> None:
    assert VariableSpec(("A",), {"id": "x"}, ()) != VariableSpec(("A",), {"id": "y"}, ())
    assert VariableSpec(("A",), {"id": "x"}, ()) != VariableSpec(("B",), {"id": "x"}, ())
    assert ResolveResponse({"A": "1"}) != ResolveResponse({"A": "2"})
    assert ResolveRequest((), {"HOME": "/a"}) != ResolveRequest((), {"HOME": "/b"})
    other_entry = EntryInfo(("TOKEN",), "wev-awscodeartifact", "", True, None, None)
    assert other_entry != ENTRY


def test_optional_fields_may_be_left_out() -> None:
    assert VariableSpec.from_json({"names": ["A"], "plugin": {"id": "x"}}).sources == ()
    assert ResolveRequest.from_json({"variables": []}).env == {}
    response = ResolveResponse.from_json({"values": {}})
    assert (dict(response.values), response.entries, response.warnings) == ({}, (), ())
    entry = EntryInfo.from_json({"names": ["A"]})
    assert (entry.plugin_id, entry.description, entry.cached) == ("", "", False)
    assert (entry.expires_at, entry.refresh_at) == (None, None)


def test_unknown_fields_are_ignored_both_ways() -> None:
    spec = VariableSpec.from_json({"names": ["A"], "plugin": {"id": "x"}, "future": [1]})
    request = ResolveRequest.from_json(
        {"variables": [spec.to_json()], "env": {}, "priority": "high"}
    )
    response = ResolveResponse.from_json(
        {"values": {"A": "1"}, "entries": [{"names": ["A"], "ttl": 5}], "stats": {}}
    )

    assert request.variables == (spec,)
    assert dict(response.values) == {"A": "1"}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "spec",
        {},
        {"names": ["A"]},
        {"names": ["A"], "plugin": "wev-echo"},
        {"names": ["A"], "plugin": ["id"]},
        {"names": "A", "plugin": {"id": "x"}},
        {"names": [], "plugin": {"id": "x"}},
        {"names": [1], "plugin": {"id": "x"}},
        {"names": ["A=B"], "plugin": {"id": "x"}},
        {"names": [""], "plugin": {"id": "x"}},
        {"names": ["A\x00"], "plugin": {"id": "x"}},
        {"names": ["A"], "plugin": {"id": "x"}, "sources": "wev.yml"},
        {"names": ["A"], "plugin": {"id": "x"}, "sources": 0},
        {"names": ["A"], "plugin": {"id": "x"}, "sources": [3]},
    ],
)
def test_a_wrongly_shaped_variable_is_a_protocol_error(data: object) -> None:
    with pytest.raises(ProtocolError):
        VariableSpec.from_json(data)
    with pytest.raises(ProtocolError):
        ResolveRequest.from_json({"variables": [data], "env": {}})


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"variables": {}},
        {"variables": "A"},
        {"variables": [], "env": []},
        {"variables": [], "env": "HOME=/"},
        {"variables": [], "env": {"HOME": 1}},
        {"variables": [], "env": {"HOME": None}},
    ],
)
def test_a_wrongly_shaped_request_is_a_protocol_error(data: object) -> None:
    with pytest.raises(ProtocolError):
        ResolveRequest.from_json(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "ok",
        [],
        {"values": []},
        {"values": {"A": 1}},
        {"values": {"A": None}},
        {"values": {"A=B": "x"}},
        {"values": {"": "x"}},
        {"values": {"A": "x\x00y"}},
        {"entries": {}},
        {"entries": [None]},
        {"entries": [{}]},
        {"entries": [{"names": []}]},
        {"entries": [{"names": ["A"], "cached": "no"}]},
        {"entries": [{"names": ["A"], "plugin": ["x"]}]},
        {"entries": [{"names": ["A"], "description": 5}]},
        {"entries": [{"names": ["A"], "expires_at": 1700000000}]},
        {"warnings": "careful"},
        {"warnings": [1]},
    ],
)
def test_a_wrongly_shaped_response_is_a_protocol_error(data: object) -> None:
    with pytest.raises(ProtocolError):
        ResolveResponse.from_json(data)


@EXAMPLES
@given(json_values)
def test_from_json_raises_only_protocol_errors(data: object) -> None:
    for cls in (VariableSpec, ResolveRequest, EntryInfo, ResolveResponse):
        with contextlib.suppress(ProtocolError):
            cls.from_json(data)


@EXAMPLES
@given(st.dictionaries(st.sampled_from(["names", "plugin", "sources", "id"]), json_values))
def test_variable_from_json_raises_only_protocol_errors(data: dict[str, object]) -> None:
    with contextlib.suppress(ProtocolError):
        VariableSpec.from_json(data)


def test_reprs_never_show_values_or_the_environment() -> None:
    request = ResolveRequest(
        (SPEC,), {"AWS_SECRET_ACCESS_KEY": "env-secret-value", "AWS_PROFILE": "work"}
    )
    response = ResolveResponse({"TOKEN": "resolved-secret-value"}, (ENTRY,), ())

    shown = repr(request) + repr(response) + repr(ENTRY) + repr(SPEC)

    assert "env-secret-value" not in shown
    assert "resolved-secret-value" not in shown
    assert "AWS_SECRET_ACCESS_KEY" in repr(request), "the names are fine to show"
    assert "TOKEN" in repr(response)


def test_context_env_keeps_only_what_a_resolution_depends_on() -> None:
    environ = {"AWS_PROFILE": "work", "HOME": "/h", "PATH": "/bin", "SECRET_TOKEN": "x"}

    assert context.context_env(environ) == {"AWS_PROFILE": "work", "HOME": "/h"}


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [cls for _, cls in sorted(errors.ERRORS_BY_CODE.items())])
@pytest.mark.parametrize("hint", [None, "run `aws sso login`"])
def test_an_error_survives_the_wire(cls: type[WevError], hint: str | None) -> None:
    sent = cls("something failed: é", hint=hint)

    received = errors.error_from_json(wire(sent.to_json()))

    assert type(received) is cls
    assert received.message == "something failed: é"
    assert received.hint == hint
    assert received.exit_status == sent.exit_status
    assert str(received) == str(sent)


def test_error_codes_and_exit_statuses() -> None:
    assert {cls.code: cls.exit_status for cls in errors.ERRORS_BY_CODE.values()} == {
        "error": 70,
        "usage": 64,
        "config": 78,
        "protocol": 76,
        "version_mismatch": 76,
        "upstream": 69,
        "daemon_unavailable": 69,
        "input_required": 69,
    }
    assert issubclass(VersionMismatch, ProtocolError)
    for cls in (UsageError, ConfigError, ProtocolError, UpstreamError, DaemonUnavailable):
        assert issubclass(cls, WevError)


def test_an_unknown_plugin_is_a_config_error_on_the_wire_that_names_the_plugin() -> None:
    sent = errors.UnknownPlugin("wev.yml: A: unknown plugin 'wev-x'", plugin="wev-x")

    body = wire(sent.to_json())
    received = errors.error_from_json(body)

    assert body == {"error": {"code": "config", "message": sent.message, "plugin": "wev-x"}}
    assert type(received) is errors.UnknownPlugin and received.plugin == "wev-x"
    assert received.exit_status == 78 and received.message == sent.message


def test_an_unknown_error_code_is_a_plain_wev_error() -> None:
    error = errors.error_from_json(
        {"error": {"code": "from_the_future", "message": "m", "hint": 5}}
    )

    assert type(error) is WevError
    assert (error.message, error.hint) == ("m", None)


@pytest.mark.parametrize(
    "body",
    [None, "boom", [], {}, {"error": "boom"}, {"error": {}}, {"error": {"message": 5}}],
)
def test_an_error_body_that_is_not_one_is_a_protocol_error(body: object) -> None:
    assert type(errors.error_from_json(body)) is ProtocolError


def test_an_error_shows_its_hint_in_one_line() -> None:
    assert (
        str(ConfigError("wev.yml: bad", hint="see the README")) == "wev.yml: bad (see the README)"
    )
    assert str(ConfigError("wev.yml: bad")) == "wev.yml: bad"


def test_the_readme_names_every_route_of_the_protocol() -> None:
    from readme import inline_code

    from wev_client import protocol

    routes = {value for name, value in vars(protocol).items() if name.endswith("_ROUTE")}
    assert routes and routes <= set(inline_code()), sorted(routes - set(inline_code()))
