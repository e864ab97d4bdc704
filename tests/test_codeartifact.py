"""End to end: the real ``wev`` and ``wev-daemon`` against the fake CodeArtifact endpoint."""

from __future__ import annotations

import time

import pytest
from conftest import DEFAULT_KEY, ENV_KEY, ENV_SECRET, WORK_KEY, Daemon, User, free_port
from fakes.codeartifact import FakeCodeArtifact

SHARED = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""

PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')


def test_seed_scenario_shared_config_default_credentials(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)

    result = user.wev(*PRINT_TOKEN)

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    [call] = fake.calls
    assert (call.access_key_id, call.domain, call.duration) == (DEFAULT_KEY, "corp", 43200)
    assert call.signature_valid and call.region == "eu-west-1"


def test_seed_scenario_user_file_adds_profile(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    user.write("work/project/wev.user.yml", "CODEARTIFACT_AUTH_TOKEN: {plugin: {profile: work}}\n")

    result = user.wev(*PRINT_TOKEN)

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    assert [(c.access_key_id, c.region) for c in fake.calls] == [(WORK_KEY, "eu-west-2")]


def test_account_region_and_duration_reach_aws(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml",
        SHARED + "    account: '123456789012'\n    region: us-east-2\n    duration: 3600\n",
    )

    assert user.wev("true").returncode == 0

    [call] = fake.calls
    assert (call.domain_owner, call.region, call.duration) == ("123456789012", "us-east-2", 3600)


def test_one_token_shared_by_many_terminals(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.stall(1.0)  # all 50 ask while the first fetch is in flight

    clients = [user.popen_wev(*PRINT_TOKEN) for _ in range(50)]
    outputs = [client.communicate(timeout=60) for client in clients]

    assert all(client.returncode == 0 for client in clients), outputs[0][1]
    assert len({stdout for stdout, _ in outputs}) == 1
    assert fake.is_valid_token(outputs[0][0])
    assert fake.call_count == 1


def test_cached_token_is_reused(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", SHARED)

    first, second = user.wev(*PRINT_TOKEN), user.wev(*PRINT_TOKEN)

    assert first.stdout == second.stdout and fake.is_valid_token(first.stdout)
    assert fake.call_count == 1


def test_client_aws_profile_wins_over_the_daemons_environment(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    # The daemon was started from a shell with other credentials: they must not be used.
    started_elsewhere = Daemon(
        user, env={"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    )
    try:
        result = user.wev(*PRINT_TOKEN, env={"AWS_PROFILE": "work"})
    finally:
        started_elsewhere.stop()

    assert result.returncode == 0, result.stderr
    assert [c.access_key_id for c in fake.calls] == [WORK_KEY]


def test_tokens_for_different_identities_never_mix(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)

    default = user.wev(*PRINT_TOKEN)
    work = user.wev(*PRINT_TOKEN, env={"AWS_PROFILE": "work"})
    keys = user.wev(
        *PRINT_TOKEN, env={"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    )
    work_again = user.wev(*PRINT_TOKEN, env={"AWS_PROFILE": "work"})

    tokens = [default.stdout, work.stdout, keys.stdout]
    assert len(set(tokens)) == 3 and all(fake.is_valid_token(t) for t in tokens)
    assert work_again.stdout == work.stdout
    assert [c.access_key_id for c in fake.calls] == [DEFAULT_KEY, WORK_KEY, ENV_KEY]


def test_background_refresh_before_expiry(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.set_lifetime(8)  # refresh due after 6 s (75%)

    first = user.wev(*PRINT_TOKEN)
    assert fake.call_count == 1
    assert fake.wait_for_call_count(2, timeout=12), "no refresh without a client asking"
    second = user.wev(*PRINT_TOKEN)

    assert second.stdout != first.stdout and fake.is_valid_token(second.stdout)
    assert fake.call_count == 2


@pytest.mark.timing  # a window of about a second in the token's life
def test_token_near_expiry_is_never_handed_out(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.set_lifetime(10)  # below 10% left in the last second
    first = user.wev(*PRINT_TOKEN)
    fake.fail_with(500, "InternalServerException", "down", times=None)
    # Keep the background refresh failing until the token has <10% left,
    # then let AWS answer: the client must get a new token, not the old one.
    time.sleep(9.2)
    fake.clear_failures()

    second = user.wev(*PRINT_TOKEN)

    assert second.returncode == 0, second.stderr
    assert second.stdout != first.stdout and fake.is_valid_token(second.stdout)


@pytest.mark.timing  # a window of about a second in the token's life
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalServerException"),
        (429, "ThrottlingException"),
        (403, "AccessDeniedException"),
    ],
)
def test_cached_token_survives_upstream_failure(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, status: int, code: str
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.set_lifetime(6)
    first = user.wev(*PRINT_TOKEN)
    fake.fail_with(status, code, "upstream trouble")
    assert fake.wait_for_call_count(2, timeout=10), "the refresh was not attempted"

    started = time.monotonic()
    second = user.wev(*PRINT_TOKEN)

    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout and fake.is_valid_token(second.stdout)
    assert time.monotonic() - started < 5


def test_upstream_error_without_a_token_is_one_clear_line(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.fail_with(403, "AccessDeniedException", "User is not authorized to perform this action")

    result = user.wev("echo", "should not run")

    assert result.returncode == 69
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "AccessDeniedException" in line and "User is not authorized" in line
    assert "corp" in line and "Traceback" not in result.stderr


def test_expired_credentials_tell_the_user_what_to_do(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    fake.fail_with(403, "ExpiredTokenException", "The security token included is expired")

    result = user.wev("true", env={"AWS_PROFILE": "work"})

    assert result.returncode == 69
    assert "ExpiredTokenException" in result.stderr and "profile work" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_unknown_profile_is_a_clear_error(user: User, daemon: Daemon) -> None:
    user.write("work/project/wev.yml", SHARED + "    profile: nosuch\n")

    result = user.wev("true")

    assert result.returncode == 69
    assert "nosuch" in result.stderr and "Traceback" not in result.stderr


def test_without_a_daemon_in_process(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", SHARED)

    result = user.wev(*PRINT_TOKEN, env={"WEV_NO_DAEMON": "1", "AWS_PROFILE": "work"})

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    assert [c.access_key_id for c in fake.calls] == [WORK_KEY]
    assert not (user.runtime / "wev" / "daemon.sock").exists()


def test_auto_start_then_reuse(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", SHARED)

    first = user.wev(*PRINT_TOKEN)
    second = user.wev(*PRINT_TOKEN)

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and fake.call_count == 1
    status = user.wev("--status", "--json")
    assert status.returncode == 0 and '"pid"' in status.stdout
    assert "listening on" in user.log_file.read_text()


def test_expired_sso_session_says_aws_sso_login(user: User) -> None:
    """With no terminal the call says so, waits for the sign-in up to the wait bound
    (here 1 s), then fails with the line that names the login to run."""
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text()
        + "\n[profile sso-dev]\nsso_session = corp\nsso_account_id = 111122223333\n"
        "sso_role_name = Dev\nregion = eu-west-1\n\n"
        "[sso-session corp]\nsso_start_url = https://corp.example/start\nsso_region = eu-west-1\n"
    )
    user.write("work/project/wev.yml", SHARED)
    daemon = Daemon(user, args=("--question-wait", "1"))
    try:
        result = user.wev("true", env={"AWS_PROFILE": "sso-dev"})
    finally:
        daemon.stop()

    assert result.returncode == 69
    waiting, line = result.stderr.splitlines()
    assert "aws sso login --profile sso-dev" in waiting and "waiting for the sign-in" in waiting
    assert "aws sso login --profile sso-dev" in line and "CODEARTIFACT_AUTH_TOKEN" in line
    assert "waited 1 s for the sign-in" in line


def test_no_token_ever_reaches_disk_or_logs(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)
    tokens = {user.wev(*PRINT_TOKEN).stdout}
    tokens.add(user.wev(*PRINT_TOKEN, env={"AWS_PROFILE": "work"}).stdout)
    user.wev("--explain")
    user.wev("--status")
    daemon.stop()

    assert all(fake.is_valid_token(token) for token in tokens)
    for path in user.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(token.encode() in content for token in tokens), path


def test_many_clients_with_no_daemon_start_one_and_call_aws_once(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", SHARED)

    clients = [user.popen_wev(*PRINT_TOKEN) for _ in range(30)]
    outputs = [client.communicate(timeout=60) for client in clients]

    assert all(client.returncode == 0 for client in clients), outputs[0][1]
    assert len({stdout for stdout, _ in outputs}) == 1
    assert fake.call_count == 1
    assert user.log_file.read_text().count("listening on") == 1


def test_unreachable_endpoint_fails_fast_with_a_clear_line(user: User, daemon: Daemon) -> None:
    closed_port = free_port()  # nothing listens there, and no other test is handed it
    user.write("work/project/wev.yml", SHARED)

    started = time.monotonic()
    result = user.wev(
        "true", env={"AWS_ENDPOINT_URL_CODEARTIFACT": f"http://127.0.0.1:{closed_port}"}
    )

    assert result.returncode == 69
    assert "cannot reach AWS" in result.stderr and len(result.stderr.splitlines()) == 1
    assert time.monotonic() - started < 15


def test_daemon_that_cannot_start_falls_back_to_in_process(
    user: User, fake: FakeCodeArtifact
) -> None:
    (user.runtime / "wev").mkdir(mode=0o755)  # others can enter: the daemon refuses it
    (user.runtime / "wev").chmod(0o755)
    user.write("work/project/wev.yml", SHARED)

    result = user.wev(*PRINT_TOKEN)

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    assert "chmod 0700" in result.stderr
