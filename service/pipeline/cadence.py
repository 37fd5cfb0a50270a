"""A schedule's cadence from its definition: an interval, or a cron expression (croniter)."""

from __future__ import annotations

from croniter import CroniterBadCronError, croniter

from service.domain.schedules import MISSED_COUNT_CAP, Cadence, IntervalCadence

CRON_FIELDS = 5


class CadenceError(ValueError):
    """The definition names no usable cadence; the message says why."""


class CronCadence:
    """Ticks of a 5-field cron expression, in UTC."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != CRON_FIELDS:
            raise CadenceError(f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
        if not croniter.is_valid(expression):
            raise CadenceError(f"{expression!r} is not a valid cron expression")
        try:
            croniter(expression, 0.0).get_next(float)
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise CadenceError(f"{expression!r} is not a valid cron expression: {exc}") from None
        self.expression = expression

    def latest_at_or_before(self, moment: float) -> float:
        # get_prev is strictly before its start: start just after ``moment``
        return float(croniter(self.expression, moment + 1e-3).get_prev(float))

    def next_after(self, moment: float) -> float:
        return float(croniter(self.expression, moment).get_next(float))

    def count_between(self, after: float, before: float) -> int:
        ticks = croniter(self.expression, after)
        count = 0
        while count < MISSED_COUNT_CAP and ticks.get_next(float) < before:
            count += 1
        return count


def cadence_of(interval: float | None, cron: str | None, min_interval: float) -> Cadence:
    """The cadence a definition names; ``CadenceError`` when it names none, both, or a bad one."""
    if (interval is None) == (cron is None):
        raise CadenceError("give exactly one of interval (seconds) and cron")
    if interval is not None:
        if not interval >= min_interval:  # also refuses NaN
            raise CadenceError(f"interval must be at least {min_interval:g} seconds")
        return IntervalCadence(float(interval))
    assert cron is not None
    return CronCadence(cron.strip())
