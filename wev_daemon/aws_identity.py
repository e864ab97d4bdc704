"""Who AWS takes a caller to be, and where: the part of its context a token depends on.

The cache keys AWS tokens on this, never on how an entry is written, so that
``wev CMD``, ``--export``, the keyring backend, ``wev-token``, the loopback
proxy and ``--aws-credentials`` share one token per identity. An identity is:

* the profile in effect (``profile:``, else botocore's ``AWS_DEFAULT_PROFILE``
  before ``AWS_PROFILE``, else ``default``), and, for plugins whose secret is
  regional, the region as botocore resolves it (``region_name``);
* the caller's ``AWS_*`` variables that the credential chain and the endpoints
  read: keys, files, endpoints, roles, containers, SSO and metadata switches.
  Not those that only select a profile or region (replaced by the resolved
  ones) or say how to reach AWS (CA bundle, retries, the CLI's data path):
  a different route to AWS is not a different person; and whether the keys
  (or web identity) of the environment are in effect, which a ``profile:`` in
  the entry turns off;
* ``HOME`` (``~/.aws``, the SSO and login caches);
* when the profile chain runs a ``credential_process``: the environment the
  process gets (less what a shell changes per terminal), and the caller's
  working folder when the command line names a relative path (``./creds``)
  or a file in that folder (``python3 creds.py``): the same wev.yml in two
  projects may then be two people.

The config and credentials files are read as botocore reads them (a missing
file is empty) and remembered by inode, size and times, so an unchanged file
costs a ``stat`` per request and an edited one is read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
from collections.abc import Mapping
from typing import Any

from wev_client.protocol.aws import PROFILE_VARS, profile_name

#: AWS_* variables that do not change who the caller is or where its token is valid.
NOT_IDENTITY = frozenset(
    {
        *PROFILE_VARS,
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CA_BUNDLE",
        "AWS_DATA_PATH",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_PAGER",
        "AWS_DEFAULT_OUTPUT",
        "AWS_CLI_AUTO_PROMPT",
    }
)
#: What botocore's environment providers read (keys, web identity): in effect only
#: when the entry names no profile.
ENVIRONMENT_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
#: What botocore reads no more once a profile is named explicitly (the entry's
#: ``profile:``): the environment's credentials are then no part of who asks.
UNREAD_WITH_A_PROFILE = frozenset(
    {
        *ENVIRONMENT_CREDENTIALS,
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_ROLE_SESSION_NAME",
    }
)
#: What a shell or terminal sets per window or folder, and wev's own bookkeeping:
#: never what a ``credential_process`` decides who you are by.
SESSION_VARS = frozenset(
    {
        "_",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "TERM",
        "COLORTERM",
        "COLUMNS",
        "LINES",
        "WINDOWID",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "TERM_SESSION_ID",
        "TMUX_PANE",
        "SSH_TTY",
        "GPG_TTY",
        "WEV_AWS_CREDENTIALS",
    }
)
SESSION_PREFIXES = ("DIRENV_",)
#: Most (config, credentials) file pairs remembered; a user has one or two.
MAX_FILES = 64

Profiles = Mapping[str, Mapping[str, Any]]
_memo: dict[tuple[str, str], tuple[tuple[object, object], Profiles]] = {}
#: Each profile's ``_chain``, with the profiles it was made of (the same object while
#: the files are unchanged).
_chains: dict[str, tuple[Profiles, str]] = {}


def identity(
    env: Mapping[str, str],
    process_env: Mapping[str, str],
    cwd: str | None,
    configured_profile: str | None,
    configured_region: str | None = None,
    *,
    with_region: bool = True,
) -> dict[str, object]:
    """The caller's AWS identity for a plugin's profile (and region) settings; with the
    region botocore resolves (``region_name``) unless ``with_region`` is false."""
    config = profiles(env)
    profile = profile_name(env, configured_profile) or "default"
    unread = UNREAD_WITH_A_PROFILE if configured_profile else frozenset()
    found: dict[str, object] = {
        name: value
        for name, value in env.items()
        if name.startswith("AWS_") and name not in NOT_IDENTITY and name not in unread
    }
    found["profile"] = profile
    # A profile the entry names turns the environment's credentials off: the same
    # variables are then someone else (``profile: default`` beside keys in the shell).
    found["environment_credentials"] = not configured_profile and any(
        env.get(name) for name in ENVIRONMENT_CREDENTIALS
    )
    found["HOME"] = env.get("HOME", "")
    found["profiles"] = _chain(config, profile)
    if with_region:
        found["region"] = _region(env, configured_region, config.get(profile, {}))
    command = _credential_process(env, config, profile, configured_profile)
    if command is not None:
        source = process_env or env
        found["process_env"] = {
            name: value
            for name, value in source.items()
            if name not in SESSION_VARS and not name.startswith(SESSION_PREFIXES)
        }
        if _depends_on_folder(command, source.get("PATH", ""), cwd):
            found["cwd"] = cwd or ""
    return found


def region_name(
    env: Mapping[str, str], configured_region: str | None, configured_profile: str | None
) -> str | None:
    """The region botocore signs for: the entry's, AWS_REGION, AWS_DEFAULT_REGION, else the
    profile's ``region`` in the caller's config (or credentials) file."""
    if region := configured_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        return region  # no file read
    profile = profile_name(env, configured_profile) or "default"
    return _region(env, None, profiles(env).get(profile, {}))


def profile_setting(
    env: Mapping[str, str], configured_profile: str | None, name: str
) -> str | None:
    """A setting (``ca_bundle``) of the profile in effect, from the caller's files."""
    profile = profile_name(env, configured_profile) or "default"
    value = profiles(env).get(profile, {}).get(name)
    return value if isinstance(value, str) and value else None


