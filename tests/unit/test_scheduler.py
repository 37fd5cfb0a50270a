"""Scheduling with fakes: fairness, per-device limits, deadlines by phase, warm reuse, shutdown."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from service.contract.errors import ErrorCode
from service.contract.messages import DeviceResult
from service.domain.models import DeviceOS, DeviceTarget, ExecutionPlan, OutputFormat, Secret, ShowCommand, Timeouts
from service.pipeline.rate_limit import LoginLimiter
from service.pipeline.result_parser import ResultParser
from service.pipeline.runner import DeviceRunner
from service.pipeline.scheduler import Scheduler, SchedulerLimits
from service.pipeline.session_pool import SessionPool
from tests.unit.fakes import FakeClock, FakeDevice, FakeParser, FakeSessionFactory
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]


def make(
    factory: FakeSessionFactory,
    workers: int = 4,
    per_request: int = 4,
    per_device: int = 1,
    queue_timeout: float = 60,
    request_timeout: float = 60,
    ttl: float = 60,
    watchdog_grace: float = 5.0,
    clock: FakeClock | None = None,
) -> tuple[Scheduler, SessionPool]:
    pool = SessionPool(factory, idle_ttl=ttl, max_idle=100)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0)
    limits = SchedulerLimits(workers, per_request, per_device, queue_timeout, request_timeout, 1, watchdog_grace)
    return Scheduler(runner, ResultParser(FakeParser(), 10_000), pool, limits, clock=clock or FakeClock()), pool


def held(*hosts: str) -> dict[str, threading.Event]:
    """One gate per device: its command answers when the test sets it (or its session is closed)."""
    return {host: threading.Event() for host in hosts}


def release(gates: dict[str, threading.Event]) -> None:
    for gate in gates.values():
        gate.set()


def plan(
    hosts: list[str], request_id: str = "r", device_timeout: float = 30, port: int = 22, **kw: Any
) -> ExecutionPlan:
    targets = tuple(DeviceTarget(h, port, DeviceOS.IOSXE, "u", Secret(kw.get("password", "p"))) for h in hosts)
    return ExecutionPlan(
        request_id=request_id,
        requester="t",
        targets=targets,
        commands=(ShowCommand("show version"),),
        output_format=kw.get("output_format", OutputFormat.RAW),
        timeouts=Timeouts(5, 10, device_timeout),
    )


async def test_a_small_request_is_not_stuck_behind_a_big_one() -> None:
    gates = held(*(f"big{i}" for i in range(20)))
    factory = FakeSessionFactory({host: FakeDevice(hold=gate) for host, gate in gates.items()})
    scheduler, _ = make(factory, workers=2, per_request=2)
    try:
        big = asyncio.create_task(scheduler.run(plan(list(gates), "big")))
        await wait_for_async(lambda: factory.active == {"big0": 1, "big1": 1})
        small = asyncio.create_task(scheduler.run(plan(["small"], "small")))
        await wait_for_async(lambda: scheduler.queued == 19)  # 18 big devices and the small one wait
        gates["big0"].set()
        await wait_for_async(lambda: len(factory.opened) >= 3)
        assert factory.opened[2] == "small"  # served at the next free slot, not after the 20 big devices
        [result] = await small
        assert result.success
        assert not big.done()
    finally:
        release(gates)
    assert all(r.success for r in await big)


async def test_per_device_session_limit() -> None:
    factory = FakeSessionFactory({"r1": FakeDevice(delay=0.05)})
    scheduler, _ = make(factory, workers=4, per_request=4, per_device=1)
    results = await scheduler.run(plan(["r1"] * 6))
    assert all(r.success for r in results)
    assert factory.max_active["r1"] == 1


async def test_per_device_limit_can_be_raised() -> None:
    factory = FakeSessionFactory({"r1": FakeDevice(delay=0.1)})
    scheduler, _ = make(factory, workers=4, per_request=4, per_device=2, ttl=0)
    await scheduler.run(plan(["r1"] * 4))
    assert factory.max_active["r1"] == 2


async def test_queue_wait_deadline() -> None:
    clock, gates = FakeClock(), held("a")
    factory = FakeSessionFactory({"a": FakeDevice(hold=gates["a"])})
    scheduler, _ = make(factory, workers=1, per_request=1, queue_timeout=5, clock=clock)
    try:
        run = asyncio.create_task(scheduler.run(plan(list("abc"))))
        await wait_for_async(lambda: factory.active.get("a") == 1)  # "b" and "c" wait for the only worker
        clock.advance(5.1)
    finally:
        release(gates)
    results = await run
    assert results[0].success
    assert [r.error_code for r in results[1:]] == [ErrorCode.QUEUE_TIMEOUT] * 2


async def test_request_deadline() -> None:
    clock, gates = FakeClock(), held("a")
    factory = FakeSessionFactory({"a": FakeDevice(hold=gates["a"])})
    scheduler, _ = make(factory, workers=1, per_request=1, request_timeout=10, clock=clock)
    try:
        run = asyncio.create_task(scheduler.run(plan(list("abc"))))
        await wait_for_async(lambda: factory.active.get("a") == 1)
        clock.advance(11)
    finally:
        release(gates)
    results = await run
    assert results[0].success
    assert [r.error_code for r in results[1:]] == [ErrorCode.REQUEST_TIMEOUT] * 2


async def test_a_hung_device_is_torn_down_at_its_deadline() -> None:
    gates = held("hung")  # never set: the command answers only when its session is closed
    factory = FakeSessionFactory({"hung": FakeDevice(hold=gates["hung"])})
    scheduler, _ = make(factory, watchdog_grace=0.1)
    try:
        [result] = await asyncio.wait_for(scheduler.run(plan(["hung"], device_timeout=0.2)), 10)
        assert result.error_code == ErrorCode.DEVICE_TIMEOUT
        await wait_for_async(lambda: factory.sessions[0].closed)  # the worker thread was freed, not left blocked
    finally:
        release(gates)


async def test_warm_session_reused_across_requests() -> None:
    factory = FakeSessionFactory()
    scheduler, pool = make(factory)
    await scheduler.run(plan(["r1"]))
    await scheduler.run(plan(["r1"]))
    assert factory.opened == ["r1"] and (pool.logins, pool.reuses) == (1, 1)


async def test_two_passwords_on_one_device_are_two_logins_and_a_wrong_one_fails() -> None:
    factory = FakeSessionFactory()
    scheduler, pool = make(factory)
    await scheduler.run(plan(["r1"], password="good"))
    await scheduler.run(plan(["r1"], password="other"))
    assert pool.logins == 2 and pool.reuses == 0
    factory.devices["r1"].connect_errors = [ErrorCode.AUTH_FAILED]
    [result] = await scheduler.run(plan(["r1"], password="wrong"))
    assert result.error_code == ErrorCode.AUTH_FAILED  # not the cached session of another password


async def test_a_warm_session_the_device_closed_is_retried_once_on_a_fresh_login() -> None:
    factory = FakeSessionFactory()
    scheduler, pool = make(factory)
    await scheduler.run(plan(["r1"]))
    factory.sessions[0].drop_on_next = True  # alive by the cheap check, dead on use
    [result] = await scheduler.run(plan(["r1"]))
    assert result.success
    assert pool.logins == 2 and len(factory.sessions) == 2


async def test_parsing_happens_after_the_device_work() -> None:
    """The session (and the device's VTY line) is back in the pool before any parsing starts."""
    pool = SessionPool(FakeSessionFactory(), idle_ttl=60, max_idle=100)
    sessions_back_when_parsing: list[int] = []

    class Watching(FakeParser):
        def parse(self, os: DeviceOS, line: str, output: str) -> Any:
            sessions_back_when_parsing.append(pool.idle_count())
            return super().parse(os, line, output)

    limits = SchedulerLimits(4, 4, 1, 60, 60, 1, 5.0)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0)
    scheduler = Scheduler(runner, ResultParser(Watching(), 10_000), pool, limits)
    [result] = await scheduler.run(plan(["r1"], output_format=OutputFormat.PARSED))
    assert result.commands[0].parse_status == "ok" and result.commands[0].output is None
    assert sessions_back_when_parsing == [1]  # parsed once, with the session already released


