"""``${NAME}`` in a command's arguments: a value is pasted as text, never as code.

The real ``wev`` with the real daemon; a ``wev-echo`` value that is a shell injection
(``s3cr3t'$(id -un)``) must come out literally wherever it goes.
"""

from __future__ import annotations

import sys

from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact

HOSTILE = "s3cr3t'$(id -un)"
CONFIG = (
    'DB_PASSWORD:\n  plugin:\n    id: wev-echo\n    value: "s3cr3t\'$(id -un)"\n'
    "TOKEN:\n  plugin:\n    id: wev-echo\n    value: eyJ0b2tlbg-_.~+/=:,%\n"
    "DASHED:\n  plugin:\n    id: wev-echo\n    value: --upload-pack=touch\n"
)
PRINT = 'printf "%s\\n" "${DB_PASSWORD}"'


def test_a_shell_script_sees_the_value_literally(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", CONFIG)

    for shell in ("sh", "bash", "/bin/sh", "dash"):
        result = user.wev(shell, "-c", PRINT)

        assert result.returncode == 0, result.stderr
        assert result.stdout == HOSTILE + "\n", shell
        assert result.stderr == "", "a shell's arguments are left alone, with no warning"


def test_a_shell_behind_a_wrapper_sees_the_value_literally(user: User, daemon: Daemon) -> None:
    """``env``, ``sudo``, ``xargs`` ... hide the shell: the value is refused for not being inert."""
    user.write("work/project/wev.yml", CONFIG)

    result = user.wev("env", "sh", "-c", PRINT)

    assert result.stdout == HOSTILE + "\n"
    [warning] = result.stderr.splitlines()
    assert warning.startswith("wev: warning: ${DB_PASSWORD} is left as it is")
    assert HOSTILE not in result.stderr


def test_a_value_that_is_not_inert_is_never_pasted(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", CONFIG)
    marker = user.root / "ran"
    code = f'print("${{DB_PASSWORD}}"); open("{marker}", "w")'

    printed = user.wev("printf", "%s|%s", "${DB_PASSWORD}", "x${DB_PASSWORD}")
    python = user.wev(sys.executable, "-c", code)

    assert printed.stdout == "${DB_PASSWORD}|x${DB_PASSWORD}"
    assert printed.stderr.count("\n") == 1, "one warning per variable"
    assert python.stdout == "${DB_PASSWORD}\n"
    assert marker.exists(), "the code ran as written, with the text left in place"


def test_a_token_is_pasted_where_no_shell_reads_it(user: User, daemon: Daemon) -> None:
    """The README's ``wev pip install --index-url 'https://aws:${TOKEN}@...'`` keeps working."""
    user.write("work/project/wev.yml", CONFIG)

    result = user.wev("printf", "%s", "https://aws:${TOKEN}@host/simple/")

    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "https://aws:eyJ0b2tlbg-_.~+/=:,%@host/simple/"


def test_a_value_never_becomes_an_option(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", CONFIG)

    result = user.wev("printf", "%s|%s", "${DASHED}", "--url=${DASHED}")

    assert result.stdout == "${DASHED}|--url=--upload-pack=touch"
    assert "${DASHED} is left as it is" in result.stderr


def test_a_codeartifact_token_is_inert(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    user.write(
        "work/project/wev.yml",
        "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n",
    )

    result = user.wev("printf", "%s", "${CODEARTIFACT_AUTH_TOKEN}")

    assert result.returncode == 0 and result.stderr == ""
    assert fake.is_valid_token(result.stdout)