def _region(
    env: Mapping[str, str], configured: str | None, section: Mapping[str, Any]
) -> str | None:
    region = configured or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    value = region or section.get("region")
    return value if isinstance(value, str) and value else None


def profiles(env: Mapping[str, str]) -> Profiles:
    """The profiles of the caller's config and credentials files, merged as botocore does."""
    home = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".aws")
    config = env.get("AWS_CONFIG_FILE") or os.path.join(home, "config")
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, "credentials")
    stamps = (_stamp(config), _stamp(credentials))
    remembered = _memo.get((config, credentials))
    if remembered is not None and remembered[0] == stamps:
        return remembered[1]
    found = _load(config, credentials)
    while len(_memo) >= MAX_FILES:  # oldest first: dicts keep order
        del _memo[next(iter(_memo))]
    _memo[(config, credentials)] = (stamps, found)
    return found


def _stamp(path: str) -> object:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _load(config: str, credentials: str) -> Profiles:
    """``Session.full_config``'s profiles; a file that cannot be read or parsed adds none
    (the fetch reports it)."""
    from botocore import configloader
    from botocore.exceptions import BotoCoreError

    unusable = (BotoCoreError, OSError, UnicodeDecodeError)
    merged: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(*unusable):
        merged.update(configloader.load_config(config).get("profiles", {}))
    with contextlib.suppress(*unusable):
        for name, values in configloader.raw_config_parse(credentials).items():
            merged.setdefault(name, {}).update(values)
    return merged


def _chain(config: Profiles, profile: str) -> str:
    """What the credential chain reads of ``profile`` and of the profiles it takes its
    credentials from (``source_profile``): a role, keys, SSO, a process, an MFA device.
    An edit there is another identity: the token of the old role is never served.
    A digest, made once per profile and version of the files (every request asks)."""
    known = _chains.get(profile)
    if known is not None and known[0] is config:
        return known[1]
    if len(_chains) >= MAX_FILES:
        _chains.clear()
    chain: list[list[object]] = []
    name: str | None = profile
    while name and all(name != seen for seen, _ in chain):
        section = config.get(name, {})
        chain.append([name, sorted((key, str(value)) for key, value in section.items())])
        source = section.get("source_profile")
        name = source if isinstance(source, str) else None
    made = hashlib.sha256(repr(chain).encode()).hexdigest()
    _chains[profile] = (config, made)
    return made


def served_by_wev(env: Mapping[str, str]) -> bool:
    """Whether the profile the caller's environment names takes its credentials from
    ``wev --aws-credentials`` (the README's ``credential_process`` recipe)."""
    profile = profile_name(env, None)
    if not profile:
        return False
    command = _credential_process(env, profiles(env), profile, None)
    return command is not None and "--aws-credentials" in command


def _credential_process(
    env: Mapping[str, str], config: Profiles, profile: str, configured_profile: str | None
) -> str | None:
    """The ``credential_process`` the chain of ``profile`` may run, or None."""
    if not configured_profile and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return None  # the keys in the environment come first
    seen: set[str] = set()
    name: str | None = profile
    while name and name not in seen:
        seen.add(name)
        section = config.get(name, {})
        command = section.get("credential_process")
        if isinstance(command, str) and command.strip():
            return command
        source = section.get("source_profile")
        name = source if isinstance(source, str) else None
    return None


def _depends_on_folder(command: str, path: str, cwd: str | None) -> bool:
    """Whether the working folder decides what ``command`` runs or reads: a word such as
    ``./creds`` or ``bin/creds``, a bare command found through a relative PATH entry, or
    an argument naming a file there (``python3 creds.py``, ``--file=creds.json``, a
    module for ``-m``), also inside a script it hands a shell (``sh -c 'cat creds.json'``)."""
    try:
        words = shlex.split(command)
        words += [part for word in words[1:] if " " in word for part in shlex.split(word)]
    except ValueError:
        return True
    if any("/" in word and not word.startswith("/") for word in words):
        return True
    bare = bool(words) and "/" not in words[0]
    if bare and any(not entry.startswith("/") for entry in path.split(os.pathsep)):
        return True
    if not cwd:
        return False
    arguments = {part for word in words[1:] for part in (word, word.partition("=")[2])}
    named = {name for part in arguments if part for name in (part, part + ".py")}
    return any(os.path.lexists(os.path.join(cwd, name)) for name in named)
