"""Errors found on the user's machine stay what they are, wherever they pass.

An unreadable credentials file is found before any call to AWS: the token
fetch, the repository's endpoint lookup and the MFA session each report it
in one line without internal class names, the daemon never retries it in the
background, and ``wev --status`` counts it apart from the calls that reached
AWS. Real ``wev`` and ``wev-daemon``; AWS is the local stand-ins.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from conftest import CREDENTIALS, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import DEVICE, FakeSts
from readme import sample_line
from test_mfa import CODE, MFA, QUESTION, SHOW, Terminal

#: A file that exists but cannot be read (a missing one reads as empty, as botocore reads it),
#: for root too.
UNREADABLE_FILE = {"AWS_SHARED_CREDENTIALS_FILE": "/"}
UNREADABLE = "AWS_SHARED_CREDENTIALS_FILE=/ cannot be read: Is a directory"
TOKEN = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
ENDPOINT = (
    "[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL]:\n  plugin:\n    id: wev-awscodeartifact\n"
    "    domain: corp\n    repository: shared\n    format: pypi\n"
)


@pytest.fixture
def sts(user: User) -> Iterator[FakeSts]:
    """The STS and IAM stand-in, for the user's wev-awsmfa entry."""
    with FakeSts(CREDENTIALS) as server:
        server.code = CODE
        user.env["AWS_ENDPOINT_URL_STS"] = user.env["AWS_ENDPOINT_URL_IAM"] = server.url
        user.write("work/project/wev.yml", MFA)
        yield server


def one_line_never_retried(user: User, daemon: Daemon, env: dict[str, str]) -> str:
    """``wev true`` with ``env`` fails with one line (exit 69) that names no exception
    class, and the daemon does not try again; the line."""
    result = user.wev("true", env=env)
    time.sleep(3.5)  # a retried failure would be tried again within 1 s, then 2 s

    assert result.returncode == 69, result.stderr
    [line] = result.stderr.splitlines()
    assert "Error" not in line, line  # no FetchError, no class name of the SDK's
    assert daemon.log.count("fetch failed") == 1, "retried in the background"
    return line


