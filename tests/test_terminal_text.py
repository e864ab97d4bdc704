"""Text from a config file, the daemon or AWS never drives the terminal.

Control characters (an ESC that clears the screen or retitles the window, a BEL, a newline
that forges a second line, a bidirectional override) reach the terminal as ``?``: in
``--explain``, ``--status``, the status line, warnings, errors and questions. The real ``wev``
and daemon run as subprocesses; ``--export`` is left alone, as it quotes for the shell.
"""

from __future__ import annotations

import signal

from conftest import CREDENTIALS, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import FakeSts
from test_mfa import Terminal
from test_progress import on_terminal

from wev_client import prompt
from wev_client.output import printable
from wev_client.protocol.side_messages import Prompt

#: YAML double-quoted escapes: ESC, BEL, a newline and U+202E (right-to-left override).
NASTY_YAML = "\\e]0;owned\\a\\e[2J\\n\\u202e"
NASTY = "\x1b]0;owned\x07\x1b[2J\n\u202e"
SHOWN = "?]0;owned??[2J??"
CONTROLS = ("\x1b", "\x07", "\u202e")


def assert_clean(text: str) -> None:
    assert not any(char in text for char in CONTROLS), repr(text)


def test_printable_replaces_each_control_character() -> None:
    assert printable(NASTY) == SHOWN
    assert printable("tab\there\r\x9bC1 \x7f ok é ü €") == "tab?here??C1 ? ok é ü €"


def test_explain_shows_names_and_plugins_as_text(user: User, daemon: Daemon) -> None:
    user.write(
        "work/project/wev.yml",
        f'"A{NASTY_YAML}":\n  plugin:\n    id: wev-echo\n    value: x\n',
    )

    result = user.wev("--explain")

    assert_clean(result.stdout + result.stderr)
    assert f"A{SHOWN}" in result.stdout


def test_a_config_error_quoting_a_key_is_one_clean_line(user: User) -> None:
    user.write("work/project/wev.yml", f'"A{NASTY_YAML}": 5\n')

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    assert_clean(result.stderr)
    [line] = result.stderr.splitlines()
    assert f"A{SHOWN}: " in line


def test_the_status_line_and_status_show_the_domain_as_text(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml",
        "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n"
        f'    domain: "corp{NASTY_YAML}"\n',
    )
    fake.stall(1.0)

    run = on_terminal(user, "true")
    status = user.wev("--status")

    assert run.returncode == 0, run.terminal
    line = run.terminal.decode()
    assert line.startswith(f"wev: fetching CodeArtifact token for corp{SHOWN}")
    assert line.endswith("\r\x1b[K"), "only wev's own sequence, to clear the line"
    assert_clean(line.removesuffix("\r\x1b[K"))
    assert status.returncode == 0, status.stderr
    assert_clean(status.stdout)
    assert f"corp{SHOWN}" in status.stdout


def test_a_question_on_the_terminal_is_shown_as_text(user: User) -> None:
    """The question's text comes from a plugin; here the MFA device named in wev.yml."""
    user.write(
        "work/project/wev.yml",
        "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]:\n"
        f'  plugin:\n    id: wev-awsmfa\n    mfa_device: "dev{NASTY_YAML}"\n',
    )
    with FakeSts(CREDENTIALS) as sts:
        user.env["AWS_ENDPOINT_URL_STS"] = sts.url
        daemon = Daemon(user)
        terminal = Terminal(user, "true")
        try:
            terminal.expect(f"MFA code for dev{SHOWN}: ".encode())
            terminal.type("\x03")  # Ctrl-C at the question
            returncode = terminal.wait()
        finally:
            terminal.close()
            daemon.stop()

    assert returncode == -signal.SIGINT
    assert_clean(terminal.output.decode(errors="replace"))


def test_a_question_without_a_terminal_is_reported_as_text() -> None:
    question = Prompt("id", f"[A{NASTY}]", f"code for {NASTY}: ", secret=True)

    message = str(prompt.no_terminal([question]))

    assert_clean(message)
    assert "\n" not in message
    assert f"[A{SHOWN}]: needs input (code for {SHOWN})" in message
