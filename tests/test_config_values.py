"""Config values keep the meaning the user wrote.

Values follow YAML 1.2, as the earlier wev's ruamel.yaml read them: ``off``,
``no``, ``yes`` and ``on`` are text, and a decimal keeps its text (``1.50``).
YAML 1.1 reads ``012345670123`` as octal and ``0x1F``, ``1_000`` or ``1:30``
as numbers; a string property must get the text written, a number property
the number meant, and a value of the wrong kind one clear line naming it. A
key written twice, or a tab in the indentation, is one line saying so.
The loader and the plugins' parse helpers are checked directly; what reaches
AWS, and what the user reads, through the real ``wev`` and daemon.
"""

from __future__ import annotations

import marshal

import pytest
from conftest import User
from fakes.codeartifact import FakeCodeArtifact
from readme import sample_line

from wev_client import yaml_loader
from wev_daemon.plugins import PropertyError, optional_int, optional_str, required_str
from wev_daemon.plugins.awscodeartifact import CodeArtifactPlugin
from wev_daemon.plugins.awsmfa import MfaSessionPlugin


def loaded(value: str) -> object:
    document = yaml_loader.load(f"key: {value}\n".encode())
    assert isinstance(document, dict)
    return document["key"]


# -- the loader ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("123456789012", 123456789012),  # the earlier wev's unquoted account ids
        ("0", 0),
        ("-12", -12),
        ("012345670123", "012345670123"),  # octal in YAML 1.1
        ("0700", "0700"),
        ("0x1F", "0x1F"),
        ("0b101", "0b101"),
        ("1_000", "1_000"),
        ("1:30", "1:30"),  # sexagesimal in YAML 1.1
        ("+5", "+5"),
        ("-0", "-0"),
        ("0900", "0900"),  # not octal: YAML already reads it as text
        ("'012345670123'", "012345670123"),
        ("[1, 012]", [1, "012"]),
        # YAML 1.2 (the 1.1 reading in the comment)
        ("1.5", "1.5"),  # 1.5
        ("1.50", "1.50"),  # 1.5
        ("1e3", "1e3"),  # 1000.0
        (".inf", ".inf"),  # inf
        ("yes", "yes"),  # True
        ("no", "no"),  # False
        ("on", "on"),  # True
        ("off", "off"),  # False
        ("y", "y"),  # True
        ("2024-05-01", "2024-05-01"),  # a date
        ("0o17", "0o17"),  # text in 1.1, 15 in 1.2: a form kept as written
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
    ],
)
def test_an_integer_not_written_in_plain_decimal_loads_as_its_text(
    written: str, expected: object
) -> None:
    value = loaded(written)
    assert value == expected and type(value) is type(expected)


def test_integer_keys_keep_their_text_too() -> None:
    assert yaml_loader.load(b"{012: a, 12: b}\n") == {"012": "a", 12: "b"}


def test_loaded_text_is_plain_str_that_the_config_cache_can_marshal() -> None:
    document = yaml_loader.load(b"A:\n  plugin: {id: x, account: 012345670123}\n")
    assert isinstance(document, dict)
    assert marshal.loads(marshal.dumps(document)) == document  # noqa: S302 - our own bytes
    assert type(document["A"]["plugin"]["account"]) is str


@pytest.mark.parametrize("written", ["!!int abc", "9" * 5000])
def test_an_integer_that_cannot_be_read_is_a_yaml_error_on_one_line(written: str) -> None:
    with pytest.raises(yaml_loader.YAMLError) as caught:
        yaml_loader.load(f"key: {written}\n".encode())
    message = yaml_loader.describe(caught.value)
    assert "line 1" in message and "whole number" in message
    assert len(message) < 150


# -- the parse helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("corp", "corp"), ("012345670123", "012345670123"), (123456789012, "123456789012")],
)
def test_a_string_property_takes_text_and_whole_numbers_as_written(
    value: object, expected: str
) -> None:
    assert optional_str({"account": value}, "account") == expected
    assert required_str({"account": value}, "account") == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (1.5, "a number (1.5); quote it"),
        (True, "a boolean (true); quote it"),
        (["a"], "a list"),
        ({"a": "b"}, "a mapping"),
    ],
)
def test_a_string_property_refuses_other_kinds_naming_itself(value: object, kind: str) -> None:
    with pytest.raises(PropertyError) as caught:
        optional_str({"region": value}, "region")
    assert str(caught.value).startswith(f"'region' must be a string, not {kind}")


