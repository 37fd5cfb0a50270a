"""Subject names, built in one place. Tokens from outside are sanitised first."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_token(value: str) -> str:
    """One subject token: '.', '*', '>' and whitespace become '_' (an IP address has dots)."""
    return _UNSAFE.sub("_", value) or "_"


@dataclass(frozen=True, slots=True)
class Subjects:
    prefix: str

    @property
    def execute_wildcard(self) -> str:
        return f"{self.prefix}.execute.>"

    def execute(self, requester: str) -> str:
        return f"{self.prefix}.execute.{sanitize_token(requester)}"

    def requester_of(self, subject: str) -> str:
        """The requester is the last token of the request subject."""
        return subject.rsplit(".", 1)[-1]
