"""Typed values the pipeline works on once a request has been decoded and checked."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where the secret is handed to SSH."""
        return self._value

    def fingerprint(self) -> str:
        """A stable digest, for keying sessions without holding the secret in the key."""
        return hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not picklable")


# Show commands whose output is free text that may contain a line looking like a prompt
# (banners, logs, files): they keep a short wait after the prompt so a pause cannot cut them.
FREE_TEXT_PREFIXES: tuple[str, ...] = (
    "show run",
    "show start",
    "show log",
    "show tech",
    "show archive",
    "show banner",
    "show history",
    "show config",
    "show derived",
    "show file",
    "show flash",
    "show users",
    "show terminal",
)


class DeviceOS(StrEnum):
    IOS = "ios"
    IOSXE = "iosxe"
    IOSXR = "iosxr"
    NXOS = "nxos"
    ASA = "asa"


class Endpoint(StrEnum):
    """The door a request came in by: its rate bucket, its metrics label, its rules."""

    EXECUTE = "execute"
    JOBS = "jobs"  # a stored job: no inline credentials; done once every result is stored
    OUTPUTS = "outputs"
    HISTORY = "history"
    SCHEDULES = "schedules"  # managing schedules
    TICKS = "ticks"  # one tick of a schedule: run like a stored job

    @property
    def stored(self) -> bool:
        """A request kept at rest (a job or a schedule's tick): no inline credentials, and done
        only once every result is stored."""
        return self in (Endpoint.JOBS, Endpoint.TICKS)


class Privilege(StrEnum):
    """Where a device ran the commands: user EXEC (``>``) or enabled (``#``)."""

    USER = "user"
    ENABLED = "enabled"


class PipeOption(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"
    BEGIN = "begin"
    SECTION = "section"


class OutputFormat(StrEnum):
    RAW = "raw"
    PARSED = "parsed"
    BOTH = "both"

    @property
    def wants_parse(self) -> bool:
        return self is not OutputFormat.RAW

    @property
    def wants_raw(self) -> bool:
        return self is not OutputFormat.PARSED


class ParseStatus(StrEnum):
    """Kept apart on purpose: 'no parser' is not 'empty output' is not 'schema error'."""

    OK = "ok"
    NO_PARSER = "no_parser"
    EMPTY_OUTPUT = "empty_output"
    SCHEMA_ERROR = "schema_error"
    PARSE_FAILED = "parse_failed"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    status: ParseStatus
    parsed: dict[Any, Any] | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceTarget:
    """One device to log in to. Secrets are wrapped so a repr cannot leak them."""

    hostname: str
    port: int
    os: DeviceOS
    username: str
    password: Secret
    enable_password: Secret | None = None
    # the inventory's per-device choice of legacy SSH algorithms; None: the service's setting
    legacy_algorithms: tuple[str, ...] | None = None

    @property
    def address(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ShowCommand:
    command: str
    pipe_option: PipeOption | None = None
    pipe_value: str | None = None

    @property
    def line(self) -> str:
        """The exact line sent to the device."""
        if self.pipe_option is None:
            return self.command
        return f"{self.command} | {self.pipe_option.value} {self.pipe_value}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines by phase, in seconds."""

    connect: float
    command: float
    device: float


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """A validated request: everything the scheduler needs, nothing from the wire."""

    request_id: str
    requester: str
    targets: tuple[DeviceTarget, ...]
    commands: tuple[ShowCommand, ...]
    output_format: OutputFormat
    timeouts: Timeouts
    stream: bool = False
    redact: bool = True