def status(user: User) -> dict[str, object]:
    result = user.wev("--status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("config", [TOKEN, ENDPOINT], ids=["token", "endpoint"])
def test_an_unreadable_credentials_file_is_one_line_never_retried_nor_counted_as_a_call(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, config: str
) -> None:
    user.write("work/project/wev.yml", config)

    line = one_line_never_retried(user, daemon, UNREADABLE_FILE)

    assert line.startswith("wev: ") and "CODEARTIFACT_AUTH_TOKEN" in line and UNREADABLE in line
    document = status(user)
    assert document["upstream_calls"] == 0 and document["local_failures"] == 1
    assert UNREADABLE in str(document["last_local_error"])
    assert document["last_upstream_error"] is None
    entries = document["entries"]
    assert isinstance(entries, list) and len(entries) == 1
    assert entries[0]["refresh_at"] is None
    assert not fake.calls and not fake.endpoint_call_count
    text = user.wev("--status").stdout
    assert "upstream calls since start: 0" in text
    assert "errors found on this machine since start: 1" in text
    # The entry holds nothing, rather than something that never expires.
    assert "holds: nothing" in text and "expires:" not in text, text


def test_the_upstream_count_is_the_calls_aws_answered(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", ENDPOINT)

    assert user.wev("true").returncode == 0
    assert user.wev("true").returncode == 0  # from the cache
    document = status(user)

    # One GetAuthorizationToken and one GetRepositoryEndpoint reached the stand-in.
    assert fake.call_count + fake.endpoint_call_count == 2
    assert document["upstream_calls"] == 2 and document["local_failures"] == 0


def test_the_readmes_sample_of_an_unreadable_file_is_the_programs_own_text(
    user: User, daemon: Daemon
) -> None:
    sample = sample_line("wev: CODEARTIFACT_AUTH_TOKEN: CodeArtifact token for domain corp: AWS_")
    user.write("work/project/wev.yml", TOKEN)
    creds = user.write("work/project/creds", "[default]\n")
    if os.geteuid() == 0:  # root reads any file: a folder is one that exists but cannot be read
        creds.unlink()
        creds.mkdir()
        sample = sample.replace("Permission denied", "Is a directory")
    else:
        creds.chmod(0)

    result = user.wev("true", env={"AWS_SHARED_CREDENTIALS_FILE": "creds"})

    assert result.returncode == 69, result.stderr
    assert result.stderr.replace(str(user.project), "/home/me/proj") == sample + "\n"


def test_an_mfa_session_with_an_unreadable_credentials_file_is_one_line(
    user: User, daemon: Daemon, sts: FakeSts
) -> None:
    # Found before any question: nobody types a code for a session that cannot be had.
    user.write("work/project/wev.yml", MFA + f"    mfa_device: {DEVICE}\n")
    terminal = Terminal(user, *SHOW, env=UNREADABLE_FILE)
    try:
        assert terminal.wait() == 69, bytes(terminal.output)
    finally:
        terminal.close()

    lines = [line for line in bytes(terminal.output).decode().splitlines() if "wev: [" in line]
    [line] = lines
    assert UNREADABLE in line and "Error" not in line, line
    assert QUESTION.decode() not in bytes(terminal.output).decode()
    assert not sts.calls_of("GetSessionToken")


def test_looking_up_the_mfa_device_with_an_unreadable_credentials_file_is_one_line(
    user: User, daemon: Daemon, sts: FakeSts
) -> None:
    result = user.wev(*SHOW, env=UNREADABLE_FILE)

    assert result.returncode == 69, result.stderr
    [line] = result.stderr.splitlines()
    assert UNREADABLE in line and "Error" not in line, line
    assert not sts.calls_of("GetCallerIdentity")


#: Settings of the caller's that the SDK refuses before any request leaves the machine.
UNUSABLE_SETTINGS = {
    "endpoint": {"AWS_ENDPOINT_URL_CODEARTIFACT": "not a url"},
    "ipv6 endpoint": {"AWS_ENDPOINT_URL_CODEARTIFACT": "http://[::1"},
    "scheme": {"AWS_ENDPOINT_URL_CODEARTIFACT": "ftp://codeartifact.example"},
    "container host": {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/credentials",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
    },
}


@pytest.mark.parametrize("settings", UNUSABLE_SETTINGS.values(), ids=UNUSABLE_SETTINGS.keys())
def test_a_setting_the_sdk_cannot_use_is_one_line_never_retried(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, settings: dict[str, str]
) -> None:
    user.write("work/project/wev.yml", TOKEN)

    line = one_line_never_retried(user, daemon, settings)

    assert line.startswith("wev: CODEARTIFACT_AUTH_TOKEN: ") and "configuration" in line, line
    assert "HTTP Client" not in line, line
    document = status(user)
    assert document["upstream_calls"] == 0 and document["local_failures"] == 1
    assert document["last_upstream_error"] is None
    assert not fake.calls


def test_the_readmes_sample_of_an_sso_login_to_renew_is_what_a_terminal_shows(
    user: User, daemon: Daemon
) -> None:
    """The README's example of an error line: an SSO profile never signed in, in a terminal
    (which gets the line at once, rather than waiting for the sign-in)."""
    sample = sample_line("wev: CODEARTIFACT_AUTH_TOKEN: CodeArtifact token for domain corp (")
    (user.home / ".aws" / "config").write_text(
        "[profile work]\nsso_session = corp\nsso_account_id = 111122223333\n"
        "sso_role_name = Dev\nregion = eu-west-1\n\n"
        "[sso-session corp]\nsso_start_url = https://corp.example/start\nsso_region = eu-west-1\n"
    )
    (user.home / ".aws" / "credentials").write_text("")
    user.write("work/project/wev.yml", TOKEN)

    terminal = Terminal(user, "true", env={"AWS_PROFILE": "work"})
    try:
        status = terminal.wait()
    finally:
        terminal.close()

    assert status == 69, terminal.output
    shown = terminal.output.decode().rstrip("\r\n")
    # After the status line, if a slow machine showed one and erased it.
    assert shown.rpartition("\n")[2].rpartition("\r\033[K")[2] == sample
