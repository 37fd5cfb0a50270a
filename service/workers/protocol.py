"""What the front and the device workers say to each other, on internal subjects only.

A job carries the device's credentials: it travels on ``<prefix>.internal.work.<worker>``,
which only the service's own NATS user may use (ops/nats/auth.conf), is never stored in
JetStream, and is never logged. Bodies are MessagePack (msgspec): Genie's parsed outputs
keep their integer keys, and encoding costs less than JSON.
Fixed sets (OS, pipe option, output format) travel as their string values and decode
straight into the domain's enums.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from service.contract.messages import DeviceResult
from service.domain.models import (
    DeviceOS,
    DeviceTarget,
    ExecutionPlan,
    OutputFormat,
    PipeOption,
    Secret,
    ShowCommand,
    Timeouts,
)


class WireTarget(Struct, frozen=True, kw_only=True):
    hostname: str
    port: int
    os: DeviceOS
    username: str
    password: str
    enable_password: str | None = None
    legacy_algorithms: tuple[str, ...] | None = None

    def __repr__(self) -> str:  # a job must never show its secrets, even in a traceback
        return f"WireTarget({self.hostname}:{self.port})"


class WireCommand(Struct, frozen=True, kw_only=True):
    command: str
    pipe_option: PipeOption | None = None
    pipe_value: str | None = None


class DeviceJob(Struct, frozen=True, kw_only=True):
    """One device of one request, for the worker that owns it."""

    request_id: str
    requester: str
    target: WireTarget
    commands: tuple[WireCommand, ...]
    output_format: OutputFormat
    redact: bool
    connect_timeout: float
    command_timeout: float
    device_timeout: float

    def __repr__(self) -> str:
        return f"DeviceJob({self.requester}/{self.request_id} {self.target!r})"


class Heartbeat(Struct, frozen=True, kw_only=True):
    """A worker says it is alive (every ``PYATS_WORKER_HEARTBEAT`` s) or leaving."""

    worker: str
    instance: str  # new at every start: a worker restarted under the same id is another instance
    host: str
    pid: int
    version: str
    capacity: int  # device threads
    busy: int = 0
    warm_sessions: int = 0
    jobs: int = 0
    leaving: bool = False


def _enc_hook(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_job_decoder = msgspec.msgpack.Decoder(DeviceJob)
_result_decoder = msgspec.msgpack.Decoder(DeviceResult)
_heartbeat_decoder = msgspec.msgpack.Decoder(Heartbeat)


def encode(message: Any) -> bytes:
    return _encoder.encode(message)


def decode_job(data: bytes) -> DeviceJob:
    return _job_decoder.decode(data)


def decode_result(data: bytes) -> DeviceResult:
    return _result_decoder.decode(data)


def decode_heartbeat(data: bytes) -> Heartbeat:
    return _heartbeat_decoder.decode(data)


def job_of(plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceJob:
    return DeviceJob(
        request_id=plan.request_id,
        requester=plan.requester,
        target=WireTarget(
            hostname=target.hostname,
            port=target.port,
            os=target.os,
            username=target.username,
            password=target.password.reveal(),
            enable_password=None if target.enable_password is None else target.enable_password.reveal(),
            legacy_algorithms=target.legacy_algorithms,
        ),
        commands=tuple(
            WireCommand(command=c.command, pipe_option=c.pipe_option, pipe_value=c.pipe_value) for c in plan.commands
        ),
        output_format=plan.output_format,
        redact=plan.redact,
        connect_timeout=timeouts.connect,
        command_timeout=timeouts.command,
        device_timeout=timeouts.device,
    )


def plan_of(job: DeviceJob) -> ExecutionPlan:
    """The one-device plan a worker runs; values were checked by the front that sent it."""
    wire = job.target
    target = DeviceTarget(
        hostname=wire.hostname,
        port=wire.port,
        os=wire.os,
        username=wire.username,
        password=Secret(wire.password),
        enable_password=None if wire.enable_password is None else Secret(wire.enable_password),
        legacy_algorithms=wire.legacy_algorithms,
    )
    return ExecutionPlan(
        request_id=job.request_id,
        requester=job.requester,
        targets=(target,),
        commands=tuple(ShowCommand(c.command, c.pipe_option, c.pipe_value) for c in job.commands),
        output_format=job.output_format,
        timeouts=Timeouts(job.connect_timeout, job.command_timeout, job.device_timeout),
        redact=job.redact,
    )
