"""The README's "Recipes": one block per package tool and shell, each run by the tests.

This module is the single source of those texts. ``tests/test_package_clients.py`` and
``tests/test_shell.py`` write each recipe's files as they are here (only the CodeArtifact host is
pointed at the local stand-ins) and run its command through the real tool;
``test_readme_recipes_are_the_tested_ones`` checks that the README shows exactly
``readme_section()``. Print it with ``python tests/recipes.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The example host in the README; tests replace it with the local index or registry.
HOST = "corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com"


@dataclass(frozen=True)
class File:
    name: str
    language: str
    text: str

    def block(self) -> str:
        return f"```{self.language}\n{self.text}```\n"

    def pointed_at(self, base_url: str) -> str:
        """The text with the example host replaced by ``base_url`` (``http://127.0.0.1:PORT``)."""
        scheme, _, host = base_url.partition("://")
        with_scheme = re.sub(
            rf"https://([^/\s\"]*@)?{re.escape(HOST)}", rf"{scheme}://\1{HOST}", self.text
        )
        return with_scheme.replace(HOST, host)


@dataclass(frozen=True)
class Recipe:
    title: str
    intro: str
    files: tuple[File, ...]
    command: str
    note: str = ""

    def file(self, name: str) -> File:
        return next(f for f in self.files if f.name == name)

    def markdown(self) -> str:
        parts = [f"### {self.title}\n", f"{self.intro}\n"]
        parts.extend(f.block() for f in self.files)
        parts.append(f"```sh\n{self.command}\n```\n")
        if self.note:
            parts.append(f"{self.note}\n")
        return "\n".join(parts)


def _wev_yml(key: str, *extra: str) -> File:
    lines = [
        "# wev.yml",
        f"{key}:",
        "  plugin:",
        "    id: wev-awscodeartifact",
        "    domain: corp",
        *extra,
    ]
    return File("wev.yml", "yaml", "\n".join(lines) + "\n")


PYPI = ("    repository: shared", "    format: pypi")

PIP = Recipe(
    "pip",
    "wev sets the token and pip's index URL, `https://aws:TOKEN@…/pypi/shared/simple/`:",
    (_wev_yml("[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL]", *PYPI),),
    "wev pip install corp-lib",
)

PIPENV = Recipe(
    "pipenv",
    "The Pipfile reads the token (pipenv expands `${NAME}` in source URLs):",
    (
        _wev_yml("CODEARTIFACT_AUTH_TOKEN"),
        File(
            "Pipfile",
            "toml",
            "# Pipfile\n"
            "[[source]]\n"
            f'url = "https://aws:${{CODEARTIFACT_AUTH_TOKEN}}@{HOST}/pypi/shared/simple/"\n'
            "verify_ssl = true\n"
            'name = "corp"\n'
            "\n"
            "[packages]\n"
            'corp-lib = "*"\n',
        ),
    ),
    "wev pipenv install",
)

UV = Recipe(
    "uv",
    "wev sets uv's index URL, token included:",
    (_wev_yml("UV_INDEX_URL", *PYPI, "    values: [index_url]"),),
    "wev uv pip install corp-lib",
)

POETRY = Recipe(
    "Poetry",
    "The source is declared in `pyproject.toml`; wev sets its credentials "
    "(`POETRY_HTTP_BASIC_<SOURCE>_…`, the source name in capitals):",
    (
        _wev_yml(
            "[POETRY_HTTP_BASIC_CORP_USERNAME, POETRY_HTTP_BASIC_CORP_PASSWORD]",
            "    values: [username, token]",
        ),
        File(
            "pyproject.toml",
            "toml",
            "# pyproject.toml\n"
            "[[tool.poetry.source]]\n"
            'name = "corp"\n'
            f'url = "https://{HOST}/pypi/shared/simple/"\n'
            'priority = "primary"\n',
        ),
    ),
    "wev poetry install",
)

TWINE = Recipe(
    "twine",
    "wev sets twine's user name, password and repository URL (the repository endpoint):",
    (
        _wev_yml(
            "[TWINE_USERNAME, TWINE_PASSWORD, TWINE_REPOSITORY_URL]",
            *PYPI,
            "    values: [username, token, endpoint]",
        ),
    ),
    "wev twine upload dist/*",
)

NPM = Recipe(
    "npm",
    "wev sets the token and npm's registry (the plain endpoint); `.npmrc` gives npm the token "
    "for that registry:",
    (
        _wev_yml(
            "[CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]",
            "    repository: shared",
            "    format: npm",
        ),
        File(
            ".npmrc",
            "ini",
            f"# .npmrc\n//{HOST}/npm/shared/:_authToken=${{CODEARTIFACT_AUTH_TOKEN}}\n",
        ),
    ),
    "wev npm install",
)

PACKAGE_TOOLS = (PIP, PIPENV, UV, POETRY, TWINE, NPM)

DIRENV = Recipe(
    "direnv",
    "direnv loads the variables when you enter the folder, and again when `wev.yml` changes:",
    (File(".envrc", "sh", '# .envrc\nwatch_file wev.yml wev.user.yml\neval "$(wev --export)"\n'),),
    "direnv allow",
    "direnv keeps the values until it reloads, while the daemon renews tokens ahead of expiry: "
    "run `direnv reload` after a token has expired, or prefer `wev COMMAND`.",
)

SHELLS = Recipe(
    "Other shells and formats",
    "`--export` prints the variables for a shell or a file; `--format` picks the form "
    "(`sh`, the default, for sh, bash and zsh):",
    (),
    'eval "$(wev --export)"                      # sh, bash, zsh\n'
    "wev --export --format fish | source         # fish\n"
    "wev --export --format dotenv > .env         # a .env file\n"
    "wev --export --format json                  # one JSON object",
    '`dotenv` writes `NAME=\'value\'`, or `NAME="value"` with `\\\\`, `\\"`, `\\n` and '
    "`\\r` escapes when the value holds a quote, a backslash or a line break; the tests read "
    "it back with python-dotenv, which expands `${NAME}` even inside quotes unless called "
    "with `interpolate=False` (tokens and URLs hold no `$`).",
)

SHELL_RECIPES = (DIRENV, SHELLS)

INTRO = """\
Each block below is run by wev's tests against the real tool, with a local
stand-in for CodeArtifact (`tests/test_package_clients.py`, `tests/test_shell.py`).
Replace `corp`, `shared` and the host with yours (`aws codeartifact
get-repository-endpoint --domain corp --repository shared --format pypi` prints
it). `values` names what each variable of the key receives, in order: `token`,
`username` (`aws`), `endpoint` (the repository URL) or `index_url` (PyPI:
the endpoint's `simple/` index with `aws:TOKEN@`). Without `values`, one name
gets the token, and two names with `repository` and `format` get the token and
the repository's URL (`index_url` for PyPI, `endpoint` for other formats).
Blocks for several tools can sit in one `wev.yml`: blocks resolved together
share one token call, and a name that two blocks set (`CODEARTIFACT_AUTH_TOKEN`
in the pip and npm recipes) gets a valid token from either.
"""


def readme_section() -> str:
    """The README's ``## Recipes`` section, up to the next ``## `` heading."""
    parts = ["## Recipes\n", INTRO]
    parts.extend(recipe.markdown() for recipe in (*PACKAGE_TOOLS, *SHELL_RECIPES))
    return "\n".join(parts)


if __name__ == "__main__":
    print(readme_section(), end="")
