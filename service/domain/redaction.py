"""Masks secrets in device output before it leaves the service.

A ``show running-config`` carries enable secrets, SNMP communities, AAA and routing keys
and password hashes; a requester who may read a config is not always one who may crack
it. Only the secret token is replaced by ``MARKER``: the keyword, the type digit and the
rest of the line stay, so the text stays readable, keeps its line count and still parses.

Every line rule is anchored to configuration syntax (the command that owns the secret, at
the start of a line), never to a bare word, so ``description password reset server`` or a
``key chain NAME`` header pass untouched. A value already masked by the device (``*****``)
or by us is left alone, which makes redaction idempotent.

Speed: one pass of a trigger pattern finds the lines whose first word can own a secret;
only those lines meet the rules. Rules without first words (private keys, crypt hashes)
start with a literal, so ``re`` can skip through the text for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from service.domain.models import DeviceOS

MARKER: Final = "<redacted>"

ALL_OS: Final = frozenset(DeviceOS)

# Shared pieces. Unnamed groups are secrets; named groups are structure only.
_START = r"^[ \t]*"
_TYPE = r"(?:(?:\d{1,2}|encrypted|clear) )?"  # 0/3/5/6/7/8/9/10, IOS-XR's keywords
_VALUE = r'(?:"([^"\n]*)"|([^\s"]\S*))'  # NX-OS quotes some keys; the quotes stay
_TAIL = _TYPE + _VALUE

_LINE_CONTENT = re.compile(r"[^\r\n]+")


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """The masked text plus what was found, so callers can count and log kinds, never values."""

    text: str
    count: int
    kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One way a secret is written; several rules may share a kind (the name reported).

    ``heads`` are the first words of the lines the rule can match; a rule without heads
    is run over the whole text (secrets that span lines or sit anywhere in a line).
    """

    kind: str
    pattern: re.Pattern[str]
    secret_groups: tuple[int, ...]
    heads: tuple[str, ...] = ()
    oses: frozenset[DeviceOS] = ALL_OS


def rule(kind: str, heads: Iterable[str], regex: str, oses: Iterable[DeviceOS] = ALL_OS) -> Rule:
    """Compiles once at import, so a request never pays for it; secret groups are found here too."""
    pattern = re.compile(regex, re.MULTILINE)
    named = set(pattern.groupindex.values())
    secrets = tuple(i for i in range(1, pattern.groups + 1) if i not in named)
    return Rule(kind, pattern, secrets, tuple(heads), frozenset(oses))


DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    rule(
        "private_key",
        (),
        r"-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY-----\r?\n"
        r"((?:[^\n]*\n)*?)[ \t]*-----END (?P=label)PRIVATE KEY-----",
    ),
    # enable secret 9 $9$..; enable password 7 ..; ASA: enable password X encrypted
    rule("enable_secret", ["enable"], _START + r"enable (?:secret|password)(?: level \d+)? " + _TAIL),
    # username admin privilege 15 secret 5 $1$..; NX-OS password 5 $5$..; ASA password X encrypted
    rule("username_secret", ["username"], _START + r"username \S+(?: [^\n]*?)? (?:secret|password) " + _TAIL),
    # under line vty, IOS-XR username and BGP neighbor blocks; ASA passwd X encrypted
    rule(
        "line_password",
        ["password", "secret", "passwd"],
        _START + r"(?:password|secret|passwd) (?!(?:encryption|strength-check|prompt)\b)" + _TAIL,
    ),
    rule("snmp_community", ["snmp-server"], _START + r"snmp-server community " + _TAIL),
    rule("snmp_community", ["snmp-server"], _START + r"snmp-server host [^\n]*? community " + _TAIL),
    # ASA writes "community X version 2c", so its version keyword is never followed by the secret
    rule(
        "snmp_community",
        ["snmp-server"],
        _START + r"snmp-server host [^\n]*? version (?:1|2c) " + _TAIL,
        (DeviceOS.IOS, DeviceOS.IOSXE, DeviceOS.NXOS, DeviceOS.IOSXR),
    ),
    # IOS writes SNMPv1 hosts without a version keyword; NX-OS uses that slot for use-vrf
    rule(
        "snmp_community",
        ["snmp-server"],
        _START + r"snmp-server host \S+(?: vrf \S+)?(?: informs| traps)? "
        r"(?!(?:version|vrf|use-vrf|informs|traps|community)\b)" + _VALUE,
        (DeviceOS.IOS, DeviceOS.IOSXE),
    ),
    rule(
        "snmp_user",
        ["snmp-server"],
        _START
        + r"snmp-server user [^\n]*? auth (?:md5|sha\S*) "
        + _TAIL
        + r"(?: priv(?: (?:aes[- ]?\d+|3des|des\d*|aes))? "
        + _TAIL
        + ")?",
    ),
    # tacacs-server key 7 ..; radius-server host .. key ..; aaa server-private .. key ..
    rule(
        "aaa_key",
        ["tacacs-server", "radius-server", "server-private"],
        _START + r"(?:tacacs-server|radius-server|server-private)\b[^\n]*? key " + _TAIL,
    ),
    # key lines inside tacacs/radius server, ASA aaa-server and IOS-XR host blocks; a bare
    # "key 1" is a key chain's key id, and "key 1 -- text" a line of show key chain
    rule(
        "aaa_key",
        ["key", "pac", "client", "server-key"],
        r"^[ \t]+(?:pac key|key|client \S+ server-key|server-key) (?!\d+(?:[ \t\r]*$| --))" + _TAIL,
    ),
    rule("isakmp_key", ["crypto"], _START + r"crypto isakmp key " + _TAIL),
    rule(
        "pre_shared_key",
        ["pre-shared-key", "ikev1", "ikev2"],
        _START + r"(?:ikev1 |ikev2 (?:local|remote)-authentication )?pre-shared-key(?: local| remote)?"
        r"(?: (?:address|hostname) \S+(?: \d+\.\d+\.\d+\.\d+)? key)? " + _TAIL,
    ),
    rule(
        "key_string",
        ["key-string", "standby", "vrrp"],
        _START + r"(?:(?:standby|vrrp) \d+ authentication md5 )?key-string(?: password)? " + _TAIL,
    ),
    rule(
        "ospf_key",
        ["ip", "ipv6", "authentication-key", "message-digest-key"],
        _START + r"(?:(?:ip|ipv6) ospf )?(?:authentication-key (?!\d+ md5 )|message-digest-key \d+ md5 )" + _TAIL,
    ),
    rule("bgp_password", ["neighbor"], _START + r"neighbor \S+ password " + _TAIL),
    # IOS-XR nests it: "ntp" then " authentication-key 1 md5 encrypted .."
    rule("ntp_key", ["ntp", "authentication-key"], _START + r"(?:ntp )?authentication-key \d+ md5 " + _TAIL),
    rule(
        "protocol_password",
        ["isis", "area-password", "domain-password", "lsp-password", "hello-password", "ppp", "ip"],
        _START + r"(?:isis password|area-password|domain-password|ppp chap password"
        r"|(?:lsp|hello)-password(?: hmac-md5| text)?(?! keychain\b)"
        r"|ppp pap sent-username \S+ password|ip ftp password|ip http client password) " + _TAIL,
    ),
    # crypt-style hashes wherever they are (type 5/8/9, NX-OS $5$, IOS-XR type 10 $6$, ASA pbkdf2);
    # the look-behind sits after the literal '$' so re can search for it quickly
    rule("hash", (), r"""(\$(?<![^\s"']\$)(?:1|5|6|8|9|14|sha512)\$[^\s"']+)"""),
)


