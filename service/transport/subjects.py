"""Subject names, built in one place. Tokens from outside are sanitised first."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


SUMMARY_TOKEN = "_summary"  # noqa: S105 - a subject token, not a secret


def sanitize_token(value: str) -> str:
    """One subject token: '.', '*', '>' and whitespace become '_' (an IP address has dots)."""
    return _UNSAFE.sub("_", value) or "_"


def device_token(hostname: str, port: int) -> str:
    """A device's subject token: the sanitised hostname, plus ``-p<port>`` when not 22."""
    token = sanitize_token(hostname)
    return token if port == 22 else f"{token}-p{port}"


@dataclass(frozen=True, slots=True)
class Subjects:
    prefix: str
    trust_request_info: bool = False

    @property
    def execute_wildcard(self) -> str:
        return f"{self.prefix}.execute.>"

    def execute(self, requester: str) -> str:
        return f"{self.prefix}.execute.{sanitize_token(requester)}"

    @property
    def jobs_wildcard(self) -> str:
        return f"{self.prefix}.jobs.>"

    def jobs(self, requester: str) -> str:
        return f"{self.prefix}.jobs.{sanitize_token(requester)}"

    @property
    def outputs_wildcard(self) -> str:
        return f"{self.prefix}.outputs.>"

    def outputs(self, requester: str) -> str:
        """Where a requester asks the service for one of its own large outputs."""
        return f"{self.prefix}.outputs.{sanitize_token(requester)}"

    @property
    def history_wildcard(self) -> str:
        return f"{self.prefix}.history.>"

    def history(self, requester: str) -> str:
        """Where a requester asks the service to replay its own stored results."""
        return f"{self.prefix}.history.{sanitize_token(requester)}"

    def notify(self, requester: str) -> str:
        """Under this, a requester's jobs may be told they are done."""
        return f"{self.prefix}.notify.{sanitize_token(requester)}"

    @property
    def schedules_wildcard(self) -> str:
        return f"{self.prefix}.schedules.>"

    def schedules(self, requester: str) -> str:
        """Where a requester manages its own schedules (add, list, show, pause, resume, rm)."""
        return f"{self.prefix}.schedules.{sanitize_token(requester)}"

    @property
    def changes_wildcard(self) -> str:
        return f"{self.prefix}.changes.>"

    def changes(self, requester: str, hostname: str | None = None, port: int = 22) -> str:
        """``<prefix>.changes.<requester>.<device>``; without a device, every device's (``.>``)."""
        base = f"{self.prefix}.changes.{sanitize_token(requester)}"
        return f"{base}.{device_token(hostname, port)}" if hostname is not None else f"{base}.>"

    @property
    def ticks_wildcard(self) -> str:
        """Internal: enqueued schedule ticks; only the service's own user may publish here."""
        return f"{self.prefix}.internal.ticks.>"

    def tick(self, requester: str, schedule: str) -> str:
        return f"{self.prefix}.internal.ticks.{sanitize_token(requester)}.{sanitize_token(schedule)}"

    @property
    def results_wildcard(self) -> str:
        return f"{self.prefix}.results.>"

    def result(self, requester: str, request_id: str, hostname: str, port: int) -> str:
        """``<prefix>.results.<requester>.<request_id>.<device>``; the body keeps the real hostname."""
        device = device_token(hostname, port)
        return f"{self.prefix}.results.{sanitize_token(requester)}.{sanitize_token(request_id)}.{device}"

    def summary(self, requester: str, request_id: str) -> str:
        """The summary of a request: the device token ``_summary`` cannot clash with a device."""
        return f"{self.prefix}.results.{sanitize_token(requester)}.{sanitize_token(request_id)}.{SUMMARY_TOKEN}"

    def results_filter(
        self, requester: str | None = None, request_id: str | None = None, device: str | None = None
    ) -> str:
        """A filter subject for replay: any part left out is a wildcard."""
        parts = [
            sanitize_token(requester) if requester else "*",
            sanitize_token(request_id) if request_id else "*",
            device if device else "*",
        ]
        return f"{self.prefix}.results." + ".".join(parts)

    def requester_of(self, subject: str, request_info: str | None = None) -> str:
        """Who is asking: the last token of the subject, which the shipped server config lets
        each user publish only as itself. With ``trust_request_info``, the identity nats-server
        vouches for when a request crossed accounts (``Nats-Request-Info``: ``user@account``);
        the server overwrites that header only across accounts, so within one account any
        client could forge it and it is ignored by default."""
        if request_info and self.trust_request_info:
            try:
                info = json.loads(request_info)
            except ValueError:
                info = None
            if isinstance(info, dict) and info.get("acc"):
                account = str(info["acc"])
                return f"{info['user']}@{account}" if info.get("user") else account
        return subject.rsplit(".", 1)[-1]
