"""Schedules on the bus: managed through the service, each tick run once across replicas,
edits in KV taking effect at the next tick, a killed replica's tick re-run once, missed ticks
reported rather than run in a burst, bad definitions refused with structured errors."""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from service.client.execute import ServiceReplyError
from service.client.schedules import manage_schedules
from service.contract.messages import CommandSpec, DeviceSpec, Schedule, ScheduleRequest
from service.domain.schedules import tick_request_id
from tests.bus.test_jobs import inventory_file
from tests.bus.test_metrics import scrape, value
from tests.conftest import LAB_PASSWORD, ServiceProcess
from tests.lab_sequences import BGP_CHANGED_PATH
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

REQUESTER = "noc"


def sched_service(factory: Callable[..., ServiceProcess], prefix: str, inventory: Path, **extra: str) -> ServiceProcess:
    return factory(
        PYATS_SUBJECT_PREFIX=prefix,
        PYATS_INVENTORY_FILE=str(inventory),
        PYATS_SCHEDULES_MIN_INTERVAL="1",
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
        **extra,
    )


def tag(prefix: str) -> str:
    return prefix.replace(".", "_").replace("-", "_").upper()


def every(name: str, seconds: float, devices: list[str], commands: list[str], **extra: Any) -> Schedule:
    return Schedule(
        name=name,
        devices=[DeviceSpec(name=device) for device in devices],
        commands=[CommandSpec(command=command) for command in commands],
        output_format="raw",
        interval=seconds,
        **extra,
    )


async def add(client: Client, prefix: str, schedule: Schedule, requester: str = REQUESTER) -> None:
    await manage_schedules(client, prefix, requester, ScheduleRequest(op="add", schedule=schedule))


async def stored_subjects(client: Client, prefix: str, requester: str = REQUESTER) -> dict[str, int]:
    """Every results subject of ``requester`` in the stream, with how many messages it holds."""
    info = await client.jetstream().stream_info(
        f"RESULTS_{tag(prefix)}", subjects_filter=f"{prefix}.results.{requester}.>"
    )
    return dict(info.state.subjects or {})


def tick_of(request_id_token: str) -> float:
    """A tick's due time from its request id (a UUIDv7 whose time is the tick)."""
    return int(uuid.UUID(request_id_token).hex[:12], 16) / 1000


def summaries(subjects: dict[str, int]) -> dict[float, int]:
    """Tick time -> how many summaries the stream holds for that tick's request."""
    found: dict[float, int] = {}
    for subject, count in subjects.items():
        parts = subject.split(".")
        if parts[-1] == "_summary":
            found[tick_of(parts[-2])] = found.get(tick_of(parts[-2]), 0) + count
    return found


def ticks_run(replicas: list[ServiceProcess], schedule: str) -> float:
    return sum(
        value(scrape(r.metrics_port), "pyats_schedule_ticks_run_total", schedule=schedule)
        for r in replicas
        if r.alive()
    )


async def test_bad_definitions_are_refused_with_structured_errors(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    prefix = "sched1.v1"
    inventory = inventory_file(tmp_path, lab_device, ["ios-1", "iosxe-1"])
    service = sched_service(service_factory, prefix, inventory).wait_ready()
    good = every("ok", 60, ["ios-1"], ["show clock"])
    cases: list[tuple[Schedule, str]] = [
        (msgspec.structs.replace(good, cron="61 * * * *", interval=None), "invalid_schedule"),
        (msgspec.structs.replace(good, cron="*/5 * * * *"), "invalid_schedule"),  # both cadences
        (msgspec.structs.replace(good, interval=0.2), "invalid_schedule"),  # under the minimum
        (msgspec.structs.replace(good, jitter=60), "invalid_schedule"),
        (msgspec.structs.replace(good, name="Bad Name"), "invalid_schedule"),
        (msgspec.structs.replace(good, requester="alice"), "invalid_schedule"),  # scheduling as another
        (msgspec.structs.replace(good, devices=[DeviceSpec(group="no-such-group")]), "unknown_device"),
        (msgspec.structs.replace(good, commands=[CommandSpec(command="reload")]), "command_not_allowed"),
        (msgspec.structs.replace(good, commands=[CommandSpec(command="show run ; conf t")]), "forbidden_characters"),
        (
            msgspec.structs.replace(
                good,
                devices=[DeviceSpec(hostname="10.0.0.1", username="u", password="secret-pw", os="iosxe")],
            ),
            "feature_disabled",
        ),
    ]
    for schedule, code in cases:
        with pytest.raises(ServiceReplyError) as refused:
            await add(client, prefix, schedule)
        assert refused.value.reply.error.code == code, (schedule, refused.value.reply.error)
        assert "secret-pw" not in refused.value.reply.error.message
    await add(client, prefix, good)
    with pytest.raises(ServiceReplyError) as twice:
        await add(client, prefix, good)
    assert twice.value.reply.error.code == "schedule_exists"
    with pytest.raises(ServiceReplyError) as missing:
        await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="show", name="nope"))
    assert missing.value.reply.error.code == "schedule_not_found"
    listed = await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="list"))
    assert [s.schedule.name for s in listed.schedules] == ["ok"]
    assert listed.schedules[0].schedule.requester == REQUESTER and listed.schedules[0].next_tick
    # another requester sees none of them
    assert (await manage_schedules(client, prefix, "other", ScheduleRequest(op="list"))).schedules == []
    # nothing was stored in KV for the refused ones
    keys = await (await client.jetstream().key_value(f"SCHEDULES_{tag(prefix)}")).keys()
    assert keys == [f"{REQUESTER}.ok"]
    await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="rm", name="ok"))
    # a definition written into the bucket around the service is checked too: skipped and counted
    forged = msgspec.structs.replace(good, name="forged", requester=REQUESTER, commands=[CommandSpec(command="reload")])
    bucket = await client.jetstream().key_value(f"SCHEDULES_{tag(prefix)}")
    await bucket.put(f"{REQUESTER}.forged", msgspec.json.encode(forged))
    await wait_for_async(lambda: "schedule noc.forged (revision" in service.log(), 10)
    samples = scrape(service.metrics_port)
    assert value(samples, "pyats_schedule_definitions_refused_total") == 1
    assert value(samples, "pyats_schedules", state="refused") == 1
    assert "noc.forged (revision 3) is not run: $.commands[0].command: only show commands" in service.log()
    service.stop()


