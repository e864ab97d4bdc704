"""The README's "Without typing wev": each recipe as written, run with the real tool where the
machine has it, its shape checked where it does not (no Docker engine, no GitHub runner).

The texts come from ``tests/recipes.py`` (``doors_section()``); only the CodeArtifact host is
pointed at the local stand-ins and ``/home/me/.local/bin`` at this venv. The credential_process
recipe is run by ``tests/test_aws_credentials.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import recipes
import yaml
from conftest import BIN, CREDENTIALS, WEV, Daemon, User, output
from fakes.codeartifact import FakeCodeArtifact
from fakes.npm_registry import FakeNpmRegistry, build_package
from fakes.pypi_index import FakePyPIIndex
from fakes.sts import FakeSts
from fakes.wheels import build_wheel
from recipes import File, Recipe
from tools import isolated_env

TIMEOUT = 120.0
README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_shows_the_tested_doors() -> None:
    text = README.read_text()
    start = text.find("\n## Without typing wev\n")
    assert start >= 0, "README.md has no '## Without typing wev': `python tests/recipes.py doors`"
    end = text.find("\n## ", start + 1)
    section = text[start + 1 : end + 1 if end >= 0 else len(text)]
    assert section.strip() == recipes.doors_section().strip()


def tool_env(user: User) -> dict[str, str]:
    return {**user.env, **isolated_env(user), "npm_config_update_notifier": "false"}


def write(user: User, file: File, base_url: str) -> Path:
    """A recipe's file in the project (or under HOME for ``~/``), pointed at ``base_url``."""
    text = file.pointed_at(base_url).replace(recipes.INSTALLED, str(BIN))
    relative = file.name.replace("~/", "home/", 1) if file.name.startswith("~/") else None
    return user.write(relative or f"work/project/{file.name}", text)


def commands(recipe: Recipe, base_url: str) -> list[str]:
    """The recipe's commands, one per logical line, pointed at ``base_url``."""
    text = File("commands", "sh", recipe.command).pointed_at(base_url)
    return [line for line in text.replace("\\\n", "").splitlines() if line.strip()]


def sh(
    user: User, command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command],
        cwd=user.project,
        env=env or tool_env(user),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def installed(target: Path) -> str:
    return (target / "corp_lib.py").read_text().strip()


def assert_only_valid_tokens(index: FakePyPIIndex) -> None:
    attempts = [attempt for attempt in index.attempts if attempt.token]
    assert attempts, f"the tool never authenticated: {index.attempts}"
    assert all(attempt.valid and attempt.username == "aws" for attempt in attempts)


# -- keyring: pip and uv ------------------------------------------------------------------------


def test_keyring_recipe_pip_and_uv(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    recipe = recipes.KEYRING
    for file in recipe.files:
        write(user, file, index.url)
    pip_line, uv_line = commands(recipe, index.url)
    assert "@" not in recipe.file("pip.conf").text.partition("index-url")[2].split("\n")[0]
    env = {**tool_env(user), "PIP_CONFIG_FILE": str(user.project / "pip.conf")}

    pip = sh(user, f"{pip_line} --no-cache-dir --target {user.root / 'pip'}", env)
    uv = sh(
        user, f"{uv_line} --no-cache --target {user.root / 'uv'} --python {sys.executable}", env
    )

    assert pip.returncode == 0, output(pip)
    assert uv.returncode == 0, output(uv)
    assert installed(user.root / "pip") == installed(user.root / "uv") == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)
    assert fake.call_count == 1  # one token for both tools, from the daemon


# -- pnpm --------------------------------------------------------------------------------------


@pytest.fixture
def registry(fake: FakeCodeArtifact) -> Iterator[FakeNpmRegistry]:
    with FakeNpmRegistry(fake) as server:
        server.add(build_package("corp-widget", "1.0.0", "module.exports = 'widget 1.0.0';\n"))
        fake.repository_base_url = server.url
        yield server


