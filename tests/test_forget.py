"""Logins and keys that change: ``wev --forget``, MFA devices, shared calls that hang.

End to end with the real ``wev`` and ``wev-daemon`` where a user would notice;
the plugin's shared calls and a helper process that never answers are driven
directly (real asyncio, a real child process, the fake STS on loopback).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import CREDENTIALS, DEFAULT_KEY, WORK_KEY, WORK_SECRET, Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import DEVICE, FakeSts
from wire import rss_kib

from wev_daemon import aws
from wev_daemon.aws_session import Caller, _caller_popen
from wev_daemon.plugins import Context
from wev_daemon.plugins.awsmfa import MfaSessionPlugin
from wev_daemon.plugins.shared_calls import SharedCalls

CONFIG = """\
CODEARTIFACT_AUTH_TOKEN:
  plugin:
    id: wev-awscodeartifact
    domain: {domain}
"""
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')
#: Measured here: 1 MiB over ten fetches; 31 MiB when what each fetch built waited for
#: the cycle collector's next full pass.
FETCHES_GROWTH_LIMIT_KIB = 8 * 1024


def entries(user: User) -> list[dict[str, object]]:
    result = user.wev("--status", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["entries"]
    assert isinstance(found, list)
    return found


#: A credential_process whose keys change behind wev's back (a password manager's item
#: edited, an SSO login as someone else): the name of the key is read from a file.
SWITCHING_CREDS = """\
import json, sys
key = open(sys.argv[1]).read().strip()
print(json.dumps({{"Version": 1, "AccessKeyId": key, "SecretAccessKey": {secrets}[key]}}))
"""


def test_forget_drops_this_configuration_and_the_next_call_uses_the_new_keys(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    which = user.write("which-key", DEFAULT_KEY)
    creds = user.write("bin/creds", SWITCHING_CREDS.format(secrets=dict(CREDENTIALS)))
    (user.home / ".aws" / "credentials").write_text("")
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text().replace(
            "[default]\n", f"[default]\ncredential_process = {sys.executable} {creds} {which}\n"
        )
    )
    user.write("work/project/wev.yml", CONFIG.format(domain="corp"))
    other = user.root / "work" / "other"
    user.write("work/other/wev.yml", CONFIG.format(domain="other"))
    before = user.wev(*PRINT_TOKEN)
    assert user.wev(*PRINT_TOKEN, cwd=other).returncode == 0
    assert fake.calls[0].access_key_id == DEFAULT_KEY and len(entries(user)) == 2

    # The keys change where wev cannot see it: the daemon still holds the token of
    # the old identity until told to forget it.
    which.write_text(WORK_KEY)
    assert user.wev(*PRINT_TOKEN).stdout == before.stdout
    forgot = user.wev("--forget")

    assert forgot.returncode == 0, forgot.stderr
    assert "dropped 1 entry" in forgot.stdout
    # The region is the default profile's, as botocore resolves it.
    assert [entry["description"] for entry in entries(user)] == ["domain other, region eu-west-1"]
    after = user.wev(*PRINT_TOKEN)
    assert after.returncode == 0 and after.stdout != before.stdout
    assert fake.calls[-1].access_key_id == WORK_KEY


def test_keys_rotated_in_the_credentials_file_are_a_new_identity_at_once(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", CONFIG.format(domain="corp"))
    before = user.wev(*PRINT_TOKEN)
    (user.home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {WORK_KEY}\naws_secret_access_key = {WORK_SECRET}\n"
    )
    after = user.wev(*PRINT_TOKEN)

    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert after.stdout != before.stdout
    assert [call.access_key_id for call in fake.calls] == [DEFAULT_KEY, WORK_KEY]


def test_forget_all_drops_everything(user: User, daemon: Daemon, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", CONFIG.format(domain="corp"))
    user.write("work/other/wev.yml", CONFIG.format(domain="other"))
    assert user.wev(*PRINT_TOKEN).returncode == 0
    assert user.wev(*PRINT_TOKEN, cwd=user.root / "work" / "other").returncode == 0

    forgot = user.wev("--forget", "--all", cwd=user.root)

    assert forgot.returncode == 0, forgot.stderr
    assert "dropped 2 entries" in forgot.stdout
    assert entries(user) == []
    assert user.wev(*PRINT_TOKEN).returncode == 0 and fake.call_count == 3


def test_forget_without_a_daemon_says_nothing_is_held(user: User) -> None:
    user.write("work/project/wev.yml", CONFIG.format(domain="corp"))
    for env in ({}, {"WEV_NO_DAEMON": "1"}):
        result = user.wev("--forget", env=env)
        assert result.returncode == 0, result.stderr
        assert "nothing is held" in result.stdout
    assert not os.path.exists(user.socket)  # and no daemon was started for it


def test_all_goes_with_forget_only(user: User) -> None:
    result = user.wev("--status", "--all")
    assert result.returncode == 64
    assert result.stderr.strip() == "wev: --all goes with --forget"


# -- MFA devices ---------------------------------------------------------------------------


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    keys = dict(CREDENTIALS)
    with FakeSts(keys, issued=keys) as server:
        yield server


async def test_a_discovered_mfa_device_is_forgotten_when_sts_rejects_it(
    user: User, sts: FakeSts
) -> None:
    env = {
        "HOME": str(user.home),
        "AWS_ENDPOINT_URL_STS": sts.url,
        "AWS_ENDPOINT_URL_IAM": sts.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    plugin = MfaSessionPlugin()
    settings = plugin.parse({})
    context = Context(env, lambda text, secret, process: sts.code, env, str(user.project))
    await plugin.resolve(settings, context)
    assert sts.calls_of("GetSessionToken")[-1].serial_number == DEVICE

    replacement = DEVICE + "-new"
    sts.devices = (replacement,)  # the user replaced the device
    with pytest.raises(aws.FetchError, match="AccessDenied"):
        await plugin.resolve(settings, context)
    await plugin.resolve(settings, context)

    assert sts.calls_of("GetSessionToken")[-1].serial_number == replacement
    assert len(sts.calls_of("ListMFADevices")) == 2


# -- shared calls and helpers that hang ---------------------------------------------------


async def test_a_shared_call_is_cancelled_when_its_last_waiter_gives_up() -> None:
    calls = SharedCalls[str](keep=False)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hangs() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    first = asyncio.create_task(calls.get("key", hangs))
    second = asyncio.create_task(calls.get("key", hangs))
    await asyncio.wait_for(started.wait(), 5)
    first.cancel()  # one block gives up: the call goes on for the other
    await asyncio.sleep(0.05)
    assert not cancelled.is_set()
    second.cancel()  # the last one gives up (the cache's fetch limit): so does the call
    await asyncio.wait_for(cancelled.wait(), 5)
    assert calls.tasks == {}


async def test_a_helper_process_is_killed_when_its_fetch_is_abandoned(user: User) -> None:
    marker = user.root / "helper.pid"
    script = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    popen = _caller_popen(Caller({"HOME": str(user.home)}, {"PATH": "/usr/bin:/bin"}, "/"))
    process = await popen(sys.executable, "-c", script, stdout=-1, stderr=-1)
    talk = asyncio.create_task(process.communicate())
    await asyncio.sleep(0)  # it waits on the helper (a task cancelled before it runs never does)
    deadline = time.monotonic() + 10
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the helper did not start"
        await asyncio.sleep(0.02)
    pid = int(marker.read_text())

    talk.cancel()
    with pytest.raises(asyncio.CancelledError):
        await talk

    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the helper is still running"
        await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_fetches_give_back_the_memory_they_used(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """Each fetch builds an AWS SDK session (its models, clients, credential chain): ten
    more, each after ``--forget``, leave the daemon's memory where the first one left it."""
    user.write("work/project/wev.yml", CONFIG.format(domain="corp"))
    assert user.wev("true").returncode == 0
    after_one = rss_kib(daemon.process.pid)

    for _ in range(10):
        assert user.wev("--forget").returncode == 0
        fetched = user.wev("true")
        assert fetched.returncode == 0, fetched.stderr

    assert fake.call_count == 11, "each of them fetched"
    assert rss_kib(daemon.process.pid) - after_one < FETCHES_GROWTH_LIMIT_KIB
