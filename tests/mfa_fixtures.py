"""Fixtures of the tests where wev asks for an MFA code (a module lists
``pytest_plugins = ("mfa_fixtures",)``).

``sts`` is the fake STS and IAM endpoint, taking ``CODE`` and accepting the sessions it issues.
``sdk_user`` is the conftest ``user`` set up as the README's ``credential_process`` recipe
(``mfa_harness``), with STS and IAM pointed at ``sts`` and, after each test, no MFA code nor
session secret in any file under its root. ``ptys``: the terminals a test opens (it appends
each), closed after it whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import CREDENTIALS, User, assert_not_on_disk
from fakes.sts import FakeSts
from mfa_harness import CODE, HOME_WEV_YML, aws_config
from terminal import Pty


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    keys = dict(CREDENTIALS)  # the same dict: the fake accepts the sessions it issues
    with FakeSts(keys, issued=keys) as server:
        server.code = CODE
        yield server


@pytest.fixture
def sdk_user(user: User, sts: FakeSts) -> Iterator[User]:
    """The README's credential_process recipe: an MFA session in ~/.wev.yml."""
    user.env["AWS_ENDPOINT_URL_STS"] = sts.url
    user.env["AWS_ENDPOINT_URL_IAM"] = sts.url
    user.write("home/.wev.yml", HOME_WEV_YML)
    aws_config(user)
    yield user
    assert_not_on_disk(user.root, [CODE, *sts.secrets()])


@pytest.fixture
def ptys() -> Iterator[list[Pty]]:
    opened: list[Pty] = []
    try:
        yield opened
    finally:
        for terminal in opened:
            terminal.close()
