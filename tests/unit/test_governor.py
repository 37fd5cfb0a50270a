"""The worker's concurrency governor, on a fake clock and a fake CPU counter."""

from __future__ import annotations

import pytest

from service.workers.governor import ConcurrencyGovernor

pytestmark = pytest.mark.unit


class Meter:
    def __init__(self) -> None:
        self.now = 0.0
        self.cpu = 0.0

    def tick(self, seconds: float, utilisation: float) -> None:
        self.now += seconds
        self.cpu += seconds * utilisation


def governor(meter: Meter, floor: int = 4, ceiling: int = 100) -> ConcurrencyGovernor:
    return ConcurrencyGovernor(floor, ceiling, clock=lambda: meter.now, cpu=lambda: meter.cpu)


def test_an_oversubscribed_core_gets_fewer_devices_at_once() -> None:
    meter = Meter()
    g = governor(meter)
    meter.tick(0.1, 1.0)
    assert g.next_limit(40, waiting=10) == 30  # x0.75 at most per step
    meter.tick(0.1, 0.85)
    assert g.next_limit(30, waiting=10) < 30


def test_an_idle_core_with_waiting_devices_gets_more_at_once() -> None:
    meter = Meter()
    g = governor(meter)
    meter.tick(0.1, 0.2)
    assert g.next_limit(10, waiting=50) == 20  # x2 at most per step
    meter.tick(0.1, 0.5)
    assert g.next_limit(20, waiting=50) == 28  # 0.7 / 0.5 = x1.4


def test_nothing_waiting_or_inside_the_band_keeps_the_limit() -> None:
    meter = Meter()
    g = governor(meter)
    meter.tick(0.1, 0.1)
    assert g.next_limit(10, waiting=0) == 10  # idle, but nobody waits: no reason to grow
    meter.tick(0.1, 0.7)
    assert g.next_limit(10, waiting=50) == 10


def test_the_limit_stays_between_floor_and_ceiling() -> None:
    meter = Meter()
    g = governor(meter, floor=4, ceiling=12)
    meter.tick(0.1, 0.05)
    assert g.next_limit(10, waiting=99) == 12
    meter.tick(0.1, 3.0)
    assert g.next_limit(5, waiting=99) == 4


def test_a_small_limit_still_moves_when_the_factor_rounds_back_to_it() -> None:
    meter = Meter()
    g = governor(meter, floor=1)
    meter.tick(0.1, 0.55)  # x1.27: int(1 * 1.27) is still 1
    assert g.next_limit(1, waiting=5) == 2
    meter.tick(0.1, 0.9)  # x0.78: int(2 * 0.78) is 1
    assert g.next_limit(2, waiting=5) == 1
