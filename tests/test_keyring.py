"""The keyring backend: pip, uv and keyring's own CLI get CodeArtifact tokens without ``wev``.

The tools run for real with keyring from the venv (its ``keyring.backends`` entry point finds
the backend), in a project folder that holds only a wev.yml, against a private index that
accepts only tokens the fake CodeArtifact issued. The index URL in the command has no token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN, DEFAULT_KEY, WORK_KEY, Daemon, User, free_port, output
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from test_client_imports import forbidden_in
from tools import CODEARTIFACT_HOST as HOST
from tools import CODEARTIFACT_URL, REPOSITORY_WEV_YML, run_tool

from wev_client import codeartifact


def assert_only_valid_tokens(index: FakePyPIIndex) -> None:
    # A tool may first try the URL's user name alone ("aws:"), before asking keyring.
    attempts = [attempt for attempt in index.attempts if attempt.token]
    assert attempts, f"the tool never authenticated: {index.attempts}"
    assert all(attempt.valid and attempt.username == "aws" for attempt in attempts)


def test_pip_with_keyring_provider_import_and_a_token_free_url(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    (user.project / "wev.yml").write_text(REPOSITORY_WEV_YML)
    target = user.root / "target"
    url = f"{index.url}/pypi/shared/simple/"

    result = run_tool(
        user,
        str(BIN / "pip"),
        "install",
        "--keyring-provider",
        "import",
        "--index-url",
        url,
        "--no-cache-dir",
        "--target",
        str(target),
        "corp-lib",
    )

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)
    assert (fake.call_count, fake.endpoint_call_count) == (1, 1)


def test_uv_with_keyring_provider_subprocess(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    (user.project / "wev.yml").write_text(REPOSITORY_WEV_YML)
    target = user.root / "target"
    # uv's subprocess provider asks `keyring get URL USER`: the URL names the user, aws.
    url = f"{index.url}/pypi/shared/simple/".replace("://", "://aws@")

    result = run_tool(
        user,
        str(BIN / "uv"),
        "pip",
        "install",
        "--keyring-provider",
        "subprocess",
        "--index-url",
        url,
        "--no-cache",
        "--target",
        str(target),
        "--python",
        sys.executable,
        "corp-lib",
    )

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)


def test_a_codeartifact_host_needs_no_configuration(user: User, fake: FakeCodeArtifact) -> None:
    nowhere = user.root / "nowhere"  # no wev.yml here nor above
    nowhere.mkdir()
    daemon = Daemon(user)
    try:
        result = run_tool(user, str(BIN / "keyring"), "get", CODEARTIFACT_URL, "aws", cwd=nowhere)
        again = run_tool(user, str(BIN / "keyring"), "get", HOST, "aws", cwd=nowhere)
    finally:
        daemon.stop()

    assert result.returncode == 0, output(result)
    [token] = fake.issued
    assert result.stdout == again.stdout == token + "\n"
    [call] = fake.calls  # the second lookup came from the daemon's cache
    assert (call.domain, call.domain_owner, call.region) == ("corp", "123456789012", "eu-west-1")
    assert call.access_key_id == DEFAULT_KEY and call.signature_valid


def test_the_nearest_entry_for_the_domain_gives_its_profile(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "home/.wev.yml",
        "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp, "
        "profile: work}}\n",
    )

    result = run_tool(user, str(BIN / "keyring"), "get", CODEARTIFACT_URL, "aws")

    assert result.returncode == 0, output(result)
    [call] = fake.calls
    assert (call.access_key_id, call.region) == (WORK_KEY, "eu-west-1")


def test_the_project_entry_wins_over_homes_for_one_domain(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("home/.wev.yml", "HOME_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n")
    user.write(
        "work/project/wev.yml",
        "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp, "
        "profile: work}}\n",
    )

    result = run_tool(user, str(BIN / "keyring"), "get", CODEARTIFACT_URL, "aws")

    assert result.returncode == 0, output(result)
    [call] = fake.calls
    assert call.access_key_id == WORK_KEY


def test_other_services_are_left_to_other_backends(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", "GREETING: {plugin: {id: wev-echo, value: hi}}\n")

    result = run_tool(user, str(BIN / "keyring"), "get", "https://pypi.org/simple/", "aws")
    other_user = run_tool(user, str(BIN / "keyring"), "get", CODEARTIFACT_URL, "alice")

    assert (result.returncode, result.stdout) == (1, "")  # keyring's "not found"
    assert (other_user.returncode, other_user.stdout) == (1, "")
    assert fake.calls == []


def test_a_failure_is_one_line_and_no_password(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    fake.fail_with(403, "AccessDeniedException", "not allowed", times=None)

    result = run_tool(user, str(BIN / "keyring"), "get", CODEARTIFACT_URL, "aws")

    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line.startswith(f"wev: keyring: {CODEARTIFACT_URL}: ")
    assert "AccessDeniedException: not allowed" in line


def test_importing_the_backend_costs_keyring_nothing_heavy(tmp_path: Path) -> None:
    """keyring imports every backend whenever a tool uses it: ours brings no costly module."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    code = "import sys, keyring.backend, keyring.credentials; base = set(sys.modules); "
    code += "import wev_client.keyring_backend; print(' '.join(set(sys.modules) - base))"

    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
    added = set(result.stdout.split())
    assert forbidden_in(added) == []
    assert added <= {"wev_client", "wev_client.keyring_backend"}, added


