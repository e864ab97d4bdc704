"""The command runs as ``env`` would run it: default signals, the caller's mask, ENOEXEC scripts.

And Ctrl-C while wev itself waits ends wev by SIGINT, so that a shell loop around it stops.
Everything here is the real ``wev`` (with the real daemon, or resolving in-process) as a
subprocess; the fake CodeArtifact's stall makes wev wait.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import WEV, Daemon, User
from fakes.codeartifact import FakeCodeArtifact

ECHO = "A:\n  plugin:\n    id: wev-echo\n    value: a\n"
TOKEN = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"


def signal_set(status: str, field: str) -> set[int]:
    """The signals in a ``/proc/PID/status`` mask field (SigIgn, SigBlk)."""
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    mask = int(line.split()[1], 16)
    return {number for number in range(1, 65) if mask >> (number - 1) & 1}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
def test_the_command_gets_default_signals_and_the_callers_mask(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", ECHO)

    def caller() -> None:  # what a shell might hand down: SIGUSR1 blocked, SIGHUP ignored
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            cwd=user.project,
            env=user.env,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=caller,
        )

    # What the command gets without wev: the caller's dispositions (a CI job run in
    # the background also has SIGINT and SIGQUIT ignored) and SIGHUP.
    direct = run("cat", "/proc/self/status")
    result = run(WEV, "cat", "/proc/self/status")

    assert result.returncode == 0, result.stderr
    expected = signal_set(direct.stdout, "SigIgn")
    assert signal.SIGHUP in expected and signal.SIGPIPE not in expected
    assert signal_set(result.stdout, "SigIgn") == expected, "SIGPIPE, SIGXFSZ reset"
    assert signal_set(result.stdout, "SigBlk") == {signal.SIGUSR1}


def test_a_caller_that_ignores_sigint_keeps_it_ignored(user: User, daemon: Daemon) -> None:
    """A background job of a script has SIGINT ignored; ``env`` passes that on, so does wev."""
    user.write("work/project/wev.yml", ECHO)

    result = subprocess.run(
        [WEV, "cat", "/proc/self/status"],
        cwd=user.project,
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )

    assert result.returncode == 0, result.stderr
    assert signal.SIGINT in signal_set(result.stdout, "SigIgn")


def test_a_closed_pipe_ends_the_command_by_sigpipe(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", ECHO)
    process = subprocess.Popen(
        [WEV, "yes"],
        cwd=user.project,
        env=user.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        assert process.stdout.readline() == b"y\n"
        process.stdout.close()  # as "| head -1" does
        returncode = process.wait(30)
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stderr.close()

    assert returncode == -signal.SIGPIPE, stderr
    assert b"Broken pipe" not in stderr


def test_a_shell_pipeline_sees_status_141(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", ECHO)

    result = subprocess.run(
        ["bash", "-c", f'"{WEV}" yes | head -1; echo "${{PIPESTATUS[@]}}"'],
        cwd=user.project,
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout == "y\n141 0\n", result.stderr


def test_a_file_too_large_ends_the_command_by_sigxfsz(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", ECHO)
    out = user.root / "big"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    with out.open("wb") as sink:
        result = subprocess.run(
            [WEV, "head", "-c", "100000", "/dev/zero"],
            cwd=user.project,
            env=user.env,
            stdout=sink,
            stderr=subprocess.PIPE,
            timeout=60,
            preexec_fn=small_files,
        )

    assert result.returncode == -signal.SIGXFSZ, result.stderr
    assert out.stat().st_size == 4096


@pytest.mark.parametrize("how", ["relative", "on-path"])
def test_a_script_without_a_shebang_runs_with_bin_sh(user: User, daemon: Daemon, how: str) -> None:
    user.write("work/project/wev.yml", ECHO)
    folder = user.root / "bin"
    script = user.write("bin/no-shebang", 'printf "%s|%s|%s|%s" "$0" "$1" "$2" "$A"\n')
    script.chmod(0o755)
    command = str(script) if how == "relative" else "no-shebang"

    result = user.wev(command, "one", "two words", env={"PATH": f"{folder}:{user.env['PATH']}"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{script}|one|two words|a"


def test_a_binary_that_cannot_run_is_still_126(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", ECHO)
    folder = user.root / "bin"
    folder.mkdir()
    (folder / "garbage").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    (folder / "garbage").chmod(0o755)

    result = user.wev(str(folder / "garbage"))

    # /bin/sh reads it as a script and fails as it would under env: not wev's 126 nor a hang.
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("no_daemon", ["0", "1"])
def test_ctrl_c_while_waiting_ends_wev_by_sigint(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, no_daemon: str
) -> None:
    user.write("work/project/wev.yml", TOKEN)
    fake.stall(30)
    marker = user.root / "ran"
    process = subprocess.Popen(
        [WEV, "touch", str(marker)],
        cwd=user.project,
        env={**user.env, "WEV_NO_DAEMON": no_daemon},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_a_call(fake, process)
        process.send_signal(signal.SIGINT)
        returncode = process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stderr.close()

    assert returncode == -signal.SIGINT, stderr
    assert b"Traceback" not in stderr
    assert not marker.exists()


def test_ctrl_c_stops_a_shell_loop_around_wev(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """bash goes on with a loop whose command exited 130, and stops when it died of SIGINT."""
    user.write("work/project/wev.yml", TOKEN)
    fake.stall(30)
    process = subprocess.Popen(
        ["bash", "-c", f'while true; do "{WEV}" true; done'],
        cwd=user.project,
        env=user.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        _wait_for_a_call(fake, process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        returncode = process.wait(20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    assert returncode == -signal.SIGINT


def _wait_for_a_call(fake: FakeCodeArtifact, process: subprocess.Popen[bytes]) -> None:
    """Until wev's fetch has reached the (stalled) fake: wev is then waiting, bounded."""
    deadline = time.monotonic() + 30
    while fake.call_count == 0:
        assert process.poll() is None, "wev ended before it waited"
        assert time.monotonic() < deadline, "wev never asked for a token"
        time.sleep(0.05)
    time.sleep(0.2)  # well inside the wait, past any set-up
