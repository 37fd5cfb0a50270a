"""When a schedule's ticks fall, which one to run now, and which were missed. Pure: no I/O.

A tick is a due time (Unix seconds, UTC). Interval ticks fall on multiples of the interval
since the epoch, so every replica computes the same ticks without talking to the others;
cron ticks come from a ``Cadence`` built outside the domain (``pipeline/cadence.py``).
Jitter delays a tick by a fraction of ``jitter`` seconds that is a hash of the schedule and
the tick, so it is the same on every replica and the tick keeps its identity.

A replica waking up (at a tick, at start-up, after an edit) asks ``due`` what to do: the
newest tick not taken yet runs if it is at most ``catch_up`` seconds old; every older tick
is reported missed, never run in a burst.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MISSED_COUNT_CAP = 100_000  # beyond this a cron schedule's missed ticks are not walked one by one


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a schedule, or None."""
    if NAME.fullmatch(name):
        return None
    return (
        "a schedule name is 1-32 characters: lower-case letters, digits, '_' and '-', starting with a letter or digit"
    )


class Cadence(Protocol):
    """The due times of one schedule."""

    def latest_at_or_before(self, moment: float) -> float:
        """The newest tick at or before ``moment``."""
        ...

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment``."""
        ...

    def count_between(self, after: float, before: float) -> int:
        """Ticks strictly after ``after`` and strictly before ``before``."""
        ...


@dataclass(frozen=True, slots=True)
class IntervalCadence:
    interval: float

    def latest_at_or_before(self, moment: float) -> float:
        return math.floor(moment / self.interval) * self.interval

    def next_after(self, moment: float) -> float:
        return (math.floor(moment / self.interval) + 1) * self.interval

    def count_between(self, after: float, before: float) -> int:
        if before <= after:
            return 0
        first = math.floor(after / self.interval) + 1  # index of the first tick after ``after``
        last = math.ceil(before / self.interval) - 1  # index of the last tick before ``before``
        return max(0, last - first + 1)


def jitter_of(requester: str, name: str, tick: float, jitter: float) -> float:
    """The tick's delay in [0, jitter): the same on every replica."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{requester}\0{name}\0{tick:.3f}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter


def tick_request_id(requester: str, name: str, tick: float) -> str:
    """The request id of one tick's run: a UUIDv7 whose time is the tick and whose random bits
    are a hash of the schedule, so a re-run of the same tick (another replica after a crash)
    has the same id and JetStream keeps one result per device."""
    millis = round(tick * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(hashlib.sha256(f"{requester}\0{name}\0{millis}".encode()).digest()[:10], "big")
    rand &= (1 << 74) - 1
    value = millis << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def tick_message_id(requester: str, name: str, tick: float) -> str:
    """JetStream's de-duplication key of an enqueued tick: one stored tick per schedule and due time."""
    return f"{requester}.{name}.{round(tick * 1000)}"


@dataclass(frozen=True, slots=True)
class Due:
    """What a replica does now for one schedule."""

    run: float | None  # the tick to enqueue now, if any
    missed: int  # ticks to report missed
    first_missed: float | None
    last_missed: float | None
    advance_to: float | None  # the tick the state moves to (the newest one run or missed)


NOTHING = Due(None, 0, None, None, None)


def due(
    cadence: Cadence,
    *,
    last: float | None,
    since: float,
    now: float,
    catch_up: float,
    delay: Callable[[float], float] = lambda _tick: 0.0,
) -> Due:
    """Which tick to run now and how many were missed.

    ``last``: the newest tick already taken or reported (the shared state); ``since``: ticks
    at or before it never count (the schedule was added or resumed then); ``delay``: a tick's
    jitter (a tick is not due before its time plus that).
    """
    floor = since if last is None else max(last, since)
    newest = cadence.latest_at_or_before(now)
    if newest + delay(newest) > now:  # its jitter has not passed yet: the one before is the newest due
        newest = cadence.latest_at_or_before(newest - 1e-6)
    if newest <= floor:
        return NOTHING
    older = min(cadence.count_between(floor, newest), MISSED_COUNT_CAP)
    first = cadence.next_after(floor) if older else None
    last_missed = cadence.latest_at_or_before(newest - 1e-6) if older else None
    if now - newest <= catch_up + delay(newest):
        return Due(newest, older, first, last_missed, newest)
    return Due(None, older + 1, first if older else newest, newest, newest)
