"""An entry's configuration, validated: its plugin, settings, ``mfa_process`` and warnings;
and the caller's variables its plugin depends on.

What an entry's text alone decides, whatever the request that carries it:
``Resolver`` keeps the result for the same text, so that the calls of one
project validate their entries once. Errors name the file (ConfigError).
Imported by ``resolver``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from wev_client.protocol.context import is_context_var
from wev_client.protocol.errors import ConfigError, UnknownPlugin
from wev_client.protocol.messages import VariableSpec
from wev_daemon.plugins import Plugin, PropertyError

#: Properties of every entry that wev reads itself; the plugin never sees them.
MFA_PROCESS = "mfa_process"
ENTRY_PROPERTIES = frozenset({"id", MFA_PROCESS})


@dataclass(frozen=True)
class Configured:
    """What an entry's configuration alone makes: its plugin, properties and settings
    (validated), its ``mfa_process`` and the warnings it deserves."""

    plugin: Plugin[object]
    properties: Mapping[str, object]
    settings: object
    mfa_process: str | None
    warnings: tuple[str, ...]


def configure(spec: VariableSpec, plugins: Mapping[str, Plugin[object]]) -> Configured:
    """Validate one entry's configuration; raise ConfigError naming its file."""
    where = ", ".join(spec.sources) or "configuration"
    plugin_id = spec.plugin.get("id")
    plugin = plugins.get(str(plugin_id))
    if plugin is None:
        known = ", ".join(sorted(plugins)) or "none"
        raise UnknownPlugin(
            f"{where}: {spec.label}: unknown plugin {plugin_id!r} (known: {known})",
            plugin=str(plugin_id),
        )
    properties = {k: v for k, v in spec.plugin.items() if k not in ENTRY_PROPERTIES}
    mfa_process = spec.plugin.get(MFA_PROCESS)
    if mfa_process is not None and (not isinstance(mfa_process, str) or not mfa_process):
        raise ConfigError(f"{where}: {spec.label}: 'mfa_process' must be a command (a string)")
    try:
        settings = plugin.parse(properties)
    except PropertyError as error:
        raise ConfigError(f"{where}: {spec.label}: {plugin.id}: {error}") from None
    count = plugin.value_count(settings)
    if count != len(spec.names):
        raise ConfigError(_count_mismatch(where, spec, plugin, settings, count))
    warnings = tuple(
        f"{where}: {spec.label}: {plugin.id} ignores unknown property {unknown!r}"
        for unknown in sorted(set(properties) - plugin.properties)
    )
    return Configured(plugin, properties, settings, mfa_process, warnings)


def _count_mismatch(
    where: str, spec: VariableSpec, plugin: Plugin[object], settings: object, count: int
) -> str:
    """The key names another number of variables than the plugin resolves: how to fix it."""
    names = len(spec.names)
    named = "1 variable" if names == 1 else f"{names} variables"
    wanted = "a single name" if count == 1 else f"a list of {count} names"
    message = f"{where}: {spec.label}: the key names {named} but {plugin.id} resolves {count}; "
    message += f"make the key {wanted}"
    if hint := plugin.count_hint(settings, names):
        message += f", or {hint}"
    return message


def depended_on(
    patterns: tuple[str, ...],
    context: Mapping[str, str],
    process_env: Mapping[str, str],
    configured: set[str],
) -> dict[str, str]:
    """The caller's variables that ``Plugin.context_vars`` name, but those the configuration
    sets: the AWS context as the client sent it (its paths absolute), any other from the
    caller's whole environment."""
    exact, prefixes, beyond_context = _patterns(patterns)

    def named(name: str) -> bool:
        return name in exact or name.startswith(prefixes)

    env = {}
    if beyond_context:
        env = {k: v for k, v in process_env.items() if named(k) and not is_context_var(k)}
    env.update((k, v) for k, v in context.items() if named(k) and k not in configured)
    return env


@functools.cache
def _patterns(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...], bool]:
    """``Plugin.context_vars`` as the names it matches exactly, the prefixes of those
    ending in ``*`` (``AWS_*``), and whether it names any variable outside the AWS
    context the client sends apart (``protocol.context``); a plugin's are the same on
    every request."""
    exact = frozenset(pattern for pattern in patterns if not pattern.endswith("*"))
    prefixes = tuple(pattern[:-1] for pattern in patterns if pattern.endswith("*"))
    return exact, prefixes, not all(map(is_context_var, (*exact, *prefixes)))