async def test_two_replicas_run_each_tick_once_and_a_kv_edit_changes_the_next_tick(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    prefix = "sched2.v1"
    inventory = inventory_file(tmp_path, lab_device, ["ios-1", "iosxe-1"])
    replicas = [sched_service(service_factory, prefix, inventory) for _ in range(2)]
    for replica in replicas:
        replica.wait_ready()
    await add(client, prefix, every("twice", 2, ["ios-1", "iosxe-1"], ["show clock"]))

    async def ticks_stored(count: int) -> bool:
        return len(summaries(await stored_subjects(client, prefix))) >= count

    await wait_for_async(lambda: ticks_stored(4), 60)
    # an operator edits the definition in KV directly: the next tick runs the new command
    bucket = await client.jetstream().key_value(f"SCHEDULES_{tag(prefix)}")
    entry = await bucket.get(f"{REQUESTER}.twice")
    edited = msgspec.structs.replace(  # as an operator might write it: no created or since stamps
        msgspec.json.decode(entry.value or b"", type=Schedule),
        commands=[CommandSpec(command="show version")],
        created=None,
        since=None,
    )
    await bucket.put(f"{REQUESTER}.twice", msgspec.json.encode(edited))
    before = len(summaries(await stored_subjects(client, prefix)))
    await wait_for_async(lambda: ticks_stored(before + 2), 30)
    await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="pause", name="twice"))
    await asyncio.sleep(2.5)  # observation window: a tick in flight at the pause finishes
    subjects = await stored_subjects(client, prefix)
    per_tick = summaries(subjects)
    assert set(per_tick.values()) == {1}, per_tick  # never twice
    ticks = sorted(per_tick)
    assert [round(b - a, 3) for a, b in itertools.pairwise(ticks)] == [2.0] * (len(ticks) - 1)  # none lost
    assert all(count == 1 for count in subjects.values()), subjects  # one result per device per tick
    await wait_for_async(lambda: ticks_run(replicas, "twice") == len(ticks), 10)
    # both replicas enqueued every tick; JetStream kept one (the log says so only for the kept one)
    enqueued = sum(r.log().count("tick ") and r.log().count("enqueued") for r in replicas)
    assert enqueued == len(ticks), enqueued
    # the last ticks ran "show version", the first ones "show clock"
    history = client.jetstream()
    newest = max(ticks)
    newest_device = next(s for s in subjects if not s.endswith("_summary") and tick_of(s.split(".")[-2]) == newest)
    message = await history.get_last_msg(f"RESULTS_{tag(prefix)}", newest_device)
    assert [c["command"] for c in msgspec.json.decode(message.data)["commands"]] == ["show version"]
    for replica in replicas:
        replica.stop()