def test_pnpm_recipe(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    pnpm = shutil.which("pnpm")
    if pnpm is None:
        pytest.skip("pnpm is not installed (npm install -g pnpm)")
    for file in recipes.PNPM.files:
        write(user, file, registry.url)
    user.write(
        "work/project/package.json",
        '{"name": "app", "version": "1.0.0", "private": true,'
        ' "dependencies": {"corp-widget": "1.0.0"}}\n',
    )
    [command] = commands(recipes.PNPM, registry.url)

    result = sh(user, f"{command} --store-dir {user.root / 'pnpm-store'}")

    assert result.returncode == 0, output(result)
    widget = user.project / "node_modules" / "corp-widget" / "index.js"
    assert widget.read_text() == "module.exports = 'widget 1.0.0';\n"
    assert registry.attempts and all(attempt.valid for attempt in registry.attempts)


# -- Docker: the shape, and the step's shell line ------------------------------------------------


def test_docker_recipe_passes_the_token_as_a_secret_only() -> None:
    recipe = recipes.DOCKER
    dockerfile = recipe.file("Dockerfile").text
    lines = dockerfile.replace("\\\n", " ").splitlines()
    [command] = commands(recipe, "https://x")

    assert lines[0] == "# syntax=docker/dockerfile:1"  # BuildKit's RUN --mount
    uses = [line for line in lines if "/run/secrets/codeartifact" in line]
    assert uses and all(
        line.startswith("RUN --mount=type=secret,id=codeartifact ") for line in uses
    )
    for line in lines:
        instruction = line.split(" ", 1)[0].upper()
        if instruction in ("ARG", "ENV", "LABEL"):
            assert not re.search("TOKEN|CODEARTIFACT|SECRET|INDEX_URL", line, re.IGNORECASE), line
    assert "--build-arg" not in command
    assert "--secret id=codeartifact,env=CODEARTIFACT_AUTH_TOKEN" in command
    assert command.startswith("DOCKER_BUILDKIT=1 wev docker build ")


def test_docker_recipe_step_installs_with_the_secret_file(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """The RUN step's shell line, with the secret where BuildKit puts it: a tmpfs file at
    /run/secrets/codeartifact (here in a private mount namespace), the token from wev."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare --mount for a private /run")
    if subprocess.run(["unshare", "--mount", "true"], timeout=10).returncode:
        pytest.skip("no private mount namespace here (no CAP_SYS_ADMIN)")
    recipe = recipes.DOCKER
    write(user, recipe.file("wev.yml"), index.url)
    # The index is plain HTTP; the Dockerfile's one URL is the repository's.
    dockerfile = recipe.file("Dockerfile").pointed_at(index.url).replace("https://", "http://")
    text = dockerfile.replace("\\\n", " ")
    [run] = [line for line in text.splitlines() if line.startswith("RUN ")]
    step = run.split(" ", 2)[2]  # after RUN --mount=...
    secret = (
        "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0700 /run/secrets && "
        'printf %s "$CODEARTIFACT_AUTH_TOKEN" > /run/secrets/codeartifact && '
        "unset CODEARTIFACT_AUTH_TOKEN && "
    )
    target = user.root / "image"
    script = f"{secret}{step} --target {target}"

    result = sh(user, f"{WEV} unshare --mount sh -c '{script}'")

    assert result.returncode == 0, output(result)
    assert installed(target) == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)


# -- GitHub Actions with OIDC ------------------------------------------------------------------


def test_github_actions_recipe_shape() -> None:
    workflow = yaml.safe_load(recipes.GITHUB_ACTIONS.file(".github/workflows/build.yml").text)

    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["build"]["steps"]
    [configure] = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws")]
    assert configure["with"]["role-to-assume"].startswith("arn:aws:iam::")
    assert configure["with"]["aws-region"]
    assert steps.index(configure) < len(steps) - 1
    assert steps[-1]["run"].startswith("WEV_NO_DAEMON=1 wev ")
    text = yaml.safe_dump(workflow)
    assert "secrets." not in text and "aws-access-key-id" not in text  # no stored keys


def test_github_actions_recipe_step_with_the_roles_session(user: User, tmp_path: Path) -> None:
    """The job's last step as it runs after configure-aws-credentials: the role's session
    (here from the stand-in STS, for the web identity token) in the environment, no daemon."""
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    workflow = yaml.safe_load(recipes.GITHUB_ACTIONS.file(".github/workflows/build.yml").text)
    steps = workflow["jobs"]["build"]["steps"]
    role = next(s for s in steps if "with" in s)["with"]
    keys = dict(CREDENTIALS)  # CodeArtifact accepts the sessions STS issues
    with (
        FakeSts(keys, issued=keys) as sts,
        FakeCodeArtifact(keys) as codeartifact,
        FakePyPIIndex(user.root / "index", codeartifact) as index,
    ):
        build_wheel(user.root / "index", "corp-lib", "1.2.3")
        codeartifact.repository_base_url = index.url
        # What the action does with GitHub's OIDC token.
        client = botocore.session.Session().create_client(
            "sts",
            region_name=role["aws-region"],
            endpoint_url=sts.url,
            config=Config(signature_version=UNSIGNED),
        )
        session = client.assume_role_with_web_identity(
            RoleArn=role["role-to-assume"],
            RoleSessionName="GitHubActions",
            WebIdentityToken=sts.web_identity_token,
        )["Credentials"]
        write(user, recipes.PIP.file("wev.yml"), index.url)
        env = {
            **tool_env(user),
            "AWS_ENDPOINT_URL_CODEARTIFACT": codeartifact.url,
            "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
            "AWS_SESSION_TOKEN": session["SessionToken"],
            "AWS_REGION": role["aws-region"],
            "AWS_DEFAULT_REGION": role["aws-region"],
        }
        step = f"{steps[-1]['run']} --no-cache-dir --target {user.root / 'ci'}"

        result = sh(user, step, env)

        assert result.returncode == 0, output(result)
        assert installed(user.root / "ci") == 'VERSION = "1.2.3"'
        assert {call.access_key_id for call in codeartifact.calls} == {session["AccessKeyId"]}
        assert all(call.signature_valid for call in codeartifact.calls)
        assert not Path(user.socket).exists(), "WEV_NO_DAEMON=1 starts no daemon"


# -- Dev containers and Remote-SSH ---------------------------------------------------------------


def test_remote_note_names_the_sockets_wev_uses() -> None:
    note = recipes.REMOTE.intro
    assert "$XDG_RUNTIME_DIR/wev/daemon.sock" in note
    assert "/tmp/runtime-<uid>/wev/daemon.sock" in note
    assert recipes.REMOTE.command == "" and recipes.REMOTE.files == ()
