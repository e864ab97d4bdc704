"""One identity, one token, whichever door asks.

The real doors (``wev CMD``, ``wev --export``, the keyring CLI by CodeArtifact host and by
repository URL, ``wev-token``, the loopback proxy, ``wev --aws-credentials`` run by botocore as a
``credential_process``) ask the real daemon; the fakes count what AWS was asked. Entries that
differ only in how they are written share one token; what changes who the caller is (a
``credential_process`` in the project's folder) does not.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    BIN,
    CREDENTIALS,
    DEFAULT_KEY,
    ENV_KEY,
    ENV_SECRET,
    WEV,
    WORK_KEY,
    Daemon,
    User,
    free_port,
)
from conftest import output as shown
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from fakes.sts import DEVICE, FakeSts
from mfa_harness import mfa_role
from terminal import Pty
from tools import CODEARTIFACT_URL, REPOSITORY_WEV_YML, keyring_env, run_tool

#: One repository, asked for directly (a token and an index URL) and through the proxy.
WEV_YML = (
    REPOSITORY_WEV_YML
    + """\
UV_INDEX_URL:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: pypi
    proxy: true
"""
)
TIMEOUT = 120.0


def run(user: User, *argv: str, cwd: Path | None = None) -> str:
    result = run_tool(user, *argv, cwd=cwd)
    assert result.returncode == 0, shown(result)
    return result.stdout


def through_the_proxy(user: User, index: FakePyPIIndex) -> str:
    """The token the loopback proxy sent upstream for a page it forwarded."""
    loopback = run(user, WEV, "printenv", "UV_INDEX_URL").strip()
    assert loopback.startswith("http://127.0.0.1:"), loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(loopback + "corp-lib/", timeout=30) as page:
        assert page.status == 200
    return [attempt.token for attempt in index.attempts if attempt.token][-1] or ""


@pytest.fixture
def proxy_port(user: User) -> int:
    port = free_port()
    user.env["WEV_PROXY_PORT"] = str(port)
    return port


@pytest.mark.parametrize("first", ["keyring by host", "wev-token", "proxy", "wev CMD"])
def test_every_door_gets_the_one_token_of_one_call(
    user: User, fake: FakeCodeArtifact, index: FakePyPIIndex, proxy_port: int, first: str
) -> None:
    user.write("work/project/wev.yml", WEV_YML)
    keyring = str(BIN / "keyring")
    doors = {
        "wev CMD": lambda: run(user, WEV, "printenv", "CODEARTIFACT_AUTH_TOKEN").strip(),
        "--export": lambda: shlex.split(
            run(user, WEV, "--export").split("CODEARTIFACT_AUTH_TOKEN=", 1)[1].splitlines()[0]
        )[0],
        "keyring by host": lambda: run(user, keyring, "get", CODEARTIFACT_URL, "aws").strip(),
        "keyring by repository URL": lambda: run(
            user, keyring, "get", f"{index.url}/pypi/shared/simple/", "aws"
        ).strip(),
        "wev-token": lambda: run(user, str(BIN / "wev-token"), "--raw").strip(),
        "proxy": lambda: through_the_proxy(user, index),
    }
    order = [first, *(door for door in doors if door != first)]
    daemon = Daemon(user)
    try:
        tokens = {door: doors[door]() for door in order}
    finally:
        daemon.stop()

    [issued] = fake.issued
    assert tokens == dict.fromkeys(order, issued)
    assert (fake.call_count, fake.endpoint_call_count) == (1, 1)


def test_doors_run_inside_wev_share_its_token_whatever_it_set(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """The configuration's own names (an AWS_PROFILE it sets, the token itself) change no
    door's identity, as they change no entry's: one token, one call."""
    user.write(
        "work/project/wev.yml",
        "AWS_PROFILE: {plugin: {id: wev-echo, value: work}}\n"
        "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n",
    )
    script = (
        'printf "%s\\n" "$CODEARTIFACT_AUTH_TOKEN"; '
        f"{BIN / 'wev-token'} --raw; {BIN / 'keyring'} get {CODEARTIFACT_URL} aws"
    )

    result = run_tool(user, WEV, "sh", "-c", script)

    assert result.returncode == 0, shown(result)
    [issued] = fake.issued
    assert result.stdout.splitlines() == [issued] * 3
    assert fake.call_count == 1


def test_entries_written_differently_share_one_token(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    # The region spelled out or left to the profile, the account spelled out or left to
    # the caller, a duration of 43200 or the default: one identity.
    user.write(
        "work/project/wev.yml",
        "A: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"
        "B: {plugin: {id: wev-awscodeartifact, domain: corp, region: eu-west-1, "
        "duration: 43200, values: [token]}}\n"
        "[C, C_USER]: {plugin: {id: wev-awscodeartifact, domain: corp, "
        "values: [token, username]}}\n",
    )

    result = user.wev("sh", "-c", 'printf "%s %s %s %s" "$A" "$B" "$C" "$C_USER"')

    assert result.returncode == 0, result.stderr
    a, b, c, c_user = result.stdout.split(" ")
    assert a == b == c and fake.is_valid_token(a) and c_user == "aws"
    assert fake.call_count == 1


def test_the_region_botocore_uses_is_the_one_that_counts(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", "A: {plugin: {id: wev-awscodeartifact, domain: corp}}\n")

    default = user.wev("printenv", "A")
    spelled = user.wev("printenv", "A", env={"AWS_REGION": "eu-west-1"})
    other = user.wev("printenv", "A", env={"AWS_REGION": "us-west-2"})
    edited = user.home / ".aws" / "config"
    edited.write_text(edited.read_text().replace("eu-west-1", "ap-south-1"))
    after_the_edit = user.wev("printenv", "A")

    assert default.stdout == spelled.stdout != other.stdout
    assert after_the_edit.stdout not in (default.stdout, other.stdout)
    assert [call.region for call in fake.calls] == ["eu-west-1", "us-west-2", "ap-south-1"]


def test_a_profile_in_the_entry_is_that_profile_whatever_keys_the_shell_holds(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    # Keys in the environment win over AWS_PROFILE, and a profile in the entry over them.
    user.write(
        "work/project/wev.yml",
        "A: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"
        "B: {plugin: {id: wev-awscodeartifact, domain: corp, profile: default}}\n",
    )
    both = ("sh", "-c", 'printf "%s %s" "$A" "$B"')

    with_keys = user.wev(
        *both, env={"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    )
    without = user.wev(*both)

    assert with_keys.returncode == without.returncode == 0, with_keys.stderr + without.stderr
    a, b = with_keys.stdout.split(" ")
    assert a != b
    b_with_keys = b
    a, b = without.stdout.split(" ")
    assert a == b == b_with_keys  # the default profile, spelled out or not, keys or not
    # A and B of one call fetch at once, in either order.
    assert sorted(str(call.access_key_id) for call in fake.calls) == [DEFAULT_KEY, ENV_KEY]


# -- what changes who the caller is ---------------------------------------------------------

#: A credential_process in the project's folder: each project's keys are its own.
CREDS = """#!{python}
import json
print(json.dumps({{"Version": 1, "AccessKeyId": "{key}", "SecretAccessKey": "{secret}"}}))
"""
CODEARTIFACT = "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"


def projects_with_creds(user: User, command: str) -> tuple[Path, Path]:
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text() + f"\n[profile helper]\ncredential_process = {command}\n"
        "region = eu-west-1\n"
    )
    folders = (user.project, user.root / "work" / "other")
    for folder, key in zip(folders, (DEFAULT_KEY, WORK_KEY), strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "wev.yml").write_text(CODEARTIFACT)
        creds = folder / "creds"
        creds.write_text(CREDS.format(python=sys.executable, key=key, secret=CREDENTIALS[key]))
        creds.chmod(0o755)
        (folder / "creds_module.py").write_text(creds.read_text())
    return folders


@pytest.mark.parametrize(
    "command",
    [
        "./creds",
        "{python} creds",
        "{python} {runner} --script=creds",
        "sh -c '{python} creds'",
        "{python} -m creds_module",
    ],
    ids=["relative path", "a file argument", "an option's file", "a shell's script", "a module"],
)
def test_a_credential_process_in_the_projects_folder_makes_each_project_its_own(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, command: str
) -> None:
    # A helper anywhere that runs the script its option names, in the working folder.
    runner = user.write("bin/run", "import runpy, sys\nrunpy.run_path(sys.argv[1][9:])\n")
    command = command.format(python=sys.executable, runner=runner)
    here, there = projects_with_creds(user, command)
    env = {"AWS_PROFILE": "helper"}

    first = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env=env, cwd=here)
    second = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env=env, cwd=there)
    again = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env=env, cwd=here)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout != second.stdout and again.stdout == first.stdout
    assert [call.access_key_id for call in fake.calls] == [DEFAULT_KEY, WORK_KEY]


def test_an_edit_of_the_profile_is_another_identity(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    """The old token is never served for what the profile now says (another role, other
    keys, another process)."""
    scripts = {}
    for key in (DEFAULT_KEY, WORK_KEY):
        scripts[key] = user.write(
            f"bin/creds-{key}",
            CREDS.format(python=sys.executable, key=key, secret=CREDENTIALS[key]),
        )
    user.write("work/project/wev.yml", CODEARTIFACT)
    config = user.home / ".aws" / "config"
    before = config.read_text()
    tokens = []
    for key in (DEFAULT_KEY, WORK_KEY, WORK_KEY):
        config.write_text(
            before + f"\n[profile helper]\ncredential_process = {sys.executable} {scripts[key]}\n"
            "region = eu-west-1\n"
        )
        result = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env={"AWS_PROFILE": "helper"})
        assert result.returncode == 0, result.stderr
        tokens.append(result.stdout)

    assert tokens[0] != tokens[1] == tokens[2]
    assert [call.access_key_id for call in fake.calls] == [DEFAULT_KEY, WORK_KEY]


def test_the_same_process_anywhere_is_one_identity(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    here, there = projects_with_creds(user, "./creds")
    absolute = here / "creds"
    config = user.home / ".aws" / "config"
    config.write_text(config.read_text().replace("= ./creds", f"= {absolute}"))
    env = {"AWS_PROFILE": "helper"}

    first = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env=env, cwd=here)
    second = user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env=env, cwd=there)
    # Without a credential_process, the folder plays no part either.
    plain = [user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", cwd=f) for f in (here, there)]

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert plain[0].stdout == plain[1].stdout != first.stdout
    assert [call.access_key_id for call in fake.calls] == [DEFAULT_KEY, DEFAULT_KEY]


def test_the_environment_a_credential_process_reads_is_part_of_who_you_are(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    config = user.home / ".aws" / "config"
    helper = user.write(
        "bin/creds",
        f"#!{sys.executable}\nimport json, os\n"
        "key = os.environ['WHICH_KEY']\n"
        "secret = {" + ", ".join(f"{k!r}: {v!r}" for k, v in CREDENTIALS.items()) + "}[key]\n"
        'print(json.dumps({"Version": 1, "AccessKeyId": key, "SecretAccessKey": secret}))\n',
    )
    helper.chmod(0o755)
    config.write_text(
        config.read_text()
        + f"\n[profile helper]\ncredential_process = {helper}\nregion = eu-west-1\n"
    )
    user.write("work/project/wev.yml", CODEARTIFACT)
    env = {"AWS_PROFILE": "helper"}

    tokens = [
        user.wev("printenv", "CODEARTIFACT_AUTH_TOKEN", env={**env, **extra}).stdout
        for extra in (
            {"WHICH_KEY": DEFAULT_KEY},
            {"WHICH_KEY": WORK_KEY},
            # What a terminal sets per window does not count.
            {"WHICH_KEY": DEFAULT_KEY, "TERM": "dumb", "SHLVL": "7", "OLDPWD": "/tmp"},
        )
    ]

    assert tokens[0] != tokens[1] and tokens[2] == tokens[0]
    assert [call.access_key_id for call in fake.calls] == [DEFAULT_KEY, WORK_KEY]


# -- the MFA session: wev CMD and --aws-credentials -----------------------------------------

MFA_WEV_YML = f"""\
[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]:
  plugin:
    id: wev-awsmfa
    mfa_device: {DEVICE}
    profile: work
