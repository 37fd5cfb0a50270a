"""What counts as a change between two results of one (device, command): pure, no I/O.

A result is first reduced to its ``Comparable`` form: the parsed data without the paths a
``ChangeRule`` calls volatile (uptimes, counters, ages, timers), or, when the command was not
parsed, its output lines after the same volatile notion was applied to the text (masks and
dropped lines). Two comparables with the same ``digest`` are equal without a diff; otherwise
``compare`` names what changed, reusing the structured diff of ``service.domain.diff``.

Path patterns walk parsed data key by key: dotted segments, ``*`` is exactly one key (or list
index), ``**`` any number of keys (``**.up_down``, ``interfaces.*.counters``). A key that
itself holds a dot (an IP address) is matched by ``*`` only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from service.domain.diff import diff_parsed

ComparableKind = Literal["parsed", "text"]
_ANY_ONE = "*"
_ANY_DEPTH = "**"


def normalise_command(command: str) -> str:
    """Lower case, single spaces; the pipe part stays (``show version | include up``)."""
    return " ".join(command.lower().split())


def check_path_pattern(pattern: str) -> str | None:
    """What is wrong with a path pattern, or None when it is usable."""
    segments = pattern.split(".")
    if not pattern or any(not segment for segment in segments):
        return f"path pattern {pattern!r} has an empty segment"
    if all(segment == _ANY_DEPTH for segment in segments):
        return None
    if any("*" in segment and segment not in (_ANY_ONE, _ANY_DEPTH) for segment in segments):
        return f"path pattern {pattern!r}: '*' and '**' stand alone in a segment"
    return None


@dataclass(frozen=True, slots=True)
class ChangeRule:
    """Which results a rule applies to and what in them is volatile (not a change)."""

    name: str
    commands: tuple[re.Pattern[str], ...]
    os: frozenset[str] = frozenset()
    ignore: tuple[str, ...] = ()
    ignore_lines: tuple[re.Pattern[str], ...] = ()
    mask: tuple[tuple[re.Pattern[str], str], ...] = ()

    def applies(self, os: str, command: str) -> bool:
        """``command`` is already normalised."""
        if self.os and os not in self.os:
            return False
        return any(pattern.fullmatch(command) for pattern in self.commands)


class ChangeRules:
    """An ordered list of rules; the first that applies wins."""

    def __init__(self, rules: Iterable[ChangeRule]) -> None:
        self.rules = tuple(rules)

    def for_command(self, os: str, command: str) -> ChangeRule | None:
        normalised = normalise_command(command)
        return next((rule for rule in self.rules if rule.applies(os, normalised)), None)

    def extended(self, extra: Iterable[ChangeRule]) -> ChangeRules:
        """The ``extra`` rules are tried before these (an operator's file overrides shipped rules)."""
        return ChangeRules((*extra, *self.rules))


# ---- removing ignored paths from parsed data ------------------------------------------------

_State = tuple[int, int]  # (pattern index, position in its segments)


@lru_cache(maxsize=256)
def _segments(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(pattern.split(".")) for pattern in patterns)


def _closure(states: Iterable[_State], segments: tuple[tuple[str, ...], ...]) -> frozenset[_State]:
    """A ``**`` may also match no key at all: skip it."""
    found = set(states)
    stack = list(found)
    while stack:
        index, position = stack.pop()
        if position < len(segments[index]) and segments[index][position] == _ANY_DEPTH:
            following = (index, position + 1)
            if following not in found:
                found.add(following)
                stack.append(following)
    return frozenset(found)


def _advance(states: frozenset[_State], key: str, segments: tuple[tuple[str, ...], ...]) -> frozenset[_State]:
    moved: set[_State] = set()
    for index, position in states:
        pattern = segments[index]
        if position >= len(pattern):
            continue
        segment = pattern[position]
        if segment == _ANY_DEPTH:
            moved.add((index, position))
        elif segment in (_ANY_ONE, key):
            moved.add((index, position + 1))
    return _closure(moved, segments)


def _ends(states: frozenset[_State], segments: tuple[tuple[str, ...], ...]) -> bool:
    return any(position == len(segments[index]) for index, position in states)


def _prune(value: Any, states: frozenset[_State], segments: tuple[tuple[str, ...], ...]) -> Any:
    if not states:
        return _canonical(value)
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            after = _advance(states, str(key), segments)
            if not _ends(after, segments):
                kept[str(key)] = _prune(item, after, segments)
        return kept
    if isinstance(value, list | tuple):
        items = []
        for position, item in enumerate(value):
            after = _advance(states, str(position), segments)
            if not _ends(after, segments):
                items.append(_prune(item, after, segments))
        return items
    return value


def _canonical(value: Any) -> Any:
    """String keys and lists only, so that a stored and decoded value compares equal to a fresh one."""
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


def without_paths(parsed: dict[Any, Any], patterns: tuple[str, ...]) -> dict[str, Any]:
    """``parsed`` with every key a pattern names removed (its whole subtree); keys become strings."""
    segments = _segments(patterns)
    start = _closure(((index, 0) for index in range(len(segments))), segments)
    pruned: dict[str, Any] = _prune(parsed, start, segments)
    return pruned


# ---- normalising text -----------------------------------------------------------------------

# Header and clock lines some platforms print before any output: never a change.
ALWAYS_IGNORED_LINES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\s*Load for five secs:.*", re.IGNORECASE),
    re.compile(r"\s*Time source is .*", re.IGNORECASE),
    re.compile(r"\s*[*.]?\d{1,2}:\d{2}:\d{2}(\.\d+)? \S+ \w{3} \w{3} +\d{1,2} \d{4}\s*"),  # show clock
)


