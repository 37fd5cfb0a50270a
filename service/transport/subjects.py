"""Subject names, built in one place. Tokens from outside are sanitised first."""

from __future__ import annotations

import json
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

    def requester_of(self, subject: str, request_info: str | None = None) -> str:
        """Who is asking: the server-vouched identity when the request crossed accounts
        (``Nats-Request-Info``: ``user@account``), else the last token of the subject, which
        the shipped server config lets each user publish only as itself."""
        if request_info:
            try:
                info = json.loads(request_info)
            except ValueError:
                info = None
            if isinstance(info, dict) and info.get("acc"):
                account = str(info["acc"])
                return f"{info['user']}@{account}" if info.get("user") else account
        return subject.rsplit(".", 1)[-1]
