"""``wev-awsmfa`` end to end: the real ``wev`` on a pseudo-terminal answers the daemon's question.

The fake STS/IAM endpoint (``fakes.sts``) checks the MFA code. Each ``wev`` here runs in its
own session with a pty as its controlling terminal, so ``/dev/tty`` is that pty, as in a real
terminal; what it writes there is read back byte for byte, and keys are typed into it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
from conftest import CREDENTIALS, DEFAULT_KEY, WEV, WORK_KEY, Daemon, User, assert_not_on_disk
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import DEVICE, WRONG_CODE, FakeSts
from mfa_harness import mfa_role
from terminal import Pty

NAMES = "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]"
MFA = f"""\
{NAMES}:
  plugin:
    id: wev-awsmfa
"""
CODE = "918273"  # distinctive, so that a leak is found by a search
QUESTION = f"MFA code for {DEVICE}: ".encode()
#: Prints the key id, and digests of the secret and the token (never the secrets themselves).
SHOW = (
    "sh",
    "-c",
    'echo "key=$AWS_ACCESS_KEY_ID"; printf %s "$AWS_SECRET_ACCESS_KEY" | sha256sum; '
    'printf %s "$AWS_SESSION_TOKEN" | sha256sum',
)
TIMEOUT = 30.0
pytest_plugins = ("mfa_fixtures",)


class Terminal(Pty):
    """The real ``wev`` on a pseudo-terminal, in the user's project."""

    def __init__(self, user: User, *args: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__([WEV, *args], user.project, {**user.env, "TERM": "xterm", **(env or {})})


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    with FakeSts(CREDENTIALS) as server:
        server.code = CODE
        yield server


@pytest.fixture
def mfa_user(user: User, sts: FakeSts) -> Iterator[User]:
    user.env["AWS_ENDPOINT_URL_STS"] = sts.url
    user.env["AWS_ENDPOINT_URL_IAM"] = sts.url
    user.write("work/project/wev.yml", MFA)
    yield user
    assert_not_on_disk(user.root, [CODE, *sts.secrets()])


def shown_session(output: bytes, sts: FakeSts) -> int:
    """Which issued session the command saw (its index), checked by key id and digests."""
    import hashlib

    for index, session in enumerate(sts.sessions):
        digests = [
            hashlib.sha256(s.encode()).hexdigest().encode()
            for s in (session.secret_access_key, session.session_token)
        ]
        if f"key={session.access_key_id}".encode() in output and all(d in output for d in digests):
            return index
    raise AssertionError(f"no issued session in {output!r}")


def no_terminal_run(
    user: User, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``wev`` with pipes and no controlling terminal at all (a new session), as in CI."""
    return subprocess.run(
        [WEV, *args],
        cwd=user.project,
        env={**user.env, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        start_new_session=True,
    )


def test_the_code_is_asked_on_the_terminal_without_echo(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    first = Terminal(mfa_user, *SHOW)
    ptys.append(first)
    first.expect(b"wev: " + QUESTION)
    first.type(CODE + "\n")

    assert first.wait() == 0, bytes(first.output)
    assert shown_session(bytes(first.output), sts) == 0
    assert CODE.encode() not in first.output  # echo was off
    [call] = sts.calls_of("GetSessionToken")
    assert (call.token_code, call.serial_number, call.duration) == (CODE, DEVICE, 900)
    assert call.access_key_id == DEFAULT_KEY and call.signature_valid
    # The device came from the IAM user, once, though resolve ran twice.
    assert [c.action for c in sts.calls] == [
        "GetCallerIdentity",
        "ListMFADevices",
        "GetSessionToken",
    ]
    assert sts.calls_of("ListMFADevices")[0].service == "iam"

    # Another terminal gets the cached session without a question.
    second = Terminal(mfa_user, *SHOW)
    ptys.append(second)
    assert second.wait() == 0, bytes(second.output)
    assert b"MFA code" not in second.output
    assert shown_session(bytes(second.output), sts) == 0
    assert len(sts.calls_of("GetSessionToken")) == 1
    assert CODE not in daemon.log and not any(s in daemon.log for s in sts.secrets())


def test_a_second_terminal_waits_for_the_first_ones_answer(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    first = Terminal(mfa_user, *SHOW)
    ptys.append(first)
    first.expect(QUESTION)
    second = Terminal(mfa_user, *SHOW)
    ptys.append(second)
    second.settle(1.5)
    assert b"MFA code" not in second.output and second.process.poll() is None
    assert "waiting: a terminal is asking the user" in mfa_user.wev("--status").stdout

    first.type(CODE + "\n")

    assert first.wait() == 0, bytes(first.output)
    assert second.wait() == 0, bytes(second.output)
    assert b"MFA code" not in second.output
    assert shown_session(bytes(first.output), sts) == shown_session(bytes(second.output), sts) == 0
    assert len(sts.calls_of("GetSessionToken")) == 1


def test_ctrl_c_at_the_question_passes_it_to_the_waiting_terminal(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    first = Terminal(mfa_user, *SHOW)
    ptys.append(first)
    first.expect(QUESTION)
    second = Terminal(mfa_user, *SHOW)
    ptys.append(second)
    second.settle(1.0)

    first.type("\x03")  # Ctrl-C: SIGINT to the terminal's foreground process group

    assert first.wait() == -signal.SIGINT  # ended by the signal, as a shell loop expects
    second.expect(QUESTION, timeout=10)
    second.type(CODE + "\n")
    assert second.wait() == 0, bytes(second.output)
    assert shown_session(bytes(second.output), sts) == 0
    assert len(sts.calls_of("GetSessionToken")) == 1


def test_a_wrong_code_is_asked_again_once_with_the_aws_error(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    terminal = Terminal(mfa_user, *SHOW)
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type("000000\n")

    terminal.expect(f"refused: MFA session for {DEVICE}".encode())
    assert f"AccessDenied: {WRONG_CODE}".encode() in terminal.output
    terminal.type(CODE + "\n")
    assert terminal.wait() == 0, bytes(terminal.output)
    assert bytes(terminal.output).count(QUESTION) == 2
    assert shown_session(bytes(terminal.output), sts) == 0
    assert [c.token_code for c in sts.calls_of("GetSessionToken")] == ["000000", CODE]


def test_two_wrong_codes_fail_in_one_line_and_the_next_run_asks_again(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    wrong = Terminal(mfa_user, *SHOW)
    ptys.append(wrong)
    wrong.expect(QUESTION)
    wrong.type("000000\n")
    wrong.expect(b"refused: ")
    wrong.type("111111\n")

    assert wrong.wait() == 69
    last = bytes(wrong.output).rstrip().splitlines()[-1]
    assert last.startswith(f"wev: {NAMES}: ".encode())
    assert f"AccessDenied: {WRONG_CODE}".encode() in last

    again = Terminal(mfa_user, *SHOW)
    ptys.append(again)
    again.expect(QUESTION)
    again.type(CODE + "\n")
    assert again.wait() == 0, bytes(again.output)
    assert shown_session(bytes(again.output), sts) == 0
    assert [c.token_code for c in sts.calls_of("GetSessionToken")] == ["000000", "111111", CODE]


@pytest.mark.parametrize("no_daemon", [False, True], ids=["daemon", "in-process"])
def test_without_a_terminal_or_a_channel_one_clear_line(
    mfa_user: User, sts: FakeSts, no_daemon: bool
) -> None:
    """No terminal, no mfa_process, no askpass: in process it fails at once; the daemon
    holds the question for ``wev --answer`` up to its wait bound, then fails."""
    env = {"WEV_NO_DAEMON": "1"} if no_daemon else {}
    daemon = None if no_daemon else Daemon(mfa_user, args=("--question-wait", "2"))
    try:
        result = no_terminal_run(mfa_user, *SHOW, env=env)
        status = None if daemon is None else mfa_user.wev("--status").stdout
    finally:
        if daemon is not None:
            daemon.stop()

    assert result.returncode == 69
    assert result.stdout == ""
    *waiting, line = result.stderr.splitlines()
    assert line.startswith(f"wev: {NAMES}: needs input (MFA code for {DEVICE})")
    if no_daemon:
        assert waiting == []
        assert "no terminal" in line and "mfa_process" in line
    else:
        assert waiting == [
            f"wev: {NAMES}: waiting for an answer to 'MFA code for {DEVICE}': "
            "run `wev --answer` in a terminal"
        ]
        assert "nobody answered within 2 s" in line and "wev --answer" in line
        assert status is not None and "waiting" not in status  # the question has gone
    assert sts.calls_of("GetSessionToken") == []


def test_without_a_daemon_the_question_is_asked_in_process(
    mfa_user: User, sts: FakeSts, ptys: list[Pty]
) -> None:
    terminal = Terminal(mfa_user, *SHOW, env={"WEV_NO_DAEMON": "1"})
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")

    assert terminal.wait() == 0, bytes(terminal.output)
    assert CODE.encode() not in terminal.output
    assert shown_session(bytes(terminal.output), sts) == 0
    assert [c.action for c in sts.calls] == [
        "GetCallerIdentity",
        "ListMFADevices",
        "GetSessionToken",
    ]


def test_a_configured_device_and_duration_skip_discovery(
    mfa_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    mfa_user.write(
        "work/project/wev.user.yml",
        f"{NAMES}:\n  plugin:\n    mfa_device: {DEVICE}\n    duration: 3600\n",
    )
    terminal = Terminal(mfa_user, *SHOW, env={"AWS_PROFILE": "work"})
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")

    assert terminal.wait() == 0, bytes(terminal.output)
    [call] = sts.calls
    assert (call.action, call.duration, call.access_key_id) == ("GetSessionToken", 3600, WORK_KEY)


def test_a_bad_duration_is_a_configuration_error(mfa_user: User, sts: FakeSts) -> None:
    mfa_user.write("work/project/wev.user.yml", f"{NAMES}: {{plugin: {{duration: 60}}}}\n")

    result = no_terminal_run(mfa_user, "true", env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    assert "'duration' must be 900 to 129600 seconds, not 60" in result.stderr


# -- the per-project AWS_PROFILE recipe ------------------------------------------------------

PROFILE_RECIPE = """\
AWS_PROFILE:
  plugin:
    id: wev-echo
    value: work
"""
#: What any AWS SDK or CLI in the command does: resolve credentials from AWS_PROFILE.
WHO_AM_I = (
    sys.executable,
    "-c",
    "import botocore.session; print(botocore.session.Session().get_credentials().access_key)",
)


def test_recipe_aws_profile_per_project(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", PROFILE_RECIPE)

    inside = user.wev(*WHO_AM_I)
    outside = subprocess.run(
        WHO_AM_I, env=user.env, capture_output=True, text=True, timeout=TIMEOUT, check=True
    )

    assert inside.returncode == 0, inside.stderr
    assert (inside.stdout.strip(), outside.stdout.strip()) == (WORK_KEY, DEFAULT_KEY)


def test_recipe_profile_is_for_the_command_not_for_other_entries(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """Entries resolve in the caller's AWS context: a wev-echo AWS_PROFILE sets the command's
    profile only; an entry that needs the profile says so with its own ``profile:``."""
    user.write(
        "work/project/wev.yml",
        PROFILE_RECIPE
        + "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n",
    )
    assert user.wev("true").returncode == 0
    user.write("work/project/wev.user.yml", "CODEARTIFACT_AUTH_TOKEN: {plugin: {profile: work}}\n")
    assert user.wev("true").returncode == 0

    assert [c.access_key_id for c in fake.calls] == [DEFAULT_KEY, WORK_KEY]


# -- CodeArtifact with an assume-role profile that needs MFA (mfa_serial) --------------------


def test_codeartifact_with_an_mfa_serial_profile_asks_through_the_client(
    user: User, ptys: list[Pty]
) -> None:
    with mfa_role(user, CODE) as (sts, codeartifact):
        user.write(
            "work/project/wev.yml",
            "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n",
        )
        digest = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN" | sha256sum')
        daemon = Daemon(user)
        try:
            first = Terminal(user, *digest, env={"AWS_PROFILE": "dev"})
            ptys.append(first)
            first.expect(f"Enter MFA code for {DEVICE}: ".encode())
            first.type(CODE + "\n")
            assert first.wait() == 0, bytes(first.output)
            second = Terminal(user, *digest, env={"AWS_PROFILE": "dev"})
            ptys.append(second)
            assert second.wait() == 0, bytes(second.output)
            log = daemon.log
        finally:
            daemon.stop()

        [assume] = sts.calls_of("AssumeRole")
        assert (assume.serial_number, assume.token_code) == (DEVICE, CODE)
        assert assume.access_key_id == DEFAULT_KEY
        [call] = codeartifact.calls
        assert call.access_key_id == sts.sessions[0].access_key_id and call.signature_valid
        assert b"MFA code" not in second.output and CODE.encode() not in first.output
        [token] = codeartifact.issued
        import hashlib

        token_digest = hashlib.sha256(token.encode()).hexdigest().encode()
        assert token_digest in first.output and token_digest in second.output
        assert CODE not in log
        assert_not_on_disk(user.root, [CODE, token, *sts.secrets()])


@pytest.mark.parametrize("no_daemon", [False, True], ids=["daemon", "in-process"])
def test_a_nested_wev_asks_for_the_session_with_the_users_keys_not_the_session(
    mfa_user: User, sts: FakeSts, ptys: list[Pty], no_daemon: bool
) -> None:
    # As in a shell that exported an earlier session (direnv, or `wev bash`): the
    # names this configuration sets are not its context, so STS sees the user's key.
    outer = {
        "AWS_ACCESS_KEY_ID": "ASIAOUTERSESSION0001",
        "AWS_SECRET_ACCESS_KEY": "outer-session-secret-000000000000000000",
        "AWS_SESSION_TOKEN": "outer-session-token",
    }
    env = {**outer, **({"WEV_NO_DAEMON": "1"} if no_daemon else {})}
    terminal = Terminal(mfa_user, *SHOW, env=env)
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")

    assert terminal.wait() == 0, bytes(terminal.output)
    assert shown_session(bytes(terminal.output), sts) == 0
    assert {call.access_key_id for call in sts.calls} == {DEFAULT_KEY}
