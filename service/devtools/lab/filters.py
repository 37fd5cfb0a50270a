"""Output filters after ``|``: include, exclude, begin, section (IOS semantics).

Clients such as Unicon send ``show version | include operating mode`` at login and
users filter big outputs; the lab applies the filter to its stored text the way a
device does, so a client sees only the filtered lines.  Python ``re`` stands in
for the IOS regex engine (it agrees on everything the tests and clients use).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

FILTER_KEYWORDS: tuple[str, ...] = ("include", "exclude", "begin", "section")


class FilterError(ValueError):
    """The text after ``|`` is not a filter this lab knows, or its regex is invalid."""


@dataclass(frozen=True)
class OutputFilter:
    """One parsed ``| keyword regex`` clause."""

    keyword: str
    pattern: re.Pattern[str]

    def apply(self, lines: list[str]) -> list[str]:
        """Filter ``lines`` (without line endings) as the device would."""
        return _APPLY[self.keyword](self.pattern, lines)


def resolve_keyword(word: str) -> str:
    """Expand an abbreviation (``i``, ``inc``, ``sec``) to its filter keyword."""
    lowered = word.lower()
    matches = [k for k in FILTER_KEYWORDS if k.startswith(lowered)]
    if len(matches) != 1:
        raise FilterError(f"unknown filter {word!r}")
    return matches[0]


def parse_filter(clause: str) -> OutputFilter:
    """Parse ``include REGEX`` (the text after the first ``|``).

    The regex is the rest of the line, pipes and trailing spaces included: IOS
    reads ``| include a|b`` as one alternation, not two filters.
    """
    parts = clause.lstrip().split(None, 1)
    regex = parts[1].lstrip() if len(parts) == 2 else ""
    if not regex:
        raise FilterError("filter needs a regular expression")
    keyword = resolve_keyword(parts[0])
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise FilterError(f"invalid regular expression: {exc}") from exc
    return OutputFilter(keyword=keyword, pattern=pattern)


def _include(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    return [line for line in lines if pattern.search(line)]


def _exclude(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    return [line for line in lines if not pattern.search(line)]


def _begin(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if pattern.search(line):
            return lines[index:]
    return []


def _section(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    """A matching line plus its indented children, up to the next unindented line."""
    result: list[str] = []
    in_section = False
    for line in lines:
        indented = line[:1] in (" ", "\t")
        if in_section and indented:
            result.append(line)
            continue
        in_section = False
        if pattern.search(line):
            result.append(line)
            in_section = not indented
    return result


_APPLY: dict[str, Callable[[re.Pattern[str], list[str]], list[str]]] = {
    "include": _include,
    "exclude": _exclude,
    "begin": _begin,
    "section": _section,
}