@pytest.mark.parametrize(
    ("host", "parts"),
    [
        (HOST, ("corp", "123456789012", "eu-west-1")),
        ("my-team-domain-000011112222.d.codeartifact.us-east-2.amazonaws.com", None),
        ("my-team-000011112222.d.codeartifact.us-east-2.amazonaws.com", None),
        ("corp-12345678901.d.codeartifact.eu-west-1.amazonaws.com", None),
        ("corp-123456789012.d.codeartifact.eu-west-1.example.com", None),
        ("pypi.org", None),
    ],
)
def test_codeartifact_hosts(host: str, parts: tuple[str, str, str] | None) -> None:
    if host.startswith("my-team-0"):
        parts = ("my-team", "000011112222", "us-east-2")
    if host.startswith("my-team-domain"):
        parts = ("my-team-domain", "000011112222", "us-east-2")
    assert codeartifact.parse_host(host) == parts


def test_which_urls_an_endpoint_serves() -> None:
    endpoint = "http://127.0.0.1:8080/pypi/shared/"

    assert codeartifact.endpoint_serves(endpoint, "http://127.0.0.1:8080/pypi/shared/simple/")
    assert codeartifact.endpoint_serves(endpoint, "http://aws@127.0.0.1:8080/pypi/shared/simple")
    assert codeartifact.endpoint_serves(endpoint, "127.0.0.1:8080")  # pip asks for the host too
    assert not codeartifact.endpoint_serves(endpoint, "http://127.0.0.1:8080/pypi/sharedx/")
    assert not codeartifact.endpoint_serves(endpoint, "https://127.0.0.1:8080/pypi/shared/")
    assert not codeartifact.endpoint_serves(endpoint, "http://127.0.0.1:9090/pypi/shared/")


def test_a_proxied_entry_gives_the_token_for_its_repository_only(
    user: User, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    # The loopback proxy's URL needs no token: the backend answers the repository's own URL.
    user.env["WEV_PROXY_PORT"] = str(free_port())
    (user.project / "wev.yml").write_text(
        "PIP_INDEX_URL:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
        "    repository: shared\n    format: pypi\n    proxy: true\n"
    )
    keyring = str(BIN / "keyring")
    daemon = Daemon(user)
    try:
        loopback = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"').stdout
        proxied = run_tool(user, keyring, "get", loopback, "aws")
        direct = run_tool(user, keyring, "get", f"{index.url}/pypi/shared/simple/", "aws")
    finally:
        daemon.stop()

    assert loopback.startswith(f"http://127.0.0.1:{user.env['WEV_PROXY_PORT']}/"), loopback
    assert (proxied.returncode, proxied.stdout) == (1, "")
    assert direct.returncode == 0, output(direct)
    assert fake.is_valid_token(direct.stdout.strip())
