"""``docker-credential-wev``: Docker's credential-helper protocol, verb by verb, as Docker runs it.

The real helper, the real daemon (or none: the helper starts one, or resolves in its own
process), the fake ECR. What the container tools do with it: ``tests/test_container_tools.py``.
"""

from __future__ import annotations

import glob
import json
import subprocess

import pytest
from conftest import BIN, DEFAULT_KEY, WORK_KEY, Daemon, User, output
from ecr_harness import HELPER, REGISTRY, TIMEOUT, helper
from fakes.ecr import FakeEcr

pytest_plugins = ("ecr_fixtures",)

NOT_FOUND = "credentials not found in native keychain\n"
OTHER = "210987654321.dkr.ecr.us-east-1.amazonaws.com"


def answer(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, output(result)
    document = json.loads(result.stdout)
    assert isinstance(document, dict) and set(document) == {"ServerURL", "Username", "Secret"}
    return document


@pytest.mark.parametrize(
    "server_url",
    [REGISTRY, f"https://{REGISTRY}", f"{REGISTRY}:443", f"https://{REGISTRY}/v2/app/", "\n"],
)
def test_get_answers_an_ecr_host_however_it_is_written(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon, server_url: str
) -> None:
    written = REGISTRY + server_url if server_url == "\n" else server_url  # a trailing newline
    document = answer(helper(ecr_user, "get", written))
    assert document["ServerURL"] == written.strip()
    assert document["Username"] == "AWS"
    assert ecr.is_valid_password(REGISTRY, document["Secret"])


def test_get_without_a_daemon_resolves_in_its_own_process(ecr_user: User, ecr: FakeEcr) -> None:
    document = answer(helper(ecr_user, "get", REGISTRY, env={"WEV_NO_DAEMON": "1"}))
    assert ecr.is_valid_password(REGISTRY, document["Secret"])
    assert not glob.glob(str(ecr_user.runtime / "wev" / "*.sock"))


def test_ecr_public_is_served_too(ecr_user: User, ecr: FakeEcr, daemon: Daemon) -> None:
    document = answer(helper(ecr_user, "get", "public.ecr.aws"))
    assert ecr.is_valid_password("public.ecr.aws", document["Secret"])


@pytest.mark.parametrize("host", ["docker.io", "ghcr.io", "https://index.docker.io/v1/"])
def test_get_sends_other_hosts_back_to_dockers_other_sources(
    ecr_user: User, ecr: FakeEcr, host: str
) -> None:
    result = helper(ecr_user, "get", host)
    assert (result.returncode, result.stdout) == (1, NOT_FOUND), output(result)
    assert ecr.call_count == 0


@pytest.mark.parametrize(
    ("action", "stdin"), [("get", ""), ("get", " \n"), ("erase", ""), ("store", '{"Secret": "s"}')]
)
def test_without_a_server_url_it_answers_in_the_protocols_words(
    ecr_user: User, action: str, stdin: str
) -> None:
    """Docker matches the text exactly (``IsCredentialsMissingServerURLMessage``)."""
    result = helper(ecr_user, action, stdin)
    assert (result.returncode, result.stdout) == (1, "no credentials server URL\n"), output(result)


def test_an_aws_failure_is_one_line_where_docker_reads_it(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr.fail_with(400, "AccessDeniedException")
    result = helper(ecr_user, "get", REGISTRY)
    assert result.returncode == 69, output(result)
    assert result.stdout.startswith("wev: ") and len(result.stdout.splitlines()) == 1
    assert "AccessDeniedException" in result.stdout and NOT_FOUND not in result.stdout


def test_an_error_names_the_users_entry_or_no_key_at_all(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    """Never a variable name that no file holds and no environment gets."""
    unnamed = helper(ecr_user, "get", REGISTRY, env={"AWS_PROFILE": "nope"})
    ecr_user.write(
        "work/project/wev.yml",
        f"APP_ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n    profile: [work]\n",
    )
    named = helper(ecr_user, "get", REGISTRY)

    assert unnamed.returncode == 69, output(unnamed)
    assert unnamed.stdout.startswith(f"wev: ECR password for {REGISTRY} (profile nope): ")
    assert named.returncode == 78, output(named)
    assert named.stdout.startswith("wev: ") and ": APP_ECR: wev-awsecr: " in named.stdout
    assert "WEV_ECR" not in unnamed.stdout + named.stdout


def test_an_entrys_unknown_property_is_a_warning_as_wev_gives_it(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr_user.write(
        "work/project/wev.yml",
        f"APP_ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n    profil: work\n",
    )
    result = helper(ecr_user, "get", REGISTRY)

    answer(result)
    [line] = result.stderr.splitlines()
    assert line.startswith("docker-credential-wev: warning: ")
    assert "ignores unknown property 'profil'" in line


def test_list_names_the_configured_registries(ecr_user: User) -> None:
    ecr_user.write(
        "home/.wev.yml",
        f"ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n"
        'ANY:\n  plugin:\n    id: wev-awsecr\n    registry: "*.dkr.ecr.us-east-1.amazonaws.com"\n',
    )
    result = helper(ecr_user, "list")
    assert result.returncode == 0, output(result)
    assert json.loads(result.stdout) == {REGISTRY: "AWS"}


def test_version_and_a_list_with_nothing_configured(ecr_user: User) -> None:
    version = helper(ecr_user, "version")
    empty = helper(ecr_user, "list", "unused")  # what Docker's client writes to list's stdin

    assert version.returncode == 0 and version.stdout.startswith("docker-credential-wev ")
    assert (empty.returncode, empty.stdout) == (0, "{}\n"), output(empty)


@pytest.mark.parametrize(
    ("action", "stdin"),
    [
        ("store", json.dumps({"ServerURL": REGISTRY, "Username": "AWS", "Secret": "typed-in"})),
        ("erase", REGISTRY),
    ],
)
def test_store_and_erase_keep_nothing_and_succeed_for_ecr(
    ecr_user: User, action: str, stdin: str
) -> None:
    before = sorted(ecr_user.root.rglob("*"))
    result = helper(ecr_user, action, stdin)
    assert (result.returncode, result.stdout) == (0, ""), output(result)
    assert sorted(ecr_user.root.rglob("*")) == before
    assert "typed-in" not in helper(ecr_user, "get", REGISTRY).stdout


@pytest.mark.parametrize(
    ("action", "stdin"),
    [
        ("store", json.dumps({"ServerURL": "ghcr.io", "Username": "me", "Secret": "s"})),
        ("erase", "ghcr.io"),
    ],
)
def test_store_and_erase_refuse_other_hosts_in_one_line(
    ecr_user: User, action: str, stdin: str
) -> None:
    result = helper(ecr_user, action, stdin)
    assert result.returncode != 0
    assert result.stdout.startswith("wev: ghcr.io is not an ECR registry")
    assert len(result.stdout.splitlines()) == 1


def test_store_of_what_is_not_the_protocols_json_is_a_usage_error(ecr_user: User) -> None:
    result = helper(ecr_user, "store", "not json")
    assert result.returncode == 64, output(result)
    assert (
        result.stdout == "wev: docker-credential-wev store: the input is not the protocol's JSON\n"
    )


def test_an_unknown_action_is_refused(ecr_user: User) -> None:
    result = helper(ecr_user, "frobnicate")
    assert result.returncode != 0 and "unknown action: frobnicate" in result.stdout


def test_fifty_calls_from_five_processes_make_one_ecr_call(ecr_user: User, ecr: FakeEcr) -> None:
    # No daemon runs yet: the first calls start one, the others wait for it.
    loop = f'for i in 1 2 3 4 5 6 7 8 9 10; do echo {REGISTRY} | "{HELPER}" get || exit 1; done'
    workers = [
        subprocess.Popen(
            ["sh", "-c", loop],
            cwd=ecr_user.project,
            env=ecr_user.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    secrets = []
    for worker in workers:
        out, err = worker.communicate(timeout=TIMEOUT)
        assert worker.returncode == 0, err
        secrets += [json.loads(line)["Secret"] for line in out.splitlines()]
    assert len(secrets) == 50 and len(set(secrets)) == 1
    assert ecr.call_count == 1
    assert ecr.is_valid_password(REGISTRY, secrets[0])


def test_two_registries_under_two_profiles_get_two_tokens(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr_user.write(
        "home/.wev.yml",
        f"MAIN:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n"
        "US:\n  plugin:\n    id: wev-awsecr\n"
        '    registry: "*.dkr.ecr.us-east-1.amazonaws.com"\n    profile: work\n',
    )
    main, other = (answer(helper(ecr_user, "get", host))["Secret"] for host in (REGISTRY, OTHER))
    assert main != other
    assert ecr.is_valid_password(REGISTRY, main) and ecr.is_valid_password(OTHER, other)
    assert [(call.access_key_id, call.region) for call in ecr.calls] == [
        (DEFAULT_KEY, "eu-west-1"),
        (WORK_KEY, "us-east-1"),
    ]
    again = [answer(helper(ecr_user, "get", host))["Secret"] for host in (REGISTRY, OTHER)]
    assert again == [main, other] and ecr.call_count == 2


def test_the_projects_entry_wins_over_homes_for_the_same_registry(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    """As its keys do: the project's wev.yml says which profile its registry takes."""
    ecr_user.write(
        "home/.wev.yml", f"HOME_ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n"
    )
    ecr_user.write(
        "work/project/wev.yml",
        f"APP_ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n    profile: work\n",
    )
    in_project = answer(helper(ecr_user, "get", REGISTRY))["Secret"]
    elsewhere = subprocess.run(
        [HELPER, "get"],
        input=REGISTRY,
        cwd=ecr_user.home,
        env=ecr_user.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )

    assert ecr.is_valid_password(REGISTRY, in_project)
    assert answer(elsewhere)["Secret"] != in_project
    assert [call.access_key_id for call in ecr.calls] == [WORK_KEY, DEFAULT_KEY]


def test_the_callers_aws_profile_decides_without_an_entry(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    answer(helper(ecr_user, "get", REGISTRY, env={"AWS_PROFILE": "work"}))
    answer(helper(ecr_user, "get", REGISTRY))
    assert [call.access_key_id for call in ecr.calls] == [WORK_KEY, DEFAULT_KEY]


def test_the_helper_runs_no_slower_for_its_imports(ecr_user: User) -> None:
    probe = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import sys, wev_client.docker_helper; print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    loaded = set(probe.stdout.split())
    assert not loaded & {"asyncio", "aiohttp", "botocore", "json", "re", "yaml", "wev_daemon"}


def test_after_an_expiry_the_helper_never_hands_the_dead_password(
    ecr_user: User, ecr: FakeEcr, libfaketime: dict[str, str]
) -> None:
    """A laptop sleeps 13 hours: libfaketime moves the daemon's wall clock, and the fake's."""
    offset = ecr_user.home / ".faketimerc"

    def sleep(hours: int) -> None:
        offset.write_text(f"+{hours * 3600}\n")
        ecr.shift_clock(hours * 3600)

    daemon = Daemon(ecr_user, env=libfaketime)
    try:
        first = answer(helper(ecr_user, "get", REGISTRY))["Secret"]
        sleep(13)
        assert not ecr.is_valid_password(REGISTRY, first)
        second = answer(helper(ecr_user, "get", REGISTRY))["Secret"]
        assert ecr.is_valid_password(REGISTRY, second) and ecr.call_count == 2

        sleep(26)  # and AWS fails: an error, never the dead password
        ecr.fail_with(500, "ServiceUnavailableException")
        result = helper(ecr_user, "get", REGISTRY)
        assert result.returncode == 69, output(result)
        assert second not in result.stdout and "ServiceUnavailable" in result.stdout
    finally:
        daemon.stop()


def test_the_helper_and_wev_share_one_password_for_one_registry(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    # The helper's entry (username and password) and the project's (the password
    # alone) differ in their values only: one identity, one ECR call.
    ecr_user.write(
        "work/project/wev.yml",
        f"ECR_PASSWORD:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n",
    )
    first = ecr_user.wev("sh", "-c", 'printf %s "$ECR_PASSWORD"')
    document = answer(helper(ecr_user, "get", REGISTRY))

    assert first.returncode == 0, output(first)
    assert document["Secret"] == first.stdout
    assert len(ecr.calls) == 1
