"""Which configuration files apply here, whether they can be trusted, and their parse cache.

Files, lowest precedence first: in the home folder, then in every folder from
the filesystem root down to the working directory, the names in ``FILE_NAMES``.
``load`` reads them and hands their bytes to ``config_parse`` (parsing and
merging) only when they changed.

Parsing YAML costs more than the rest of a ``wev`` call, so the merged result
is cached (``marshal``, in the private runtime folder) under the files' bytes:
the few small files are read on every call and compared with those the cache
holds, so a changed file is never served stale, whatever its timestamps say.
After an edit, the running daemon, which has PyYAML loaded, parses the texts
(``wev`` sends them with its resolve request; ``load``'s ``parse`` asks for
them alone); without it, ``config_parse`` is imported here.

Other users' files are not configuration (git's ``safe.directory`` model): a
file owned by neither the user nor root is skipped with a warning, and so is
one in a folder that group or others may write to unless the user owns that
folder. A file the user cannot read is skipped with a warning too. The
verdict on each file is part of the cache key, so a file whose owner or
folder changes is judged again rather than served from the cache; the
warnings are given on every call that skips the file.

Imported by ``wev_client.cli`` on every call: standard library C modules only.
"""

from __future__ import annotations

import marshal
import os
import stat

from wev_client.protocol.errors import ConfigError
from wev_client.protocol.messages import VariableSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    #: Parses and merges ``(path, bytes)`` of the files used; None: parse here instead.
    Parser = Callable[[list[tuple[str, bytes]]], tuple[VariableSpec, ...] | None]

FILE_NAMES = (".wev.yml", "wev.yml", ".wev.user.yml", "wev.user.yml")

#: Bumped whenever the cached form or the loader's results change, so stale caches are ignored.
_CACHE_FORMAT = 6
#: Working folders remembered in the cache file.
_CACHE_ENTRIES = 64
#: A cache file larger than this is not ours (64 entries of small configs).
_MAX_CACHE_BYTES = 16 * 1024 * 1024
#: A configuration whose files hold more bytes than this is parsed on every call
#: rather than kept in the cache (its bytes are the key), so the cache stays small.
_MAX_CACHED_FILE_BYTES = 128 * 1024
#: A configuration file larger than this is refused rather than parsed.
MAX_FILE_BYTES = 1024 * 1024

#: Each file that exists: (path, why it is left out: "" when it is used, its
#: bytes: empty when left out). The cache key: what the files say, not when.
Files = tuple[tuple[str, str, bytes], ...]
#: The cached form of a spec: (names, plugin block, sources).
CachedSpec = tuple[tuple[str, ...], dict[str, object], tuple[str, ...]]
Cache = dict[tuple[str, str], tuple[Files, list[CachedSpec]]]


def candidate_folders(cwd: str, home: str | None) -> list[str]:
    """Folders to read, lowest precedence first; home is read once, first.

    Paths are resolved (symlinks followed) so that a home reached through a
    symlink is still recognised among the working folder's ancestors.
    """
    cwd = os.path.realpath(cwd)
    walk = [cwd]
    while (parent := os.path.dirname(walk[-1])) != walk[-1]:
        walk.append(parent)
    walk.reverse()
    if not home:
        return walk
    home = os.path.realpath(home)
    return [home, *(folder for folder in walk if folder != home)]


def read_files(folders: list[str]) -> Files:
    """Which config files exist, why each is left out ("" when it is used: see
    the module's docstring), and the bytes of those used."""
    found = []
    uid = os.getuid()
    for folder in folders:
        folder_verdict: str | None = None  # stat the folder only if it holds a file
        for name in FILE_NAMES:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # absent (or a dangling symlink): nothing configured here
                continue
            except OSError as error:
                import errno  # anything but absent: not the hot path

                if error.errno == errno.ELOOP:
                    raise ConfigError(f"{path}: cannot read: a loop of symbolic links") from None
                continue
            verdict = _distrust_owner(st.st_uid, uid)
            if not verdict:
                if folder_verdict is None:
                    folder_verdict = _distrust_folder(folder, uid)
                verdict = folder_verdict
            data = b""
            if not verdict:
                try:
                    data = _read(path)
                except _Skipped as skipped:
                    verdict = skipped.reason
            found.append((path, verdict, data))
    return tuple(found)


def _distrust_owner(owner: int, uid: int) -> str:
    """Why a file owned by ``owner`` is not the configuration of user ``uid`` ("" if it is)."""
    if owner in (uid, 0):
        return ""
    return f"owned by uid {owner}, not by you or root"


