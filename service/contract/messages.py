"""Messages on the wire (v1), a superset of the REST ancestor's request and response.

Structs are frozen and forbid unknown fields, so a typo is an error, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

OutputFormatName = Literal["raw", "parsed", "both"]


class DeviceSpec(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One device and how to log in to it, or a reference to inventory devices.

    Inline: ``hostname``, ``username``, ``password``, ``os`` (``port`` defaults to 22).
    Inventory: ``name`` (exact or glob) or ``group``, and nothing else.
    """

    hostname: Annotated[str | None, Meta(description="Device hostname or IP address (IPv4 or IPv6).")] = None
    username: str | None = None
    password: Annotated[str | None, Meta(description="Login password; never logged, echoed or stored.")] = None
    os: Annotated[str | None, Meta(description="One of ios, iosxe, iosxr, nxos, asa.")] = None
    port: Annotated[int | None, Meta(description="SSH port; 22 when omitted.")] = None
    enable_password: str | None = None
    name: Annotated[str | None, Meta(description="Inventory device name, or a glob such as 'core-*'.")] = None
    group: Annotated[str | None, Meta(description="Every inventory device in this group.")] = None

    def __repr__(self) -> str:  # secrets must not reach a log or traceback through repr
        if self.hostname is None:
            return f"DeviceSpec(name={self.name!r}, group={self.group!r})"
        return f"DeviceSpec(hostname={self.hostname!r}, port={self.port}, os={self.os!r}, username={self.username!r})"