def normalised_lines(output: str, rule: ChangeRule | None) -> tuple[str, ...]:
    """Trailing spaces stripped, masks applied, blank and ignored lines dropped."""
    masks = rule.mask if rule else ()
    ignored = ALWAYS_IGNORED_LINES + (rule.ignore_lines if rule else ())
    lines = []
    for raw in output.splitlines():
        line = raw.rstrip()
        if not line or any(pattern.fullmatch(line) for pattern in ignored):
            continue
        for pattern, replacement in masks:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return tuple(lines)


# ---- the compared form ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparable:
    """What is stored as a baseline and compared: parsed data (volatile paths removed) when the
    command was parsed, else its normalised lines. The digest alone says whether two are equal."""

    kind: ComparableKind
    parsed: dict[str, Any] | None = None
    lines: tuple[str, ...] | None = None
    digest: str = field(default="")

    @classmethod
    def of(cls, kind: ComparableKind, parsed: dict[str, Any] | None, lines: tuple[str, ...] | None) -> Comparable:
        body = parsed if kind == "parsed" else list(lines or ())
        encoded = json.dumps([kind, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return cls(kind, parsed, lines, hashlib.sha256(encoded.encode()).hexdigest())


def comparable(
    os: str, command: str, parsed: dict[Any, Any] | None, output: str | None, rule: ChangeRule | None
) -> Comparable | None:
    """The compared form of one command's result; None when there is nothing to compare.

    ``os`` and ``command`` are those of the result; the caller chose ``rule`` for them
    (``ChangeRules.for_command``), so a rule applied here is the one named in an event.
    """
    if rule is not None and not rule.applies(os, normalise_command(command)):
        rule = None
    if parsed is not None:
        return Comparable.of("parsed", without_paths(parsed, rule.ignore if rule else ()), None)
    if output is not None:
        return Comparable.of("text", None, normalised_lines(output, rule))
    return None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What differs; each list is cut so that all of them together hold at most ``max_paths``."""

    kind: ComparableKind
    added: tuple[tuple[str, Any], ...] = ()
    removed: tuple[tuple[str, Any], ...] = ()
    changed: tuple[tuple[str, Any, Any], ...] = ()
    lines_added: tuple[str, ...] = ()
    lines_removed: tuple[str, ...] = ()
    truncated: bool = False


def _parsed_changes(old: dict[str, Any], new: dict[str, Any], max_paths: int) -> ChangeSet | None:
    changes = diff_parsed(old, new)
    if not changes:
        return None
    kept = changes[:max_paths]
    return ChangeSet(
        "parsed",
        added=tuple((c.path, c.new) for c in kept if c.kind == "added"),
        removed=tuple((c.path, c.old) for c in kept if c.kind == "removed"),
        changed=tuple((c.path, c.old, c.new) for c in kept if c.kind == "changed"),
        truncated=len(changes) > max_paths,
    )


def _multiset_minus(lines: tuple[str, ...], other: tuple[str, ...]) -> list[str]:
    """The lines of ``lines`` not matched one for one in ``other``, in their order."""
    spare = Counter(other)
    left = []
    for line in lines:
        if spare[line]:
            spare[line] -= 1
        else:
            left.append(line)
    return left


def _text_changes(old: tuple[str, ...], new: tuple[str, ...], max_paths: int) -> ChangeSet | None:
    added, removed = _multiset_minus(new, old), _multiset_minus(old, new)
    if not added and not removed:
        return None  # the same lines in another order (a table sorted differently) is no change
    room_removed = min(len(removed), max_paths)
    room_added = min(len(added), max_paths - room_removed)
    return ChangeSet(
        "text",
        lines_added=tuple(added[:room_added]),
        lines_removed=tuple(removed[:room_removed]),
        truncated=room_added < len(added) or room_removed < len(removed),
    )


def compare(old: Comparable, new: Comparable, max_paths: int) -> ChangeSet | None:
    """What changed from ``old`` to ``new``; None when nothing did, or when the two are of different
    kinds (one parsed, one not): such a pair cannot be compared and the new one becomes the baseline."""
    if old.digest == new.digest or old.kind != new.kind:
        return None
    if old.kind == "parsed":
        return _parsed_changes(old.parsed or {}, new.parsed or {}, max_paths)
    return _text_changes(old.lines or (), new.lines or (), max_paths)


# ---- the shipped rules ----------------------------------------------------------------------


def rule(
    name: str,
    commands: Iterable[str],
    ignore: Iterable[str] = (),
    ignore_lines: Iterable[str] = (),
    mask: Iterable[tuple[str, str]] = (),
    os: Iterable[str] = (),
) -> ChangeRule:
    """A rule from plain strings (regexes compiled here; raises ``re.error`` on a bad one)."""
    return ChangeRule(
        name=name,
        commands=tuple(re.compile(pattern) for pattern in commands),
        os=frozenset(os),
        ignore=tuple(ignore),
        ignore_lines=tuple(re.compile(pattern) for pattern in ignore_lines),
        mask=tuple((re.compile(pattern), replacement) for pattern, replacement in mask),
    )


_ARGS = r"( [^|]+)?"  # any arguments before a pipe (a VRF, an interface, ...)
_AGE = r"(\d+:\d{2}:\d{2}|\d+[ywdh]\d+[wdhm]|never)"  # 00:01:23, 1d02h, 5w0d

_BGP_VOLATILE = [
    "**.up_down",
    "**.msg_rcvd",
    "**.msg_sent",
    "**.tbl_ver",
    "**.bgp_table_version",
    "**.routing_table_version",
    "**.neighbor_table_version",
    "**.input_queue",
    "**.output_queue",
    "**.inq",
    "**.outq",
    "**.memory_usage",
    "**.total_memory",
    "**.activity_paths",
    "**.activity_prefixes",
]
_BGP_LINES = [
    r"\s*BGP table version is .*",
    r"\s*BGP activity .*",
    r"\s*\d+ networks peaked at .*",
    r"\s*BGP using \d+ total bytes of memory",
]
_BGP_MASK = [
    (
        # neighbour rows: Neighbor V|Spk AS MsgRcvd MsgSent TblVer InQ OutQ Up/Down State/PfxRcd
        r"^(\s*(?:\S+\s+)?\d+\s+\d+(?:\.\d+)?)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+(\s+\S+)$",
        r"\1 <counters> <up_down>\2",
    ),
    (r"( using )\d+( bytes of memory)", r"\1<n>\2"),
]

SHIPPED_RULES: tuple[ChangeRule, ...] = (
    rule(
        "show clock",
        [r"show clock" + _ARGS],
        ignore=["**"],
        ignore_lines=[r".*"],
    ),
    rule(
        "show processes cpu",
        [r"show processes cpu.*", r"show process cpu.*"],
        ignore=["**"],
        ignore_lines=[r".*"],
    ),
    rule(
        "show version",
        [r"show version" + _ARGS],
        ignore=["version.uptime", "version.uptime_this_cp", "uptime", "platform.kernel_uptime"],
        mask=[
            (r"(?i)((?:kernel |system )?uptime(?: for this control processor)? is ).*", r"\1<uptime>"),
            (r"^(\S+ up )\d.*", r"\1<uptime>"),  # ASA: "<hostname> up 3 days 22 hours"
        ],
    ),
    rule(
        "show interface summary",
        [r"show interfaces? (ip )?(summary|brief|description|status)" + _ARGS, r"show ip interface brief" + _ARGS],
        ignore=["**.counters", "**.rate"],
    ),
    rule(
        "show interfaces",
        [r"show interfaces?" + _ARGS],
        ignore=[
            "*.counters",
            "*.last_input",
            "*.last_output",
            "*.output_hang",
            "*.queues",
            "*.txload",
            "*.rxload",
            "*.reliability",
            "interfaces.*.counters",
        ],
        ignore_lines=[
            r"\s*(Last input|Last clearing|Input queue|Output queue|\d+ (minute|second)s? (input|output) rate).*",
            r"\s*\d+ (packets (input|output)|input errors|output errors|runts|broadcasts|multicast|watchdog).*",
            r"\s*\d+ (unknown protocol drops|babbles|lost carrier|output buffer failures|input packets with).*",
            r"\s*(Received \d+ broadcasts|\d+ interface resets|\d+ packets output).*",
        ],
        mask=[(r"(reliability )\d+/255, txload \d+/255, rxload \d+/255", r"\1<load>")],
    ),
    rule(
        "show ip bgp summary",
        [r"show (ip )?bgp( [^|]+)? summary", r"show ip bgp( [^|]+)? summary"],
        os=["ios", "iosxe"],
        ignore=_BGP_VOLATILE,
        ignore_lines=_BGP_LINES,
        mask=_BGP_MASK,
    ),
    rule(
        "show bgp vrf all all summary",
        [r"show bgp( [^|]+)? summary", r"show ip bgp( [^|]+)? summary"],
        os=["nxos"],
        ignore=_BGP_VOLATILE,
        ignore_lines=_BGP_LINES,
        mask=_BGP_MASK,
    ),
    rule(
        "show bgp instance summary",
        [r"show bgp( [^|]+)? summary"],
        os=["iosxr"],
        ignore=[*_BGP_VOLATILE, "**.rd_version", "**.nsr_initial_initsync_version", "**.process"],
        ignore_lines=[*_BGP_LINES, r"\s*(Speaker|BGP main routing table version|Table version).*"],
        mask=_BGP_MASK,
    ),
    rule(
        "show ip ospf neighbor",
        [r"show ip ospf neighbors?" + _ARGS, r"show ospf neighbors?" + _ARGS],
        ignore=["**.dead_time", "**.uptime", "**.up_time"],
        mask=[(r"\b" + _AGE + r"\b", "<time>")],
    ),
    rule(
        "show cdp neighbors",
        [r"show cdp neighbors?" + _ARGS],
        ignore=["**.hold_time"],
        mask=[(r"(Holdtime\s*:\s*)\d+", r"\1<hold>")],
    ),
    rule(
        "show lldp neighbors",
        [r"show lldp neighbors?" + _ARGS],
        ignore=["**.hold_time", "**.time_remaining"],
        mask=[(r"(Time remaining:\s*)\d+", r"\1<hold>")],
    ),
    rule(
        "show arp",
        [r"show (ip )?arp" + _ARGS],
        ignore=["**.age"],
        mask=[(r"^(Internet\s+\S+\s+)\d+", r"\1<age>")],
    ),
    rule(
        "show ip route",
        [r"show (ip|ipv6) route" + _ARGS, r"show route" + _ARGS],
        ignore=["**.updated", "**.date"],
        mask=[(r"(, )" + _AGE + r"(,|$)", r"\1<age>\3")],
    ),
    rule(
        "show platform",
        [r"show platform" + _ARGS],
        ignore=["**.uptime", "**.up_time", "**.insert_time"],
        mask=[(r"\b" + _AGE + r"\b", "<time>")],
    ),
)

DEFAULT_RULES = ChangeRules(SHIPPED_RULES)
