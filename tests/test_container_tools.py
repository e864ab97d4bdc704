"""The README's ECR recipes, run with the real tools: ``wev --install-docker-helper``, skopeo,
podman, buildah and the docker CLI, against the fake ECR and a registry under its real name.

The texts come from ``tests/ecr_recipes.py``; the tools reach the registry over HTTPS through
``fakes.internet`` (a proxy and a CA in their environment), look up credentials for the ECR host
name in Docker's config, and run the real ``docker-credential-wev``. A tool that is not installed
is skipped (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import ecr_recipes
import pytest
from conftest import DEFAULT_KEY, WORK_KEY, User, output
from ecr_harness import IMAGE, REGISTRY, TIMEOUT, World, docker_config, helper
from fakes.ecr import FakeEcr
from recipes import File

pytest_plugins = ("ecr_fixtures",)

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_shows_the_tested_ecr_recipes() -> None:
    text = README.read_text()
    heading = "\n## Container registries: Amazon ECR\n"
    start = text.find(heading)
    assert start >= 0, "README.md lacks the ECR section: `python tests/ecr_recipes.py`"
    end = text.find("\n## ", start + 1)
    section = text[start + 1 : end + 1 if end >= 0 else len(text)]
    assert section.strip() == ecr_recipes.section().strip()
    assert ecr_recipes.REGISTRY == REGISTRY and ecr_recipes.IMAGE == IMAGE


def run(command: str, user: User, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command.split(),
        cwd=user.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def write(user: User, file: File) -> Path:
    return user.write(file.name.replace("~/", "home/", 1), file.text)


def needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")


def test_setup_adds_cred_helpers_and_leaves_the_rest(
    ecr_user: User, ecr: FakeEcr, world: World
) -> None:
    recipe = ecr_recipes.SETUP
    write(ecr_user, recipe.file("~/.wev.yml"))
    before = {
        "auths": {"ghcr.io": {"auth": "bWU6czNjcjN0"}, f"https://{REGISTRY}": {"auth": "old"}},
        "credHelpers": {"gcr.io": "gcloud"},
        "psFormat": "table {{.ID}}",
    }
    config = docker_config(ecr_user, json.dumps(before))
    config.chmod(0o640)
    first, second = recipe.command.splitlines()
    result = run(first, ecr_user, world.env)
    assert result.returncode == 0, output(result)
    assert f"{REGISTRY}: added to credHelpers" in result.stdout
    assert f"still holds a password for {REGISTRY}" in result.stderr  # the old docker login
    assert run(second, ecr_user, world.env).returncode == 0
    after = json.loads(config.read_text())
    assert after == {
        **before,
        "credHelpers": {"gcr.io": "gcloud", ecr_recipes.REGISTRY: "wev", ecr_recipes.OTHER: "wev"},
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o640

    # The entry's profile signs for its registry; the other one uses the caller's.
    for host in (REGISTRY, ecr_recipes.OTHER):
        assert helper(ecr_user, "get", host).returncode == 0
    assert [call.access_key_id for call in ecr.calls] == [WORK_KEY, DEFAULT_KEY]


def test_setup_on_a_fresh_machine_writes_what_the_readme_shows(
    ecr_user: User, world: World
) -> None:
    write(ecr_user, ecr_recipes.SETUP.file("~/.wev.yml"))
    for command in ecr_recipes.SETUP.command.splitlines():
        assert run(command, ecr_user, world.env).returncode == 0
    config = ecr_user.home / ".docker" / "config.json"
    assert config.read_text() == ecr_recipes.DOCKER_CONFIG.text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_setup_says_nothing_of_a_login_kept_in_a_creds_store(ecr_user: User) -> None:
    """With credsStore, `docker login` leaves an empty auths entry: no password on disk."""
    before = {"auths": {REGISTRY: {}}, "credsStore": "desktop"}
    folder = ecr_user.root / "docker-config"
    config = ecr_user.write("docker-config/config.json", json.dumps(before))

    result = ecr_user.wev("--install-docker-helper", REGISTRY, env={"DOCKER_CONFIG": str(folder)})

    assert result.returncode == 0, output(result)
    assert result.stdout == f"wev: {REGISTRY}: added to credHelpers in {config}\n"
    assert result.stderr == ""
    assert json.loads(config.read_text()) == {**before, "credHelpers": {REGISTRY: "wev"}}
    assert not (ecr_user.home / ".docker").exists()


def test_setup_warns_of_a_containers_login_that_would_be_used_instead(
    ecr_user: User, world: World
) -> None:
    shadow = ecr_user.write(
        "run/containers/auth.json", json.dumps({"auths": {f"{REGISTRY}/app": {"auth": "x"}}})
    )
    result = run(f"wev --install-docker-helper {REGISTRY}", ecr_user, world.env)
    assert result.returncode == 0, output(result)
    assert f"{shadow} holds a password for {REGISTRY}" in result.stderr


def test_setup_keeps_the_files_text_and_its_owner(ecr_user: User) -> None:
    """As root (sudo) on a user's config: the user can still read it, its text unchanged."""
    before = {"detachKeys": "ctrl-é", "credHelpers": {}}
    folder = ecr_user.root / "docker-config"
    config = ecr_user.write("docker-config/config.json", json.dumps(before, ensure_ascii=False))
    owner = (1234, 1234) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(config, *owner)

    result = ecr_user.wev("--install-docker-helper", REGISTRY, env={"DOCKER_CONFIG": str(folder)})

    assert result.returncode == 0, output(result)
    assert '"ctrl-é"' in config.read_text(encoding="utf-8")
    assert (config.stat().st_uid, config.stat().st_gid) == owner