class CommandSpec(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    command: Annotated[str, Meta(description="A show command, e.g. 'show version'.")]
    pipe_option: Annotated[str | None, Meta(description="include, exclude, begin or section.")] = None
    pipe_value: Annotated[str | None, Meta(description="Regular expression for the pipe option.")] = None


class ExecuteRequest(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    devices: list[DeviceSpec]
    commands: list[CommandSpec]
    timeout: Annotated[float | None, Meta(description="Per-command timeout in seconds.")] = None
    output_format: OutputFormatName = "raw"
    request_id: str | None = None
    stream: Annotated[
        bool, Meta(description="Reply once per device as each finishes, then a summary, then an empty end marker.")
    ] = False


class JobRequest(ExecuteRequest, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A durable job: stored at rest, so devices come from the inventory, never with passwords."""

    notify: Annotated[
        str | None,
        Meta(
            description=(
                "Subject that gets the job's summary when it is done: under <prefix>.notify.<requester> or the "
                "requester's own reply inbox; any other subject refuses the job (reply_forbidden)."
            )
        ),
    ] = None


class OutputRef(Struct, frozen=True, kw_only=True):
    """Where an output too large for a message was put: a JetStream Object Store object."""

    bucket: str
    name: str
    size: Annotated[int, Meta(description="Size of the UTF-8 encoded output in bytes.")]
    sha256: Annotated[str, Meta(description="Hex SHA-256 of the UTF-8 encoded output.")]


class HistoryRequest(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Replay of the requester's own stored results, asked on ``<prefix>.history.<requester>``.

    The answer is one message per stored device result (a ``DeviceResult`` body; where and
    when it was stored in headers), oldest first, then an empty end marker."""

    request_id: Annotated[str | None, Meta(description="Only this request's results.")] = None
    device: Annotated[str | None, Meta(description="Only this device: HOST, HOST:PORT or [IPv6]:PORT.")] = None
    command: Annotated[str | None, Meta(description="Only this command (case and spacing ignored).")] = None
    since: Annotated[str | None, Meta(description="Stored at or after: ISO 8601, or 30m, 24h, 7d ago.")] = None
    until: Annotated[str | None, Meta(description="Stored at or before: ISO 8601, or 30m, 24h, 7d ago.")] = None
    limit: Annotated[int, Meta(ge=1, le=100_000, description="At most this many results (the oldest first).")] = 10_000


class CommandResult(Struct, frozen=True, kw_only=True):
    command: str
    success: bool
    output: str | None = None
    parsed: dict[Any, Any] | None = None
    parse_status: str | None = None
    parse_error: str | None = None
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0
    output_ref: Annotated[
        OutputRef | None, Meta(description="Set instead of `output` when the output was too large for a message.")
    ] = None
    complete: Annotated[
        bool | None,
        Meta(description="false when the output may be cut short (see incomplete_reason); absent otherwise."),
    ] = None
    incomplete_reason: Annotated[str | None, Meta(description="Why the output may be cut short.")] = None
    transformed: Annotated[
        list[str] | None,
        Meta(
            description=(
                "What differs from the bytes the device sent, when anything does: invalid_utf8_replaced (bytes "
                "that are not UTF-8 became U+FFFD). ANSI escapes and backspaces are kept as sent."
            )
        ),
    ] = None


class DeviceResult(Struct, frozen=True, kw_only=True):
    request_id: str
    hostname: str
    port: int
    os: str
    success: bool
    commands: list[CommandResult]
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0
    privilege: Annotated[
        Literal["user", "enabled"] | None,
        Meta(
            description=(
                "Where the commands ran: user EXEC (`>`; no enable password given, so no `enable` was sent) "
                "or enabled (`#`). Absent when the login failed."
            )
        ),
    ] = None


class RequestSummary(Struct, frozen=True, kw_only=True):
    """Sent after the last device result of a streamed reply."""

    request_id: str
    total_devices: int
    successful_devices: int
    failed_devices: int
    duration_s: float

    @property
    def status(self) -> str:
        """``ok`` (every device succeeded), ``failed`` (none did) or ``partial``."""
        if self.failed_devices == 0:
            return "ok"
        return "failed" if self.successful_devices == 0 else "partial"


class ExecuteResponse(Struct, frozen=True, kw_only=True):
    request_id: str
    results: list[DeviceResult]
    total_devices: int
    successful_devices: int
    failed_devices: int
    duration_s: float


class ErrorDetail(Struct, frozen=True, kw_only=True):
    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorReply(Struct, frozen=True, kw_only=True):
    error: ErrorDetail
    request_id: str | None = None


ScheduleOp = Literal["add", "list", "show", "pause", "resume", "rm"]


class Schedule(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A polling definition, stored as JSON in the schedules KV bucket under its name.

    Devices come from the inventory only (``name``, glob or ``group``): a schedule is stored
    at rest, like a job. Exactly one of ``interval`` and ``cron`` is set.
    """

    name: Annotated[str, Meta(description="1-32 characters: lower-case letters, digits, '_' and '-'; the KV key.")]
    devices: Annotated[list[DeviceSpec], Meta(description="Inventory references: name, glob or group.")]
    commands: list[CommandSpec]
    output_format: OutputFormatName = "parsed"
    timeout: Annotated[float | None, Meta(description="Per-command timeout in seconds.")] = None
    interval: Annotated[
        float | None, Meta(description="Seconds between ticks; ticks fall on multiples of it since the Unix epoch.")
    ] = None
    cron: Annotated[str | None, Meta(description="A 5-field cron expression, in UTC, instead of an interval.")] = None
    jitter: Annotated[
        float, Meta(description="Up to this many seconds of delay per tick, the same on every replica.")
    ] = 0.0
    paused: bool = False
    requester: Annotated[
        str | None, Meta(description="Whose results and change events these are; set by the service from the subject.")
    ] = None
    created: Annotated[str | None, Meta(description="When it was added (UTC, ISO 8601); set by the service.")] = None
    since: Annotated[
        str | None,
        Meta(description="Ticks before this time are never run nor reported missed (added or last resumed)."),
    ] = None


class ScheduleRequest(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Sent to ``<prefix>.schedules.<requester>``: manage that requester's own schedules."""

    op: ScheduleOp
    name: Annotated[str | None, Meta(description="The schedule for show, pause, resume and rm.")] = None
    schedule: Annotated[Schedule | None, Meta(description="The definition for add.")] = None
    replace: Annotated[bool, Meta(description="add: replace a schedule of the same name.")] = False


class ScheduleState(Struct, frozen=True, kw_only=True):
    schedule: Schedule
    revision: Annotated[int, Meta(description="The KV revision of the definition.")]
    next_tick: Annotated[str | None, Meta(description="The next tick's due time (UTC); none while paused.")] = None
    last_tick: Annotated[str | None, Meta(description="The last tick a replica took or reported missed.")] = None


class ScheduleReply(Struct, frozen=True, kw_only=True):
    schedules: list[ScheduleState]


class PathValue(Struct, frozen=True, kw_only=True):
    path: Annotated[str, Meta(description="Where in the parsed result, e.g. vrf.default.neighbor['10.0.0.2'].state.")]
    value: Any = None


class PathChange(Struct, frozen=True, kw_only=True):
    path: str
    old: Any = None
    new: Any = None


class ChangeSide(Struct, frozen=True, kw_only=True):
    request_id: str
    time: Annotated[str, Meta(description="When the service stored that result (UTC, ISO 8601).")]


class ChangeEvent(Struct, frozen=True, kw_only=True):
    """Published on ``<prefix>.changes.<requester>.<device>`` and kept in the changes stream when a
    (device, command) result differs from the previous one, once volatile fields are ignored."""

    requester: str
    device: Annotated[str, Meta(description="The device's hostname, as in its results.")]
    port: int
    command: str
    kind: Annotated[
        Literal["parsed", "text"],
        Meta(description="parsed: a structured diff of Genie's parse; text: normalised output lines."),
    ]
    previous: ChangeSide
    current: ChangeSide
    added: list[PathValue] = msgspec.field(default_factory=list)
    removed: list[PathValue] = msgspec.field(default_factory=list)
    changed: list[PathChange] = msgspec.field(default_factory=list)
    lines_added: list[str] = msgspec.field(default_factory=list)
    lines_removed: list[str] = msgspec.field(default_factory=list)
    truncated: Annotated[bool, Meta(description="true when the lists were cut to the event size limit.")] = False
    rule: Annotated[str | None, Meta(description="The volatile-field rule applied, if any.")] = None
    schedule: Annotated[str | None, Meta(description="The schedule whose tick produced the new result.")] = None
    groups: Annotated[list[str], Meta(description="The device's inventory groups.")] = msgspec.field(
        default_factory=list
    )
    name: Annotated[str | None, Meta(description="The device's inventory name, when it is in the inventory.")] = None
    os: str | None = None
