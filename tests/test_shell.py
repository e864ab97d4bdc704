"""Shell integration: ``wev --export`` read back by real shells, python-dotenv, JSON and direnv.

Values are chosen to break naive quoting: quotes, ``$``, backticks, backslashes, line breaks,
unicode, an empty value. Each shell runs the README recipe's line (``tests/recipes.py``) and then
``env -0``, so what the shell really exported is compared, byte for byte. The shells and direnv
come from Debian (``.ci/run`` installs them); a missing one is skipped with the reason.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Mapping

import pytest
import recipes
from conftest import BIN, Daemon, User
from dotenv import dotenv_values
from fakes.codeartifact import FakeCodeArtifact

TRICKY = {
    "QUOTES": "it's \"quoted\" 'twice'",
    "DOLLAR": "$HOME $(id) `date` $$ $",
    "BRACES": "${HOME} ${UNSET:-default}",
    "BACKSLASH": "back\\slash \\n \\' \\\\ \\",
    "NEWLINES": "line one\nline two\r\n\n",
    "UNICODE": "héllo wörld ✓ 日本 \U0001f600",
    "EMPTY": "",
    "URL": "https://aws:eyJ.a-b_c~@corp-1.d.codeartifact.eu-west-1.amazonaws.com/pypi/shared/simple/",
}


def _recipe_lines() -> dict[str, str]:
    """Each line of the README's shell recipe, by format, without its comment."""
    lines = {}
    for line in recipes.SHELLS.command.splitlines():
        command = line.split("  #")[0].strip()
        words = command.split()
        lines[words[words.index("--format") + 1] if "--format" in words else "sh"] = command
    return lines


RECIPE_LINES = _recipe_lines()


def echo_config(values: Mapping[str, str]) -> str:
    # JSON strings are YAML double-quoted scalars: every value arrives exactly.
    quoted = {name: json.dumps(value, ensure_ascii=False) for name, value in values.items()}
    return "".join(
        f"{name}:\n  plugin:\n    id: wev-echo\n    value: {value}\n"
        for name, value in quoted.items()
    )


def shell_env(user: User) -> dict[str, str]:
    return {**user.env, "PATH": f"{BIN}{os.pathsep}{user.env['PATH']}"}


def exported_by(user: User, shell: str, script: str) -> dict[str, str]:
    """What ``shell -c 'SCRIPT; env -0'`` has in its environment afterwards."""
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed (apt-get install {shell}; .ci/run does)")
    result = subprocess.run(
        [found, "-c", f"{script}\nexec env -0"],
        cwd=user.project,
        env=shell_env(user),
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode()
    pairs = (item.partition(b"=") for item in result.stdout.split(b"\0") if item)
    return {name.decode(): value.decode() for name, _, value in pairs}


def test_the_recipe_lines_are_known() -> None:
    assert set(RECIPE_LINES) == {"sh", "fish", "dotenv", "json"}
    assert RECIPE_LINES["sh"] == 'eval "$(wev --export)"'


@pytest.mark.parametrize("shell", ["sh", "bash", "zsh"])
def test_sh_export_is_read_back_exactly_by_posix_shells(
    user: User, daemon: Daemon, shell: str
) -> None:
    user.write("work/project/wev.yml", echo_config(TRICKY))

    env = exported_by(user, shell, RECIPE_LINES["sh"])

    assert {name: env.get(name) for name in TRICKY} == TRICKY


def test_fish_export_is_read_back_exactly_by_fish(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config(TRICKY))

    env = exported_by(user, "fish", RECIPE_LINES["fish"])

    assert {name: env.get(name) for name in TRICKY} == TRICKY


def test_dotenv_export_is_read_back_by_python_dotenv(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config(TRICKY))

    result = subprocess.run(
        ["sh", "-c", RECIPE_LINES["dotenv"]],
        cwd=user.project,
        env=shell_env(user),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    text = (user.project / ".env").read_text()

    assert dotenv_values(stream=io.StringIO(text), interpolate=False) == TRICKY
    # Read as applications usually do, ${NAME} is expanded (python-dotenv has no escape for it).
    expanded = dotenv_values(stream=io.StringIO(text))
    assert {k: v for k, v in expanded.items() if k != "BRACES"} == {
        k: v for k, v in TRICKY.items() if k != "BRACES"
    }


def test_json_export_is_one_object(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config(TRICKY))

    result = subprocess.run(
        ["sh", "-c", RECIPE_LINES["json"]],
        cwd=user.project,
        env=shell_env(user),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == TRICKY
    assert result.stdout.count("\n") == 1


def test_a_name_a_shell_cannot_hold_is_exported_only_as_json(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config({"npm_config_//host/:_authToken": "t"}))

    refused = user.wev("--export", "--format", "fish")
    as_json = user.wev("--export", "--format=json")

    assert refused.returncode == 64 and refused.stdout == ""
    assert "not a shell variable name (use --format json)" in refused.stderr
    assert json.loads(as_json.stdout) == {"npm_config_//host/:_authToken": "t"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "json", "true"), "--format goes with --export"),
        (("--export", "--format", "csh"), "unknown format 'csh': use sh, fish, dotenv, json"),
        (("--export", "--format"), "--format needs a format: sh, fish, dotenv, json"),
        (("--status", "--format", "json"), "--format goes with --export"),
    ],
)
def test_format_usage_errors(user: User, args: tuple[str, ...], message: str) -> None:
    result = user.wev(*args)

    assert result.returncode == 64
    assert result.stderr == f"wev: {message}\n"


