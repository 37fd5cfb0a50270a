"""``<prefix>.schedules.<requester>``: a requester adds, lists, pauses, resumes and removes
its own schedules. The requester is the subject's (the server lets each user publish only
under its own token), so nobody can schedule as somebody else; a definition is checked the
way its ticks will run before it is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import nats.js.errors

from service.contract.errors import ErrorCode, PyatsRoError, RequestError
from service.contract.messages import Schedule, ScheduleReply, ScheduleRequest, ScheduleState
from service.domain.schedules import Cadence
from service.pipeline.schedule_checks import ScheduleLimits, checked_cadence
from service.transport.schedule_store import ScheduleStore, Stored, schedule_key
from service.transport.schedules import ScheduleClock, iso

Check = Callable[[Schedule, str], Cadence]  # every rule a tick meets, as that requester


class ScheduleDesk:
    def __init__(
        self,
        store: ScheduleStore,
        clock: ScheduleClock,
        check: Check,
        limits: ScheduleLimits,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._check = check
        self._limits = limits
        self._now = now

    async def answer(self, data: bytes, requester: str) -> ScheduleReply:
        """The reply to one management request; raises ``PyatsRoError`` with the usual codes."""
        try:
            asked = msgspec.json.decode(data, type=ScheduleRequest)
        except msgspec.ValidationError as exc:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"not a schedule request: {exc}") from None
        except msgspec.DecodeError as exc:
            raise RequestError(ErrorCode.INVALID_JSON, f"not JSON: {exc}") from None
        if asked.op == "list":
            return ScheduleReply(schedules=[await self._state(s) for s in await self._store.list(requester)])
        if asked.op == "add":
            return ScheduleReply(schedules=[await self._add(asked, requester)])
        stored = await self._named(asked, requester)
        if asked.op == "show":
            return ScheduleReply(schedules=[await self._state(stored)])
        if asked.op == "rm":
            await self._store.remove(requester, stored.schedule.name)
            return ScheduleReply(schedules=[ScheduleState(schedule=stored.schedule, revision=stored.revision)])
        return ScheduleReply(schedules=[await self._set_paused(stored, requester, asked.op == "pause")])

    async def _named(self, asked: ScheduleRequest, requester: str) -> Stored:
        if not asked.name:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"$.name: {asked.op} needs the schedule's name")
        stored = await self._store.get(requester, asked.name)
        if stored is None:
            raise RequestError(
                ErrorCode.SCHEDULE_NOT_FOUND, f"you have no schedule named {asked.name!r}", {"name": asked.name}
            )
        return stored

    async def _add(self, asked: ScheduleRequest, requester: str) -> ScheduleState:
        schedule = asked.schedule
        if schedule is None:
            raise RequestError(ErrorCode.INVALID_REQUEST, "$.schedule: add needs the schedule's definition")
        if schedule.requester not in (None, requester):
            raise RequestError(
                ErrorCode.INVALID_SCHEDULE,
                "$.schedule.requester: a schedule runs as the requester that adds it; leave requester out",
                {"path": "$.schedule.requester"},
            )
        self._check(schedule, requester)
        existing = await self._store.get(requester, schedule.name)
        if existing is not None and not asked.replace:
            raise RequestError(
                ErrorCode.SCHEDULE_EXISTS,
                f"you already have a schedule named {schedule.name!r}; remove it or add with replace",
                {"name": schedule.name},
            )
        if existing is None and len(await self._store.list(requester)) >= self._limits.max_per_requester:
            raise RequestError(
                ErrorCode.INVALID_SCHEDULE,
                f"at most {self._limits.max_per_requester} schedules per requester (PYATS_SCHEDULES_MAX_PER_REQUESTER)",
                {"limit": self._limits.max_per_requester},
            )
        now = iso(self._now())
        stamped = msgspec.structs.replace(
            schedule, requester=requester, created=existing.schedule.created if existing else now, since=now
        )
        return await self._write(stamped, existing.revision if existing else None)

    async def _set_paused(self, stored: Stored, requester: str, paused: bool) -> ScheduleState:
        schedule = stored.schedule
        if not paused:
            self._check(schedule, requester)  # the inventory or the rules may have changed since
        changes: dict[str, object] = {"paused": paused}
        if not paused and schedule.paused:
            changes["since"] = iso(self._now())  # ticks while paused are neither run nor missed
        return await self._write(msgspec.structs.replace(schedule, **changes), stored.revision)

    async def _write(self, schedule: Schedule, revision: int | None) -> ScheduleState:
        try:
            new_revision = await self._store.put(schedule, revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RequestError(
                ErrorCode.SCHEDULE_EXISTS,
                f"schedule {schedule.name!r} changed at the same time; read it again and retry",
                {"name": schedule.name},
            ) from None
        return await self._state(Stored(schedule, new_revision))

    async def _state(self, stored: Stored) -> ScheduleState:
        schedule = stored.schedule
        key = schedule_key(schedule.requester or "", schedule.name)
        last, _ = await self._store.last_tick(key)
        try:
            upcoming = self._clock.next_tick(schedule, checked_cadence(schedule, self._limits))
        except PyatsRoError:
            upcoming = None
        return ScheduleState(
            schedule=schedule,
            revision=stored.revision,
            next_tick=iso(upcoming) if upcoming is not None else None,
            last_tick=iso(last) if last is not None else None,
        )