async def test_cancelled_request_reports_unfinished_devices() -> None:
    gates = held("slow")  # never set: "slow" answers only when its session is closed
    factory = FakeSessionFactory({"fast": FakeDevice(), "slow": FakeDevice(hold=gates["slow"])})
    scheduler, _ = make(factory)
    seen: list[DeviceResult] = []

    async def on_result(result: DeviceResult) -> None:
        seen.append(result)

    try:
        task = asyncio.create_task(scheduler.run(plan(["fast", "slow"]), on_result))
        await wait_for_async(lambda: len(seen) == 1 and factory.active.get("slow") == 1)
        task.cancel()
        fast, slow = await task
        assert fast.success and [r.hostname for r in seen] == ["fast"]
        assert slow.error_code == ErrorCode.SERVICE_UNAVAILABLE
        # its worker was released
        await wait_for_async(lambda: [s.closed for s in factory.sessions if s.hostname == "slow"] == [True])
    finally:
        release(gates)


async def test_outputs_are_redacted_unless_the_policy_says_otherwise() -> None:
    import dataclasses

    secret_config = "hostname r1\nenable secret 9 $9$Zt3o9cBq$canaryhashvalue\nsnmp-server community canary-ro RO\n"
    factory = FakeSessionFactory({"r1": FakeDevice(outputs={"show version": secret_config})})
    scheduler, _ = make(factory)
    [redacted] = await scheduler.run(plan(["r1"]))
    assert "canary" not in (redacted.commands[0].output or "")
    assert "enable secret 9 <redacted>" in (redacted.commands[0].output or "")
    [parsed] = await scheduler.run(plan(["r1"], output_format=OutputFormat.BOTH))
    assert "canary" not in repr(parsed.commands[0].parsed) + (parsed.commands[0].output or "")
    [raw] = await scheduler.run(dataclasses.replace(plan(["r1"]), redact=False))
    assert raw.commands[0].output == secret_config


