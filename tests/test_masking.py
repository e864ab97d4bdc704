"""GitHub Actions: values a plugin marks secret are announced with ``::add-mask::`` first.

The real ``wev`` runs with ``GITHUB_ACTIONS=true`` against the fake CodeArtifact: before the
command, its stdout carries one ``::add-mask::`` line per secret value (the token, an index URL
with the token inside), none for values that are no secret (a wev-echo value, a plain
endpoint). ``wev --export`` makes the evaluating shell print the same lines.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import BIN, WEV, Daemon, User
from fakes.codeartifact import FakeCodeArtifact

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