def test_a_required_string_property_refuses_an_empty_value() -> None:
    for properties in ({}, {"domain": None}, {"domain": ""}):
        with pytest.raises(PropertyError, match="'domain' is required"):
            required_str(properties, "domain")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (900, 900),
        ("0900", 900),  # a leading zero is decimal, as people mean it
        ("01000", 1000),  # YAML 1.1 would read 512
        ("1_000", 1000),
        ("0x384", 900),
        ("0o1604", 900),
        ("15:00", 900),
        ("+900", 900),
        ("-5", -5),
        (None, None),
    ],
)
def test_a_number_property_reads_whole_numbers_in_any_written_form(
    value: object, expected: int | None
) -> None:
    assert optional_int({"duration": value}, "duration") == expected


@pytest.mark.parametrize(
    "value", ["abc", "1.5", "", "+-5", "1:-3", "0xZZ", "\u0663", 1.5, True, [1]]
)
def test_a_number_property_refuses_anything_else_naming_itself(value: object) -> None:
    with pytest.raises(PropertyError, match=r"^'duration' must be a whole number, not "):
        optional_int({"duration": value}, "duration")


def test_the_plugins_keep_their_string_properties_as_written() -> None:
    settings = CodeArtifactPlugin().parse(
        {"domain": "corp", "account": "012345670123", "region": "eu-west-1", "duration": "0900"}
    )
    assert (settings.account, settings.duration) == ("012345670123", 900)
    mfa = MfaSessionPlugin().parse({"mfa_device": "012345670123", "duration": "01000"})
    assert (mfa.mfa_device, mfa.duration) == ("012345670123", 1000)


@pytest.mark.parametrize(
    ("plugin", "properties", "name"),
    [
        (CodeArtifactPlugin(), {"domain": 1.5}, "domain"),
        (CodeArtifactPlugin(), {"domain": "corp", "account": 1.5}, "account"),
        (CodeArtifactPlugin(), {"domain": "corp", "profile": True}, "profile"),
        (CodeArtifactPlugin(), {"domain": "corp", "region": ["a"]}, "region"),
        (
            CodeArtifactPlugin(),
            {"domain": "corp", "repository": {"a": 1}, "format": "pypi"},
            "repository",
        ),
        (MfaSessionPlugin(), {"mfa_device": False}, "mfa_device"),
    ],
)
def test_each_string_property_of_the_aws_plugins_refuses_other_kinds(
    plugin: CodeArtifactPlugin | MfaSessionPlugin, properties: dict[str, object], name: str
) -> None:
    with pytest.raises(PropertyError, match=f"^'{name}' must be a string"):
        plugin.parse(properties)


@pytest.mark.parametrize("account", ["12345670123", "0x1F", "1:30", "1234567890123", "\uff11" * 12])
def test_an_account_is_twelve_digits(account: str) -> None:
    with pytest.raises(
        PropertyError, match=r"^'account' must be the 12 digits of an AWS account id"
    ):
        CodeArtifactPlugin().parse({"domain": "corp", "account": account})


# -- through the real wev ------------------------------------------------------------------

TOKEN = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n"


@pytest.mark.parametrize("no_daemon", [False, True])
def test_an_unquoted_account_with_a_leading_zero_reaches_aws_as_written(
    user: User, fake: FakeCodeArtifact, no_daemon: bool
) -> None:
    user.write(
        "work/project/wev.yml",
        TOKEN + "    domain: corp\n    account: 012345670123\n    duration: 01000\n",
    )

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 0, result.stderr
    [call] = fake.calls
    assert (call.domain_owner, call.duration) == ("012345670123", 1000)


@pytest.mark.parametrize("no_daemon", [False, True])
def test_an_unquoted_account_of_the_earlier_wev_still_works(
    user: User, fake: FakeCodeArtifact, no_daemon: bool
) -> None:
    user.write("work/project/wev.yml", TOKEN + "    domain: corp\n    account: 123456789012\n")

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 0, result.stderr
    assert [call.domain_owner for call in fake.calls] == ["123456789012"]


