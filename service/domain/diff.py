"""Compare two outputs of one command: structured when both were parsed, text otherwise.

Pure functions, no I/O. A structured diff walks dicts by key and lists by index and names
each difference by its path (``version.uptime``, ``interfaces["Gi0/0.100"].status``,
``vrf.default.peers[2]``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]
DiffKind = Literal["parsed", "text"]

_PLAIN_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/:")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {self.new!r}"
        if self.kind == "removed":
            return f"- {self.path}: {self.old!r}"
        return f"~ {self.path}: {self.old!r} -> {self.new!r}"

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.kind != "added":
            entry["old"] = self.old
        if self.kind != "removed":
            entry["new"] = self.new
        return entry


@dataclass(frozen=True, slots=True)
class OutputDiff:
    kind: DiffKind
    changes: list[Change] = field(default_factory=list)  # kind "parsed"
    text: list[str] = field(default_factory=list)  # kind "text": unified diff lines

    @property
    def identical(self) -> bool:
        return not self.changes and not self.text

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "identical": self.identical,
            "changes": [c.as_dict() for c in self.changes],
            "text": self.text,
        }


def _key_path(parent: str, key: Any) -> str:
    text = str(key)
    if text and all(ch in _PLAIN_KEY for ch in text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{text!r}]"


def diff_parsed(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every added, removed and changed leaf between two parsed structures, in key order."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        keys = list(old) + [k for k in new if k not in old]
        for key in sorted(keys, key=str):
            sub = _key_path(path, key)
            before, after = old.get(key, _MISSING), new.get(key, _MISSING)
            if before is _MISSING:
                changes.append(Change(sub, "added", new=after))
            elif after is _MISSING:
                changes.append(Change(sub, "removed", old=before))
            else:
                changes.extend(diff_parsed(before, after, sub))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            sub = f"{path}[{index}]"
            if index >= len(old):
                changes.append(Change(sub, "added", new=new[index]))
            elif index >= len(new):
                changes.append(Change(sub, "removed", old=old[index]))
            else:
                changes.extend(diff_parsed(old[index], new[index], sub))
        return changes
    if old == new and type(old) is type(new):
        return []
    return [Change(path or "$", "changed", old=old, new=new)]


def diff_text(old: str, new: str, old_label: str = "a", new_label: str = "b", context: int = 3) -> list[str]:
    """A unified diff of two outputs, without line endings; empty when they are equal."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, n=context, lineterm=""
        )
    ]


def diff_outputs(
    old_parsed: Any,
    old_output: str | None,
    new_parsed: Any,
    new_output: str | None,
    old_label: str = "a",
    new_label: str = "b",
    text: bool = False,
) -> OutputDiff:
    """Structured when both sides were parsed (and ``text`` is not asked for), else unified text."""
    if not text and old_parsed is not None and new_parsed is not None:
        return OutputDiff("parsed", changes=diff_parsed(old_parsed, new_parsed))
    return OutputDiff("text", text=diff_text(old_output or "", new_output or "", old_label, new_label))
