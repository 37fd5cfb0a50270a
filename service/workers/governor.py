"""How many devices a worker process works on at once: enough to keep its core busy, not so
many that they queue for the interpreter.

A device is mostly waiting (on the network) and sometimes computing (key exchange, Unicon's
dialogs). Too few at once and the core idles while devices wait; too many and each one's
computing waits behind everyone else's: a device of a 1-device request then takes many times
its idle time, and the process spends more on switching than on work. The right number is
about (a device's wall time) / (its CPU time): ~15 on a lab with 100 ms answers, ~100 for
real devices whose logins take seconds. It is found, not configured: every interval the
worker's CPU use (all its threads) is compared with a band, and the limit moves:

- outside the band (above it; or below it while devices wait), scale it by the ratio of the
  band's middle to the CPU used, within x0.75..x2: a burst of warm devices, mostly waiting
  on the network, gets its concurrency within a few tenths of a second, and a burst of
  logins is cut back as fast;
- otherwise keep it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_GROWTH = 2.0
MAX_SHRINK = 0.75


@dataclass(frozen=True, slots=True)
class Band:
    low: float = 0.60  # of one core
    high: float = 0.80


class ConcurrencyGovernor:
    def __init__(
        self,
        floor: int,
        ceiling: int,
        band: Band = Band(),
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.floor = max(1, min(floor, ceiling))
        self.ceiling = ceiling
        self._band = band
        self._clock = clock
        self._cpu = cpu
        self._at = clock()
        self._cpu_at = cpu()
        self.utilisation = 0.0

    def next_limit(self, current: int, waiting: int) -> int:
        """The limit for the next interval, from the CPU used since the last call."""
        now, cpu = self._clock(), self._cpu()
        wall = now - self._at
        if wall <= 0:
            return current
        self.utilisation = (cpu - self._cpu_at) / wall
        self._at, self._cpu_at = now, cpu
        target = (self._band.low + self._band.high) / 2
        outside = self.utilisation > self._band.high or (self.utilisation < self._band.low and waiting > 0)
        if outside:  # proportional: the limit that would have put the CPU in the middle of the band
            factor = min(MAX_GROWTH, max(MAX_SHRINK, target / max(self.utilisation, 0.01)))
            moved = int(current * factor)
            if moved == current:
                moved += 1 if factor > 1 else -1
            return max(self.floor, min(self.ceiling, moved))
        return max(self.floor, min(self.ceiling, current))
