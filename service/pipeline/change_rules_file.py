"""Load an operator's change rules file (YAML or JSON), decoded once into ``ChangeRule``s.

Format (docs/CHANGE_RULES.md)::

    rules:
      - name: show bgp l2vpn evpn summary     # the metric label of its change events
        commands: ["show bgp l2vpn evpn summary( .*)?"]   # fullmatch, lower case, single spaces
        os: [nxos]                             # optional; empty or absent: any OS
        ignore: ["**.up_down", "**.msg_rcvd"]  # paths of the parsed result
        ignore_lines: ["\\\\s*BGP table version is .*"]    # raw lines dropped (fullmatch)
        mask:                                  # substitutions on raw lines (re.sub)
          - {pattern: "\\\\d+:\\\\d+:\\\\d+", replace: "<time>"}

The rules are tried in file order, before the shipped ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from service.contract.errors import ConfigError, ErrorCode
from service.domain.changes import ChangeRule, check_path_pattern


class _Mask(msgspec.Struct, forbid_unknown_fields=True):
    pattern: str
    replace: str


class _Rule(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    commands: list[str]
    os: list[str] = msgspec.field(default_factory=list)
    ignore: list[str] = msgspec.field(default_factory=list)
    ignore_lines: list[str] = msgspec.field(default_factory=list)
    mask: list[_Mask] = msgspec.field(default_factory=list)


class _File(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[_Rule] = msgspec.field(default_factory=list)


def _compiled(value: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: bad regex {value!r}: {exc}") from None


def _rule(entry: _Rule, where: str) -> ChangeRule:
    if not entry.name.strip() or not entry.commands:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: a rule needs a name and at least one command")
    for pattern in entry.ignore:
        problem = check_path_pattern(pattern)
        if problem:
            raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: ignore: {problem}")
    return ChangeRule(
        name=entry.name,
        commands=tuple(_compiled(value, f"{where}: commands") for value in entry.commands),
        os=frozenset(entry.os),
        ignore=tuple(entry.ignore),
        ignore_lines=tuple(_compiled(value, f"{where}: ignore_lines") for value in entry.ignore_lines),
        mask=tuple((_compiled(mask.pattern, f"{where}: mask"), mask.replace) for mask in entry.mask),
    )


def load_change_rules(path: Path | None) -> tuple[ChangeRule, ...]:
    """The file's rules in order; none without a file. Every problem is a ``ConfigError`` naming the
    file, the rule (its position and name) and what is wrong."""
    if path is None:
        return ()
    try:
        raw = path.read_bytes()
        data = (
            msgspec.json.decode(raw, type=_File)
            if path.suffix.lower() == ".json"
            else msgspec.yaml.decode(raw, type=_File)
        )
    except (OSError, msgspec.DecodeError) as exc:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"change rules file {path}: {exc}") from None
    return tuple(
        _rule(entry, f"change rules file {path}: rules[{index}] ({entry.name!r})")
        for index, entry in enumerate(data.rules)
    )
