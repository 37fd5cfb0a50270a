"""Tick arithmetic: which tick runs now, which were missed, jitter and tick ids the same on every replica."""

from __future__ import annotations

import argparse
import uuid

import pytest

from service.cli.schedule import UsageError, schedule_of, seconds
from service.contract.errors import ErrorCode, RequestError
from service.contract.messages import CommandSpec, DeviceSpec, Schedule
from service.domain.schedules import IntervalCadence, check_name, due, jitter_of, tick_message_id, tick_request_id
from service.pipeline.cadence import CadenceError, CronCadence, cadence_of
from service.pipeline.schedule_checks import ScheduleLimits, checked_cadence

pytestmark = pytest.mark.unit

EVERY_MINUTE = IntervalCadence(60.0)
T0 = 1_800_000_000.0  # a multiple of 60


def test_interval_ticks_fall_on_multiples_since_the_epoch() -> None:
    assert EVERY_MINUTE.latest_at_or_before(T0 + 59.9) == T0
    assert EVERY_MINUTE.latest_at_or_before(T0) == T0
    assert EVERY_MINUTE.next_after(T0) == T0 + 60
    assert EVERY_MINUTE.count_between(T0, T0 + 60) == 0
    assert EVERY_MINUTE.count_between(T0, T0 + 240) == 3  # 60, 120, 180


def test_the_due_tick_runs_and_nothing_is_missed_in_the_normal_case() -> None:
    plan = due(EVERY_MINUTE, last=T0 - 60, since=0, now=T0 + 0.2, catch_up=30)
    assert (plan.run, plan.missed, plan.advance_to) == (T0, 0, T0)


def test_a_tick_already_taken_is_not_run_again() -> None:
    assert due(EVERY_MINUTE, last=T0, since=0, now=T0 + 5, catch_up=30).advance_to is None


def test_ticks_while_no_replica_ran_are_missed_and_only_the_newest_runs() -> None:
    plan = due(EVERY_MINUTE, last=T0, since=0, now=T0 + 300 + 10, catch_up=30)
    assert plan.run == T0 + 300  # 10 s late: within catch-up, runs
    assert plan.missed == 4 and (plan.first_missed, plan.last_missed) == (T0 + 60, T0 + 240)


def test_a_newest_tick_older_than_catch_up_is_missed_too() -> None:
    plan = due(EVERY_MINUTE, last=T0, since=0, now=T0 + 300 + 45, catch_up=30)
    assert plan.run is None and plan.missed == 5 and plan.advance_to == T0 + 300


def test_ticks_before_since_never_count() -> None:
    # added (or resumed) at T0 + 130: the ticks at T0 + 60 and T0 + 120 are not missed
    plan = due(EVERY_MINUTE, last=T0, since=T0 + 130, now=T0 + 181, catch_up=30)
    assert (plan.run, plan.missed) == (T0 + 180, 0)
    assert due(EVERY_MINUTE, last=None, since=T0 + 130, now=T0 + 170, catch_up=30).advance_to is None


def test_jitter_delays_a_tick_without_changing_it() -> None:
    delay = lambda tick: 20.0  # noqa: E731 - the shape due() takes
    assert due(EVERY_MINUTE, last=T0 - 60, since=0, now=T0 + 10, catch_up=30, delay=delay).advance_to is None
    plan = due(EVERY_MINUTE, last=T0 - 60, since=0, now=T0 + 21, catch_up=30, delay=delay)
    assert plan.run == T0


def test_jitter_and_ids_are_the_same_everywhere_and_differ_per_schedule_and_tick() -> None:
    assert jitter_of("noc", "bgp", T0, 10) == jitter_of("noc", "bgp", T0, 10)
    assert 0 <= jitter_of("noc", "bgp", T0, 10) < 10
    assert len({jitter_of("noc", "bgp", T0 + 60 * i, 10) for i in range(20)}) > 10
    assert jitter_of("noc", "bgp", T0, 0) == 0
    first = tick_request_id("noc", "bgp", T0)
    assert first == tick_request_id("noc", "bgp", T0)
    assert len({first, tick_request_id("noc", "bgp", T0 + 60), tick_request_id("ops", "bgp", T0)}) == 3
    parsed = uuid.UUID(first)
    assert parsed.version == 7 and int(parsed.hex[:12], 16) == T0 * 1000  # its time is the tick
    assert tick_message_id("noc", "bgp", T0) != tick_message_id("noc", "bgp", T0 + 60)


