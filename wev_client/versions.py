"""The order of wev versions (PEP 440), for a client and a daemon that meet.

``2.0.0.dev0 < 2.0.0a1 < 2.0.0rc1 < 2.0.0 < 2.0.0.post1 < 2.0.1``, and
``2.0 == 2.0.0``. Understood: ``N(.N)*[{a|b|rc}N][.postN][.devN][+local]``,
with an optional leading ``v``; anything else is not comparable (None), and
callers treat that as "not newer" rather than guess.

Imported by the daemon's version check and by ``wev --status``; it imports
nothing, so the client may use it anywhere.
"""

from __future__ import annotations

#: A sort key: release, pre-release, post-release, development release, local label.
Key = tuple[
    tuple[int, ...], tuple[int, int], int, tuple[int, int], tuple[tuple[int, int, str], ...]
]

_PRE_PHASES = {"a": 0, "b": 1, "rc": 2}
#: Longer strings are no version of wev's (hatch-vcs ones are about 40 characters).
MAX_LENGTH = 200


def sort_key(version: str) -> Key | None:
    """A key that orders versions as PEP 440 does; None for a form not understood."""
    text = version.strip().lower().removeprefix("v")
    if len(text) > MAX_LENGTH:  # nor may a header's digits exceed what int() reads
        return None
    public, plus, label = text.partition("+")
    local: list[tuple[int, int, str]] = []
    if plus:
        for segment in label.split("."):
            if not (segment.isascii() and segment.isalnum()):
                return None
            # Numeric segments sort above alphanumeric ones, and among themselves as numbers.
            local.append((1, int(segment), "") if segment.isdigit() else (0, 0, segment))
    public, dev = _suffix(public, ".dev")
    public, post = _suffix(public, ".post")
    if public == "" or dev == -1 or post == -1:
        return None
    end = 0
    while end < len(public) and (public[end] == "." or "0" <= public[end] <= "9"):
        end += 1
    release_text, pre_text = public[:end], public[end:]
    parts = release_text.split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    release = [int(part) for part in parts]
    while len(release) > 1 and release[-1] == 0:  # 2.0 == 2.0.0
        release.pop()
    if pre_text:
        phase = pre_text.rstrip("0123456789")
        number = pre_text[len(phase) :]
        if phase not in _PRE_PHASES or not number:
            return None
        pre = (_PRE_PHASES[phase], int(number))
    elif post is None and dev is not None:
        pre = (-1, 0)  # 2.0.0.dev0 comes before 2.0.0a1
    else:
        pre = (3, 0)  # a final release comes after its pre-releases
    return (
        tuple(release),
        pre,
        -1 if post is None else post,
        (1, 0) if dev is None else (0, dev),  # a release comes after its .dev ones
        tuple(local),
    )


def _suffix(text: str, marker: str) -> tuple[str, int | None]:
    """``text`` without a trailing ``marker`` + number, and that number (-1: malformed)."""
    head, found, number = text.rpartition(marker)
    if not found:
        return text, None
    if not (number.isascii() and number.isdigit()):
        return text, -1
    return head, int(number)


def compare(left: str, right: str) -> int | None:
    """-1, 0 or 1 as ``left`` is older than, equal to or newer than ``right``; None if unknown."""
    a, b = sort_key(left), sort_key(right)
    if a is None or b is None:
        return None
    return (a > b) - (a < b)
