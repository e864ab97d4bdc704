"""The README's code, as tests read it: fenced blocks and inline code spans."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def code_blocks(text: str | None = None) -> list[str]:
    """The text of every fenced block (```), indented ones in list items too."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in (README.read_text() if text is None else text).splitlines():
        if line.strip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line.strip())
    return blocks


def inline_code(text: str | None = None) -> list[str]:
    """Every `code span` outside the fenced blocks."""
    prose = re.sub(
        r"^ *```.*?^ *```", "", README.read_text() if text is None else text, flags=re.S | re.M
    )
    return re.findall(r"`([^`\n]+)`", prose)


def sample_line(start: str) -> str:
    """The one line of the README's code blocks that starts with ``start``."""
    [line] = [
        line for block in code_blocks() for line in block.splitlines() if line.startswith(start)
    ]
    return line