async def test_wedged_only_while_devices_wait_and_no_worker_finishes() -> None:
    clock, gates = FakeClock(), held("a")
    factory = FakeSessionFactory({"a": FakeDevice(hold=gates["a"]), "b": FakeDevice()})
    pool = SessionPool(factory, idle_ttl=60, max_idle=100)
    waits: list[float] = []
    scheduler = Scheduler(
        DeviceRunner(pool, connect_retries=0, connect_retry_delay=0),
        ResultParser(FakeParser(), 10_000),
        pool,
        SchedulerLimits(1, 1, 1, 60, 60, 1, 5.0),
        clock=clock,
        on_queue_wait=waits.append,
    )
    assert not scheduler.wedged(0.0)  # idle is not wedged
    try:
        run = asyncio.create_task(scheduler.run(plan(["a", "b"])))
        await wait_for_async(lambda: factory.active.get("a") == 1)  # "a" holds the only worker, "b" waits
        assert not scheduler.wedged(0.1)  # "a" has only just started
        clock.advance(0.5)
        assert scheduler.wedged(0.1)
        assert not scheduler.wedged(10.0)
    finally:
        release(gates)
    assert all(r.success for r in await run)
    assert not scheduler.wedged(0.0)
    assert waits == [0.0, 0.5]  # "b" waited for "a"


async def test_wedged_while_every_worker_thread_is_held_past_its_deadline() -> None:
    gates = held("stuck")
    factory = FakeSessionFactory({"stuck": FakeDevice(hold=gates["stuck"], ignores_close=True)})
    scheduler, _ = make(factory, workers=1, watchdog_grace=0.1)
    try:
        [result] = await scheduler.run(plan(["stuck"], device_timeout=0.2))
        assert result.error_code == ErrorCode.DEVICE_TIMEOUT
        assert scheduler.wedged(1000.0)  # the one worker thread is still inside the device
    finally:
        release(gates)  # the device answers at last
    await wait_for_async(lambda: not scheduler.wedged(1000.0))  # the thread came back: ready again


async def test_late_output_flags_the_earlier_command_and_the_next_runs_on_a_fresh_login() -> None:
    device = FakeDevice(outputs={"show a": "A", "show b": "B", "show c": "C"}, late_output_after="show a")
    factory = FakeSessionFactory({"r1": device})
    pool = SessionPool(factory, idle_ttl=60, max_idle=4)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0)
    target = DeviceTarget("r1", 22, DeviceOS.IOSXE, "u", Secret("p"))
    commands = [ShowCommand("show a"), ShowCommand("show b"), ShowCommand("show c")]
    result = runner.run("r-late", target, commands, Timeouts(5, 5, 30))
    a, b, c = result.commands
    assert (a.output, b.output, c.output) == ("A", "B", "C")
    assert a.complete is False and a.incomplete_reason
    assert b.complete is None and c.complete is None
    assert result.success and factory.opened == ["r1", "r1"]
    assert factory.sessions[0].closed  # the out-of-step session is not kept warm
    assert result.privilege == "enabled"


