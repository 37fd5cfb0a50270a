"""What the tools answer: pydantic models, so each tool publishes the JSON Schema of its results
(MCP structured output). They mirror the wire contract's replies (docs/CONTRACT.md), minus
nothing: a device result carries no credential to leave out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ShowCommand(BaseModel):
    """One show command, with an optional pipe as in the wire contract."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="A show command, e.g. 'show ip interface brief'.")
    pipe_option: Literal["include", "exclude", "begin", "section"] | None = Field(
        default=None, description="Pipe filter applied on the device (section: not on iosxr, asa)."
    )
    pipe_value: str | None = Field(default=None, description="The pipe's regular expression (IOS semantics).")


class CommandOutcome(_Answer):
    command: str
    success: bool
    output: str | None = None
    parsed: dict[str, Any] | None = None
    parse_status: str | None = None
    parse_error: str | None = None
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0
    complete: bool | None = None
    incomplete_reason: str | None = None


class DeviceOutcome(_Answer):
    hostname: str
    port: int
    os: str
    success: bool
    commands: list[CommandOutcome]
    error: str | None = None
    error_code: str | None = None
    duration_s: float = 0.0
    privilege: str | None = None


class Summary(_Answer):
    request_id: str
    total_devices: int
    successful_devices: int
    failed_devices: int
    duration_s: float
    status: Literal["ok", "partial", "failed"]


class ShowResults(_Answer):
    requester: str = Field(description="The requester the MCP server asked as.")
    request_id: str | None = None
    summary: Summary | None = None
    results: list[DeviceOutcome]


class InventoryDevice(_Answer):
    name: str
    os: str
    groups: list[str]


class DeviceList(_Answer):
    inventory: bool = Field(description="false when the MCP server was given no inventory file.")
    devices: list[InventoryDevice]
    groups: list[str]


class HistoryRecord(_Answer):
    stored_at: str
    request_id: str
    device: str
    result: DeviceOutcome


class HistoryResults(_Answer):
    requester: str
    records: list[HistoryRecord]
    more: int = Field(default=0, description="Older matching records left out (see limit).")


class DiffSide(_Answer):
    stored_at: str
    request_id: str
    hostname: str
    port: int
    command: str


class DiffResult(_Answer):
    a: DiffSide
    b: DiffSide
    kind: Literal["parsed", "text"]
    identical: bool
    changes: list[dict[str, Any]]
    text: list[str]


class Replica(_Answer):
    replica: str
    version: str
    uptime: str
    requests: int
    errors: int
    average_latency_s: float
    in_flight: int
    subject_prefix: str
    workers: list[dict[str, Any]]


class StatusResult(_Answer):
    replicas: list[Replica]
