"""Schedules in NATS KV: the definitions, and each schedule's last tick.

Two buckets. ``PYATS_SCHEDULES`` holds each definition as JSON under ``<requester>.<name>``;
every replica watches it, so an edit takes effect without a restart, and an operator may
read or edit it with ``nats kv`` (the service checks what it finds there before running it).
``PYATS_SCHEDULE_TICKS`` holds the newest tick taken or reported missed per schedule; it
moves forward only by compare-and-set, so when several replicas wake for the same tick one
of them reports what was missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import nats.errors
import nats.js.errors
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from service.contract.messages import Schedule
from service.transport.streams import ensure_bucket
from service.transport.subjects import sanitize_token


class _TickState(msgspec.Struct, frozen=True):
    tick: float


@dataclass(frozen=True, slots=True)
class Stored:
    schedule: Schedule
    revision: int


def schedule_key(requester: str, name: str) -> str:
    return f"{sanitize_token(requester)}.{name}"


class ScheduleStore:
    def __init__(self, definitions: KeyValue, ticks: KeyValue) -> None:
        self.definitions = definitions
        self._ticks = ticks

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, state_bucket: str) -> ScheduleStore:
        definitions = await ensure_bucket(js, api.KeyValueConfig(bucket=bucket, history=1), "PYATS_SCHEDULES_BUCKET")
        ticks = await ensure_bucket(
            js, api.KeyValueConfig(bucket=state_bucket, history=1), "PYATS_SCHEDULES_STATE_BUCKET"
        )
        return cls(definitions, ticks)

    @staticmethod
    def decode(value: bytes | None) -> Schedule:
        """A stored definition; ``msgspec.ValidationError``/``DecodeError`` when it is not one."""
        return msgspec.json.decode(value or b"", type=Schedule)

    async def get(self, requester: str, name: str) -> Stored | None:
        try:
            entry = await self.definitions.get(schedule_key(requester, name))
        except nats.js.errors.KeyNotFoundError:
            return None
        return Stored(self.decode(entry.value), entry.revision or 0)

    async def list(self, requester: str) -> list[Stored]:
        """The requester's schedules, by name; entries that do not decode are left out."""
        mine = f"{sanitize_token(requester)}."
        try:
            keys = await self.definitions.keys()  # (its ``filters`` match substrings, not subjects)
        except nats.js.errors.NoKeysError:
            return []
        found = []
        for key in sorted(k for k in keys if k.startswith(mine)):
            try:
                entry = await self.definitions.get(key)
                found.append(Stored(self.decode(entry.value), entry.revision or 0))
            except (nats.js.errors.KeyNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
                continue
        return found

    async def put(self, schedule: Schedule, revision: int | None) -> int:
        """Store ``schedule``: create it (``revision`` None) or replace that revision; a
        concurrent change raises ``nats.js.errors.KeyWrongLastSequenceError``."""
        assert schedule.requester is not None
        key = schedule_key(schedule.requester, schedule.name)
        value = msgspec.json.encode(schedule)
        if revision is None:
            return await self.definitions.create(key, value)
        return await self.definitions.update(key, value, last=revision)

    async def remove(self, requester: str, name: str) -> None:
        key = schedule_key(requester, name)
        await self.definitions.delete(key)
        try:
            await self._ticks.delete(key)
        except nats.js.errors.KeyNotFoundError:
            return

    async def last_tick(self, key: str) -> tuple[float | None, int | None]:
        """The newest tick taken or reported for ``key``, and the revision to move it from."""
        try:
            entry = await self._ticks.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None, None
        try:
            tick = msgspec.json.decode(entry.value or b"", type=_TickState).tick
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None, entry.revision
        return (tick if math.isfinite(tick) else None), entry.revision

    async def advance(self, key: str, tick: float, revision: int | None) -> bool:
        """Move ``key``'s last tick to ``tick`` if nobody moved it since ``revision``."""
        value = msgspec.json.encode(_TickState(tick))
        try:
            if revision is None:
                await self._ticks.create(key, value)
            else:
                await self._ticks.update(key, value, last=revision)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.APIError):
            return False
        return True
