"""What each requester may ask for: allow/deny regexes, a device cap, rates, redaction.

The rules come from a policy file (see ``service/pipeline/policy_file.py``); this module
only decides. A refusal names the rule that refused, so a requester knows what to ask
an operator to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.contract.errors import ErrorCode, PolicyError
from service.domain.models import ShowCommand


@dataclass(frozen=True, slots=True)
class RateRule:
    """Requests and devices a requester may use per period, per endpoint (0: unlimited)."""

    requests: int = 60
    devices: int = 5000
    period: float = 60.0


@dataclass(frozen=True, slots=True)
class RequesterRules:
    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()
    max_devices: int | None = None
    redact: bool = True
    rate: RateRule = field(default_factory=RateRule)

    def check(self, requester: str, commands: tuple[ShowCommand, ...], devices: int, source: str) -> None:
        """Raise ``PolicyError`` naming the first rule that refuses."""
        if self.max_devices is not None and devices > self.max_devices:
            raise PolicyError(
                ErrorCode.TOO_MANY_DEVICES,
                f"{devices} devices; requester {requester!r} may ask for at most {self.max_devices} ({source})",
                {"rule": f"{source}.max_devices", "limit": self.max_devices},
            )
        for index, command in enumerate(commands):
            line = command.line
            for pattern in self.deny:
                if pattern.search(line):
                    raise PolicyError(
                        ErrorCode.COMMAND_NOT_ALLOWED,
                        f"$.commands[{index}]: {line!r} is denied by rule {pattern.pattern!r} ({source}.deny)",
                        {"rule": f"{source}.deny", "pattern": pattern.pattern, "path": f"$.commands[{index}]"},
                    )
            if self.allow and not any(pattern.search(line) for pattern in self.allow):
                raise PolicyError(
                    ErrorCode.COMMAND_NOT_ALLOWED,
                    f"$.commands[{index}]: {line!r} matches none of the allowed patterns ({source}.allow)",
                    {"rule": f"{source}.allow", "path": f"$.commands[{index}]"},
                )


@dataclass(frozen=True, slots=True)
class RequesterPolicy:
    """Rules per requester name, with a default for everyone else."""

    default: RequesterRules = field(default_factory=RequesterRules)
    requesters: dict[str, RequesterRules] = field(default_factory=dict)

    def rules_for(self, requester: str) -> tuple[RequesterRules, str]:
        """The rules and where they come from (for refusal messages)."""
        if requester in self.requesters:
            return self.requesters[requester], f"requesters.{requester}"
        return self.default, "default"
