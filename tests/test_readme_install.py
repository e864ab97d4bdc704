"""Every install line in the README installs this wev, never the package index's ``wev``.

The index's ``wev`` is the earlier 1.3.5: ``pip install wev`` (or
``uv tool install keyring --with wev``, ``pipx inject twine 'wev[keyring]'``,
``poetry self add wev``, ``- run: pip install wev`` in a workflow...) installs
that program. Each code block and code span of the README is read; an
install command whose package is ``wev`` by bare name (with extras or a
version, but no path, file or URL) fails the test.
"""

from __future__ import annotations

import re
import shlex

import pytest
from readme import code_blocks, inline_code

#: Words that start an install and how many words name where, not what (pipx inject's venv).
INSTALLERS = (
    (("pip", "install"), 0),
    (("pip3", "install"), 0),
    (("uv", "pip", "install"), 0),
    (("uv", "tool", "install"), 0),
    (("uv", "add"), 0),
    (("uvx",), 0),
    (("pipx", "install"), 0),
    (("pipx", "run"), 0),
    (("pipx", "inject"), 1),
    (("poetry", "add"), 0),
    (("poetry", "self", "add"), 0),
    (("pipenv", "install"), 0),
)
#: Options whose value is a package to install as well.
PACKAGE_OPTIONS = ("--with", "-w", "--from", "--spec")
#: ``wev`` by name: with extras and a version at most.
BARE_WEV = re.compile(r"^wev(\[[^\]]*\])?\s*([<>=!~].*)?$", re.IGNORECASE)
SEPARATORS = ("&&", "||", ";", "|")


def commands(text: str) -> list[list[str]]:
    """The shell commands of ``text``: continued lines joined, ``- run:`` and prompts dropped."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        line = re.sub(r"^\s*(-\s*run:|\$)\s*", "", line)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word in SEPARATORS:
                if command:
                    found.append(command)
                command = []
            else:
                command.append(word)
    return found


def bare_wev_installs(text: str) -> list[str]:
    """Each install of ``wev`` by bare name in ``text``."""
    found: list[str] = []
    for words in commands(text):
        while words and ("=" in words[0] and not words[0].startswith("-")):
            words = words[1:]  # VAR=value before the command
        if words[:3] == ["python", "-m", "pip"] or words[:3] == ["python3", "-m", "pip"]:
            words = ["pip", *words[3:]]
        for verb, skipped in INSTALLERS:
            if tuple(words[: len(verb)]) != verb:
                continue
            packages: list[str] = []
            rest = words[len(verb) :]
            positional = 0
            index = 0
            while index < len(rest):
                word = rest[index]
                option, equals, value = word.partition("=")
                if option in PACKAGE_OPTIONS:
                    if not equals:
                        index += 1
                        value = rest[index] if index < len(rest) else ""
                    packages.extend(value.split(","))
                elif not word.startswith("-"):
                    if positional >= skipped:
                        packages.append(word)
                    positional += 1
                index += 1
            found.extend(" ".join(words) for package in packages if BARE_WEV.match(package.strip()))
            break
    return found


def test_no_line_of_the_readme_installs_the_index_wev() -> None:
    texts = [*code_blocks(), *inline_code()]

    wrong = [install for text in texts for install in bare_wev_installs(text)]

    assert wrong == [], "these install the package index's wev 1.3.5, not this one"


@pytest.mark.parametrize(
    "line",
    [
        "pip install wev",
        "pip install 'wev[keyring]'",
        "python -m pip install --upgrade wev==2.0.0",
        "uv tool install keyring --with wev",
        "uv tool install keyring --with=keyring-foo,wev",
        "pipx install wev",
        "pipx inject twine 'wev[keyring]'",
        "poetry self add 'wev[keyring]'",
        "      - run: pip install wev",
        "cd x && pip install -q wev",
        "uvx wev --version",
        "uv tool install --from 'wev>=2' wev",
    ],
)
def test_each_way_to_install_the_index_wev_is_found(line: str) -> None:
    assert bare_wev_installs(line) != []


@pytest.mark.parametrize(
    "line",
    [
        "uv tool install .",
        "pipx install dist/wev-2.0.0-py3-none-any.whl",
        "pip install 'wev[keyring] @ git+https://github.com/OWNER/wev'",
        "uv tool install keyring --with 'wev @ git+https://github.com/OWNER/wev'",
        "pipx inject wev ./wev-example",
        "pipx uninstall wev",
        "pip uninstall wev wev-awscodeartifact",
        "wev pip install corp-lib",
        "pip install corp-lib",
        "uv tool install 'git+https://github.com/OWNER/wev'",
    ],
)
def test_installing_this_wev_or_something_else_is_not_flagged(line: str) -> None:
    assert bare_wev_installs(line) == []