def _distrust_folder(folder: str, uid: int) -> str:
    """Why files in ``folder`` are not trusted: others may write there, and it is not ours.

    Others who may write to the folder may swap the file, or plant a symbolic
    link to a file of ours that was never meant as this folder's configuration.
    """
    try:
        st = os.stat(folder)
    except OSError as error:
        return f"cannot check its folder: {error.strerror}"
    if st.st_uid == uid or not st.st_mode & 0o022:
        return ""
    who = "everyone" if st.st_mode & 0o002 else "its group"
    return f"{folder} may be written by {who} (mode {st.st_mode & 0o7777:o}) and is not yours"


class _Skipped(ConfigError):
    """A file left out with a warning, rather than one that fails every call below it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class Configuration:
    """The configuration files that apply to a folder, and their merged variables when the
    cache holds them (``variables``; None after an edit: ``texts`` must be parsed, and
    what they make handed to ``parsed``)."""

    __slots__ = ("_cache", "_cache_path", "_files", "_key", "_warn", "variables")

    def __init__(
        self,
        files: Files,
        key: tuple[str, str],
        cache: Cache,
        cache_path: str | None,
        warn: Callable[[str], None] | None,
    ) -> None:
        self._files, self._key, self._cache, self._cache_path = files, key, cache, cache_path
        self._warn = warn
        cached = cache.get(key)
        self.variables: tuple[VariableSpec, ...] | None = None
        if _is_entry(cached) and cached[0] == files:  # type: ignore[index]
            self.variables = tuple(VariableSpec(*item) for item in cached[1])  # type: ignore[index]
            self._warn_skipped()

    @property
    def texts(self) -> list[tuple[str, bytes]]:
        """``(path, bytes)`` of each file used, lowest precedence first."""
        return [(path, data) for path, why, data in self._files if not why]

    @property
    def utf8_texts(self) -> tuple[tuple[str, str], ...]:
        """``texts`` as text, for a daemon to parse (``as_text``); none if one is not UTF-8."""
        return as_text(self.texts) or ()

    def parsed(self, variables: tuple[VariableSpec, ...]) -> tuple[VariableSpec, ...]:
        """``variables``, what ``texts`` make, kept in the cache for the next call."""
        self._warn_skipped()
        files = self._files
        # Every reason to leave a file out is part of the key, and read again on
        # every call: a file that becomes readable, or trusted, is a new key.
        if self._cache_path and sum(len(data) for *_, data in files) <= _MAX_CACHED_FILE_BYTES:
            self._cache.pop(self._key, None)
            self._cache[self._key] = (
                files,
                [(s.names, dict(s.plugin), s.sources) for s in variables],
            )
            _write_cache(self._cache_path, self._cache)
        return variables

    def parse(self, parse: Parser | None = None) -> tuple[VariableSpec, ...]:
        """The variables, parsed by ``parse`` (the daemon) or else here when not cached."""
        if self.variables is not None:
            return self.variables
        texts = self.texts
        variables = parse(texts) if parse is not None and texts else None
        if variables is None:
            from wev_client.config_parse import parse_texts  # only on a miss: it loads PyYAML

            variables = parse_texts(texts)
        return self.parsed(variables)

    def _warn_skipped(self) -> None:
        """One line for each file left out, on every call that leaves it out."""
        if self._warn is not None:
            for path, why, _ in self._files:
                if why:
                    self._warn(f"skipping {path}: {why}")


def as_text(texts: list[tuple[str, bytes]]) -> tuple[tuple[str, str], ...] | None:
    """The files' ``(path, text)`` for a daemon to parse; None if one is not UTF-8 (JSON
    carries text only: such files are parsed in the client)."""
    try:
        return tuple((path, data.decode()) for path, data in texts)
    except UnicodeDecodeError:
        return None


def read(
    cwd: str,
    home: str | None,
    cache_path: str | None,
    warn: Callable[[str], None] | None = None,
) -> Configuration:
    """The configuration for ``cwd``: its files, and their variables when the cache holds them.

    Files that are not trusted or cannot be read are left out, and ``warn``
    gets one line for each, naming it, on every call once the variables are
    known. Raises ConfigError, naming the file, for any other file that cannot
    be used.
    """
    folders = candidate_folders(cwd, home)
    # The folder list decides the result, and these two ends decide the list.
    key = (folders[-1], folders[0] if home else "")
    files = read_files(folders)
    cache = _read_cache(cache_path) if cache_path else {}
    return Configuration(files, key, cache, cache_path, warn)


def load(
    cwd: str,
    home: str | None,
    cache_path: str | None,
    warn: Callable[[str], None] | None = None,
    parse: Parser | None = None,
) -> tuple[VariableSpec, ...]:
    """The merged configuration for ``cwd`` (``read``), from the cache when files are
    unchanged. When they changed, ``parse`` (the daemon) is asked first; it raises
    ConfigError as ``parse_texts`` would."""
    return read(cwd, home, cache_path, warn).parse(parse)


def outside(specs: tuple[VariableSpec, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` less the names ``specs`` set, as the daemon leaves them out of its
    entries' context: a door (inside ``wev``) sends one entry of the configuration."""
    names = {name for spec in specs for name in spec.names}
    return {name: value for name, value in environ.items() if name not in names}


