"""``docker-credential-wev``: Docker's credential helper protocol, answered with ECR passwords.

Docker, BuildKit, compose and the containers tools (skopeo, podman, buildah)
run ``docker-credential-<name> ACTION`` for the registries that ``credHelpers``
in their auth file maps to ``<name>``:

- ``get`` reads a server URL on stdin (with or without scheme, port or path)
  and prints ``{"ServerURL", "Username", "Secret"}``. An ECR host names the
  account and region; the wev.yml entry that serves it (``ecr.entry_for``)
  adds its ``profile`` or ``role``, else the caller's AWS context decides. The
  password comes from the daemon's memory (or this process, as for ``wev``).
- ``list`` prints the registries of the configured entries, each with ``AWS``.
- ``store`` and ``erase`` change nothing and succeed for ECR hosts (a password
  is fetched for each use; ``docker login`` and ``docker logout`` then do no
  harm), and are refused in one line for other hosts.

Failures go to stdout in one line, where Docker looks for them. The
protocol's own answers are written as Docker's helpers write them, bare and
with status 1, since Docker matches their text: a host that is not an ECR
registry's gets "credentials not found in native keychain", so the tool goes
on to its other sources, and an empty server URL "no credentials server
URL". wev's own failures (AWS, configuration) are ``wev: ...`` lines with
wev's exit statuses. Nothing is written to disk.
"""

from __future__ import annotations

import os
import sys

from wev_client import __version__, config_files, connection, ecr, paths
from wev_client.protocol import codec
from wev_client.protocol.context import context_env
from wev_client.protocol.errors import ProtocolError, UsageError, WevError
from wev_client.protocol.messages import ResolveRequest, VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

NAME = "docker-credential-wev"
USAGE = f"Usage: {NAME} <store|get|erase|list|version>"
#: The protocol's words for "not mine": Docker then tries its other sources.
NOT_FOUND = "credentials not found in native keychain"
MISSING_URL = "no credentials server URL"
#: Names of the in-memory entry's values (never set in any environment).
USERNAME_NAME = "WEV_ECR_USERNAME"
PASSWORD_NAME = "WEV_ECR_PASSWORD"  # noqa: S105 - a variable name, not a secret
#: The protocol's failure status, for what is not wev's own failure.
FAILURE = 1


class Answer(Exception):
    """A failure in the protocol's own words (``NOT_FOUND``, ``MISSING_URL``)."""


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if len(argv) != 1:
        stdout.write(USAGE + "\n")
        return FAILURE
    action = argv[0]
    if action in ("-h", "--help"):
        stdout.write(USAGE + "\n")
        return 0
    try:
        if action in ("version", "-v", "--version"):
            stdout.write(f"{NAME} (wev) {__version__}\n")
        elif action == "get":
            stdout.write(get(stdin.read(), environ) + "\n")
        elif action == "list":
            stdout.write(codec.dumps(listed(environ)) + "\n")
        elif action in ("store", "erase"):
            keep_nothing(action, stdin.read())
        else:
            raise UsageError(f"{NAME}: unknown action: {action}")
    except Answer as answer:
        stdout.write(f"{answer}\n")
        return FAILURE
    except WevError as error:
        from wev_client.output import printable  # an error may quote a config or AWS

        stdout.write(f"wev: {printable(error)}\n")
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    return 0


def get(server_url: str, environ: Mapping[str, str]) -> str:
    """The protocol's answer for ``server_url``: JSON with the registry's user name and password."""
    server_url = server_url.strip()
    if not server_url:
        raise Answer(MISSING_URL)
    registry = ecr.parse(ecr.host_of(server_url))
    if registry is None:
        raise Answer(NOT_FOUND)
    cwd = _cwd()
    configured = load(environ, cwd)
    environ = config_files.outside(configured, environ)
    entry = ecr.entry_for(registry, configured)
    spec = VariableSpec(
        (USERNAME_NAME, PASSWORD_NAME),
        ecr.plugin_for(registry, entry),
        () if entry is None else entry.sources,
    )
    request = ResolveRequest((spec,), context_env(environ, cwd), process_env=environ, cwd=cwd)
    try:
        response = connection.resolve(request, environ, _no_debug)
    except WevError as error:  # named as the user wrote it: the entry's key, else no name
        raise connection.named_as(error, spec, entry) from None
    for warning in response.warnings:  # an entry's typo, as `wev` would say it
        _warn(warning)
    values = response.values
    answer = {"ServerURL": server_url, "Username": values[USERNAME_NAME]}
    answer["Secret"] = values[PASSWORD_NAME]
    return codec.dumps(answer)


def listed(environ: Mapping[str, str]) -> dict[str, str]:
    """The registries that the wev.yml files for this folder name, each with its user name."""
    return {
        registry.host: ecr.USERNAME
        for _, registry in ecr.entries(load(environ, _cwd()))
        if not registry.is_pattern
    }


def keep_nothing(action: str, text: str) -> None:
    """``store`` and ``erase``: nothing to keep or drop for an ECR host; refused for others."""
    server_url = text.strip()
    if action == "store":
        try:
            document = codec.loads(server_url)
        except ProtocolError:
            raise UsageError(f"{NAME} store: the input is not the protocol's JSON") from None
        found = document.get("ServerURL") if isinstance(document, dict) else None
        server_url = found.strip() if isinstance(found, str) else ""
    if not server_url:
        raise Answer(MISSING_URL)
    host = ecr.host_of(server_url)
    if ecr.parse(host) is None:
        raise UsageError(
            f"{host or server_url} is not an ECR registry: {NAME} keeps no passwords "
            "(map only ECR hosts to it in credHelpers)"
        )


def load(environ: Mapping[str, str], cwd: str) -> tuple[VariableSpec, ...]:
    """The wev.yml entries for ``cwd`` (home's included), those of the nearest file first:
    of two entries for one registry, the project's wins over home's, as its keys do."""

    def parse(files: list[tuple[str, bytes]]) -> tuple[VariableSpec, ...] | None:
        return connection.parse_config(files, environ, _no_debug)

    try:
        cache_path: str | None = paths.config_cache_path(environ)
    except OSError:
        cache_path = None
    home = environ.get("HOME")
    specs = config_files.load(cwd, home, cache_path, _warn, parse)
    return tuple(config_files.nearest_first(specs, cwd, home))


def _warn(message: str) -> None:
    from wev_client.output import printable

    print(f"{NAME}: warning: {printable(message)}", file=sys.stderr)


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError as error:
        raise UsageError(f"the working folder is gone: {error.strerror}") from None


def _no_debug(message: str) -> None:
    return None
