"""YAML loading for configuration files (imported only when a file must be parsed).

PyYAML's safe loader refuses a list as a mapping key, which wev uses for
plugins that set several variables (``[A, B]: ...``): such keys load as tuples.

A YAML 1.1 integer written in any form but plain decimal (``012345670123``
is octal there, ``0x1F``, ``1_000``, ``1:30``) loads as the text written: an
AWS account id with a leading zero must not become another number. Plugins
read whole numbers from such text themselves (``plugins.optional_int``).
Everything loaded is turned into plain JSON-ready data, within a size budget so
that alias bombs ("billion laughs") fail fast instead of eating memory.
"""

from __future__ import annotations

import datetime

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import ParserError
from yaml.reader import ReaderError
from yaml.scanner import ScannerError

YAMLError = yaml.YAMLError
_SYNTAX_ERRORS = (ScannerError, ParserError, ComposerError)

#: Most values a file may expand to once aliases are followed.
MAX_VALUES = 100_000

_INF = float("inf")

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    def construct_mapping(self, node: Node, deep: bool = False) -> dict[object, object]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[object, object] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, SequenceNode):
                key: object = tuple(self.construct_sequence(key_node, deep=True))
            else:
                key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    "this kind of key is not allowed",
                    key_node.start_mark,
                ) from None
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: ScalarNode) -> int | str:
        """An int only where it reads back as written ("-12"); else the text itself."""
        text = str(self.construct_scalar(node))
        try:
            number = super().construct_yaml_int(node)
        except ValueError:  # ``!!int abc``, or more digits than int() reads
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise ConstructorError(
                None, None, f"{shown!r} is not a whole number wev can read", node.start_mark
            ) from None
        try:
            return number if str(number) == text else text
        except ValueError:  # too many digits for str() (sys.int_info.str_digits_check_threshold)
            return text


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


class TooLarge(YAMLError):
    """The document expands to more than MAX_VALUES values."""


class Unsupported(YAMLError):
    """A value that cannot travel to the daemon as JSON (NaN, infinity)."""


def load(data: bytes) -> object:
    """Parse one document into plain data (dict, tuple keys, list, str, int, ...)."""
    document = yaml.load(data, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    return _plain(document, [MAX_VALUES])


def _plain(value: object, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"the file expands to more than {MAX_VALUES} values (alias bomb?)")
    if isinstance(value, dict):
        return {_plain(k, budget): _plain(v, budget) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(item, budget) for item in value)
    if isinstance(value, list | set):
        return [_plain(item, budget) for item in value]
    if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
        raise Unsupported(f"{value} is not a supported value (NaN and infinity cannot be sent)")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def describe(error: YAMLError) -> str:
    """One line: what is wrong and where (1-based line and column)."""
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    if isinstance(error, ReaderError):
        return f"not a UTF-8 text file: {first_line}"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or first_line
    context = getattr(error, "context", None)
    if context:
        problem = f"{context}, {problem}"
    if mark is not None:
        kind = "YAML syntax error" if isinstance(error, _SYNTAX_ERRORS) else "YAML error"
        return f"line {mark.line + 1}, column {mark.column + 1}: {kind}: {problem}"
    return f"YAML error: {problem}"