def _is_masked(value: str) -> bool:
    return value == _LINE_CONTENT.sub(MARKER, value) or not value.strip("*")


def _mask(text: str, matches: Iterable[re.Match[str] | None], groups: tuple[int, ...]) -> tuple[str, int]:
    """Replaces the secret groups, each line of a value by one marker (line count kept)."""
    pieces: list[str] = []
    cursor = found = 0
    for match in matches:
        if match is None:
            continue
        for index in groups:
            value = match.group(index)
            if value is None or _is_masked(value):
                continue
            start, end = match.span(index)
            pieces += (text[cursor:start], _LINE_CONTENT.sub(MARKER, value))
            cursor = end
            found += 1
    if not found:
        return text, 0
    pieces.append(text[cursor:])
    return "".join(pieces), found


@dataclass(frozen=True, slots=True)
class _Plan:
    """The rules for one OS, arranged for one trigger pass plus the whole-text rules."""

    trigger: re.Pattern[str]
    by_head: dict[str, tuple[Rule, ...]]
    whole_text: tuple[Rule, ...]

    @classmethod
    def build(cls, rules: Iterable[Rule]) -> _Plan:
        by_head: dict[str, list[Rule]] = {}
        whole_text: list[Rule] = []
        for current in rules:
            if not current.heads:
                whole_text.append(current)
            for head in current.heads:
                by_head.setdefault(head, []).append(current)
        heads = "|".join(re.escape(h) for h in sorted(by_head, key=len, reverse=True)) or "(?!)"
        trigger = re.compile(rf"^[ \t]*(?P<head>{heads})[ \t][^\n]*", re.MULTILINE)
        return cls(trigger, {h: tuple(r) for h, r in by_head.items()}, tuple(whole_text))


class Redactor:
    """Applies a ruleset to one output; stateless after construction, safe to share across threads."""

    def __init__(self, rules: Iterable[Rule] = DEFAULT_RULES) -> None:
        rules = tuple(rules)
        self._plans = {os: _Plan.build(r for r in rules if os in r.oses) for os in DeviceOS}

    def redact(self, os: DeviceOS, text: str) -> RedactionResult:
        plan = self._plans[os]
        counts: dict[str, int] = {}

        def on_line(match: re.Match[str]) -> str:
            line = match.group(0)
            for current in plan.by_head[match.group("head")]:
                line, found = _mask(line, (current.pattern.match(line),), current.secret_groups)
                if found:
                    counts[current.kind] = counts.get(current.kind, 0) + found
            return line

        text = plan.trigger.sub(on_line, text)
        for current in plan.whole_text:
            text, found = _mask(text, current.pattern.finditer(text), current.secret_groups)
            if found:
                counts[current.kind] = counts.get(current.kind, 0) + found
        return RedactionResult(text=text, count=sum(counts.values()), kinds=frozenset(counts))


DEFAULT_REDACTOR: Final = Redactor()
