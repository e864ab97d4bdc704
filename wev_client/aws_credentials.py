"""``wev --aws-credentials NAME``: an entry's AWS credentials for an AWS ``credential_process``.

A profile in ``~/.aws/config`` with ``credential_process = wev --aws-credentials
AWS_ACCESS_KEY_ID`` makes every AWS CLI, SDK and Terraform call ask wev for the
credentials of the entry that sets ``NAME`` (any name of its key): the daemon
keeps one session (one MFA question) for every process and terminal.

The SDK reads stdout as the answer, so only the JSON goes there; a question
goes to ``/dev/tty`` (``prompt``), everything else to stderr in one line.

The caller's ``AWS_PROFILE`` names the profile that runs this process (or one
that chains to it), so it is not the entry's context: resolving in it would run
this process again. The entry's own ``profile:`` says which identity it uses.
A loop still configured by hand (the entry's profile is the one served) is cut
by ``LOOP_VAR``, the entries being resolved up the chain: a nested call for one
of them fails at once instead of waiting on itself. Another entry may chain on
(an MFA session whose profile is served by a second wev entry).

Imported by ``cli`` only for this option: not on the hot path.
"""

from __future__ import annotations

import datetime
import os
import sys

from wev_client import config_files, connection, paths
from wev_client.protocol import codec
from wev_client.protocol.aws import PROFILE_VARS, profile_name
from wev_client.protocol.context import context_env
from wev_client.protocol.errors import ConfigError, WevError
from wev_client.protocol.messages import ResolveRequest, VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Set in the environment of what the entry's resolution runs (a credential_process):
#: the keys of the entries being resolved, up the chain, separated by spaces.
LOOP_VAR = "WEV_AWS_CREDENTIALS"
#: Not the entry's context: the caller's profile selection (``PROFILE_VARS``) names
#: the profile being served; the AWS CLI (v1) sets AWS_DATA_PATH to its own model
#: files for what it runs.
DROPPED_VARS = (*PROFILE_VARS, "AWS_DATA_PATH")
#: A name of the key ending so receives that part of the credentials.
PARTS = (
    ("AccessKeyId", "ACCESS_KEY_ID"),
    ("SecretAccessKey", "SECRET_ACCESS_KEY"),
    ("SessionToken", "SESSION_TOKEN"),
)


def find_entry(specs: Sequence[VariableSpec], name: str) -> VariableSpec:
    """The entry whose key holds ``name`` (or is written ``name``); ConfigError otherwise."""
    for spec in specs:
        if name in spec.names or spec.label == name:
            return spec
    known = ", ".join(spec.label for spec in specs if _parts(spec)) or "none"
    raise ConfigError(
        f"no entry of the wev.yml files for {os.getcwd()} sets {name} "
        f"(entries with AWS credentials: {known})",
        hint="put the entry in ~/.wev.yml to use it from any folder",
    )


def _parts(spec: VariableSpec) -> dict[str, str]:
    """Which name of the key gives each part of the credentials, by the JSON field."""
    found = {}
    for field, suffix in PARTS:
        for name in spec.names:
            if name.endswith(suffix):
                found[field] = name
                break
    return found


def credential_json(values: Mapping[str, str], spec: VariableSpec, expires_at: str | None) -> str:
    """The ``credential_process`` document (Version 1) for ``spec``'s resolved values."""
    parts = _parts(spec)
    if "AccessKeyId" not in parts or "SecretAccessKey" not in parts:
        raise ConfigError(
            f"{spec.label} holds no AWS credentials: its key needs names ending in "
            "ACCESS_KEY_ID and SECRET_ACCESS_KEY (and SESSION_TOKEN)"
        )
    document: dict[str, object] = {"Version": 1}
    for field, name in parts.items():
        document[field] = values[name]
    if expires_at is not None:
        # ISO 8601 in UTC, as AWS writes it: 2024-05-01T10:00:00Z.
        when = datetime.datetime.fromisoformat(expires_at).astimezone(datetime.UTC)
        document["Expiration"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return codec.dumps(document)


def run(name: str, environ: Mapping[str, str], warn: Callable[[str], None]) -> int:
    """Print the credential document for the entry that sets ``name``; 0, or raise WevError."""
    profile = profile_name(environ)
    where = f"--aws-credentials {name}" + (f" (AWS profile {profile})" if profile else "")
    try:
        cwd = os.getcwd()
        specs = config_files.load(cwd, environ.get("HOME"), _cache_path(environ), warn)
        spec = find_entry(specs, name)
        chain = environ.get(LOOP_VAR, "").split()
        if spec.names[0] in chain:
            raise ConfigError(
                f"the entry's own credentials come from this credential_process (through "
                f"--aws-credentials {name}): it would ask itself",
                hint="give the wev.yml entry a profile: that does not use wev",
            )
        if not _parts(spec):
            credential_json({}, spec, None)  # raises: says what the key lacks
        env = {
            k: v for k, v in config_files.outside(specs, environ).items() if k not in DROPPED_VARS
        }
        env[LOOP_VAR] = " ".join([*chain, spec.names[0]])
        request = ResolveRequest((spec,), context_env(env, cwd), process_env=env, cwd=cwd)
        response = connection.resolve(request, env, lambda message: None)
        for warning in response.warnings:
            warn(warning)
        expires_at = response.entries[0].expires_at if response.entries else None
        document = credential_json(response.values, spec, expires_at)
    except WevError as error:
        raise type(error)(f"{where}: {error.message}", hint=error.hint) from None
    sys.stdout.write(document + "\n")
    return 0


def _cache_path(environ: Mapping[str, str]) -> str | None:
    try:
        return paths.config_cache_path(environ)
    except OSError:  # no private runtime folder: parse every time
        return None
