"""What the ECR tests share besides fixtures (``ecr_fixtures``): names, the helper as Docker
runs it, Docker's config file, and the check that no password reached a file."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import BIN, User, assert_not_on_disk
from fakes.ecr import ACCOUNT, FakeEcr
from fakes.internet import FakeInternet
from fakes.registry import FakeRegistry

REGION = "eu-west-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
IMAGE = f"{REGISTRY}/app:1.0"
HELPER = str(BIN / "docker-credential-wev")
TIMEOUT = 120.0


def assert_no_password_on_disk(root: Path, ecr: FakeEcr) -> None:
    """No password ECR issued, nor Docker's ``auth`` form of it, in any file under ``root``."""
    passwords = [p.encode() for p in ecr.passwords]
    auths = [base64.b64encode(b"AWS:" + p) for p in passwords]
    assert_not_on_disk(root, passwords + auths, "a password")


@dataclass
class World:
    """The registry and the internet that reaches it; ``env``: a tool's environment."""

    registry: FakeRegistry
    internet: FakeInternet
    env: dict[str, str]


def helper(
    user: User, action: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker-credential-wev ACTION`` as Docker runs it: stdin in, stdout out."""
    return subprocess.run(
        [HELPER, action],
        input=stdin,
        cwd=user.project,
        env={**user.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def docker_config(user: User, document: str | None = None) -> Path:
    """``~/.docker/config.json`` holding ``document`` (by default: the registry's credHelper)."""
    text = document or json.dumps({"credHelpers": {REGISTRY: "wev"}})
    return user.write("home/.docker/config.json", text)
