"""The README's "Container registries: Amazon ECR", from the texts ``tests/test_container_tools.py``
runs.

The registry host is the README's own: the tests reach a local stand-in under that very name
(``fakes.internet``), so every command runs as written. Print the section with
``python tests/ecr_recipes.py``.
"""

from __future__ import annotations

import json

from recipes import File, Recipe

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
IMAGE = f"{REGISTRY}/app:1.0"
#: A registry without an entry: its host names account and region, your AWS context does the rest.
OTHER = "210987654321.dkr.ecr.us-east-1.amazonaws.com"

WEV_YML = File(
    "~/.wev.yml",
    "yaml",
    "# ~/.wev.yml\n"
    "ECR_PASSWORD:\n"
    "  plugin:\n"
    "    id: wev-awsecr\n"
    f"    registry: {REGISTRY}\n"
    "    profile: work\n",
)

#: What ``wev --install-docker-helper`` leaves in a Docker config that held nothing else.
DOCKER_CONFIG = File(
    "~/.docker/config.json",
    "json",
    json.dumps({"credHelpers": {REGISTRY: "wev", OTHER: "wev"}}, indent="\t") + "\n",
)

SETUP = Recipe(
    "Set-up",
    "`docker-credential-wev` is installed beside `wev`. A `wev-awsecr` entry maps a registry "
    "to a profile (or a `role` to assume); registries without one need no entry. "
    "`--install-docker-helper` adds `credHelpers` for the registries given, or with none "
    "given for those the entries name, and changes nothing else in Docker's config "
    "(`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):",
    (WEV_YML,),
    f"wev --install-docker-helper\nwev --install-docker-helper {OTHER}",
    "Docker's config then reads:\n\n" + DOCKER_CONFIG.block() + "\n"
    "A password stored for one of these hosts under `auths` (an old `docker login` or `podman "
    "login`) gets a warning naming the file: the containers tools read their own auth files "
    "first, and Docker's stays on disk until `docker logout`.",
)

DOCKER = Recipe(
    "The docker CLI and BuildKit",
    "Docker asks `docker-credential-wev` for each pull and push of those registries, and "
    "passes the password to BuildKit for `FROM` images:",
    (File("Dockerfile", "dockerfile", f"# Dockerfile\nFROM {IMAGE}\n"),),
    f"docker manifest inspect {IMAGE}",
    f"`docker pull {IMAGE}`, `docker push`, `docker build .` and `docker buildx build .` "
    "take the same credentials (documented form: the test machine has no Docker engine, so "
    "the tests run `docker manifest inspect`, which the CLI answers itself).",
)

COMPOSE = Recipe(
    "docker compose",
    "Compose pulls through the same Docker configuration:",
    (File("compose.yaml", "yaml", f"# compose.yaml\nservices:\n  app:\n    image: {IMAGE}\n"),),
    "docker compose pull",
    "(Documented form: the test machine has no Docker engine.)",
)

CONTAINERS = Recipe(
    "skopeo, podman and buildah",
    "The containers tools read `credHelpers` from Docker's config after their own auth files "
    "(`--authfile` or `REGISTRY_AUTH_FILE` names another file with the same `credHelpers`):",
    (),
    f"skopeo inspect docker://{IMAGE}\npodman pull {IMAGE}\nbuildah pull {IMAGE}",
)

RECIPES = (SETUP, DOCKER, COMPOSE, CONTAINERS)

INTRO = f"""\
ECR's registry passwords are 12-hour tokens too. `docker-credential-wev`, a
Docker credential helper, hands them out from the daemon's memory: signed in
with your AWS context (SSO, MFA, roles, `credential_process`, as for
CodeArtifact), renewed ahead of expiry, one `GetAuthorizationToken` call for
every terminal and tool, never written to disk and never handed out once
expired (an error instead, when AWS cannot give a new one). A host such as
`{REGISTRY}` names the account and region, and ECR Public
(`public.ecr.aws`) is served from us-east-1; the profile and region of the
calling shell (`AWS_PROFILE`, `AWS_REGION`) decide the rest, unless a
`wev-awsecr` entry for that registry (or a pattern such as
`"*.dkr.ecr.us-east-1.amazonaws.com"`) says otherwise. `list` names the
registries the entries name; `store` and `erase` (`docker login`,
`docker logout`) keep nothing and succeed for ECR hosts, and are refused for
others. Other hosts get the protocol's "credentials not found in native
keychain" (status 1, as Docker's own helpers answer), so Docker goes on to
its other sources; a failure of wev's own (AWS, configuration) is one `wev:`
line on stdout, with wev's [exit status](#exit-statuses), which skopeo,
podman and buildah show (the docker CLI shows only its own "no basic auth
credentials": run `echo HOST | docker-credential-wev get` to see wev's line).

The same entry sets variables for `wev COMMAND` (`values`: `password`,
`username`, `registry`, `auth`, Docker's base64 `AWS:password`; default
`[password]`). An entry in `~/.wev.yml` serves every folder, and so is also
resolved by every `wev COMMAND`; one in a project's `wev.yml` serves Docker
run from that project, and wins over `~/.wev.yml`'s for the same registry
(an entry that names the host wins over a pattern).

Each recipe below is run by `tests/test_container_tools.py` against a local
stand-in for ECR and for the registry, under the registry's real host name,
where the tool is installed: `wev --install-docker-helper`, skopeo, podman,
buildah and `docker manifest inspect` are run; the blocks marked "documented
form" are not.
"""


def section() -> str:
    """The README's ``## Container registries: Amazon ECR`` section."""
    parts = ["## Container registries: Amazon ECR\n", INTRO]
    parts.extend(recipe.markdown() for recipe in RECIPES)
    return "\n".join(parts)


if __name__ == "__main__":
    print(section(), end="")
