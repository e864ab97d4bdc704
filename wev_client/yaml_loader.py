"""YAML loading for configuration files (imported only when a file must be parsed).

Values mean what was written, as YAML 1.2 reads them (the earlier wev read
its files with ruamel.yaml, in YAML 1.2): ``true`` and ``false`` are the only
booleans (``yes``, ``no``, ``on`` and ``off`` are text), ``null`` and ``~``
the only nulls, and a date is text. Where PyYAML would follow YAML 1.1, the
resolvers here follow the 1.2 core schema instead; PyYAML stays the parser
(its C loader when available).

Numbers keep their text where a number would lose it: a decimal (``1.50``) and
an integer written in any form but plain decimal (``012345670123``, an AWS
account id with a leading zero; ``0x1F``) load as the text written. Plugins
read whole numbers from such text themselves (``plugins.optional_int``).

PyYAML's safe loader refuses a list as a mapping key, which wev uses for
plugins that set several variables (``[A, B]: ...``): such keys load as tuples.
A key written twice in one mapping is an error naming both lines, and a tab
in the indentation is named as such. Everything loaded is turned into plain
JSON-ready data, within a size budget so that alias bombs ("billion laughs")
fail fast instead of eating memory.
"""

from __future__ import annotations

import datetime
import re

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import ParserError
from yaml.reader import ReaderError
from yaml.scanner import ScannerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

YAMLError = yaml.YAMLError
_SYNTAX_ERRORS = (ScannerError, ParserError, ComposerError)
#: The scanner's context for a line that lacks its ':' ("could not find expected ':'").
_SIMPLE_KEY = "while scanning a simple key"

#: Most values a file may expand to once aliases are followed.
MAX_VALUES = 100_000

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The YAML 1.2 core schema's plain scalars (yaml.org/spec/1.2.2, 10.3.2), by
#: tag, with the characters they may start with. Anything else is text.
_CORE_SCHEMA = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    # PyYAML's merge key (``<<: *defaults``), which ruamel.yaml reads in 1.2 too.
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    # Its own table: PyYAML's (YAML 1.1) is shared by every other loader.
    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[object, object]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        own = {id(key_node) for key_node, _ in node.value}  # not merged in from an alias
        self.flatten_mapping(node)
        mapping: dict[object, object] = {}
        first_line: dict[object, int] = {}
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
            if id(key_node) in own:  # a merged-in key may be overridden; one's own not
                line = key_node.start_mark.line + 1
                if key in first_line:
                    where = (
                        f"on line {line}"  # a flow mapping: {id: a, id: b}
                        if first_line[key] == line
                        else f"on line {first_line[key]} and line {line}"
                    )
                    raise ConstructorError(
                        None,
                        None,
                        f"{_label(key)} is written twice in one mapping, {where}; keep one",
                        key_node.start_mark,
                    )
                first_line[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_float(self, node: ScalarNode) -> str:
        """A decimal as written: ``1.50`` stays ``1.50``, which a float would not."""
        return str(self.construct_scalar(node))

    def construct_yaml_int(self, node: ScalarNode) -> int | str:
        """An int only where it reads back as written ("-12"); else the text itself."""
        text = str(self.construct_scalar(node))
        try:
            # YAML 1.2: decimal digits are decimal, even after a leading zero;
            # 0o17 and 0x1F are kept as text below, as any other form.
            number = int(text, 0 if text[:2] in ("0o", "0x") else 10)
        except ValueError:  # ``!!int abc``, or more digits than int() reads
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise ConstructorError(
                None, None, f"{shown!r} is not a whole number wev can read", node.start_mark
            ) from None
        try:
            return number if str(number) == text else text
        except ValueError:  # too many digits for str() (sys.int_info.str_digits_check_threshold)
            return text


for _tag, _pattern, _first in _CORE_SCHEMA:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


def _label(key: object) -> str:
    if isinstance(key, tuple):
        return "[" + ", ".join(str(name) for name in key) + "]"
    return repr(key) if isinstance(key, str) else str(key)


class TooLarge(YAMLError):
    """The document expands to more than MAX_VALUES values."""


def load(data: bytes) -> object:
    """Parse one document into plain data (dict, tuple keys, list, str, int, bool, None)."""
    try:
        document = yaml.load(data, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _SYNTAX_ERRORS as error:
        mark = error.problem_mark
        if mark is not None and _indented_with_tab(data, mark.line):
            error.context = None
            error.problem = "a tab in the indentation; YAML indents with spaces only"
        elif error.context == _SIMPLE_KEY and error.context_mark is not None:
            # The scanner looked for the ':' up to the next line; the mistake is the
            # line that lacks it, which is where the key starts.
            error.problem_mark, error.context = error.context_mark, None
        raise
    return _plain(document, [MAX_VALUES])


def _indented_with_tab(data: bytes, line: int) -> bool:
    """Whether line ``line`` (0-based) of ``data`` has a tab before its first other character."""
    lines = data.split(b"\n")
    if not 0 <= line < len(lines):
        return False
    text = lines[line]
    return b"\t" in text[: len(text) - len(text.lstrip(b" \t"))]


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
    if value is None or isinstance(value, str | int | bool):
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
