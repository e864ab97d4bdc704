"""End to end: the daemon resolves AWS credentials in the caller's whole context.

The real ``wev`` asks the real ``wev-daemon``; AWS is replaced at the network edge
only (CodeArtifact, IAM Identity Center, STS, a container credentials endpoint), each
fake speaking the real wire protocol. What AWS saw (which key signed the call) shows
whose context was used: the caller's HOME, environment and working folder, never the
daemon's. ``WEV_NO_DAEMON=1`` resolves in the client with the same code and must agree.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CREDENTIALS, DEFAULT_KEY, WORK_KEY, WORK_SECRET, Daemon, User, free_port
from ecr_harness import HELPER as DOCKER_HELPER
from ecr_harness import REGISTRY
from fakes.codeartifact import FakeCodeArtifact
from fakes.container import PATH, FakeContainerCredentials
from fakes.ecr import FakeEcr
from fakes.pypi_index import FakePyPIIndex
from fakes.sso import ACCOUNT, ROLE, FakeSso
from fakes.sts import FakeSts
from tools import CODEARTIFACT_URL, start_keyring_lookup

CODEARTIFACT = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: corp
"""
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
IN_PROCESS = {"WEV_NO_DAEMON": "1"}
#: A failure found on this machine must be told at once, not after a network timeout.
QUICK = 5.0

START_URL = "https://corp.awsapps.com/start"
SSO_PROFILE = f"""
[profile sso]
sso_start_url = {START_URL}
sso_region = eu-central-1
sso_account_id = {ACCOUNT}
sso_role_name = {ROLE}
region = eu-west-1
"""
ROLE_ARN = "arn:aws:iam::123456789012:role/ci-builder"


@pytest.fixture
def fake() -> Iterator[FakeCodeArtifact]:
    """A CodeArtifact fake with its own credentials, to which the other fakes add keys."""
    with FakeCodeArtifact(dict(CREDENTIALS)) as server:
        yield server


def credentials_of(fake: FakeCodeArtifact) -> dict[str, str]:
    """The live key map the CodeArtifact fake checks signatures against."""
    credentials = fake.verifier.credentials
    assert isinstance(credentials, dict)
    return credentials


def error_line(result: subprocess.CompletedProcess[str], *, alone: bool = True) -> str:
    """wev's line for a failure before exec: non-zero exit, nothing on stdout.

    ``alone``: the line is all there is on stderr. Not yet in-process, where log
    records reach stderr (see ``test_in_process_failure_is_one_line``).
    """
    assert result.returncode != 0 and result.stdout == "", result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("wev: "), result.stderr
    if alone:
        assert len(lines) == 1, result.stderr
    return lines[-1]


def keys_seen(fake: FakeCodeArtifact) -> list[str | None]:
    return [call.access_key_id for call in fake.calls]


def assert_served_by(user: User, daemon: Daemon) -> None:
    """That daemon is still the user's: the client neither started another nor fell back."""
    assert daemon.process.poll() is None
    assert Path(user.socket + ".lock").read_text().strip() == str(daemon.process.pid)


def daemon_process(daemon: Daemon) -> tuple[dict[str, str], Path]:
    """The daemon's own environment and working folder."""
    raw = Path(f"/proc/{daemon.process.pid}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    return env, Path(f"/proc/{daemon.process.pid}/cwd").resolve()


# -- IAM Identity Center ------------------------------------------------------------------


@pytest.fixture
def sso(fake: FakeCodeArtifact) -> Iterator[FakeSso]:
    with FakeSso(issued=credentials_of(fake)) as server:
        yield server


def sso_user(user: User, sso: FakeSso) -> dict[str, str]:
    """Add the SSO profile to the user's config; the client env that selects it."""
    config = user.home / ".aws" / "config"
    config.write_text(config.read_text() + SSO_PROFILE)
    user.write("work/project/wev.yml", CODEARTIFACT)
    # As in CI: nobody signs in there, so a missing login fails at once (elsewhere a
    # caller with no terminal waits for the sign-in: tests/test_questions.py).
    return {"AWS_PROFILE": "sso", "AWS_ENDPOINT_URL_SSO": sso.url, "CI": "true"}


def sso_login(home: Path, token: str, expires_in: float = 8 * 3600) -> Path:
    """Write the token cache as ``aws sso login`` does (legacy profile form)."""
    folder = home / ".aws" / "sso" / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(START_URL.encode(), usedforsecurity=False).hexdigest() + ".json")
    expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    path.write_text(
        json.dumps(
            {
                "startUrl": START_URL,
                "region": "eu-central-1",
                "accessToken": token,
                "expiresAt": expires_at,
            }
        )
    )
    return path


