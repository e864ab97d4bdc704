"""``credential_process = wev --aws-credentials NAME``: AWS SDKs ask wev for an MFA session.

botocore (and the AWS CLI when it is installed) runs the real ``wev`` as the profile's
``credential_process`` and signs STS ``GetCallerIdentity`` with what it printed; the fake STS
checks the signature against the session it issued. The SDK runs on a pseudo-terminal, so the
MFA question that ``wev`` asks on ``/dev/tty`` is read and answered as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import DEFAULT_KEY, WEV, WORK_KEY, Daemon, User
from fakes.sts import ACCOUNT, DEVICE, FakeSts
from mfa_harness import (
    CODE,
    NAMES,
    WHO_AM_I,
    elsewhere,
    finish,
    no_terminal,
    sdk_env,
)
from terminal import Pty

from wev_client import aws_credentials
from wev_client.protocol.errors import ConfigError
from wev_client.protocol.messages import VariableSpec

pytest_plugins = ("mfa_fixtures",)
QUESTION = f"wev: MFA code for {DEVICE}: ".encode()
TIMEOUT = 30.0


def caller_identity_calls(sts: FakeSts) -> list[str]:
    """The key ids that signed GetCallerIdentity (each signature checked)."""
    calls = sts.calls_of("GetCallerIdentity")
    assert all(call.signature_valid for call in calls)
    return [str(call.access_key_id) for call in calls]


def test_two_sdk_processes_share_one_mfa_question_and_session(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    sdk = (sys.executable, "-c", WHO_AM_I)
    first = Pty(sdk, elsewhere(sdk_user), sdk_env(sdk_user))
    ptys.append(first)
    first.expect(QUESTION)
    second = Pty(sdk, elsewhere(sdk_user), sdk_env(sdk_user))
    ptys.append(second)
    second.settle(1.5)
    assert b"MFA code" not in second.output and second.process.poll() is None

    first.type(CODE + "\n")

    assert first.wait() == 0, bytes(first.output)
    assert second.wait() == 0, bytes(second.output)
    [session] = sts.sessions
    for terminal in (first, second):
        assert f"key={session.access_key_id}".encode() in terminal.output
        assert f"arn=arn:aws:iam::{ACCOUNT}:user/alice".encode() in terminal.output
    assert CODE.encode() not in first.output  # asked without echo
    [asked] = sts.calls_of("GetSessionToken")
    assert (asked.token_code, asked.duration, asked.access_key_id) == (CODE, 3600, DEFAULT_KEY)
    assert caller_identity_calls(sts) == [session.access_key_id] * 2

    # A third process, later and with no terminal at all, gets the cached session.
    code, out, err = finish(no_terminal(sdk_user, sdk))
    assert code == 0, err
    assert f"key={session.access_key_id}" in out
    assert len(sts.calls_of("GetSessionToken")) == 1


def test_the_document_is_credential_process_json_and_nothing_else(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    # stdout is a pipe, as an SDK has it; the question still reaches the terminal.
    out = sdk_user.root / "stdout"
    shell = f"{WEV} --aws-credentials AWS_SESSION_TOKEN > {out}"
    terminal = Pty(("sh", "-c", shell), elsewhere(sdk_user), sdk_env(sdk_user))
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")
    assert terminal.wait() == 0, bytes(terminal.output)
    text = out.read_text()
    out.unlink()  # holds the secret: not left for the no-secret-on-disk check

    [session] = sts.sessions
    document = json.loads(text)
    assert document == {
        "Version": 1,
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
        "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.expiration)),
    }
    assert text.count("\n") == 1


def test_without_a_terminal_or_an_answer_one_line_naming_the_profile(sdk_user: User) -> None:
    """Nothing answers (no mfa_process, no askpass, no `wev --answer`): after the daemon's
    wait bound the call fails, in one last line that the SDK's error carries."""
    daemon = Daemon(sdk_user, args=("--question-wait", "2"))
    try:
        sdk_status, _, sdk_stderr = finish(no_terminal(sdk_user, (sys.executable, "-c", WHO_AM_I)))
        status, stdout, stderr = finish(
            no_terminal(sdk_user, (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"))
        )
    finally:
        daemon.stop()

    assert status == 69 and stdout == ""
    waiting, line = stderr.splitlines()
    assert "run `wev --answer` in a terminal" in waiting
    assert line.startswith(
        f"wev: --aws-credentials AWS_ACCESS_KEY_ID (AWS profile viawev): {NAMES}: "
        f"needs input (MFA code for {DEVICE}) and nobody answered within 2 s"
    )
    assert sdk_status != 0
    assert line in sdk_stderr, "the SDK's error carries wev's line"


def test_the_aws_cli_signs_with_the_cached_session(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    aws = shutil.which("aws", path=sdk_user.env["PATH"])
    if aws is None:
        pytest.skip("the AWS CLI is not installed")
    # The question is answered once, through wev itself, as a user would in a terminal.
    terminal = Pty(
        (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"), elsewhere(sdk_user), sdk_env(sdk_user)
    )
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")
    assert terminal.wait() == 0
    terminal.output.clear()  # it showed the JSON: not kept

    passthrough = {k: v for k, v in os.environ.items() if k.startswith("PYENV")}
    result = subprocess.run(
        (aws, "sts", "get-caller-identity", "--output", "json"),
        cwd=elsewhere(sdk_user),
        env={**sdk_env(sdk_user), **passthrough},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Account"] == ACCOUNT
    [session] = sts.sessions
    assert caller_identity_calls(sts) == [session.access_key_id]


def test_the_entry_profile_is_its_identity_not_the_served_one(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    # The entry asks for its session with the work profile's keys, while the SDK's
    # AWS_PROFILE (viawev) names the profile being served and plays no part.
    sdk_user.write("home/.wev.user.yml", f"{NAMES}:\n  plugin:\n    profile: work\n")
    terminal = Pty((sys.executable, "-c", WHO_AM_I), elsewhere(sdk_user), sdk_env(sdk_user))
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")

    assert terminal.wait() == 0, bytes(terminal.output)
    [asked] = sts.calls_of("GetSessionToken")
    assert asked.access_key_id == WORK_KEY


@pytest.mark.timing  # at once, not after the daemon's wait bound
def test_an_entry_served_by_its_own_profile_fails_at_once(
    sdk_user: User, daemon: Daemon, ptys: list[Pty]
) -> None:
    sdk_user.write("home/.wev.user.yml", f"{NAMES}:\n  plugin:\n    profile: viawev\n")
    terminal = Pty(
        (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"), elsewhere(sdk_user), sdk_env(sdk_user)
    )
    ptys.append(terminal)
    terminal.expect(QUESTION)
    started = time.monotonic()
    terminal.type(CODE + "\n")

    assert terminal.wait() != 0
    assert time.monotonic() - started < 10, "a loop must not wait for the daemon's bound"
    shown = bytes(terminal.output).decode()
    [line] = [line for line in shown.splitlines() if line.startswith("wev: --aws-credentials")]
    assert line.startswith("wev: --aws-credentials AWS_ACCESS_KEY_ID (AWS profile viawev): ")
    assert "it would ask itself" in line


def test_an_unknown_name_is_one_line(sdk_user: User) -> None:
    result = sdk_user.wev(
        "--aws-credentials", "NOPE", cwd=elsewhere(sdk_user), env={"WEV_NO_DAEMON": "1"}
    )

    assert result.returncode == 78 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "sets NOPE" in line and f"entries with AWS credentials: {NAMES}" in line


def test_the_document_from_values() -> None:
    spec = VariableSpec(
        ("PROD_AWS_ACCESS_KEY_ID", "PROD_AWS_SECRET_ACCESS_KEY", "PROD_AWS_SESSION_TOKEN"),
        {"id": "wev-awsmfa"},
        (),
    )
    values = {
        "PROD_AWS_ACCESS_KEY_ID": "ASIA1",
        "PROD_AWS_SECRET_ACCESS_KEY": "s",
        "PROD_AWS_SESSION_TOKEN": "t",
    }

    document = json.loads(
        aws_credentials.credential_json(values, spec, "2030-01-02T04:05:06+01:00")
    )

    assert document["Expiration"] == "2030-01-02T03:05:06Z"
    assert (document["AccessKeyId"], document["SessionToken"]) == ("ASIA1", "t")
    assert aws_credentials.find_entry([spec], "PROD_AWS_SESSION_TOKEN") is spec
    with pytest.raises(ConfigError, match="holds no AWS credentials"):
        aws_credentials.credential_json({"TOKEN": "x"}, VariableSpec(("TOKEN",), {}, ()), None)


ROLE_PROFILE = """
[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = viawev
region = eu-west-1
"""


def test_a_role_profile_assumes_its_role_with_the_wev_session(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    with (sdk_user.home / ".aws" / "config").open("a") as config:
        config.write(ROLE_PROFILE)
    env = {**sdk_env(sdk_user), "AWS_PROFILE": "admin"}
    terminal = Pty((sys.executable, "-c", WHO_AM_I), elsewhere(sdk_user), env)
    ptys.append(terminal)
    terminal.expect(QUESTION)
    terminal.type(CODE + "\n")

    assert terminal.wait() == 0, bytes(terminal.output)
    session, role = sts.sessions
    [assume] = sts.calls_of("AssumeRole")
    assert (assume.access_key_id, assume.role_arn) == (
        session.access_key_id,
        "arn:aws:iam::123456789012:role/admin",
    )
    assert assume.signature_valid
    assert caller_identity_calls(sts) == [role.access_key_id]


@pytest.mark.parametrize(
    ("chain", "refused"), [("AWS_ACCESS_KEY_ID", True), ("BASE_AWS_ACCESS_KEY_ID", False)]
)
def test_a_chain_is_refused_only_when_it_comes_back_to_the_entry(
    sdk_user: User, chain: str, refused: bool
) -> None:
    # As the daemon runs the credential_process of the profile an entry resolves with:
    # no terminal (a session of its own), the chain in its environment.
    result = subprocess.run(
        (WEV, "--aws-credentials", "AWS_SESSION_TOKEN"),
        cwd=elsewhere(sdk_user),
        env={**sdk_user.env, "WEV_NO_DAEMON": "1", aws_credentials.LOOP_VAR: chain},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode != 0 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert ("it would ask itself" in line) is refused
    assert ("needs input" in line) is not refused