def test_cron_cadence() -> None:
    cron = CronCadence("*/5 * * * *")
    assert cron.latest_at_or_before(T0 + 299) == T0
    assert cron.latest_at_or_before(T0 + 300) == T0 + 300
    assert cron.next_after(T0) == T0 + 300
    assert cron.count_between(T0, T0 + 1500) == 4
    plan = due(cron, last=T0, since=0, now=T0 + 900 + 3, catch_up=30)
    assert (plan.run, plan.missed) == (T0 + 900, 2)


@pytest.mark.parametrize(
    ("interval", "cron", "why"),
    [
        (None, None, "exactly one"),
        (60.0, "* * * * *", "exactly one"),
        (5.0, None, "at least 10"),
        (float("nan"), None, "at least 10"),
        (None, "61 * * * *", "not a valid cron"),
        (None, "* * * *", "5 fields"),
        (None, "0 0 * * * *", "5 fields"),
    ],
)
def test_bad_cadences_say_why(interval: float | None, cron: str | None, why: str) -> None:
    with pytest.raises(CadenceError, match=why):
        cadence_of(interval, cron, min_interval=10)


def test_schedule_rules_refuse_bad_names_and_jitter() -> None:
    good = Schedule(name="bgp", devices=[DeviceSpec(group="core")], commands=[CommandSpec(command="show clock")])
    limits = ScheduleLimits(min_interval=10, max_per_requester=5)
    with_interval = Schedule(**{**_fields(good), "interval": 60.0})
    assert isinstance(checked_cadence(with_interval, limits), IntervalCadence)
    assert check_name("bgp-watch_2") is None and check_name("BGP") and check_name("-x") and check_name("a" * 33)
    for broken, path in [
        (Schedule(**{**_fields(with_interval), "name": "a.b"}), "$.schedule.name"),
        (Schedule(**{**_fields(with_interval), "jitter": 60.0}), "$.schedule.jitter"),
        (Schedule(**{**_fields(with_interval), "jitter": -1.0}), "$.schedule.jitter"),
        (good, "$.schedule.interval"),
        (Schedule(**{**_fields(good), "cron": "bad"}), "$.schedule.cron"),
    ]:
        with pytest.raises(RequestError) as refused:
            checked_cadence(broken, limits)
        assert refused.value.code is ErrorCode.INVALID_SCHEDULE and refused.value.details["path"] == path


def _fields(schedule: Schedule) -> dict[str, object]:
    return {field: getattr(schedule, field) for field in schedule.__struct_fields__}


def test_cli_durations_and_definition() -> None:
    assert [seconds(t) for t in ("90", "90s", "5m", "1h", "1d", "1.5m")] == [90, 90, 300, 3600, 86400, 90]
    with pytest.raises(UsageError):
        seconds("soon")
    args = argparse.Namespace(
        name="bgp",
        device=["edge-*"],
        group=["core"],
        command=["show ip bgp summary"],
        every="5m",
        cron=None,
        jitter="10s",
        format="parsed",
        timeout=None,
        paused=False,
    )
    schedule = schedule_of(args)
    assert schedule.interval == 300 and schedule.jitter == 10 and schedule.requester is None
    assert [d.name or d.group for d in schedule.devices] == ["edge-*", "core"]
    for change, why in [
        ({"command": []}, "--command"),
        ({"device": [], "group": []}, "--device"),
        ({"cron": "* * * * *"}, "exactly one"),
    ]:
        with pytest.raises(UsageError, match=why):
            schedule_of(argparse.Namespace(**{**vars(args), **change}))