# -- direnv ------------------------------------------------------------------------------------

SHARED = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""


def direnv(user: User, *args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("direnv")
    if found is None:
        pytest.skip("direnv is not installed (apt-get install direnv; .ci/run does)")
    return subprocess.run(
        [found, *args],
        cwd=user.project,
        env={**shell_env(user), "XDG_DATA_HOME": str(user.root / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_direnv_recipe_loads_a_fresh_token(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    user.write("work/project/.envrc", recipes.DIRENV.file(".envrc").text)

    refused = direnv(user, "exec", ".", "sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
    allowed = direnv(user, *recipes.DIRENV.command.split()[1:])
    loaded = direnv(user, "exec", ".", "sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
    exported = direnv(user, "export", "json")

    assert refused.returncode != 0 and "is blocked" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert fake.is_valid_token(loaded.stdout)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["CODEARTIFACT_AUTH_TOKEN"] == loaded.stdout
    assert fake.call_count == 1


def test_direnv_reads_tricky_values_exactly(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config(TRICKY))
    user.write("work/project/.envrc", recipes.DIRENV.file(".envrc").text)
    assert direnv(user, "allow").returncode == 0

    exported = direnv(user, "export", "json")

    assert exported.returncode == 0, exported.stderr
    values = json.loads(exported.stdout)
    assert {name: values.get(name) for name in TRICKY} == TRICKY


def test_direnv_reloads_when_wev_yml_changes(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo_config({"GREETING": "hello"}))
    user.write("work/project/.envrc", recipes.DIRENV.file(".envrc").text)
    assert direnv(user, "allow").returncode == 0
    first = direnv(user, "export", "json")
    state = {k: v for k, v in json.loads(first.stdout).items() if k.startswith("DIRENV_")}

    user.write("work/project/wev.yml", echo_config({"GREETING": "hello again"}))
    os.utime(user.project / "wev.yml", (0, 2_000_000_000))  # a later mtime, whatever the clock
    again = subprocess.run(
        [str(shutil.which("direnv")), "export", "json"],
        cwd=user.project,
        env={
            **shell_env(user),
            "XDG_DATA_HOME": str(user.root / "data"),
            **state,  # what the shell would hold after the first load
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert json.loads(first.stdout)["GREETING"] == "hello"
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["GREETING"] == "hello again"
