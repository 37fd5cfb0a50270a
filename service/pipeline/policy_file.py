"""Load the requester policy file (YAML), decoded once into typed rules.

Format (every key optional)::

    default:
      deny: ["^show running-config", "^show tech"]
      max_devices: 200
      redact: true
      rate: {requests: 60, devices: 5000, period: 60}
    requesters:
      netops:
        deny: []
        max_devices: 1000
        redact: false
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from service.contract.errors import ConfigError, ErrorCode
from service.domain.requester_policy import RateRule, RequesterPolicy, RequesterRules


class _Rate(msgspec.Struct, forbid_unknown_fields=True):
    requests: int | None = None
    devices: int | None = None
    period: float | None = None


class _Rules(msgspec.Struct, forbid_unknown_fields=True):
    allow: list[str] | None = None
    deny: list[str] | None = None
    max_devices: int | None = None
    redact: bool | None = None
    rate: _Rate | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    default: _Rules = msgspec.field(default_factory=_Rules)
    requesters: dict[str, _Rules] = msgspec.field(default_factory=dict)


def _patterns(values: list[str] | None, where: str) -> tuple[re.Pattern[str], ...] | None:
    """Compile once; ``where`` names the file and key in any error."""
    if values is None:
        return None
    compiled = []
    for value in values:
        try:
            compiled.append(re.compile(value, re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: bad regex {value!r}: {exc}") from None
    return tuple(compiled)


def _merge(base: RequesterRules, rules: _Rules, where: str) -> RequesterRules:
    rate = base.rate
    if rules.rate is not None:
        rate = RateRule(
            requests=rules.rate.requests if rules.rate.requests is not None else rate.requests,
            devices=rules.rate.devices if rules.rate.devices is not None else rate.devices,
            period=rules.rate.period if rules.rate.period is not None else rate.period,
        )
    allow = _patterns(rules.allow, f"{where}.allow")
    deny = _patterns(rules.deny, f"{where}.deny")
    return RequesterRules(
        allow=allow if allow is not None else base.allow,
        deny=deny if deny is not None else base.deny,
        max_devices=rules.max_devices if rules.max_devices is not None else base.max_devices,
        redact=rules.redact if rules.redact is not None else base.redact,
        rate=rate,
    )


def load_policy(path: Path | None, default_rate: RateRule, redact_by_default: bool = True) -> RequesterPolicy:
    """Defaults from settings; a named requester inherits the file's ``default`` section."""
    base = RequesterRules(rate=default_rate, redact=redact_by_default)
    if path is None:
        return RequesterPolicy(default=base)
    try:
        data = msgspec.yaml.decode(path.read_bytes(), type=_File)
    except (OSError, msgspec.DecodeError) as exc:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"policy file {path}: {exc}") from None
    default = _merge(base, data.default, f"policy file {path}: default")
    requesters = {
        name: _merge(default, rules, f"policy file {path}: requesters.{name}")
        for name, rules in data.requesters.items()
    }
    return RequesterPolicy(default=default, requesters=requesters)
