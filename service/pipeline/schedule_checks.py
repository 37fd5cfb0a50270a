"""A schedule definition checked the way its ticks will run, before it is stored.

Every rule a job meets applies (inventory references only, show-only commands, pipes, the
requester's own rules), plus the schedule's own: a name, exactly one cadence, a jitter
shorter than the cadence. Refusals are the usual structured errors: a bad cron is
``invalid_schedule``, an unknown group ``unknown_device``, a ``reload`` ``command_not_allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.contract.errors import ErrorCode, RequestError
from service.contract.messages import JobRequest, Schedule
from service.domain.models import Endpoint
from service.domain.schedules import Cadence, check_name
from service.pipeline.cadence import CadenceError, cadence_of
from service.pipeline.handler import RequestHandler

CRON_PERIOD = 60.0  # the finest step of a 5-field cron expression


@dataclass(frozen=True, slots=True)
class ScheduleLimits:
    min_interval: float
    max_per_requester: int


def _invalid(path: str, message: str) -> RequestError:
    return RequestError(ErrorCode.INVALID_SCHEDULE, f"{path}: {message}", {"path": path})


def tick_request(schedule: Schedule, request_id: str | None = None) -> JobRequest:
    """The request one tick runs: a stored job of the schedule's devices and commands."""
    return JobRequest(
        devices=schedule.devices,
        commands=schedule.commands,
        output_format=schedule.output_format,
        timeout=schedule.timeout,
        request_id=request_id,
    )


def checked_cadence(schedule: Schedule, limits: ScheduleLimits) -> Cadence:
    """The schedule's own rules (name, cadence, jitter); raises ``invalid_schedule``."""
    why = check_name(schedule.name)
    if why:
        raise _invalid("$.schedule.name", why)
    try:
        cadence = cadence_of(schedule.interval, schedule.cron, limits.min_interval)
    except CadenceError as exc:
        raise _invalid("$.schedule.cron" if schedule.cron is not None else "$.schedule.interval", str(exc)) from None
    period = schedule.interval if schedule.interval is not None else CRON_PERIOD
    if not 0 <= schedule.jitter < period:  # also refuses NaN
        raise _invalid("$.schedule.jitter", f"jitter must be at least 0 and shorter than the period ({period:g}s)")
    return cadence


def check_schedule(schedule: Schedule, requester: str, handler: RequestHandler, limits: ScheduleLimits) -> Cadence:
    """Every rule a tick of ``schedule`` will meet, as ``requester``; raises ``PyatsRoError``."""
    cadence = checked_cadence(schedule, limits)
    handler.check(tick_request(schedule), requester, "schedule-check", Endpoint.TICKS)
    return cadence