async def test_a_replica_killed_mid_tick_leaves_no_duplicate_and_no_lost_tick(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    prefix = "sched3.v1"
    names = ["slow", "ios-1", "nxos-1"]
    inventory = inventory_file(tmp_path, lab_device, names)
    replicas = [
        sched_service(service_factory, prefix, inventory, PYATS_JOBS_ACK_WAIT="3").wait_ready() for _ in range(2)
    ]
    await add(client, prefix, every("killme", 30, names, ["show clock", "show version"]))

    def runner() -> ServiceProcess | None:
        return next((r for r in replicas if "of schedule killme (delivery 1)" in r.log()), None)

    await wait_for_async(lambda: runner() is not None, 45)
    victim = runner()
    assert victim is not None

    async def fast_devices_stored() -> bool:
        return len(await stored_subjects(client, prefix)) == len(names) - 1

    await wait_for_async(fast_devices_stored, 30)  # "slow" (3 s per answer) is still running
    victim._process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    victim._process.wait()  # type: ignore[union-attr]
    victim._process = None
    survivor = next(r for r in replicas if r is not victim)

    await wait_for_async(lambda: "of killme done" in survivor.log(), 60)
    await asyncio.sleep(0.5)  # observation window: anything published late would show now
    subjects = await stored_subjects(client, prefix)
    assert len(subjects) == len(names) + 1 and set(subjects.values()) == {1}, subjects  # one per device, one summary
    assert len({subject.split(".")[-2] for subject in subjects}) == 1, subjects  # all of one request: the tick's
    assert "of schedule killme (delivery 2)" in survivor.log()
    await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="rm", name="killme"))
    survivor.stop()


async def test_ticks_missed_while_no_replica_ran_are_reported_not_run_in_a_burst(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    prefix = "sched4.v1"
    inventory = inventory_file(tmp_path, lab_device, ["ios-1"])
    first = sched_service(service_factory, prefix, inventory, PYATS_SCHEDULES_CATCH_UP="0.5").wait_ready()
    await add(client, prefix, every("gap", 1, ["ios-1"], ["show clock"]))

    async def ticks_stored(count: int) -> bool:
        return len(summaries(await stored_subjects(client, prefix))) >= count

    await wait_for_async(lambda: ticks_stored(2), 30)
    first.stop()
    stopped_with = len(summaries(await stored_subjects(client, prefix)))
    await asyncio.sleep(4)  # no replica runs for a while: those ticks are missed
    second = sched_service(service_factory, prefix, inventory, PYATS_SCHEDULES_CATCH_UP="0.5").wait_ready()
    await wait_for_async(lambda: "tick(s) missed" in second.log(), 30)
    missed = value(scrape(second.metrics_port), "pyats_schedule_ticks_missed_total", schedule="gap")
    assert missed >= 3  # a service boot takes seconds; the schedule ticks every second
    await wait_for_async(lambda: ticks_stored(stopped_with + 2), 30)
    await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="pause", name="gap"))
    await asyncio.sleep(1.5)  # observation window: a tick in flight at the pause finishes
    ticks = sorted(summaries(await stored_subjects(client, prefix)))
    after_gap = ticks[stopped_with:]
    # not a burst: the ticks after the restart are one second apart, none of the missed ones
    assert [round(b - a, 3) for a, b in itertools.pairwise(after_gap)] == [1.0] * (len(after_gap) - 1)
    assert after_gap[0] - ticks[stopped_with - 1] >= missed  # the gap holds at least the missed ticks
    second.stop()


async def test_a_device_changing_between_ticks_gives_one_change_event_naming_the_schedule(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    prefix = "sched5.v1"
    inventory = inventory_file(tmp_path, lab_device, ["chg-tick"])
    replicas = [sched_service(service_factory, prefix, inventory) for _ in range(2)]
    for replica in replicas:
        replica.wait_ready()
    events: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        events.append(msgspec.json.decode(msg.data))

    await client.subscribe(f"{prefix}.changes.>", cb=collect)
    schedule = msgspec.structs.replace(every("bgp", 2, ["chg-tick"], ["show ip bgp summary"]), output_format="parsed")
    await add(client, prefix, schedule)
    # tick 1 is the baseline, tick 2 has 10.0.0.3 Idle, the later ones only moved timers and counters
    await wait_for_async(lambda: ticks_of_stream(client, prefix, 4), 60)
    await manage_schedules(client, prefix, REQUESTER, ScheduleRequest(op="pause", name="bgp"))
    await asyncio.sleep(2.5)  # observation window: a tick in flight at the pause finishes and is compared
    info = await client.jetstream().stream_info(f"CHANGES_{tag(prefix)}", subjects_filter=f"{prefix}.changes.>")
    assert sum((info.state.subjects or {}).values()) == 1, info.state.subjects
    (event,) = events
    assert event["schedule"] == "bgp" and event["requester"] == REQUESTER
    assert event["changed"] == [{"path": BGP_CHANGED_PATH, "old": "2", "new": "Idle"}]
    assert event["added"] == [] and event["removed"] == []
    first, second = sorted(summaries(await stored_subjects(client, prefix)))[:2]
    assert event["previous"]["request_id"] == tick_request_id(REQUESTER, "bgp", first)
    assert event["current"]["request_id"] == tick_request_id(REQUESTER, "bgp", second)
    for replica in replicas:
        replica.stop()


async def ticks_of_stream(client: Client, prefix: str, count: int) -> bool:
    return len(summaries(await stored_subjects(client, prefix))) >= count
