"""``wev --install-docker-helper [HOST...]``: Docker's ``credHelpers`` for wev's ECR registries.

Adds ``"HOST": "wev"`` under ``credHelpers`` in Docker's ``config.json``
(``$DOCKER_CONFIG``, else ``~/.docker``) for each host named, or else for each
registry host of the wev.yml entries for this folder, and changes nothing
else in the file. Docker, BuildKit, compose and the containers tools then run
``docker-credential-wev`` for those registries.

A password stored for such a host under ``auths`` (``docker login``,
``podman login``) is reported: the containers tools read their own auth files
before Docker's, so one there is used instead of wev's; one in Docker's file
is no longer used by Docker but stays on disk until ``docker logout``.

Imported by ``cli`` only for this option: not on the hot path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile

from wev_client import docker_helper, ecr
from wev_client.protocol.errors import ConfigError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: What ``credHelpers`` names: Docker runs ``docker-credential-`` + this.
HELPER = "wev"
#: The fields of an ``auths`` entry that hold a secret (Docker's AuthConfig).
SECRET_FIELDS = ("auth", "password", "identitytoken", "registrytoken")


def run(hosts: Sequence[str], environ: Mapping[str, str]) -> int:
    """Install the helper for ``hosts`` (else the configured registries); print what changed."""

    def warn(message: str) -> None:
        from wev_client.output import printable

        print(f"wev: warning: {printable(message)}", file=sys.stderr)

    registries = chosen_hosts(hosts, environ)
    path = docker_config_path(environ)
    for line in install(path, registries):
        print(f"wev: {line}")
    for line in shadowing_auths(path, registries, environ):
        warn(line)
    if shutil.which(docker_helper.NAME, path=environ.get("PATH")) is None:
        warn(
            f"{docker_helper.NAME} is not on PATH: Docker will not find it "
            "(it is installed beside wev; add that folder to PATH)"
        )
    return 0


def chosen_hosts(hosts: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The hosts named (each an ECR registry's), else those of the configured entries."""
    chosen = []
    for written in hosts:
        registry = ecr.parse(ecr.host_of(written))
        if registry is None:
            raise UsageError(
                f"{written} is not an ECR registry host",
                hint="ACCOUNT.dkr.ecr.REGION.amazonaws.com or public.ecr.aws",
            )
        chosen.append(registry.host)
    patterns = []
    if not hosts:
        configured = docker_helper.load(environ, os.getcwd())
        served = [registry for _, registry in ecr.entries(configured)]
        chosen = [r.host for r in served if not r.is_pattern]
        patterns = [r.host for r in served if r.is_pattern]
    if chosen and patterns:  # credHelpers maps hosts, never patterns
        print(
            f"wev: note: Docker needs each host: name those of {', '.join(patterns)} "
            "(wev --install-docker-helper HOST ...)",
            file=sys.stderr,
        )
    if not chosen:
        named = "name none"
        if patterns:  # credHelpers maps hosts, never patterns
            named = f"name only patterns ({', '.join(patterns)}), and Docker needs each host"
        raise UsageError(
            f"no ECR registry to set up: the wev.yml files for this folder {named}",
            hint="wev --install-docker-helper ACCOUNT.dkr.ecr.REGION.amazonaws.com",
        )
    return list(dict.fromkeys(chosen))


def docker_config_path(environ: Mapping[str, str]) -> str:
    folder = environ.get("DOCKER_CONFIG") or os.path.join(environ.get("HOME") or "~", ".docker")
    return os.path.join(os.path.expanduser(folder), "config.json")


def install(path: str, hosts: Sequence[str]) -> list[str]:
    """Map each host to the helper in the file at ``path``; what was done, one line a host."""
    document = _read(path) or {}
    helpers = document.setdefault("credHelpers", {})
    if not isinstance(helpers, dict):
        raise ConfigError(f"{path}: 'credHelpers' is not a mapping; fix it by hand first")
    report = []
    for host in hosts:
        before = helpers.get(host)
        helpers[host] = HELPER
        if before == HELPER:
            report.append(f"{host}: already uses {docker_helper.NAME} ({path})")
        elif before:
            report.append(f"{host}: {docker_helper.NAME} instead of docker-credential-{before}")
        else:
            report.append(f"{host}: added to credHelpers in {path}")
    _write(path, document)
    return report


def shadowing_auths(path: str, hosts: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """A line for each password stored under ``auths`` for one of ``hosts``."""
    lines = []
    for file in _containers_auth_files(environ):
        for host in _stored_hosts(file, hosts):
            lines.append(
                f"{file} holds a password for {host} (podman, skopeo or buildah login), which "
                f"those tools use instead of wev's; remove it: podman logout {host}"
            )
    for host in _stored_hosts(path, hosts):
        lines.append(
            f"{path} still holds a password for {host} under auths (docker login): Docker now "
            f"asks wev, but the password stays on disk until: docker logout {host}"
        )
    return lines


def _containers_auth_files(environ: Mapping[str, str]) -> list[str]:
    """The auth files the containers tools read before Docker's (containers-auth.json(5))."""
    home = environ.get("HOME") or "~"
    files = []
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(environ["REGISTRY_AUTH_FILE"])
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files.append(os.path.join(config_home, "containers", "auth.json"))
    return list(dict.fromkeys(files))


def _stored_hosts(path: str, hosts: Sequence[str]) -> list[str]:
    try:
        document = _read(path)
    except ConfigError:
        return []  # not ours to judge: the tool that reads it will say
    auths = document.get("auths") if document else None
    if not isinstance(auths, dict):
        return []
    stored = {ecr.host_of(key) for key, entry in auths.items() if _holds_password(entry)}
    return [host for host in hosts if host in stored]


def _holds_password(entry: object) -> bool:
    """Whether an ``auths`` entry holds a password; with ``credsStore``, Docker writes an
    empty one and keeps the password in that store."""
    return isinstance(entry, dict) and any(entry.get(field) for field in SECRET_FIELDS)


def _read(path: str) -> dict[str, object] | None:
    """The JSON object in the file, or None when there is no file."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = json.loads(data or b"{}")
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); fix it by hand first") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level is not a JSON object; fix it by hand first")
    return document


def _write(path: str, document: Mapping[str, object]) -> None:
    """Replace the file at once (never half-written), keeping its mode and owner; 0600
    when new."""
    target = os.path.realpath(path)  # a symlinked config (dotfiles) stays a symlink
    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        try:
            st: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            st = None
        descriptor, temporary = tempfile.mkstemp(prefix=".config.json.", dir=folder)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                # Docker writes this file with tabs and its text as is: so a later
                # `docker login` changes little.
                json.dump(document, file, indent="\t", ensure_ascii=False)
                file.write("\n")
            os.chmod(temporary, 0o600 if st is None else st.st_mode & 0o777)
            if st is not None and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):  # only root (sudo) may give it back
                    os.chown(temporary, st.st_uid, st.st_gid)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise ConfigError(f"{path}: cannot write: {error.strerror}") from None