"""
CODE = "246810"
#: What an SDK does: credentials from the profile whose credential_process is wev.
SDK = """\
import botocore.session
session = botocore.session.Session()
session.create_client("sts", region_name="eu-west-1").get_caller_identity()
print(session.get_credentials().access_key)
"""


@pytest.fixture
def sts(user: User) -> Iterator[FakeSts]:
    keys = dict(CREDENTIALS)
    with FakeSts(keys, issued=keys) as server:
        server.code = CODE
        user.env["AWS_ENDPOINT_URL_STS"] = server.url
        user.env["AWS_ENDPOINT_URL_IAM"] = server.url
        yield server


def wev_then_the_sdk(
    user: User, shell: dict[str, str]
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """The README's ``credential_process`` recipe (profile ``viawev``): ``wev printenv``
    from ``shell`` on a terminal that types the code, then an SDK call with no terminal
    and ``AWS_PROFILE=viawev``; what the terminal showed, and the SDK's run."""
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text() + "\n[profile viawev]\n"
        f"credential_process = {WEV} --aws-credentials AWS_ACCESS_KEY_ID\n"
    )
    terminal = Pty((WEV, "printenv", "AWS_ACCESS_KEY_ID"), user.project, shell)
    try:
        terminal.expect(f"MFA code for {DEVICE}".encode())
        terminal.type(CODE + "\n")
        assert terminal.wait() == 0, bytes(terminal.output)
        printed = bytes(terminal.output).decode(errors="replace")
    finally:
        terminal.close()
    sdk = subprocess.run(
        [sys.executable, "-c", SDK],
        cwd=user.root,
        env={**user.env, "AWS_PROFILE": "viawev"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        start_new_session=True,  # no terminal: a second question would fail
        stdin=subprocess.DEVNULL,
    )
    return printed, sdk


def test_wev_and_aws_credentials_share_one_mfa_session(
    user: User, daemon: Daemon, sts: FakeSts
) -> None:
    user.write("home/.wev.yml", MFA_WEV_YML)
    # The shell selects the work profile too: the entry names it, so it is the same identity
    # as --aws-credentials, which leaves the served profile's AWS_PROFILE out.
    shell = {**user.env, "AWS_PROFILE": "work", "AWS_DEFAULT_REGION": "eu-west-1"}

    printed, sdk = wev_then_the_sdk(user, shell)

    assert sdk.returncode == 0, sdk.stderr
    [session] = sts.sessions
    assert session.access_key_id in printed
    assert sdk.stdout.strip() == session.access_key_id
    [asked] = sts.calls_of("GetSessionToken")
    assert asked.access_key_id == WORK_KEY


def test_a_shell_that_exports_the_served_profile_gets_one_session_asked_once(
    user: User, daemon: Daemon, sts: FakeSts
) -> None:
    """The README's recipe, with AWS_PROFILE=viawev exported for the IDE's sake: `wev` asks
    for the session without the profile that would ask wev for it, as the SDK's call does."""
    user.write("home/.wev.yml", MFA_WEV_YML.replace("    profile: work\n", ""))

    printed, sdk = wev_then_the_sdk(user, {**user.env, "AWS_PROFILE": "viawev"})

    assert sdk.returncode == 0, sdk.stderr
    [session] = sts.sessions
    assert session.access_key_id in printed
    assert sdk.stdout.strip() == session.access_key_id
    [asked] = sts.calls_of("GetSessionToken")
    assert asked.access_key_id == DEFAULT_KEY


def test_mfa_signs_for_the_profiles_region(user: User, daemon: Daemon, sts: FakeSts) -> None:
    # A GovCloud profile: STS must be signed for its region, not us-east-1.
    config = user.home / ".aws" / "config"
    config.write_text(config.read_text().replace("eu-west-2", "us-gov-west-1"))
    user.write("work/project/wev.yml", MFA_WEV_YML)
    terminal = Pty((WEV, "printenv", "AWS_SESSION_TOKEN"), user.project, {**user.env})
    try:
        terminal.expect(b"MFA code")
        terminal.type(CODE + "\n")
        assert terminal.wait() == 0, bytes(terminal.output)
    finally:
        terminal.close()

    [asked] = sts.calls_of("GetSessionToken")
    assert asked.region == "us-gov-west-1"


# -- profile precedence --------------------------------------------------------------------


def test_messages_name_the_profile_botocore_uses(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    fake.fail_with(403, "AccessDeniedException", "not allowed")
    user.write("work/project/wev.yml", CODEARTIFACT)
    env = {"AWS_PROFILE": "default", "AWS_DEFAULT_PROFILE": "work"}

    result = user.wev("true", env=env)
    explained = user.wev("--explain", env=env)

    assert result.returncode != 0
    assert "(profile work)" in result.stderr, result.stderr
    assert [call.access_key_id for call in fake.calls] == [WORK_KEY]  # botocore's choice
    assert "profile work" in explained.stdout, explained.stdout


# -- the keyring backend for other services ------------------------------------------------


@pytest.mark.parametrize("endpoint_set", [False, True], ids=["aws", "stand-in"])
@pytest.mark.parametrize(
    "url",
    ["https://pypi.org/simple/", "https://packages.example.net/simple/"],
    ids=["pypi.org", "another index"],
)
def test_a_lookup_for_another_service_costs_no_token(
    user: User, daemon: Daemon, fake: FakeCodeArtifact, endpoint_set: bool, url: str
) -> None:
    user.write("work/project/wev.yml", WEV_YML)
    if not endpoint_set:  # CodeArtifact is AWS itself: its endpoints are CodeArtifact hosts
        del user.env["AWS_ENDPOINT_URL_CODEARTIFACT"]
        # Any call to AWS would fail through this proxy, and say so on stderr.
        user.env["HTTPS_PROXY"] = user.env["https_proxy"] = "http://127.0.0.1:9"

    result = subprocess.run(
        [str(BIN / "keyring"), "get", url, "aws"],
        cwd=user.project,
        env=keyring_env(user),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )

    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")  # "not found"
    assert fake.call_count == 0
    # A stand-in's endpoints may be anywhere: they are asked (once), never a token; a
    # public registry is no one's repository, so it costs no call at all.
    asked = endpoint_set and "pypi.org" not in url
    assert fake.endpoint_call_count == (1 if asked else 0)


@pytest.mark.parametrize("in_process", [False, True], ids=["daemon", "in-process"])
def test_a_lookup_for_another_service_asks_no_mfa_code(user: User, in_process: bool) -> None:
    """pip in a terminal asks keyring about pypi.org too: behind an MFA profile, with a
    stand-in's endpoints that could be anywhere, no code is asked and no call made."""
    with mfa_role(user, CODE) as (sts, codeartifact):
        user.write("work/project/wev.yml", WEV_YML)
        env = {**keyring_env(user), "AWS_PROFILE": "dev", "TERM": "xterm"}
        if in_process:
            env["WEV_NO_DAEMON"] = "1"
        daemon = Daemon(user)
        lookup = (str(BIN / "keyring"), "get", "https://pypi.org/simple/", "aws")
        terminal = Pty(lookup, user.project, env)
        try:
            status = terminal.wait()
        finally:
            terminal.close()
            daemon.stop()

        assert (status, bytes(terminal.output)) == (1, b"")  # "not found", and nothing asked
        assert sts.calls_of("AssumeRole") == [] and codeartifact.call_count == 0
        assert codeartifact.endpoint_call_count == 0


def test_entries_of_one_identity_behind_an_mfa_profile_ask_one_question(user: User) -> None:
    with mfa_role(user, CODE) as (sts, codeartifact):
        user.write(
            "work/project/wev.yml",
            "A: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"
            "B: {plugin: {id: wev-awscodeartifact, domain: corp, region: eu-west-1}}\n",
        )
        env = {**user.env, "AWS_PROFILE": "dev", "TERM": "xterm"}
        daemon = Daemon(user)
        terminal = Pty((WEV, "sh", "-c", 'test "$A" = "$B" && echo same'), user.project, env)
        try:
            terminal.expect(f"Enter MFA code for {DEVICE}: ".encode())
            terminal.type(CODE + "\n")
            assert terminal.wait() == 0, bytes(terminal.output)
        finally:
            terminal.close()
            daemon.stop()

        assert bytes(terminal.output).count(b"MFA code") == 1
        assert b"same" in bytes(terminal.output)
        assert len(sts.calls_of("AssumeRole")) == 1 and codeartifact.call_count == 1
