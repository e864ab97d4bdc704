"""Fixtures of the ECR tests (a module lists ``pytest_plugins = ("ecr_fixtures",)``).

``ecr_user`` is the conftest ``user`` with ``AWS_ENDPOINT_URL_ECR`` (and
``_ECR_PUBLIC``) pointed at the fake ECR, this venv's scripts first on PATH
(so ``docker-credential-wev`` is found as Docker finds it) and, after each
test, no ECR password in any file under its root. ``world`` adds the registry
``REGISTRY`` serving ``app:1.0``, reached over HTTPS by that name
(``fakes.internet``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from conftest import BIN, CREDENTIALS, User
from ecr_harness import REGISTRY, World, assert_no_password_on_disk
from fakes.ecr import FakeEcr
from fakes.internet import FakeInternet
from fakes.registry import FakeRegistry


@pytest.fixture
def ecr() -> Iterator[FakeEcr]:
    with FakeEcr(CREDENTIALS) as server:
        yield server


@pytest.fixture
def ecr_user(user: User, ecr: FakeEcr) -> Iterator[User]:
    user.env.update(
        AWS_ENDPOINT_URL_ECR=ecr.url,
        AWS_ENDPOINT_URL_ECR_PUBLIC=ecr.url,
        PATH=f"{BIN}{os.pathsep}{user.env['PATH']}",
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
    )
    yield user
    assert_no_password_on_disk(user.root, ecr)


@pytest.fixture
def world(ecr_user: User, ecr: FakeEcr) -> Iterator[World]:
    with (
        FakeRegistry(REGISTRY, ecr) as registry,
        FakeInternet(ecr_user.root / "internet", {REGISTRY: registry.url}) as internet,
    ):
        yield World(registry, internet, {**ecr_user.env, **internet.env})