@pytest.mark.parametrize(
    ("properties", "name"),
    [
        ("    domain: true\n", "domain"),
        ("    domain: corp\n    profile: false\n", "profile"),
        ("    domain: corp\n    region: [a]\n", "region"),
        ("    domain: corp\n    account: 1.2e+11\n", "account"),  # a float in YAML 1.1 and 1.2
        ("    domain: corp\n    account: 1.2e11\n", "account"),  # text, but no account id
        ("    domain: corp\n    account: 12345670123\n", "account"),  # a digit lost
        ("    domain:\n", "domain"),
    ],
)
@pytest.mark.parametrize("no_daemon", [False, True])
def test_a_string_property_of_another_kind_is_one_line_naming_it(
    user: User, fake: FakeCodeArtifact, properties: str, name: str, no_daemon: bool
) -> None:
    path = user.write("work/project/wev.yml", TOKEN + properties)
    marker = user.root / "ran"

    result = user.wev("touch", str(marker), env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 78, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("wev: ") and str(path) in line and f"'{name}'" in line
    assert not marker.exists() and not fake.calls


ECHO = "{name}:\n  plugin:\n    id: wev-echo\n    value: {value}\n"


@pytest.mark.parametrize("no_daemon", [False, True])
def test_echo_values_mean_what_was_written_as_in_yaml_1_2(
    user: User, fake: FakeCodeArtifact, no_daemon: bool
) -> None:
    written = {"A": "off", "B": "no", "C": "yes", "D": "on", "E": "1.50", "F": "true", "G": "007"}
    user.write(
        "work/project/wev.yml",
        "".join(ECHO.format(name=name, value=value) for name, value in written.items()),
    )

    result = user.wev(
        "sh",
        "-c",
        'printf "%s|" "$A" "$B" "$C" "$D" "$E" "$F" "$G"',
        env={"WEV_NO_DAEMON": "1"} if no_daemon else {},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "off|no|yes|on|1.50|true|007|"


def test_a_text_property_takes_what_yaml_1_1_read_as_a_boolean(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml",
        TOKEN + "    domain: corp\n    region: eu-west-1\n    profile: no\n",
    )
    user.write(
        "home/.aws/credentials",
        "[no]\naws_access_key_id = AKIADEFAULT000000001\n"
        "aws_secret_access_key = default-secret-key-0000000000000000000000\n",
    )

    result = user.wev("true")

    assert result.returncode == 0, result.stderr
    assert [call.domain for call in fake.calls] == ["corp"]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("A:\n  plugin:\n    id: wev-echo\n    value: a\n    value: b\n", (4, 5)),
        (
            "A:\n  plugin: {id: wev-echo, value: a}\nB:\n  plugin: {id: wev-echo, value: b}\n"
            "A:\n  plugin: {id: wev-echo, value: c}\n",
            (1, 5),
        ),
    ],
    ids=["property", "variable"],
)
@pytest.mark.parametrize("no_daemon", [False, True])
def test_a_key_written_twice_in_one_file_names_both_lines(
    user: User, fake: FakeCodeArtifact, text: str, lines: tuple[int, int], no_daemon: bool
) -> None:
    path = user.write("work/project/wev.yml", text)

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 78, result.stderr
    [line] = result.stderr.splitlines()
    first, second = lines
    assert line.startswith(f"wev: {path}: line {second}, ")
    assert f"written twice in one mapping, on line {first} and line {second}; keep one" in line


def test_a_key_written_twice_on_one_line_names_that_line_once() -> None:
    with pytest.raises(yaml_loader.YAMLError) as raised:
        yaml_loader.load(b"A: {plugin: {id: wev-echo, id: wev-echo, value: x}}\n")

    assert yaml_loader.describe(raised.value) == (
        "line 1, column 28: YAML error: 'id' is written twice in one mapping, on line 1; keep one"
    )


def test_the_same_key_in_two_files_is_a_merge_not_a_duplicate(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", ECHO.format(name="A", value="team"))
    user.write("work/project/wev.user.yml", ECHO.format(name="A", value="mine"))

    result = user.wev("sh", "-c", 'printf %s "$A"')

    assert (result.returncode, result.stdout) == (0, "mine"), result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "A:\n\tplugin: {id: wev-echo, value: a}\n",
        "A:\n  plugin:\n    id: wev-echo\n\tvalue: a\n",
        "A:\n  plugin:\n    id: wev-echo\n  \t value: a\n",
    ],
)
@pytest.mark.parametrize("no_daemon", [False, True])
def test_a_tab_in_the_indentation_is_named(
    user: User, fake: FakeCodeArtifact, text: str, no_daemon: bool
) -> None:
    path = user.write("work/project/wev.yml", text)
    tab_line = next(n for n, line in enumerate(text.splitlines(), 1) if "\t" in line)

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 78, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"wev: {path}: line {tab_line}, ")
    assert "a tab in the indentation; YAML indents with spaces only" in line


@pytest.mark.parametrize("no_daemon", [False, True])
def test_a_line_without_its_colon_is_named_as_the_readme_shows(
    user: User, fake: FakeCodeArtifact, no_daemon: bool
) -> None:
    # Line 3 lacks its ':'; the scanner only notices on line 4.
    path = user.write(
        "work/project/wev.yml",
        "CODEARTIFACT_AUTH_TOKEN:\n  plugin: {id: wev-awscodeartifact, domain: corp}\n"
        "PIP_INDEX_URL\nNPM_TOKEN: {plugin: {id: wev-echo, value: x}}\n",
    )

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 78, result.stderr
    sample = sample_line("wev: /home/me/proj/wev.yml: ")
    assert result.stderr == sample.replace("/home/me/proj/wev.yml", str(path)) + "\n"
