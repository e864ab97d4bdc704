"""Parsing configuration files and merging them into variable specs.

Mappings merge key by key; anything else from a higher file replaces the lower
value whole. Errors are ConfigErrors naming the file (and the line, for YAML).

Imported only when the files changed since they were cached (``config_files``):
by the client, or by the daemon that parses an edited configuration for it.
"""

from __future__ import annotations

from wev_client.protocol.errors import ConfigError
from wev_client.protocol.messages import VariableSpec, is_variable_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def parse_texts(files: list[tuple[str, bytes]]) -> tuple[VariableSpec, ...]:
    """Parse ``(path, bytes)`` of files, lowest precedence first, and merge them."""
    return merge(_parse(path, data) for path, data in files)


def _parse(path: str, data: bytes) -> tuple[str, dict[object, object]]:
    from wev_client import yaml_loader  # only on a cache miss: PyYAML costs ~20 ms

    try:
        document = yaml_loader.load(data)
    except yaml_loader.YAMLError as error:
        raise ConfigError(f"{path}: {yaml_loader.describe(error)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a wev config") from None
    if document is None:
        return path, {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of variable names, not {_kind(document)}"
        )
    for key, value in document.items():
        _check_entry(path, key, value)
    return path, document


def _check_entry(path: str, key: object, value: object) -> None:
    if _is_meta(key):
        return
    label = _label(key)
    if isinstance(key, tuple):
        if not key or not all(is_variable_name(name) for name in key):
            raise ConfigError(f"{path}: {label}: a list key must hold variable names")
        if len(set(key)) != len(key):
            raise ConfigError(f"{path}: {label}: a list key must not repeat a name")
    elif not is_variable_name(key):
        raise ConfigError(f"{path}: {label}: a key must be a variable name or a list of names")
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: {label}: the value must be a mapping with a 'plugin' block, "
            f"not {_kind(value)}"
        )
    if "plugin" in value and not isinstance(value["plugin"], dict):
        raise ConfigError(f"{path}: {label}: 'plugin' must be a mapping with an 'id'")


def _is_meta(key: object) -> bool:
    # The earlier wev ignored keys like "__meta__"; configs may still carry them.
    return isinstance(key, str) and len(key) > 4 and key.startswith("__") and key.endswith("__")


def _kind(value: object) -> str:
    kinds: dict[type, str] = {
        dict: "a mapping",
        list: "a list",
        tuple: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "an empty value",
    }
    return kinds.get(type(value), f"a {type(value).__name__}")


def _label(key: object) -> str:
    if isinstance(key, tuple):
        return "[" + ", ".join(str(name) for name in key) + "]"
    return str(key)


# -- merging -------------------------------------------------------------------


def merge(documents: Iterator[tuple[str, dict[object, object]]]) -> tuple[VariableSpec, ...]:
    """Merge parsed files (lowest precedence first) into variable specs."""
    merged: dict[object, dict[object, object]] = {}
    sources: dict[object, list[str]] = {}
    for path, document in documents:
        for key, value in document.items():
            if _is_meta(key):
                continue
            assert isinstance(value, dict)
            merged[key] = _merge_mappings(merged.get(key, {}), value)
            sources.setdefault(key, []).append(path)
    specs = []
    for key, value in merged.items():
        label = _label(key)
        where = ", ".join(sources[key])
        plugin = value.get("plugin")
        if not isinstance(plugin, dict):
            raise ConfigError(f"{where}: {label}: no 'plugin' block")
        plugin_id = plugin.get("id")
        if not isinstance(plugin_id, str) or not plugin_id:
            raise ConfigError(f"{where}: {label}: the plugin block has no 'id'")
        names = tuple(str(name) for name in key) if isinstance(key, tuple) else (str(key),)
        specs.append(VariableSpec(names, plugin, tuple(sources[key])))
    return tuple(specs)


def _merge_mappings(
    lower: dict[object, object], higher: dict[object, object]
) -> dict[object, object]:
    result = dict(lower)
    for key, value in higher.items():
        below = result.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            result[key] = _merge_mappings(below, value)
        else:
            result[key] = value
    return result