def nearest_first(
    specs: tuple[VariableSpec, ...], cwd: str, home: str | None
) -> list[VariableSpec]:
    """``specs`` with those of the nearest file first: of two entries for one
    repository or registry, the project's wins over home's, as its keys do."""
    files = [os.path.join(f, name) for f in candidate_folders(cwd, home) for name in FILE_NAMES]
    precedence = {path: index for index, path in enumerate(files)}
    # An entry is as near as the nearest file that sets it (its last source).
    return sorted(specs, key=lambda spec: -precedence.get(spec.sources[-1], -1))


def _private_folder(folder: str) -> bool:
    """Whether ``folder`` is a folder of this user's that no one else may enter."""
    try:
        st = os.stat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _read_cache(path: str) -> Cache:
    """The cache, or an empty one if it is missing, corrupt or could have been planted.

    A cache in a folder others can write to could be replaced by theirs, which
    would choose the plugins (and so the environment) of this user's commands.
    """
    if not _private_folder(os.path.dirname(path) or "."):
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            if os.fstat(fd).st_uid != os.getuid():
                return {}
            data = file.read(_MAX_CACHE_BYTES + 1)
    except OSError:
        return {}
    if len(data) > _MAX_CACHE_BYTES:
        return {}
    try:
        version, entries = marshal.loads(data)  # noqa: S302 - our own file, private folder
    except (EOFError, ValueError, TypeError):
        return {}
    if version != _CACHE_FORMAT or not isinstance(entries, dict):
        return {}
    return entries  # each entry is checked when used: see _is_entry


def _is_entry(entry: object) -> bool:
    """Whether a cache entry has the shape ``load`` relies on (a corrupt one is ignored)."""
    if not (isinstance(entry, tuple) and len(entry) == 2):
        return False
    files, specs = entry
    return (
        isinstance(files, tuple)
        and all(
            isinstance(item, tuple)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and isinstance(item[2], bytes)
            for item in files
        )
        and isinstance(specs, list)
        and all(
            isinstance(spec, tuple)
            and len(spec) == 3
            and isinstance(spec[0], tuple)
            and bool(spec[0])
            and all(isinstance(name, str) for name in spec[0])
            and isinstance(spec[1], dict)
            and isinstance(spec[2], tuple)
            and all(isinstance(source, str) for source in spec[2])
            for spec in specs
        )
    )


def _write_cache(path: str, cache: Cache) -> None:
    """Write atomically, and only into a folder that exists and is the user's alone.

    The folder is the daemon's, beside its socket: it is never made here, but
    where a daemon is started, with the checks on the folders above it
    (``paths.make_private_folder``). A socket path that cannot be used, or a
    folder above where others could swap it, gets no cache folder either.
    """
    folder = os.path.dirname(path) or "."
    if not _private_folder(folder):
        return
    while len(cache) > _CACHE_ENTRIES:
        del cache[next(iter(cache))]
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            marshal.dump((_CACHE_FORMAT, cache), file)
        os.replace(temp, path)
    except (OSError, ValueError):
        # The cache only saves time; a folder we cannot write is no error.
        try:  # noqa: SIM105
            os.unlink(temp)
        except OSError:
            pass


def _read(path: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; ConfigError otherwise.

    A file the user may not read, or that another user swapped in since it was
    judged, raises ``_Skipped``: it is left out with a warning.
    """
    try:
        # O_NONBLOCK: opening a FIFO named wev.yml must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if isinstance(error, PermissionError):  # EACCES, EPERM
            raise _Skipped(path, f"cannot read: {error.strerror}") from None
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        # The file opened is judged again: it may have been replaced since it was stat'ed.
        if verdict := _distrust_owner(st.st_uid, os.getuid()):
            raise _Skipped(path, verdict)
        chunks = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; not a wev config?")
    return b"".join(chunks)
