"""Finding, parsing and merging the configuration files.

Files, lowest precedence first: in the home folder, then in every folder from
the filesystem root down to the working directory, the names in ``FILE_NAMES``.
Mappings merge key by key; anything else from a higher file replaces the lower
value whole.

Parsing YAML costs more than the rest of a ``wev`` call, so the merged result
is cached (``marshal``, in the private runtime folder) under the files' stat
signatures; an unchanged configuration is never parsed twice. ``yaml`` is
imported only on a cache miss.
"""

from __future__ import annotations

import marshal
import os

from wev_client.protocol import ConfigError, VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

FILE_NAMES = (".wev.yml", "wev.yml", ".wev.user.yml", "wev.user.yml")

#: Bumped whenever the cached form changes, so stale caches are ignored.
_CACHE_FORMAT = 1
#: Working folders remembered in the cache file.
_CACHE_ENTRIES = 64
#: A configuration file larger than this is refused rather than parsed.
MAX_FILE_BYTES = 1024 * 1024

Signature = tuple[tuple[str, int, int, int], ...]
#: The cached form of a spec: (names, plugin block, sources).
CachedSpec = tuple[tuple[str, ...], dict[str, object], tuple[str, ...]]
Cache = dict[tuple[str, str], tuple[Signature, list[CachedSpec]]]


def candidate_folders(cwd: str, home: str | None) -> list[str]:
    """Folders to read, lowest precedence first; home is read once, first."""
    cwd = os.path.abspath(cwd)
    walk = [cwd]
    while (parent := os.path.dirname(walk[-1])) != walk[-1]:
        walk.append(parent)
    walk.reverse()
    if not home:
        return walk
    home = os.path.abspath(home)
    return [home, *(folder for folder in walk if folder != home)]


def signature(folders: list[str]) -> Signature:
    """Which config files exist, and their identity (mtime, size, inode)."""
    found = []
    for folder in folders:
        for name in FILE_NAMES:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            found.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(found)


def load(cwd: str, home: str | None, cache_path: str | None) -> tuple[VariableSpec, ...]:
    """The merged configuration for ``cwd``, from the cache when files are unchanged."""
    folders = candidate_folders(cwd, home)
    sig = signature(folders)
    key = (cwd, home or "")
    cache = _read_cache(cache_path) if cache_path else {}
    cached = cache.get(key)
    if cached is not None and cached[0] == sig:
        return tuple(VariableSpec(*item) for item in cached[1])
    specs = merge(parse_file(path) for path, *_ in sig)
    if cache_path:
        cache.pop(key, None)
        cache[key] = (sig, [(s.names, dict(s.plugin), s.sources) for s in specs])
        _write_cache(cache_path, cache)
    return specs


def _read_cache(path: str) -> Cache:
    try:
        with open(path, "rb") as file:
            version, entries = marshal.load(file)  # noqa: S302 - our own file, 0700 folder
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return entries if version == _CACHE_FORMAT and isinstance(entries, dict) else {}


def _write_cache(path: str, cache: Cache) -> None:
    """Write atomically, and only into a folder that is the user's alone."""
    folder = os.path.dirname(path)
    try:
        st = os.stat(folder)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return
        while len(cache) > _CACHE_ENTRIES:
            del cache[next(iter(cache))]
        temp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            marshal.dump((_CACHE_FORMAT, cache), file)
        os.replace(temp, path)
    except (OSError, ValueError):
        pass  # the cache only saves time; a folder we cannot write is no error


# -- parsing -------------------------------------------------------------------


def parse_file(path: str) -> tuple[str, dict[object, object]]:
    """Read one file into ``(path, mapping)``; raise ConfigError naming the file."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; not a wev config?")
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
            f"{path}: the top level must be a mapping of variable names, not a {_kind(document)}"
        )
    for key, value in document.items():
        _check_entry(path, key, value)
    return path, document


def _check_entry(path: str, key: object, value: object) -> None:
    if _is_meta(key):
        return
    label = _label(key)
    if isinstance(key, tuple):
        if not key or not all(isinstance(name, str) and _is_name(name) for name in key):
            raise ConfigError(f"{path}: {label}: a list key must hold variable names")
    elif not (isinstance(key, str) and _is_name(key)):
        raise ConfigError(f"{path}: {label}: a key must be a variable name or a list of names")
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: {label}: the value must be a mapping with a 'plugin' block, "
            f"not a {_kind(value)}"
        )
    if "plugin" in value and not isinstance(value["plugin"], dict):
        raise ConfigError(f"{path}: {label}: 'plugin' must be a mapping with an 'id'")


def _is_meta(key: object) -> bool:
    # The earlier wev ignored keys like "__meta__"; configs may still carry them.
    return isinstance(key, str) and len(key) > 4 and key.startswith("__") and key.endswith("__")


def _is_name(name: str) -> bool:
    return bool(name) and "=" not in name and "\0" not in name


def _kind(value: object) -> str:
    kinds: dict[type, str] = {dict: "mapping", list: "list", tuple: "list", str: "string"}
    return kinds.get(type(value), type(value).__name__)


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