class GatedRemote:
    """A device worker stand-in: each device waits until the test lets it finish."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    async def run(self, plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceResult:
        self.started.append(target.hostname)
        gate = self.gates.setdefault(target.hostname, asyncio.Event())
        await gate.wait()
        return DeviceResult(
            request_id=plan.request_id, hostname=target.hostname, port=22, os="iosxe", success=True, commands=[]
        )

    def finish(self, host: str) -> None:
        self.gates.setdefault(host, asyncio.Event()).set()


async def test_with_device_workers_a_small_request_takes_the_next_free_slot() -> None:
    """The front's own scheduling: a 1-device request sent while 40 devices wait is dispatched
    as soon as one slot frees, before the big request's waiting devices (no clock involved)."""
    scheduler, _ = make(FakeSessionFactory({}), workers=4, per_request=4)
    remote = scheduler.remote = GatedRemote()
    big = asyncio.create_task(scheduler.run(plan([f"big{i}" for i in range(40)], "big")))
    await settle()
    assert remote.started == ["big0", "big1", "big2", "big3"]  # every slot taken
    small = asyncio.create_task(scheduler.run(plan(["small"], "small")))
    await settle()
    assert "small" not in remote.started  # no slot yet: it waits in its own queue
    remote.finish("big0")
    for _ in range(5):
        await settle()
    assert remote.started[4] == "small"  # the first slot that frees goes to the small request
    remote.finish("small")
    assert (await small)[0].success
    for i in range(40):
        remote.finish(f"big{i}")
    assert len(await big) == 40


async def settle() -> None:
    """Let every ready task run (task hand-offs take a few loop turns)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_lower_limit_holds_devices_back_and_a_higher_one_releases_them() -> None:
    scheduler, _ = make(FakeSessionFactory({}), workers=8, per_request=8)
    remote = scheduler.remote = GatedRemote()
    scheduler.set_limit(2)
    run = asyncio.create_task(scheduler.run(plan([f"d{i}" for i in range(6)], "r")))
    await settle()
    assert remote.started == ["d0", "d1"] and scheduler.busy == 2
    scheduler.set_limit(3)
    await settle()
    assert remote.started == ["d0", "d1", "d2"]
    for i in range(6):
        remote.finish(f"d{i}")
    assert len(await run) == 6


async def test_plans_of_one_bucket_share_one_place_in_the_line() -> None:
    """A device worker gets a front request's devices one plan each: in one bucket they count as
    one request, so another request's device is not queued behind all of them."""
    scheduler, _ = make(FakeSessionFactory({}), workers=1, per_request=1)
    remote = scheduler.remote = GatedRemote()
    first = asyncio.create_task(scheduler.run(plan(["a0"], "a"), bucket="alice/a"))
    await settle()
    second = asyncio.create_task(scheduler.run(plan(["a1"], "a"), bucket="alice/a"))
    other = asyncio.create_task(scheduler.run(plan(["b0"], "b"), bucket="bob/b"))
    await settle()
    remote.finish("a0")
    await settle()
    assert remote.started == ["a0", "b0"]  # bob's device before alice's second one
    remote.finish("b0")
    remote.finish("a1")
    assert [len(await t) for t in (first, second, other)] == [1, 1, 1]


async def test_one_request_never_holds_more_than_its_share_of_the_slots() -> None:
    scheduler, _ = make(FakeSessionFactory({}), workers=4, per_request=2)
    remote = scheduler.remote = GatedRemote()
    run = asyncio.create_task(scheduler.run(plan([f"d{i}" for i in range(6)], "r")))
    await settle()
    assert remote.started == ["d0", "d1"] and scheduler.busy == 2  # two slots stay free for others
    for i in range(6):
        remote.finish(f"d{i}")
    assert len(await run) == 6


async def test_the_device_deadline_is_cut_to_what_is_left_of_the_request_s() -> None:
    scheduler, _ = make(FakeSessionFactory({}), request_timeout=1.0)
    seen: list[Timeouts] = []

    class Recording(GatedRemote):
        async def run(self, plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceResult:
            seen.append(timeouts)
            self.finish(target.hostname)
            return await super().run(plan, target, timeouts)

    scheduler.remote = Recording()
    await scheduler.run(plan(["r1"], device_timeout=30))
    assert len(seen) == 1 and 0 < seen[0].device <= 1.0


async def test_new_logins_are_paced_and_warm_sessions_are_not() -> None:
    class Counting(LoginLimiter):
        waits = 0

        async def wait(self) -> None:
            Counting.waits += 1

    factory = FakeSessionFactory()
    pool = SessionPool(factory, idle_ttl=60, max_idle=100)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0)
    limits = SchedulerLimits(4, 4, 1, 60, 60, 1, 5.0)
    scheduler = Scheduler(runner, ResultParser(FakeParser(), 10_000), pool, limits, login_limiter=Counting(0))
    await scheduler.run(plan(["r1"]))
    await scheduler.run(plan(["r1"]))  # the warm session: no new login, no wait
    await scheduler.run(plan(["r2"]))
    assert pool.logins == 2 and Counting.waits == 2
