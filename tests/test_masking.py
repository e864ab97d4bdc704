"""GitHub Actions: values a plugin marks secret are announced with ``::add-mask::`` first.

The real ``wev`` runs with ``GITHUB_ACTIONS=true`` against the fake CodeArtifact: before the
command, its stdout carries one ``::add-mask::`` line per secret value (the token, an index URL
with the token inside), none for values that are no secret (a wev-echo value, a plain
endpoint). ``wev --export`` makes the evaluating shell print the same lines.
"""

from __future__ import annotations

import base64
import subprocess

import pytest
from conftest import BIN, CREDENTIALS, WEV, Daemon, User
from ecr_harness import REGISTRY as ECR_REGISTRY
from fakes.codeartifact import FakeCodeArtifact
from fakes.ecr import FakeEcr
from fakes.sts import FakeSts
from mfa_harness import CODE

from wev_client.output import mask_command

WEV_YML = """\
[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL, REPOSITORY]:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: pypi
    values: [token, index_url, endpoint]
AWS_PROFILE:
  plugin:
    id: wev-echo
    value: work
"""
pytest_plugins = ("mfa_fixtures",)
CI = {"GITHUB_ACTIONS": "true", "WEV_NO_DAEMON": "1"}


@pytest.fixture
def project(user: User) -> User:
    user.write("work/project/wev.yml", WEV_YML)
    return user


def masks(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("::add-mask::")]


def test_wev_masks_each_secret_before_the_command_runs(
    project: User, fake: FakeCodeArtifact
) -> None:
    result = project.wev("sh", "-c", 'echo "ran $AWS_PROFILE $REPOSITORY"', env=CI)

    assert result.returncode == 0, result.stderr
    [token] = fake.issued
    lines = result.stdout.splitlines()
    index_url = next(line for line in masks(result.stdout) if "@" in line)
    assert lines[0] == f"::add-mask::{token}"  # before anything the command prints
    assert index_url.startswith("::add-mask::http") and f"://aws:{token}@" in index_url
    assert len(masks(result.stdout)) == 2  # no line for the profile name nor the endpoint
    assert lines[-1].startswith("ran work http")


def test_an_index_url_alone_masks_its_token_too(user: User, fake: FakeCodeArtifact) -> None:
    """uv's recipe sets only the URL: a tool that prints the token alone, or the URL cut
    short, still shows none of it."""
    user.write(
        "work/project/wev.yml",
        "UV_INDEX_URL:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
        "    repository: shared\n    format: pypi\n    values: [index_url]\n",
    )
    result = user.wev("true", env=CI)

    assert result.returncode == 0, result.stderr
    [token] = fake.issued
    assert f"::add-mask::{token}" in masks(result.stdout)


def test_a_command_whose_output_goes_to_a_file_gets_the_lines_on_stderr(
    project: User, fake: FakeCodeArtifact
) -> None:
    """``wev CMD > out.json``: the file holds the command's data alone, never a token; the
    runner reads the lines on stderr."""
    out = project.root / "out.json"
    with out.open("w") as stdout:
        result = subprocess.run(
            [WEV, "sh", "-c", "echo '{}'"],
            cwd=project.project,
            env={**project.env, **CI},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )

    assert result.returncode == 0, result.stderr
    [token] = fake.issued
    assert out.read_text() == "{}\n"
    assert masks(result.stderr)[0] == f"::add-mask::{token}"
    assert len(masks(result.stderr)) == 2


def test_an_ecr_entry_masks_its_password_and_auth_not_the_user_nor_the_host(
    user: User,
) -> None:
    """A mask of ``AWS`` or of the registry host would blank every line that names them."""
    user.write(
        "work/project/wev.yml",
        f"[PASSWORD, USERNAME, REGISTRY, AUTH]:\n  plugin:\n    id: wev-awsecr\n"
        f"    registry: {ECR_REGISTRY}\n    values: [password, username, registry, auth]\n",
    )
    with FakeEcr(CREDENTIALS) as ecr:
        result = user.wev(
            "sh",
            "-c",
            'echo "ran $USERNAME@$REGISTRY"',
            env={**CI, "AWS_ENDPOINT_URL_ECR": ecr.url},
        )
        [password] = ecr.passwords

    assert result.returncode == 0, result.stderr
    auth = base64.b64encode(f"AWS:{password}".encode()).decode()
    assert masks(result.stdout) == [f"::add-mask::{password}", f"::add-mask::{auth}"]
    assert result.stdout.splitlines()[-1] == f"ran AWS@{ECR_REGISTRY}"


def test_an_mfa_session_masks_its_three_values(sdk_user: User, sts: FakeSts) -> None:
    config = sdk_user.home / ".aws" / "config"
    config.write_text(
        config.read_text().replace(
            "[default]\n", '[default]\nmfa_process = printf %s "$CODE_FROM_CALLER"\n'
        )
    )

    result = sdk_user.wev("true", env={**CI, "CODE_FROM_CALLER": CODE})

    assert result.returncode == 0, result.stderr
    [session] = sts.sessions
    assert masks(result.stdout) == [
        f"::add-mask::{value}"
        for value in (session.access_key_id, session.secret_access_key, session.session_token)
    ]


def test_no_mask_lines_outside_github_actions(project: User, fake: FakeCodeArtifact) -> None:
    result = project.wev("true", env={"WEV_NO_DAEMON": "1"})
    assert (result.returncode, result.stdout) == (0, "")


def test_through_the_daemon_too(project: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    result = project.wev("true", env={"GITHUB_ACTIONS": "true"})
    [token] = fake.issued
    assert result.returncode == 0, result.stderr
    assert masks(result.stdout)[0] == f"::add-mask::{token}"
    assert len(masks(result.stdout)) == 2


@pytest.mark.parametrize("shell", ["sh", "bash", "zsh", "fish"])
def test_an_evaluated_export_prints_the_mask_lines_and_sets_the_values(
    project: User, fake: FakeCodeArtifact, shell: str
) -> None:
    export = project.wev("--export", "--format", "fish" if shell == "fish" else "sh", env=CI)
    assert export.returncode == 0, export.stderr
    assert "::add-mask::" in export.stdout and export.stderr == ""
    script = 'eval "$(wev --export)"; echo "set $AWS_PROFILE"'
    if shell == "fish":
        script = 'eval (wev --export --format fish | string collect); echo "set $AWS_PROFILE"'

    result = subprocess.run(
        [shell, "-c", script],
        cwd=project.project,
        env={**project.env, **CI, "PATH": f"{BIN}:{project.env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    second = list(fake.issued)[-1]  # the evaluated one
    assert masks(result.stdout) == [f"::add-mask::{second}", *masks(result.stdout)[1:]]
    assert len(masks(result.stdout)) == 2
    assert result.stdout.splitlines()[-1] == "set work"


@pytest.mark.parametrize("fmt", ["dotenv", "json"])
def test_data_formats_keep_stdout_data_and_mask_on_stderr(
    project: User, fake: FakeCodeArtifact, fmt: str
) -> None:
    result = project.wev("--export", "--format", fmt, env=CI)

    assert result.returncode == 0, result.stderr
    [token] = fake.issued
    assert masks(result.stdout) == []
    assert masks(result.stderr)[0] == f"::add-mask::{token}"
    assert len(masks(result.stderr)) == 2


def test_the_command_data_is_escaped_as_the_runner_reads_it() -> None:
    assert mask_command("a%b\r\nc") == "::add-mask::a%25b%0D%0Ac"