def test_sso_login_is_read_under_the_callers_home(
    user: User, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    env = sso_user(user, sso)
    sso.accept("sso-access-token-1")
    sso_login(user.home, "sso-access-token-1")
    elsewhere = user.root / "daemon-home"  # no ~/.aws at all, let alone an SSO login
    elsewhere.mkdir()
    daemon = Daemon(user, env={"HOME": str(elsewhere)})
    try:
        result = user.wev(*PRINT_TOKEN, env=env)
        assert_served_by(user, daemon)
    finally:
        daemon.stop()

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    [call] = sso.calls
    assert (call.access_token, call.account_id, call.role_name) == (
        "sso-access-token-1",
        ACCOUNT,
        ROLE,
    )
    [role] = sso.sessions
    assert keys_seen(fake) == [role.access_key_id]
    assert fake.calls[0].session_token == role.session_token


@pytest.mark.timing  # told at once (QUICK), not after a network timeout
@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
def test_sso_login_after_the_error_works_at_once(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso, extra: dict[str, str]
) -> None:
    env = {**sso_user(user, sso), **extra}

    started = time.monotonic()
    missing = user.wev(*PRINT_TOKEN, env=env)
    assert time.monotonic() - started < QUICK

    assert "aws sso login" in error_line(missing, alone=not extra)
    assert sso.calls == [] and fake.call_count == 0

    sso.accept("sso-access-token-2")
    sso_login(user.home, "sso-access-token-2")  # as `aws sso login` would, in another shell
    started = time.monotonic()
    result = user.wev(*PRINT_TOKEN, env=env)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < QUICK
    assert fake.is_valid_token(result.stdout)
    assert keys_seen(fake) == [sso.sessions[0].access_key_id]
    if not extra:
        assert_served_by(user, daemon)  # no restart


@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
def test_expired_sso_login_then_a_fresh_one(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso, extra: dict[str, str]
) -> None:
    env = {**sso_user(user, sso), **extra}
    sso_login(user.home, "sso-access-token-old", expires_in=-60)

    expired = user.wev(*PRINT_TOKEN, env=env)

    line = error_line(expired, alone=not extra)
    assert "expired" in line and "aws sso login" in line
    assert fake.call_count == 0

    sso.accept("sso-access-token-new")
    sso_login(user.home, "sso-access-token-new")
    result = user.wev(*PRINT_TOKEN, env=env)

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    assert [call.access_token for call in sso.calls] == ["sso-access-token-new"]
    assert keys_seen(fake) == [sso.sessions[0].access_key_id]


def test_sso_token_the_portal_rejects_asks_for_a_login(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    env = sso_user(user, sso)
    sso_login(user.home, "sso-access-token-revoked")  # not expired on disk, but signed out

    result = user.wev(*PRINT_TOKEN, env=env)

    line = error_line(result)
    assert "expired" in line and "aws sso login" in line
    assert [call.access_token for call in sso.calls] == ["sso-access-token-revoked"]
    assert fake.call_count == 0


def resumed_after_sign_in(
    waiting: subprocess.Popen[str], user: User, sso: FakeSso, token: str, calls: Callable[[], int]
) -> str:
    """A caller with no terminal (an IDE's task, a keyring lookup, Docker's helper; not CI)
    says what it waits for, and the ``aws sso login`` the user runs meanwhile lets it go on
    by itself, with no AWS call before: what it prints."""
    try:
        line = waiting.stderr.readline() if waiting.stderr else ""
        assert "aws sso login --profile sso" in line and "waiting" in line, line
        assert waiting.poll() is None and calls() == 0

        sso.accept(token)
        sso_login(user.home, token)
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(5)
    assert waiting.returncode == 0, out + err
    assert [call.access_token for call in sso.calls] == [token]
    return out


def no_terminal_sso_env(user: User, sso: FakeSso) -> dict[str, str]:
    """``sso_user``'s environment outside CI, where a caller waits for the sign-in."""
    return {k: v for k, v in sso_user(user, sso).items() if k != "CI"}


def test_a_caller_with_no_terminal_waits_for_the_sign_in_and_resumes(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    waiting = user.popen_wev(*PRINT_TOKEN, env=no_terminal_sso_env(user, sso))
    out = resumed_after_sign_in(waiting, user, sso, "sso-access-token-3", lambda: fake.call_count)
    assert fake.is_valid_token(out)
    assert_served_by(user, daemon)


def test_without_a_daemon_a_caller_with_no_terminal_says_it_waits_for_the_sign_in(
    user: User, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    env = {**no_terminal_sso_env(user, sso), **IN_PROCESS}
    waiting = user.popen_wev(*PRINT_TOKEN, env=env)
    out = resumed_after_sign_in(waiting, user, sso, "sso-access-token-6", lambda: fake.call_count)
    assert fake.is_valid_token(out)


KEYRING_LOOKUP = (
    "import sys\n"
    "from wev_client.keyring_backend import WevKeyring\n"
    "print(WevKeyring().get_password(sys.argv[1], 'aws') or '', end='')\n"
)


def test_a_keyring_lookup_waits_for_the_sign_in_and_resumes(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    """pip's keyring lookup has no terminal: it says what to run on its stderr, which pip
    shows, and gets its token once the user has signed in."""
    env = no_terminal_sso_env(user, sso)
    lookup = start_keyring_lookup(user, KEYRING_LOOKUP, CODEARTIFACT_URL, env)
    out = resumed_after_sign_in(lookup, user, sso, "sso-access-token-4", lambda: fake.call_count)
    assert fake.is_valid_token(out)


def test_the_docker_helper_waits_for_the_sign_in_and_resumes(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, sso: FakeSso
) -> None:
    """Docker runs its credential helper with no terminal: an ECR password behind an
    expired SSO login waits for the user's ``aws sso login``, as the other doors do."""
    env = no_terminal_sso_env(user, sso)
    asked = user.write("server-url", REGISTRY)
    with FakeEcr(credentials_of(fake)) as ecr, asked.open() as stdin:
        pull = subprocess.Popen(
            (DOCKER_HELPER, "get"),
            cwd=user.project,
            env={**user.env, **env, "AWS_ENDPOINT_URL_ECR": ecr.url},
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        out = resumed_after_sign_in(pull, user, sso, "sso-access-token-5", lambda: ecr.call_count)
        assert ecr.is_valid_password(REGISTRY, json.loads(out)["Secret"])


def test_the_proxy_waits_for_the_sign_in_and_resumes(
    user: User, fake: FakeCodeArtifact, sso: FakeSso, index: FakePyPIIndex
) -> None:
    """A tool's request to the proxy, when the token must be renewed and the SSO login has
    expired meanwhile, waits for the user's ``aws sso login`` and then gets its answer."""
    env = no_terminal_sso_env(user, sso)
    user.write(
        "work/project/wev.yml",
        "PIP_INDEX_URL:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
        "    repository: shared\n    format: pypi\n    values: [index_url]\n    proxy: true\n",
    )
    sso.accept("sso-access-token-5")
    sso_login(user.home, "sso-access-token-5")
    fake.set_lifetime(8)  # fresh for about 6 s: the proxy's request renews it
    daemon = Daemon(user, env={"WEV_PROXY_PORT": str(free_port())})
    try:
        first = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"', env=env)
        assert first.returncode == 0, first.stderr
        sso_login(user.home, "sso-access-token-5", expires_in=-60)  # the login expires
        time.sleep(8)
        get = f"import urllib.request as u; print(u.urlopen({first.stdout + 'corp-lib/'!r}).status)"
        request = subprocess.Popen(
            (sys.executable, "-c", get),
            env={"PATH": user.env["PATH"], "NO_PROXY": "*"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while "aws sso login --profile sso" not in user.wev("--status").stdout:
                assert time.monotonic() < deadline and request.poll() is None, "no sign-in waits"
                time.sleep(0.1)
            sso.accept("sso-access-token-6")
            sso_login(user.home, "sso-access-token-6")
            out, err = request.communicate(timeout=30)
        finally:
            if request.poll() is None:
                request.kill()
                request.wait(5)
    finally:
        daemon.stop()

    assert (request.returncode, out) == (0, "200\n"), err
    assert [call.access_token for call in sso.calls][-1] == "sso-access-token-6"
    assert len(fake.issued) == 2


# -- credential_process --------------------------------------------------------------------

HELPER = """\
#!{python}
import json, os, sys, time
with open({record!r}, "a") as record:
    record.write(json.dumps({{"marker": os.environ.get("MARKER"), "cwd": os.getcwd()}}) + "\\n")
expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
print(json.dumps({{
    "Version": 1,
    "AccessKeyId": {key!r},
    "SecretAccessKey": {secret!r},
    "SessionToken": "helper-session-token",
    "Expiration": expiration,
}}))
"""
HELPER_KEY = "ASIAHELPERPROCESS001"
HELPER_SECRET = "helper-secret-key-000000000000000000000000"


def add_helper(user: User, fake: FakeCodeArtifact) -> Path:
    """A ``credential_process`` profile whose helper lives in the project (run as ./helper.py)."""
    record = user.root / "helper-runs.jsonl"
    helper = user.write(
        "work/project/helper.py",
        HELPER.format(
            python=sys.executable, record=str(record), key=HELPER_KEY, secret=HELPER_SECRET
        ),
    )
    helper.chmod(0o755)
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text()
        + "\n[profile helper]\ncredential_process = ./helper.py\nregion = eu-west-1\n"
    )
    credentials_of(fake)[HELPER_KEY] = HELPER_SECRET
    user.write("work/project/wev.yml", CODEARTIFACT)
    return record


def test_credential_process_runs_in_the_callers_environment_and_folder(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    record = add_helper(user, fake)
    daemon_env, daemon_cwd = daemon_process(daemon)
    assert "MARKER" not in daemon_env and daemon_cwd != user.project
    env = {"AWS_PROFILE": "helper", "MARKER": "from-the-callers-shell"}

    through_daemon = user.wev(*PRINT_TOKEN, env=env)
    in_process = user.wev(*PRINT_TOKEN, env={**env, **IN_PROCESS})

    assert through_daemon.returncode == 0, through_daemon.stderr
    assert in_process.returncode == 0, in_process.stderr
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    seen = {"marker": "from-the-callers-shell", "cwd": str(user.project)}
    assert runs == [seen, seen]
    assert keys_seen(fake) == [HELPER_KEY, HELPER_KEY]


def test_relative_credentials_file_is_the_callers_project_file(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    other = user.root / "work" / "other"
    for project, key, secret in (
        (user.project, DEFAULT_KEY, CREDENTIALS[DEFAULT_KEY]),
        (other, WORK_KEY, WORK_SECRET),
    ):
        project.mkdir(parents=True, exist_ok=True)
        (project / "wev.yml").write_text(CODEARTIFACT)
        (project / "creds").write_text(
            f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        )
    env = {"AWS_SHARED_CREDENTIALS_FILE": "creds"}

    here = user.wev(*PRINT_TOKEN, env=env)
    there = user.wev(*PRINT_TOKEN, env=env, cwd=other)

    assert here.returncode == 0, here.stderr
    assert there.returncode == 0, there.stderr
    assert here.stdout != there.stdout
    assert all(fake.is_valid_token(result.stdout) for result in (here, there))
    assert keys_seen(fake) == [DEFAULT_KEY, WORK_KEY]


# -- container credentials -----------------------------------------------------------------


@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
def test_container_credentials_from_the_callers_environment(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, extra: dict[str, str]
) -> None:
    # botocore reads the shared credentials file before the container endpoint.
    (user.home / ".aws" / "credentials").write_text("")
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeContainerCredentials("container-auth-token", issued=credentials_of(fake)) as box:
        result = user.wev(
            *PRINT_TOKEN,
            env={
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": box.url + PATH,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-token",
                **extra,
            },
        )
        requests = box.requests
        keys = box.keys

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    assert [(r.path, r.authorization) for r in requests] == [(PATH, "container-auth-token")]
    assert keys_seen(fake) == keys and len(keys) == 1


# -- web identity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_file", "written_at"),
    [("ci/token", "work/project/ci/token"), ("~/.ci-token", "home/.ci-token")],
    ids=["relative", "home"],
)
def test_web_identity_from_the_callers_token_file(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, token_file: str, written_at: str
) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeSts({}, issued=credentials_of(fake)) as sts:
        user.write(written_at, sts.web_identity_token)
        env = {
            "AWS_WEB_IDENTITY_TOKEN_FILE": token_file,
            "AWS_ROLE_ARN": ROLE_ARN,
            "AWS_ENDPOINT_URL_STS": sts.url,
        }
        through_daemon = user.wev(*PRINT_TOKEN, env=env)
        in_process = user.wev(*PRINT_TOKEN, env={**env, **IN_PROCESS})
        calls = sts.calls
        sessions = sts.sessions

    assert through_daemon.returncode == 0, through_daemon.stderr
    assert in_process.returncode == 0, in_process.stderr
    assert [(c.action, c.role_arn, c.web_identity_token) for c in calls] == 2 * [
        ("AssumeRoleWithWebIdentity", ROLE_ARN, sts.web_identity_token)
    ]
    assert all(c.access_key_id is None for c in calls)  # unsigned, as AWS wants it
    assert keys_seen(fake) == [session.access_key_id for session in sessions]


def test_web_identity_token_is_checked(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeSts({}, issued=credentials_of(fake)) as sts:
        user.write("work/project/token", "not-the-token")
        result = user.wev(
            *PRINT_TOKEN,
            env={
                "AWS_WEB_IDENTITY_TOKEN_FILE": "token",
                "AWS_ROLE_ARN": ROLE_ARN,
                "AWS_ENDPOINT_URL_STS": sts.url,
            },
        )

    assert "InvalidIdentityToken" in error_line(result)
    assert fake.call_count == 0  # not the default profile's keys instead


# -- files named by the caller -------------------------------------------------------------


@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
@pytest.mark.parametrize(
    ("name", "value", "shown", "reason"),
    [
        # A folder stands for a file that exists but cannot be read (tests may run as root).
        ("AWS_SHARED_CREDENTIALS_FILE", "folder", "work/project/folder", "Is a directory"),
        ("AWS_CONFIG_FILE", "folder", "work/project/folder", "Is a directory"),
        ("AWS_CA_BUNDLE", "/nonexistent", "/nonexistent", "No such file or directory"),
        ("REQUESTS_CA_BUNDLE", "/nonexistent", "/nonexistent", "No such file or directory"),
    ],
)
def test_a_named_file_that_cannot_be_read_is_an_error(
    user: User,
    daemon: Daemon,
    fake: FakeCodeArtifact,
    name: str,
    value: str,
    shown: str,
    reason: str,
    extra: dict[str, str],
) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)
    (user.project / "folder").mkdir()

    result = user.wev(*PRINT_TOKEN, env={name: value, **extra})

    line = error_line(result, alone=not extra)
    path = value if value.startswith("/") else str(user.root / shown)
    assert f"{name}={path} cannot be read: {reason}" in line, line
    assert fake.call_count == 0  # and no other identity tried instead


@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
def test_missing_config_and_credentials_files_read_as_empty(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, extra: dict[str, str]
) -> None:
    # A CI image exports both names for files this job never writes; its keys are in
    # the environment, and the AWS CLI in the same shell works.
    user.write("work/project/wev.yml", CODEARTIFACT)
    env = {
        "AWS_CONFIG_FILE": str(user.root / "never-written" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": "missing/credentials",
        "AWS_ACCESS_KEY_ID": WORK_KEY,
        "AWS_SECRET_ACCESS_KEY": WORK_SECRET,
        "AWS_REGION": "eu-central-1",
        **extra,
    }

    result = user.wev(*PRINT_TOKEN, env=env)

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout)
    [call] = fake.calls
    assert (call.access_key_id, call.region) == (WORK_KEY, "eu-central-1")


# -- what the configuration sets is not context --------------------------------------------


def test_a_name_the_configuration_sets_is_not_the_callers_context(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml",
        CODEARTIFACT + "AWS_PROFILE:\n  plugin:\n    id: wev-echo\n    value: work\n",
    )
    show = ("sh", "-c", 'printf "%s %s" "$AWS_PROFILE" "$CODEARTIFACT_AUTH_TOKEN"')

    first = user.wev(*show)
    # direnv exported the configuration's AWS_PROFILE into the shell afterwards
    second = user.wev(*show, env={"AWS_PROFILE": "work"})

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    profile, token = first.stdout.split(" ")
    assert profile == "work" and fake.is_valid_token(token)
    assert second.stdout == first.stdout
    assert keys_seen(fake) == [DEFAULT_KEY]  # one call: the second was served from the cache


# -- no credentials at all -----------------------------------------------------------------


@pytest.mark.timing  # told at once (QUICK), not after a network timeout
@pytest.mark.parametrize("extra", [{}, IN_PROCESS], ids=["daemon", "in-process"])
def test_metadata_switch_of_the_caller_gives_a_quick_clear_error(
    user: User, fake: FakeCodeArtifact, extra: dict[str, str]
) -> None:
    (user.home / ".aws" / "credentials").write_text("")
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeContainerCredentials("unused") as metadata:
        # The daemon's own shell would ask the instance metadata service.
        daemon = Daemon(
            user,
            env={
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.url,
            },
        )
        try:
            started = time.monotonic()
            result = user.wev(*PRINT_TOKEN, env={"AWS_EC2_METADATA_DISABLED": "true", **extra})
            elapsed = time.monotonic() - started
            if not extra:
                assert_served_by(user, daemon)
        finally:
            daemon.stop()
        asked = metadata.requests

    assert "no AWS credentials" in error_line(result, alone=not extra)
    assert elapsed < QUICK
    assert asked == [] and fake.call_count == 0


def test_metadata_endpoint_of_the_caller_is_asked_when_enabled(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """The counterpart: the caller's own IMDS settings reach the SDK."""
    (user.home / ".aws" / "credentials").write_text("")
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeContainerCredentials("unused") as metadata:
        result = user.wev(
            *PRINT_TOKEN,
            env={
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.url,
            },
        )
        asked = metadata.requests

    assert "no AWS credentials" in error_line(result)
    assert asked and all(r.path.startswith("/latest/") for r in asked)
    assert fake.call_count == 0


def test_in_process_failure_is_one_line(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)

    result = user.wev(*PRINT_TOKEN, env={"AWS_SHARED_CREDENTIALS_FILE": "/", **IN_PROCESS})

    assert "AWS_SHARED_CREDENTIALS_FILE=/ cannot be read: Is a directory" in error_line(result)