def test_setup_names_the_patterns_it_cannot_set_up(ecr_user: User) -> None:
    ecr_user.write(
        "home/.wev.yml",
        f"ECR:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n"
        'ANY:\n  plugin:\n    id: wev-awsecr\n    registry: "*.dkr.ecr.us-east-1.amazonaws.com"\n',
    )
    result = ecr_user.wev("--install-docker-helper")

    assert result.returncode == 0, output(result)
    assert "Docker needs each host" in result.stderr
    assert "*.dkr.ecr.us-east-1.amazonaws.com" in result.stderr


def test_setup_refuses_what_is_not_an_ecr_registry(ecr_user: User) -> None:
    result = ecr_user.wev("--install-docker-helper", "ghcr.io")
    assert result.returncode == 64 and "ghcr.io is not an ECR registry host" in result.stderr
    result = ecr_user.wev("--install-docker-helper")  # and no entry names one
    assert result.returncode == 64 and "no ECR registry to set up" in result.stderr
    ecr_user.write(
        "home/.wev.yml",
        'ANY:\n  plugin:\n    id: wev-awsecr\n    registry: "*.dkr.ecr.us-east-1.amazonaws.com"\n',
    )
    result = ecr_user.wev("--install-docker-helper")  # a pattern is no host for credHelpers
    assert result.returncode == 64 and len(result.stderr.splitlines()) == 1
    assert "only patterns (*.dkr.ecr.us-east-1.amazonaws.com)" in result.stderr
    assert not (ecr_user.home / ".docker").exists()


def test_skopeo_copies_the_image_with_only_cred_helpers_configured(
    ecr_user: User, ecr: FakeEcr, world: World
) -> None:
    needs("skopeo")
    destination = ecr_user.root / "copied"
    without = run(f"skopeo inspect docker://{IMAGE}", ecr_user, world.env)
    assert without.returncode != 0 and world.registry.let_in == 0  # the registry wants a password
    docker_config(ecr_user)  # credHelpers: {REGISTRY: wev}, and nothing else anywhere
    result = run(f"skopeo copy docker://{IMAGE} dir:{destination}", ecr_user, world.env)
    assert result.returncode == 0, output(result)
    blobs = world.registry.image.blobs.values()
    assert sum(path.read_bytes() in blobs for path in destination.iterdir()) == len(blobs)
    assert world.registry.let_in > 0 and ecr.call_count == 1
    assert world.internet.refused == []  # nothing tried to leave the machine


@pytest.mark.parametrize("tool", ["skopeo", "podman", "buildah"])
def test_the_containers_recipe(ecr_user: User, ecr: FakeEcr, world: World, tool: str) -> None:
    needs(tool)
    write(ecr_user, ecr_recipes.WEV_YML)
    write(ecr_user, ecr_recipes.DOCKER_CONFIG)
    # Images land in a store of the test's own, not the machine's (storage.conf, not a flag).
    storage = ecr_user.write(
        "containers-storage.conf",
        f'[storage]\ndriver = "vfs"\ngraphroot = "{ecr_user.root}/storage"\n'
        f'runroot = "{ecr_user.root}/storage-run"\n',
    )
    env = {**world.env, "CONTAINERS_STORAGE_CONF": str(storage)}
    [command] = [
        line for line in ecr_recipes.CONTAINERS.command.splitlines() if line.startswith(tool)
    ]
    result = run(command, ecr_user, env)
    assert result.returncode == 0, output(result)
    assert world.registry.let_in > 0 and ecr.call_count == 1
    assert ecr.calls[0].access_key_id == WORK_KEY  # the entry's profile


def test_the_docker_cli_recipe(ecr_user: User, ecr: FakeEcr, world: World) -> None:
    needs("docker")
    write(ecr_user, ecr_recipes.DOCKER_CONFIG)
    env = {**world.env, "DOCKER_CONFIG": str(ecr_user.home / ".docker")}
    result = run(ecr_recipes.DOCKER.command, ecr_user, env)
    assert result.returncode == 0, output(result)
    manifest = json.loads(result.stdout)
    assert manifest["layers"] and world.registry.let_in > 0 and ecr.call_count == 1
