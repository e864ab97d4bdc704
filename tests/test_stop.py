"""``wev --stop``: the daemon is the user's to stop, and it drops every value first.

With the real ``wev`` and ``wev-daemon``: started by hand or by a client,
stopped whatever ``WEV_NO_DAEMON`` says (so does ``--forget``); under a
service manager (the test plays systemd, as in ``test_activation.py``) it
drops its values and ``wev --stop`` names the command that stops the service.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import COMMAND_TIMEOUT, WEV, WEV_DAEMON, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import FakeSts
from mfa_harness import no_terminal
from readme import README
from test_activation import (
    PRINT_TOKEN,
    TOKEN_CONFIG,
    WAIT,
    linux_only,
    service_manager,
    stopped_at_exit,
)
from test_questions import wait_for_question

pytest_plugins = ("mfa_fixtures",)

NO_DAEMON = {"WEV_NO_DAEMON": "1"}


def entries(user: User) -> int:
    result = user.wev("--status", "--json")
    assert result.returncode == 0, result.stderr
    return len(json.loads(result.stdout)["entries"])


def test_stop_drops_every_value_and_the_daemon_exits(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    assert user.wev(*PRINT_TOKEN).returncode == 0

    result = user.wev("--stop")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"wev: stopped wev-daemon (pid {daemon.process.pid}); it dropped 1 entry first\n"
    )
    assert daemon.process.wait(WAIT) == 0
    assert not Path(user.socket).exists()
    assert "wev --stop: dropped 1 entries, stopping" in daemon.log


def test_stop_when_none_runs_is_one_line_and_success(user: User) -> None:
    result = user.wev("--stop")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wev: no wev-daemon is running (socket {user.socket})\n"
    assert result.stderr == ""
    # The README quotes the line, the socket written as PATH.
    quoted = result.stdout.strip().replace(user.socket, "PATH")
    assert f"`{quoted}`" in README.read_text()


def test_a_daemon_a_client_started_is_stopped_and_the_next_call_starts_another(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    first = user.wev(*PRINT_TOKEN)
    pid = json.loads(user.wev("--status", "--json").stdout)["pid"]

    stopped = user.wev("--stop")
    again = user.wev(*PRINT_TOKEN)

    assert stopped.returncode == 0 and f"(pid {pid})" in stopped.stdout, stopped.stderr
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert again.returncode == 0 and again.stdout != first.stdout  # nothing was kept
    assert fake.call_count == 2


def test_forget_and_stop_reach_the_daemon_whatever_wev_no_daemon_says(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    assert user.wev(*PRINT_TOKEN).returncode == 0

    forgot = user.wev("--forget", env=NO_DAEMON)
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout == "wev: the daemon dropped 1 entry for this configuration\n"
    assert entries(user) == 0

    assert user.wev(*PRINT_TOKEN).returncode == 0
    forgot_all = user.wev("--forget", "--all", env=NO_DAEMON)
    assert "dropped 1 entry for everything it held" in forgot_all.stdout, forgot_all.stderr

    stopped = user.wev("--stop", env=NO_DAEMON)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped wev-daemon (pid {daemon.process.pid})" in stopped.stdout
    assert daemon.process.wait(WAIT) == 0


def test_stop_ends_a_request_held_for_a_question_at_once(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    # An SDK with no terminal waits for an MFA code that nobody gives.
    waiting = no_terminal(sdk_user, (WEV, "true"))
    try:
        wait_for_question(sdk_user)

        stopped = sdk_user.wev("--stop")

        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped wev-daemon (pid {daemon.process.pid})" in stopped.stdout
        # Gone when it says so: the held request does not keep it for a drain.
        assert daemon.process.wait(3) == 0  # a drain would take its 5 s timeout
        after_stop = daemon.log.partition("wev --stop: dropped")[2]
        assert "a question for" not in after_stop, "it opened another question while stopping"
    finally:
        waiting.kill()
        waiting.communicate()
    assert not sts.calls_of("GetSessionToken")


def test_a_second_daemon_in_the_foreground_says_how_to_stop_the_first(
    user: User, daemon: Daemon
) -> None:
    second = subprocess.run(
        [WEV_DAEMON, "--socket", user.socket, "--log-level", "DEBUG"],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

    assert second.returncode == 75
    assert f"another wev-daemon (pid {daemon.process.pid}) is already running" in second.stderr
    assert "(stop it with `wev --stop`, or give this one another --socket)" in second.stderr
    assert user.wev("--stop").returncode == 0
    assert daemon.process.wait(WAIT) == 0


@linux_only
def test_under_a_service_manager_stop_drops_the_values_and_names_the_command(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    with service_manager(user) as manager, stopped_at_exit(manager.start()) as process:
        manager.expect("READY=1")
        assert user.wev(*PRINT_TOKEN).returncode == 0

        result = user.wev("--stop")

        assert result.returncode == 69, result.stderr
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line == (
            f"wev: wev-daemon (pid {process.pid}) runs under systemd, which would start it "
            "again at the next call; it dropped every value it held (1) (stop the service: "
            "systemctl --user stop wev.socket wev-proxy.socket wev.service)"
        )
        assert process.poll() is None
        assert entries(user) == 0


def test_what_is_left_on_disk_after_stop_is_what_the_readme_lists(
    user: User, fake: FakeCodeArtifact
) -> None:
    text = README.read_text()
    start = text.index("### Stopping and uninstalling")
    section = text[start : text.index("\n## ", start)]
    user.write("work/project/wev.yml", TOKEN_CONFIG)
    assert user.wev(*PRINT_TOKEN).returncode == 0  # starts a daemon, which logs
    assert user.wev("--stop").returncode == 0

    mine = (user.home / ".aws", user.project)
    left = sorted(
        path
        for path in user.root.rglob("*")
        if path.is_file() and not any(path.is_relative_to(folder) for folder in mine)
    )

    assert left, "a started daemon leaves at least its log"
    for path in left:
        assert f"`{path.name}`" in section, f"{path} is not listed in the README"
    assert not Path(user.socket).exists()
