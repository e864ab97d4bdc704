"""``wev-awsecr`` through ``wev``: ECR and ECR Public passwords as variables, against the fake ECR.

The real daemon and the real ``wev``; AWS is the fake ECR (SigV4 checked) and, for roles, the
fake STS.
"""

from __future__ import annotations

import base64
import json

import pytest
from conftest import CREDENTIALS, DEFAULT_KEY, WORK_KEY, Daemon, User, output
from ecr_harness import REGISTRY
from fakes.ecr import FakeEcr
from fakes.sts import FakeSts

pytest_plugins = ("ecr_fixtures",)

EVERY_VALUE = f"""\
[ECR_PASSWORD, ECR_USERNAME, ECR_REGISTRY, ECR_AUTH]:
  plugin:
    id: wev-awsecr
    registry: {REGISTRY}
    values: [password, username, registry, auth]
"""


def exported(user: User, **env: str) -> dict[str, str]:
    result = user.wev("--export", "--format", "json", env=env)
    assert result.returncode == 0, output(result)
    values = json.loads(result.stdout)
    assert isinstance(values, dict)
    return values


def test_an_entry_gets_the_password_and_what_docker_needs_with_it(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr_user.write("work/project/wev.yml", EVERY_VALUE)
    values = exported(ecr_user)
    assert ecr.is_valid_password(REGISTRY, values["ECR_PASSWORD"])
    assert values["ECR_USERNAME"] == "AWS"
    assert values["ECR_REGISTRY"] == REGISTRY
    assert base64.b64decode(values["ECR_AUTH"]).decode() == "AWS:" + values["ECR_PASSWORD"]
    [call] = ecr.calls
    assert (call.service, call.region, call.registry_ids) == ("ecr", "eu-west-1", (REGISTRY[:12],))
    assert exported(ecr_user) == values and ecr.call_count == 1  # from the daemon's memory


def test_blocks_that_differ_only_in_their_values_share_one_call(
    ecr_user: User, ecr: FakeEcr
) -> None:
    ecr_user.write(
        "work/project/wev.yml",
        EVERY_VALUE
        + f"DOCKER_PASSWORD:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n",
    )
    values = exported(ecr_user, WEV_NO_DAEMON="1")
    assert values["DOCKER_PASSWORD"] == values["ECR_PASSWORD"]
    assert ecr.call_count == 1


@pytest.mark.parametrize("written", [f"https://{REGISTRY}/", f"{REGISTRY}:443/v2/"])
def test_a_registry_written_as_a_url_is_its_host(
    ecr_user: User, ecr: FakeEcr, written: str
) -> None:
    ecr_user.write(
        "work/project/wev.yml",
        "[P, R]:\n  plugin:\n    id: wev-awsecr\n"
        f"    registry: {written}\n    values: [password, registry]\n",
    )
    values = exported(ecr_user, WEV_NO_DAEMON="1")
    assert ecr.is_valid_password(REGISTRY, values["P"]) and values["R"] == REGISTRY


def test_ecr_public_is_asked_in_us_east_1(ecr_user: User, ecr: FakeEcr, daemon: Daemon) -> None:
    ecr_user.write(
        "work/project/wev.yml",
        "PUBLIC_PASSWORD:\n  plugin:\n    id: wev-awsecr\n    registry: public.ecr.aws\n",
    )
    password = exported(ecr_user)["PUBLIC_PASSWORD"]
    assert ecr.is_valid_password("public.ecr.aws", password)
    [call] = ecr.calls
    assert (call.service, call.region) == ("ecr-public", "us-east-1")


def test_without_a_registry_it_is_the_callers_own_in_the_callers_region(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr.accounts[WORK_KEY] = "210987654321"
    ecr_user.write(
        "work/project/wev.yml",
        "[MINE, MINE_PASSWORD]:\n  plugin:\n    id: wev-awsecr\n    values: [registry, password]\n",
    )
    values = exported(ecr_user, AWS_PROFILE="work")  # the work profile's region: eu-west-2
    assert values["MINE"] == "210987654321.dkr.ecr.eu-west-2.amazonaws.com"
    assert ecr.is_valid_password(values["MINE"], values["MINE_PASSWORD"])
    assert ecr.calls[0].registry_ids == ()


def test_a_role_is_assumed_for_the_token(ecr_user: User, daemon: Daemon) -> None:
    role = "arn:aws:iam::123456789012:role/pull-images"
    keys = dict(CREDENTIALS)  # the fake ECR accepts the keys the fake STS issues, too
    with FakeSts(keys, issued=keys) as sts, FakeEcr(keys) as ecr:
        ecr_user.write(
            "work/project/wev.yml",
            f"P:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n    role: {role}\n",
        )
        env = {"AWS_ENDPOINT_URL_STS": sts.url, "AWS_ENDPOINT_URL_ECR": ecr.url}
        assert ecr.is_valid_password(REGISTRY, exported(ecr_user, **env)["P"])
        [assumed] = sts.calls_of("AssumeRole")
        assert (assumed.role_arn, assumed.access_key_id) == (role, DEFAULT_KEY)
        [call] = ecr.calls
        assert call.access_key_id == sts.sessions[0].access_key_id


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ("registry: ghcr.io", "'registry' must be an ECR registry host"),
        (f"registry: {REGISTRY}\n    region: us-east-1", "leave out the other two"),
        ("account: 1234", "12 digits"),
        ("values: [token]", "unknown value 'token'"),
        ("role: pull-images", "must be a role ARN"),
    ],
)
def test_a_wrong_property_is_one_line_naming_it(ecr_user: User, block: str, complaint: str) -> None:
    ecr_user.write("work/project/wev.yml", f"P:\n  plugin:\n    id: wev-awsecr\n    {block}\n")
    result = ecr_user.wev("true", env={"WEV_NO_DAEMON": "1"})
    assert result.returncode == 78, output(result)
    assert complaint in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_key_of_two_names_is_told_how_values_fills_them(ecr_user: User) -> None:
    ecr_user.write(
        "work/project/wev.yml",
        "[DOCKER_USER, DOCKER_PASSWORD]:\n"
        f"  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n",
    )
    result = ecr_user.wev("true", env={"WEV_NO_DAEMON": "1"})
    assert result.returncode == 78, output(result)
    [line] = result.stderr.splitlines()
    assert "names 2 variables but wev-awsecr resolves 1" in line, line
    assert line.endswith(
        "or say what each name receives with 'values' (password, username, registry, auth)"
    ), line


def test_an_aws_refusal_is_one_line_with_its_code(
    ecr_user: User, ecr: FakeEcr, daemon: Daemon
) -> None:
    ecr.fail_with(400, "AccessDeniedException")
    ecr_user.write("work/project/wev.yml", EVERY_VALUE)
    result = ecr_user.wev("true")
    assert result.returncode == 69, output(result)
    assert f"ECR password for {REGISTRY}: AccessDeniedException" in result.stderr
    assert len(result.stderr.splitlines()) == 1
