"""The ``wev`` command as a user runs it: config files, options, exec, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import WEV, Daemon, User
from fakes.codeartifact import FakeCodeArtifact


def echo(name: str, value: str) -> str:
    return f"{name}:\n  plugin:\n    id: wev-echo\n    value: {value}\n"


SHOW = ("sh", "-c", 'printf "%s|%s|%s" "$A" "$B" "$C"')


def test_merge_precedence_across_folders_and_names(user: User, daemon: Daemon) -> None:
    user.write("home/.wev.yml", echo("A", "home") + echo("B", "home") + echo("C", "home"))
    user.write("work/wev.yml", echo("B", "work"))
    user.write("work/project/.wev.yml", echo("C", "project-dot"))
    user.write("work/project/wev.yml", echo("C", "project"))

    result = user.wev(*SHOW)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "home|work|project"


@pytest.mark.parametrize(
    ("lower", "higher"),
    [(".wev.yml", "wev.yml"), ("wev.yml", ".wev.user.yml"), (".wev.user.yml", "wev.user.yml")],
)
def test_file_name_precedence(user: User, daemon: Daemon, lower: str, higher: str) -> None:
    user.write(f"work/project/{higher}", echo("A", "higher"))
    user.write(f"work/project/{lower}", echo("A", "lower"))

    assert user.wev(*SHOW).stdout == "higher||"


def test_user_file_merges_into_shared_entry(user: User, daemon: Daemon) -> None:
    user.write(
        "work/project/wev.yml",
        "A:\n  plugin:\n    id: wev-echo\n    value: [x, y]\n    separator: '-'\n",
    )
    user.write("work/project/wev.user.yml", "A: {plugin: {value: [p, q, r]}}\n")

    assert user.wev(*SHOW).stdout == "p-q-r||"


def test_home_is_read_once_when_it_is_an_ancestor(user: User, daemon: Daemon) -> None:
    user.write("home/wev.yml", echo("A", "home"))
    user.write("home/code/wev.yml", echo("B", "code"))

    result = user.wev(*SHOW, cwd=user.home / "code")

    assert result.stdout == "home|code|"


def test_list_key_needs_as_many_names_as_values(user: User, daemon: Daemon) -> None:
    plugin = "    id: wev-awscodeartifact\n    domain: corp\n"
    user.write("work/project/wev.yml", f"[A, B]:\n  plugin:\n{plugin}")

    result = user.wev("true")

    assert result.returncode == 78
    [line] = result.stderr.splitlines()
    assert "[A, B]" in line and "wev.yml" in line
    assert "the key names 2 variables but wev-awscodeartifact resolves 1" in line
    # The two fixes the README teaches: name what each receives, or ask for the URL too.
    assert "say what each name receives with 'values' (token, username, endpoint" in line
    assert "add 'repository' and 'format' for the token and the repository's URL" in line


def test_a_key_whose_values_are_listed_is_told_to_list_one_per_name(user: User) -> None:
    user.write(
        "work/project/wev.yml",
        "[A, B]:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n    values: [token]\n",
    )

    result = user.wev("true", env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "make the key a single name, or list 2 kinds in 'values', one for each name"
    ), line


def test_variables_are_added_to_the_environment(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "from-wev"))

    result = user.wev("sh", "-c", 'printf "%s %s" "$A" "$KEEP"', env={"KEEP": "kept"})

    assert result.stdout == "from-wev kept"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A: [\n", "line 2"),
        ("- just\n- a list\n", "mapping"),
        ("A: just a string\n", "'plugin'"),
        ("A:\n  plugin: wev-echo\n", "'plugin' must be a mapping"),
        ("A:\n  plugin:\n    value: x\n", "no 'id'"),
        (
            "A:\n  plugin:\n    id: wev-nosuch\n",
            "known: wev-awscodeartifact, wev-awsecr, wev-awsmfa, wev-echo",
        ),
        ("A:\n  plugin:\n    id: wev-awscodeartifact\n", "'domain' is required"),
        ("A:\n  plugin:\n    id: wev-echo\n", "'value' is required"),
        ("[A, B]:\n  plugin:\n    id: wev-echo\n    value: x\n", "resolves 1"),
        ("? {a: 1}\n: x\n", "key"),
        (
            "A:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n    duration: 60\n",
            "'duration'",
        ),
    ],
)
@pytest.mark.parametrize("no_daemon", [False, True])
def test_bad_config_is_one_clear_line_and_nothing_runs(
    user: User, text: str, expected: str, no_daemon: bool
) -> None:
    path = user.write("work/project/wev.yml", text)
    marker = user.root / "ran"

    result = user.wev("touch", str(marker), env={"WEV_NO_DAEMON": "1"} if no_daemon else {})

    assert result.returncode == 78, result.stderr
    assert not marker.exists()
    [line] = result.stderr.splitlines()
    assert line.startswith("wev: ") and str(path) in line and expected in line


def test_missing_command_is_127(user: User, daemon: Daemon) -> None:
    result = user.wev("no-such-command-anywhere")

    assert result.returncode == 127
    assert "no-such-command-anywhere: command not found" in result.stderr


def test_command_not_executable_is_126(user: User, daemon: Daemon) -> None:
    script = user.write("work/project/script.sh", "#!/bin/sh\necho hi\n")

    assert user.wev(str(script)).returncode == 126


def test_exit_status_is_the_commands(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "x"))

    assert user.wev("sh", "-c", "exit 42").returncode == 42


def test_exec_replaces_the_client_and_signals_reach_the_command(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "x"))
    process = user.popen_wev("sh", "-c", 'echo "$$"; exec sleep 30')
    assert process.stdout is not None
    pid = int(process.stdout.readline())

    assert pid == process.pid  # no wev process stays between the shell and the command
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == -signal.SIGTERM


def test_no_config_runs_the_command_without_a_daemon(user: User) -> None:
    result = user.wev("sh", "-c", "echo ran")

    assert result.stdout == "ran\n"
    assert not os.path.exists(user.socket)


def test_export_is_safe_to_eval(user: User, daemon: Daemon) -> None:
    tricky = 'it\'s $HOME `date` "q" \\ end'
    user.write(
        "work/project/wev.yml",
        f"A:\n  plugin:\n    id: wev-echo\n    value: {json.dumps(tricky)}\n",
    )

    exported = user.wev("--export")
    evaluated = subprocess.run(
        ["sh", "-c", 'eval "$0"; printf %s "$A"', exported.stdout],
        capture_output=True,
        text=True,
        timeout=10,
    )

    assert exported.stdout.startswith("export A='")
    assert evaluated.stdout == tricky


def test_explain_shows_plugin_files_and_cache_never_the_value(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    shared = user.write(
        "work/project/wev.yml", "TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
    )
    mine = user.write("work/project/wev.user.yml", "TOKEN: {plugin: {profile: work}}\n")

    before = user.wev("--explain")
    token = user.wev("sh", "-c", 'printf %s "$TOKEN"').stdout
    after = user.wev("--explain")

    assert before.returncode == 0, before.stderr
    assert "wev-awscodeartifact" in before.stdout and "profile work" in before.stdout
    assert str(shared) in before.stdout and str(mine) in before.stdout
    assert "cached:  no" in before.stdout
    assert "cached:  yes, expires" in after.stdout
    assert fake.is_valid_token(token) and token not in after.stdout + after.stderr
    assert fake.call_count == 1  # explaining never fetches


def test_status_json_and_text_never_show_values(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml", "TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
    )
    token = user.wev("sh", "-c", 'printf %s "$TOKEN"').stdout

    text = user.wev("--status")
    as_json = user.wev("--status", "--json")

    status = json.loads(as_json.stdout)
    assert status["pid"] == daemon.process.pid
    assert status["entries"][0]["names"] == ["TOKEN"] and status["entries"][0]["expires_at"]
    assert f"pid {daemon.process.pid}" in text.stdout and "domain corp" in text.stdout
    assert token not in text.stdout + as_json.stdout


def test_status_without_a_daemon(user: User) -> None:
    result = user.wev("--status", "--json")

    assert result.returncode != 0
    assert json.loads(result.stdout)["pid"] is None
    assert "no wev-daemon is running" in user.wev("--status").stderr


def test_version_and_usage_errors(user: User) -> None:
    assert user.wev("--version").stdout.startswith("wev ")
    no_command = user.wev()
    assert no_command.returncode == 64 and "no command" in no_command.stderr
    unknown = user.wev("--frobnicate", "true")
    assert unknown.returncode == 64 and "--frobnicate" in unknown.stderr


def test_log_level_debug_explains_the_path_without_values(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "secret-marker-123"))

    result = user.wev("--log-level", "DEBUG", "true")

    assert result.returncode == 0
    assert "wev: debug:" in result.stderr and "secret-marker-123" not in result.stderr


def test_stale_socket_is_recovered(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", echo("A", "fresh"))
    (user.runtime / "wev").mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(user.socket)
    stale.close()  # the file stays, nobody listens: a dead daemon's leftover

    result = user.wev(*SHOW)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "fresh||"


def test_daemon_killed_between_calls_is_restarted(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "again"))
    assert user.wev(*SHOW).stdout == "again||"
    daemon.process.kill()
    daemon.process.wait(5)

    started = time.monotonic()
    result = user.wev(*SHOW)

    assert result.stdout == "again||", result.stderr
    assert time.monotonic() - started < 10


def test_python_m_wev_client_works(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", echo("A", "module"))
    python = os.path.join(os.path.dirname(WEV), "python")

    result = subprocess.run(
        [python, "-m", "wev_client", *SHOW],
        cwd=user.project,
        env=user.env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.stdout == "module||", result.stderr


def test_an_outdated_daemon_is_replaced_after_an_upgrade(user: User) -> None:
    """A daemon left running by an older install makes way for the current one."""
    import sys

    user.write("work/project/wev.yml", echo("A", "upgraded"))
    old = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, wev_client; wev_client.__version__ = '0.0.1';"
            "from wev_daemon.__main__ import main; sys.exit(main(sys.argv[1:]))",
            "--socket",
            user.socket,
        ],
        env=user.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from wire import wait_for_socket

        wait_for_socket(user.socket, old)
        result = user.wev(*SHOW)
        status = json.loads(user.wev("--status", "--json").stdout)
        assert old.wait(10) == 0
    finally:
        old.kill()
        old.wait(5)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "upgraded||"
    assert status["version"] != "0.0.1" and status["pid"] != old.pid


def test_substitution_is_only_for_resolved_names_and_inert_values(
    user: User, daemon: Daemon
) -> None:
    user.write("work/project/wev.yml", echo("A", "'${B}'") + echo("B", "secret"))

    result = user.wev("printf", "%s|%s|%s", "${A}", "x${B}y", "${HOME}")

    # A's value holds "$", "{" and "}": never pasted, so never expanded a second time.
    assert result.stdout == "${A}|xsecrety|${HOME}"
    assert result.stderr.startswith("wev: warning: ${A} is left as it is")


def test_a_deleted_working_folder_is_a_clear_error(user: User) -> None:
    gone = user.root / "gone"
    gone.mkdir()
    process = subprocess.Popen(
        ["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "{WEV}" true'],
        env=user.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 64
    assert "working folder is gone" in stderr and "Traceback" not in stderr


def test_the_readmes_usage_and_tables_are_the_programs_own(user: User) -> None:
    import re

    from readme import README, code_blocks

    shown = user.wev("--help")
    assert shown.returncode == 0, shown.stderr
    usage = shown.stdout.split("\n\n")[0].replace("usage: ", "", 1)
    [block] = [block for block in code_blocks() if block.startswith("wev [OPTIONS] COMMAND")]
    assert block.splitlines() == [line.strip() for line in usage.splitlines()]
    readme = README.read_text()
    options = readme.partition("| option | what it does |")[2].partition("\n\n")[0]
    for option in set(re.findall(r"^  (--[a-z-]+)", shown.stdout, flags=re.M)) - {"--help"}:
        assert re.search(rf"`[^`]*{option}\b", options), f"{option} is not in the README's table"
    variables = readme.partition("| environment | meaning |")[2].partition("\n\n")[0]
    environment = shown.stdout.partition("\nenvironment:\n")[2]
    for name in re.findall(r"^  ([A-Z_]+)=", environment, flags=re.M):
        assert f"| `{name}=" in variables, f"{name} is not in the README's table of variables"


@pytest.mark.parametrize("option", ["--export", "--explain", "--status", "--help"])
def test_a_reader_that_has_gone_ends_wev_as_it_ends_cat(
    user: User, daemon: Daemon, option: str
) -> None:
    """``wev --status | head -0``: no traceback, no internal error; SIGPIPE, as ``cat``."""
    user.write("work/project/wev.yml", echo("A", "one"))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [WEV, option],
            cwd=user.project,
            env=user.env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (-signal.SIGPIPE, "")
