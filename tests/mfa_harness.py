"""What the MFA tests share besides fixtures (``mfa_fixtures``): AWS SDKs that ask wev for an
MFA session (the README's ``credential_process`` recipe), a role profile with ``mfa_serial``,
processes with no terminal.

``aws_config`` writes the recipe's ``~/.aws/config`` (the ``viawev`` profile, with this
venv's wev); ``HOME_WEV_YML`` is its ``~/.wev.yml`` (an MFA session). ``no_terminal`` starts a
process as an IDE or an SDK's ``credential_process`` runs: no controlling terminal, nothing on
stdin, in a folder with no wev.yml of its own (``elsewhere``). ``mfa_role`` is the ``dev``
profile, a role assumed with MFA from the default keys, with a fake STS and a fake CodeArtifact
that takes its sessions.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import recipes
from conftest import CREDENTIALS, WEV, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.sts import DEVICE, FakeSts

NAMES = "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]"
RECIPE = recipes.AWS_CREDENTIALS
#: The README's user-level entry: found from any folder, as an SDK runs credential_process in
#: its own. Its device is the fake IAM user's.
HOME_WEV_YML = RECIPE.file("~/.wev.yml").text
assert DEVICE in HOME_WEV_YML
CODE = "736251"
#: How long a process without a terminal may take (a bound, never a wait).
TIMEOUT = 60.0
#: What every SDK call does: credentials from the profile, then a signed call.
WHO_AM_I = """\
import botocore.session
session = botocore.session.Session()
identity = session.create_client("sts", region_name="eu-west-1").get_caller_identity()
print("arn=" + identity["Arn"])
print("key=" + session.get_credentials().access_key)
"""


def aws_config(user: User) -> Path:
    """The README's ``~/.aws/config``: the ``viawev`` profile, with this venv's wev."""
    profile = RECIPE.file("~/.aws/config").text.replace(f"{recipes.INSTALLED}/wev", WEV)
    return user.write("home/.aws/config", "[default]\nregion = eu-west-1\n\n" + profile)


#: A role assumed with MFA from the default profile's keys, as ``aws configure`` writes it.
MFA_ROLE_PROFILE = f"""
[profile dev]
role_arn = arn:aws:iam::123456789012:role/dev
source_profile = default
mfa_serial = {DEVICE}
region = eu-west-1
"""


@contextlib.contextmanager
def mfa_role(user: User, code: str) -> Iterator[tuple[FakeSts, FakeCodeArtifact]]:
    """The ``dev`` profile (``MFA_ROLE_PROFILE``) in the user's AWS config; a fake STS that
    takes ``code`` and a fake CodeArtifact that takes the sessions it issues, both in
    ``user.env``."""
    keys = dict(CREDENTIALS)  # the same dict: CodeArtifact accepts the sessions STS issues
    with FakeSts(keys, issued=keys) as sts, FakeCodeArtifact(keys) as codeartifact:
        sts.code = code
        with (user.home / ".aws" / "config").open("a") as config:
            config.write(MFA_ROLE_PROFILE)
        user.env["AWS_ENDPOINT_URL_STS"] = sts.url
        user.env["AWS_ENDPOINT_URL_CODEARTIFACT"] = codeartifact.url
        yield sts, codeartifact


def elsewhere(user: User) -> Path:
    """A folder with no wev.yml of its own, where the SDK runs."""
    folder = user.root / "elsewhere"
    folder.mkdir(exist_ok=True)
    return folder


def sdk_env(user: User) -> dict[str, str]:
    return {**user.env, "AWS_PROFILE": "viawev", "TERM": "xterm"}


def no_terminal(
    user: User, argv: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A process with no controlling terminal and nothing on stdin, in a folder of its own."""
    return subprocess.Popen(
        list(argv),
        cwd=elsewhere(user),
        env={**sdk_env(user), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """Wait for ``process`` (bounded: killed past ``timeout``): its status, stdout, stderr."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, out, err
