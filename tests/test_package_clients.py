"""Every package client a CodeArtifact user has, end to end through the real ``wev``.

Each test writes a README recipe (``tests/recipes.py``) into the project, points its host at a
local private index, and runs the recipe's command with the real tool. The index (PEP 503 for the
Python tools, an npm registry stub for npm) accepts only a token that the test's fake CodeArtifact
endpoint issued and that is still valid, and the package installed is one the test built. The
fake's ``GetRepositoryEndpoint`` answers with the index's address, so URLs come from wev.

The tools come from the ``[test]`` extra (pip, pipenv, uv, poetry, twine) and from the machine's
Node.js (npm). pip, pipenv, uv and npm must run; a missing poetry or twine is skipped, by name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import recipes
from conftest import BIN, DEFAULT_KEY, WORK_KEY, Daemon, User, output
from fakes.codeartifact import FakeCodeArtifact
from fakes.npm_registry import FakeNpmRegistry, build_package
from fakes.pypi_index import FakePyPIIndex
from fakes.wheels import build_wheel
from recipes import Recipe
from tools import isolated_env

from wev_daemon import aws
from wev_daemon.plugins import Context, PropertyError, awscodeartifact
from wev_daemon.plugins.awscodeartifact import CodeArtifactPlugin, Settings, index_url

#: Bound on one tool run; each takes a few seconds here.
TOOL_TIMEOUT = 120.0
README = Path(__file__).resolve().parent.parent / "README.md"


def tool(name: str, *, must_run: bool = True) -> str:
    """The tool's path; a missing one fails the test, or skips it with the reason."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    if found is None:
        reason = f"{name} is not installed (pip install -e '.[test]' brings it)"
        if must_run:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def tool_env(user: User) -> dict[str, str]:
    """The tools' settings: isolated from this machine's configuration, caches under the root."""
    return {
        **isolated_env(user),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "PIPENV_VENV_IN_PROJECT": "1",
        "PIPENV_IGNORE_VIRTUALENVS": "1",
        "PIPENV_NOSPIN": "1",
        "PIPENV_YES": "1",
        "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        "POETRY_NO_INTERACTION": "1",
        "npm_config_cache": str(user.root / "npm-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
    }


def write_recipe(user: User, recipe: Recipe, base_url: str) -> None:
    """The recipe's files in the project, its host pointed at ``base_url``."""
    for file in recipe.files:
        path = user.project / file.name
        with path.open("a") as out:  # pyproject.toml: the recipe's table after the project's
            out.write(file.pointed_at(base_url))


def run_recipe(
    user: User, recipe: Recipe, extra: str = "", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The recipe's command as a user types it (a shell expands ``dist/*``), plus ``extra``."""
    return subprocess.run(
        ["sh", "-c", f"{recipe.command} {extra}"],
        cwd=user.project,
        env={**user.env, **tool_env(user), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def assert_only_valid_tokens(index: FakePyPIIndex) -> None:
    attempts = [attempt for attempt in index.attempts if attempt.token is not None]
    assert attempts, "the tool never authenticated"
    assert all(attempt.valid for attempt in attempts)


# -- the tools -------------------------------------------------------------------------------


def test_pip_install_via_pip_index_url(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("pip")
    write_recipe(user, recipes.PIP, index.url)
    target = user.root / "target"

    result = run_recipe(user, recipes.PIP, f"--no-cache-dir --target {target}")

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)
    assert (fake.call_count, fake.endpoint_call_count) == (1, 1)


def test_pipenv_install_reads_the_token_in_the_pipfile(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """The seed scenario: a shared wev.yml with the domain, and a Pipfile that names the token."""
    tool("pipenv")
    write_recipe(user, recipes.PIPENV, index.url)

    result = run_recipe(user, recipes.PIPENV)

    assert result.returncode == 0, output(result)
    site = next((user.project / ".venv" / "lib").glob("python3*/site-packages"))
    assert (site / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert "${CODEARTIFACT_AUTH_TOKEN}" in (user.project / "Pipfile.lock").read_text()
    assert_only_valid_tokens(index)
    assert (fake.call_count, fake.endpoint_call_count) == (1, 0)
    # pipenv keeps its resolver requests, the token expanded in the source URL, in TMPDIR (the
    # README's recipe says so and points to the loopback URL); nothing else may hold it.
    for left in user.tmp.glob("pipenv-re*-*.json"):
        left.unlink()


def test_uv_pip_install_via_uv_index_url(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("uv")
    write_recipe(user, recipes.UV, index.url)
    target = user.root / "target"

    result = run_recipe(user, recipes.UV, f"--target {target} --python {BIN / 'python'}")

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)


POETRY_PROJECT = """\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["corp-lib"]

[tool.poetry]
package-mode = false

"""


def test_poetry_install_via_http_basic_variables(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("poetry", must_run=False)
    (user.project / "pyproject.toml").write_text(POETRY_PROJECT)
    write_recipe(user, recipes.POETRY, index.url)

    result = run_recipe(user, recipes.POETRY)

    assert result.returncode == 0, output(result)
    site = next((user.project / ".venv" / "lib").glob("python3*/site-packages"))
    assert (site / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_only_valid_tokens(index)
    assert all(a.username == "aws" for a in index.attempts if a.token is not None)


def test_twine_upload_then_pip_install_it(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("twine", must_run=False)
    tool("pip")
    build_wheel(user.project / "dist", "corp-tool", "2.0.0")
    write_recipe(user, recipes.TWINE, index.url)

    result = run_recipe(user, recipes.TWINE, "--non-interactive --disable-progress-bar")

    assert result.returncode == 0, output(result)
    [upload] = index.uploads
    assert (upload.filename, upload.version) == ("corp_tool-2.0.0-py3-none-any.whl", "2.0.0")
    assert [a.path for a in index.attempts] == ["/pypi/shared/"]
    assert_only_valid_tokens(index)

    # What twine uploaded, pip installs from the same repository.
    (user.project / "wev.yml").unlink()
    write_recipe(user, recipes.PIP, index.url)
    target = user.root / "target"
    installed = subprocess.run(
        ["sh", "-c", f"wev pip install corp-tool --no-cache-dir --target {target}"],
        cwd=user.project,
        env={**user.env, **tool_env(user)},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert installed.returncode == 0, output(installed)
    assert (target / "corp_tool.py").read_text().strip() == 'VERSION = "2.0.0"'


@pytest.fixture
def registry(fake: FakeCodeArtifact) -> Iterator[FakeNpmRegistry]:
    """The private npm registry holding corp-widget 1.0.0; CodeArtifact's endpoints point at it."""
    with FakeNpmRegistry(fake) as server:
        server.add(build_package("corp-widget", "1.0.0", "module.exports = 'widget 1.0.0';\n"))
        fake.repository_base_url = server.url
        yield server


PACKAGE_JSON = '{"name": "app", "version": "1.0.0", "private": true,'
PACKAGE_JSON += ' "dependencies": {"corp-widget": "1.0.0"}}\n'


def test_npm_install_via_npmrc(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    tool("npm")
    (user.project / "package.json").write_text(PACKAGE_JSON)
    write_recipe(user, recipes.NPM, registry.url)

    result = run_recipe(user, recipes.NPM)

    assert result.returncode == 0, output(result)
    required = subprocess.run(
        ["node", "-p", "require('corp-widget')"],
        cwd=user.project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert required.stdout.strip() == "widget 1.0.0", required.stderr
    attempts = registry.attempts
    assert {a.path for a in attempts} == {
        "/npm/shared/corp-widget",
        "/npm/shared/corp-widget/-/corp-widget-1.0.0.tgz",
    }
    assert all(a.valid for a in attempts)
    assert (fake.call_count, fake.endpoint_call_count) == (1, 1)


def test_npm_is_refused_without_wev(
    user: User, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    """The registry really checks the token: the same project without wev fails."""
    tool("npm")
    (user.project / "package.json").write_text(PACKAGE_JSON)
    write_recipe(user, recipes.NPM, registry.url)

    result = subprocess.run(
        ["npm", "install", "--registry", registry.registry_url("shared")],
        cwd=user.project,
        env={**user.env, **tool_env(user), "CODEARTIFACT_AUTH_TOKEN": "eyJnot-a-token"},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode != 0
    assert "E401" in result.stderr or "401" in result.stderr, result.stderr
    assert not (user.project / "node_modules" / "corp-widget").exists()


# -- the plugin's repository URLs ------------------------------------------------------------

BOTH_FORMATS = textwrap.dedent(
    """\
    [TOKEN, INDEX, ENDPOINT, USER]:
      plugin:
        id: wev-awscodeartifact
        domain: corp
        repository: shared
        format: pypi
        values: [token, index_url, endpoint, username]
    [NPM_TOKEN, NPM_REGISTRY]:
      plugin:
        id: wev-awscodeartifact
        domain: corp
        repository: shared
        format: npm
    """
)
PRINT_ALL = ("sh", "-c", 'printf "%s\\n" "$TOKEN" "$INDEX" "$ENDPOINT" "$USER" "$NPM_REGISTRY"')


def test_one_block_sets_the_token_and_the_repository_urls(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    fake.repository_base_url = "https://corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com"
    user.write("work/project/wev.yml", BOTH_FORMATS)

    result = user.wev(*PRINT_ALL)

    assert result.returncode == 0, result.stderr
    token, index, endpoint, username, npm_registry = result.stdout.splitlines()
    host = "corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com"
    assert fake.is_valid_token(token)
    assert index == f"https://aws:{token}@{host}/pypi/shared/simple/"
    assert endpoint == f"https://{host}/pypi/shared/"
    assert username == "aws"
    assert npm_registry == f"https://{host}/npm/shared/"
    # Two blocks asking at once share one token call; each repository's endpoint is asked once.
    assert fake.call_count == 1
    calls = [c for c in fake.calls if c.operation == "GetRepositoryEndpoint"]
    assert sorted((c.domain, c.repository) for c in calls) == [("corp", "shared")] * 2


def test_endpoints_are_kept_while_tokens_are_renewed(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", BOTH_FORMATS)
    fake.set_lifetime(3)  # the daemon renews the tokens after 75% of that

    first = user.wev(*PRINT_ALL)
    assert first.returncode == 0, first.stderr
    assert fake.wait_for_call_count(2, timeout=10), "the tokens were not renewed"
    second = user.wev(*PRINT_ALL)

    assert second.returncode == 0, second.stderr
    old_token, new_token = first.stdout.split()[0], second.stdout.split()[0]
    assert old_token != new_token and fake.is_valid_token(new_token)
    assert new_token in second.stdout.split()[1], "the index URL carries the new token"
    assert fake.endpoint_call_count == 2  # still one per repository format


def test_endpoints_are_asked_once_per_identity(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", BOTH_FORMATS)

    for _ in range(3):
        assert user.wev(*PRINT_ALL).returncode == 0
    assert user.wev(*PRINT_ALL, env={"AWS_PROFILE": "work"}).returncode == 0

    endpoint_keys = [
        str(c.access_key_id) for c in fake.calls if c.operation == "GetRepositoryEndpoint"
    ]
    assert sorted(endpoint_keys) == sorted([DEFAULT_KEY] * 2 + [WORK_KEY] * 2)
    assert fake.call_count == 2  # one token per identity


def test_an_endpoint_error_is_one_clear_line(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", BOTH_FORMATS)
    fake.fail_with(404, "ResourceNotFoundException", "Repository shared not found", times=None)

    result = user.wev("true")

    assert result.returncode == 69
    [line] = result.stderr.splitlines()
    assert "ResourceNotFoundException: Repository shared not found" in line


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("    repository: shared\n", "'repository' and 'format' go together"),
        ("    format: pypi\n", "'repository' and 'format' go together"),
        ("    values: [index_url]\n", "index_url needs 'repository' and 'format'"),
        (
            "    repository: shared\n    format: npm\n    values: [index_url]\n",
            "index_url is for format pypi, not npm",
        ),
        ("    values: [password]\n", "unknown value 'password'"),
        ("    values: []\n", "'values' must be a list of"),
    ],
)
def test_bad_repository_settings_are_config_errors(
    user: User, properties: str, message: str
) -> None:
    user.write(
        "work/project/wev.yml",
        "A:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n" + properties,
    )

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    assert message in result.stderr and "wev.yml" in result.stderr


def test_a_two_name_key_without_values_is_token_and_url() -> None:
    plugin = CodeArtifactPlugin()

    plain = plugin.parse({"domain": "corp"})
    pypi = plugin.parse({"domain": "corp", "repository": "shared", "format": "PyPI"})
    npm = plugin.parse({"domain": "corp", "repository": "shared", "format": "npm"})

    assert plain == Settings("corp", None, None, None, 43200)  # earlier configs: unchanged
    assert pypi.values == ("token", "index_url") and pypi.format == "pypi"
    assert npm.values == ("token", "endpoint")
    assert [plugin.value_count(s) for s in (plain, pypi, npm)] == [1, 2, 2]
    assert plugin.parse({"domain": "corp", "values": "username"}).values == ("username",)
    with pytest.raises(PropertyError, match="'values' must be a list"):
        plugin.parse({"domain": "corp", "values": {"token": 1}})


def test_index_url_quotes_the_token_and_adds_simple() -> None:
    assert (
        index_url("https://h.example/pypi/shared/", "a/b:c@d")
        == "https://aws:a%2Fb%3Ac%40d@h.example/pypi/shared/simple/"
    )
    assert index_url("http://127.0.0.1:9/pypi/r", "t") == "http://aws:t@127.0.0.1:9/pypi/r/simple/"


class CountingFetches:
    """Stand-ins for the two AWS calls: count them, wait for a gate, fail on demand."""

    def __init__(self) -> None:
        self.tokens = 0
        self.endpoints = 0
        self.gate = asyncio.Event()
        self.fail = False

    async def token(self, settings: Settings, context: Context) -> tuple[str, dt.datetime]:
        self.tokens += 1
        await self.gate.wait()
        if self.fail:
            raise aws.FetchError("CodeArtifact token: down", transient=True)
        return f"token-{self.tokens}", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    async def endpoint(self, settings: Settings, context: Context) -> str:
        self.endpoints += 1
        await self.gate.wait()
        if self.fail:
            raise aws.FetchError("CodeArtifact endpoint: down", transient=True)
        return "https://host.example/pypi/shared/"


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> CountingFetches:
    counting = CountingFetches()
    monkeypatch.setattr(awscodeartifact.calls, "fetch_token", counting.token)
    monkeypatch.setattr(awscodeartifact.calls, "fetch_endpoint", counting.endpoint)
    return counting


async def test_blocks_asking_at_once_share_an_endpoint_call_and_survive_a_cancelled_one(
    fetches: CountingFetches,
) -> None:
    # The token is the cache's to share (one entry per identity); the endpoints the
    # blocks present it with are the plugin's, one call per repository and format.
    plugin = CodeArtifactPlugin()
    context = Context({"AWS_PROFILE": "work"})
    pypi = plugin.parse({"domain": "corp", "repository": "shared", "format": "pypi"})
    npm = plugin.parse({"domain": "corp", "repository": "shared", "format": "npm"})
    fetches.gate.set()
    token = await plugin.resolve(pypi, context)
    fetches.gate.clear()

    first = asyncio.create_task(plugin.present(pypi, context, token))
    second = asyncio.create_task(plugin.present(npm, context, token))
    given_up = asyncio.create_task(plugin.present(pypi, context, token))
    for _ in range(5):  # until every waiter awaits the shared calls
        await asyncio.sleep(0)
    given_up.cancel()  # the cache gave up on one waiter: the others still get the answer
    fetches.gate.set()
    a, b = await first, await second

    assert a.values[0] == b.values[0] == "token-1"
    assert a.values[1] == "https://aws:token-1@host.example/pypi/shared/simple/"
    assert (fetches.tokens, fetches.endpoints) == (1, 2)  # one per format
    assert given_up.cancelled()


async def test_endpoints_are_kept_and_failures_are_not(fetches: CountingFetches) -> None:
    plugin = CodeArtifactPlugin()
    context = Context({})
    pypi = plugin.parse({"domain": "corp", "repository": "shared", "format": "pypi"})
    fetches.gate.set()
    token = await plugin.resolve(pypi, context)
    fetches.fail = True

    with pytest.raises(aws.FetchError, match="down"):
        await plugin.present(pypi, context, token)
    fetches.fail = False
    first = await plugin.present(pypi, context, token)
    second = await plugin.present(pypi, context, token)

    assert first.values == second.values
    assert fetches.endpoints == 2  # the failed one, then one kept for good


# -- the README ------------------------------------------------------------------------------


def test_readme_recipes_are_the_tested_ones() -> None:
    text = README.read_text()
    start = text.find("\n## Recipes\n")
    if start < 0:
        pytest.skip("README.md has no '## Recipes' section yet: paste `python tests/recipes.py`")
    end = text.find("\n## ", start + 1)
    section = text[start + 1 : end + 1 if end >= 0 else len(text)]
    assert section.strip() == recipes.readme_section().strip()
