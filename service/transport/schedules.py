"""Schedules on the bus: every replica keeps the clock, one replica runs each tick.

Exactly once per tick, and why de-duplication rather than a lease. At a tick's due time
every replica publishes the tick to the work-queue stream ``PYATS_TICKS`` with
``Nats-Msg-Id`` = requester, schedule and due time. JetStream keeps the first and drops the
others, so a tick is enqueued once however many replicas are up, with no clock-based lease to
renew, expire or steal. The tick is then pulled like a durable job by one replica through a
shared durable consumer, with in-progress acks while it runs: a replica killed mid-tick
leaves it unacked and another replica re-runs it after ``ack_wait`` with the same request id
(a hash of the tick), so the results stream, de-duplicating by request id and device, keeps
one result per device. A lease in KV would have had to re-invent that redelivery.

Missed ticks: the newest tick taken or reported is kept per schedule in a KV bucket and moved
only by compare-and-set; the replica whose move succeeds reports the ticks that fell while no
replica ran (metric and log). They are not run: only the newest, if it is at most
``PYATS_SCHEDULES_CATCH_UP`` seconds old, runs (late).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import nats.errors
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from service.config import SchedulesSettings
from service.contract import headers
from service.contract.codec import encode
from service.contract.errors import ErrorCode, PyatsRoError, RequestError
from service.contract.messages import Schedule
from service.domain.models import Endpoint
from service.domain.schedules import Cadence, due, jitter_of, tick_message_id, tick_request_id
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.pipeline.schedule_checks import tick_request
from service.transport.jobs import JobSink
from service.transport.schedule_store import ScheduleStore, schedule_key
from service.transport.subjects import Subjects
from service.transport.work_queue import QueueSettings, WorkQueueWorker

CONSUMER = "pyats-ro-ticks"
RECENT_TICKS = 4096
SCHEDULE_STATES = ("running", "paused", "refused")  # pyats_schedules{state}


class Tick(msgspec.Struct, frozen=True):
    """An enqueued tick: which schedule, and its due time."""

    requester: str
    name: str
    tick: float


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return default


class TickNames:
    """Request id -> schedule name of the ticks run here lately (change events name the schedule)."""

    def __init__(self, size: int = RECENT_TICKS) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def add(self, request_id: str, name: str) -> None:
        self._names[request_id] = name
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def get(self, request_id: str) -> str | None:
        return self._names.get(request_id)


Checker = Callable[[Schedule], Cadence]  # the definition's cadence; raises PyatsRoError when it may not run


@dataclass(slots=True)
class _Running:
    schedule: Schedule
    revision: int
    task: asyncio.Task[None]


class ScheduleClock:
    """Watches the definitions and wakes at each schedule's ticks to enqueue them."""

    def __init__(
        self,
        client: Client,
        store: ScheduleStore,
        subjects: Subjects,
        settings: SchedulesSettings,
        metrics: ServiceMetrics,
        check: Checker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._js = client.jetstream()
        self._store = store
        self._subjects = subjects
        self._settings = settings
        self._metrics = metrics
        self._check = check
        self._clock = clock
        self._running: dict[str, _Running] = {}
        self._states: dict[str, str] = {}  # key -> running, paused or refused
        self._watch: asyncio.Task[None] | None = None

    def start(self, ready: asyncio.Event | None = None) -> None:
        self._watch = asyncio.create_task(self._follow(self._store.definitions, ready))

    async def _follow(self, bucket: KeyValue, ready: asyncio.Event | None) -> None:
        while True:
            try:
                watcher = await bucket.watchall()
                async for entry in watcher:
                    if entry is None:  # the initial values are all in
                        if ready is not None:
                            ready.set()
                        continue
                    self._apply(entry.key, entry.value, entry.revision or 0, entry.operation)
            except (nats.errors.Error, TimeoutError) as exc:
                logger.warning("watching the schedules failed ({}); watching again", type(exc).__name__)
                await asyncio.sleep(1)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop every schedule for good
                logger.opt(exception=exc).error("watching the schedules failed: {}; watching again", type(exc).__name__)
                await asyncio.sleep(1)

    def _apply(self, key: str, value: bytes | None, revision: int, operation: str | None) -> None:
        current = self._running.pop(key, None)
        if current is not None:
            current.task.cancel()
        self._states.pop(key, None)
        if operation in ("DEL", "PURGE"):
            logger.info("schedule {} removed", key)
            self._count()
            return
        try:
            schedule = self._store.decode(value)
            if schedule.requester is None or schedule_key(schedule.requester, schedule.name) != key:
                raise RequestError(ErrorCode.INVALID_SCHEDULE, "its key is not <requester>.<name> of the definition")
            cadence = self._check(schedule)
        except (msgspec.DecodeError, msgspec.ValidationError, PyatsRoError) as exc:
            self._metrics.schedules_refused.inc()
            logger.error("schedule {} (revision {}) is not run: {}", key, revision, _why(exc))
            self._states[key] = "refused"
            self._count()
            return
        if not schedule.paused:
            # a definition written around the service may have no ``since``: ticks count from when it was read
            since = parse_iso(schedule.since, default=self._clock())
            task = asyncio.create_task(self._keep_time(key, schedule, cadence, since))
            self._running[key] = _Running(schedule, revision, task)
        self._states[key] = "paused" if schedule.paused else "running"
        logger.info("schedule {} (revision {}) {}", key, revision, self._states[key])
        self._count()

    def _count(self) -> None:
        for state in SCHEDULE_STATES:
            self._metrics.schedules.labels(state).set(sum(1 for s in self._states.values() if s == state))

    async def _keep_time(self, key: str, schedule: Schedule, cadence: Cadence, since: float) -> None:
        """Wake at each tick (and now, in case one is due) for as long as the definition stands."""
        while True:
            try:
                await self._wake(key, schedule, cadence, since)
            except (nats.errors.Error, TimeoutError) as exc:
                logger.warning("schedule {}: the tick could not be enqueued ({}); retrying", key, type(exc).__name__)
                await asyncio.sleep(1)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop this schedule's clock for good
                logger.opt(exception=exc).error("schedule {}: waking failed: {}", key, type(exc).__name__)
                await asyncio.sleep(1)
                continue
            await asyncio.sleep(max(0.05, self._next_wake(schedule, cadence) - self._clock()))

    def _delay(self, schedule: Schedule) -> Callable[[float], float]:
        requester = schedule.requester or ""
        return lambda tick: jitter_of(requester, schedule.name, tick, schedule.jitter)

    def _next_wake(self, schedule: Schedule, cadence: Cadence) -> float:
        now = self._clock()
        delay = self._delay(schedule)
        newest = cadence.latest_at_or_before(now)
        if newest + delay(newest) > now:
            return newest + delay(newest)
        upcoming = cadence.next_after(now)
        return upcoming + delay(upcoming)

    async def _wake(self, key: str, schedule: Schedule, cadence: Cadence, since: float) -> None:
        last, revision = await self._store.last_tick(key)
        now = self._clock()
        plan = due(
            cadence, last=last, since=since, now=now, catch_up=self._settings.catch_up, delay=self._delay(schedule)
        )
        if plan.advance_to is None:
            return
        if plan.run is not None:
            await self._enqueue(schedule, plan.run)
        if not await self._store.advance(key, plan.advance_to, revision):
            return  # another replica moved it: that one reports
        if plan.missed:
            self._metrics.ticks_missed.labels(schedule.name).inc(plan.missed)
            with logger.contextualize(requester=schedule.requester):
                logger.warning(
                    "schedule {}: {} tick(s) missed from {} to {} (no replica was running); not run",
                    schedule.name,
                    plan.missed,
                    iso(plan.first_missed or 0.0),
                    iso(plan.last_missed or 0.0),
                )

    async def _enqueue(self, schedule: Schedule, tick: float) -> None:
        assert schedule.requester is not None
        message_id = tick_message_id(schedule.requester, schedule.name, tick)
        ack = await self._js.publish(
            self._subjects.tick(schedule.requester, schedule.name),
            encode(Tick(schedule.requester, schedule.name, tick)),
            timeout=5,
            headers={headers.MSG_ID: message_id},
        )
        if not ack.duplicate:
            logger.debug("schedule {}: tick {} enqueued", schedule.name, iso(tick))

    def next_tick(self, schedule: Schedule, cadence: Cadence) -> float | None:
        return None if schedule.paused else self._next_wake(schedule, cadence)

    async def stop(self) -> None:
        tasks = [running.task for running in self._running.values()]
        if self._watch is not None:
            tasks.append(self._watch)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, PyatsRoError) else f"not a schedule definition: {exc}"


class TickWorker(WorkQueueWorker):
    """Runs enqueued ticks, one replica each, like durable jobs."""

    def __init__(
        self,
        client: Client,
        handler: RequestHandler,
        store: ScheduleStore,
        subjects: Subjects,
        settings: SchedulesSettings,
        metrics: ServiceMetrics,
        names: TickNames,
        ack_wait: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            client,
            QueueSettings(
                stream=settings.stream,
                subject=subjects.ticks_wildcard,
                consumer=CONSUMER,
                ack_wait=ack_wait,
                max_deliver=5,
                concurrency=settings.concurrency,
                max_age=24 * 3600.0,
                duplicate_window=max(120.0, settings.catch_up + 60.0),
                variables="PYATS_SCHEDULES_*",
            ),
        )
        self._handler = handler
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._names = names
        self._clock = clock

    async def _process(self, message: Msg) -> None:
        try:
            tick = msgspec.json.decode(message.data, type=Tick)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.error("not a tick on {}; dropped", message.subject)
            await message.term()
            return
        try:
            stored = await self._store.get(tick.requester, tick.name)
        except (msgspec.DecodeError, msgspec.ValidationError):
            stored = None  # a definition that is not one (written around the service) does not run
        if stored is None or stored.schedule.paused:
            logger.info(
                "tick {} of {} skipped: the schedule is {}",
                iso(tick.tick),
                tick.name,
                "gone" if stored is None else "paused",
            )
            await message.term()
            return
        with logger.contextualize(requester=tick.requester):
            await self._run(message, tick, stored.schedule)

    async def _run(self, message: Msg, tick: Tick, schedule: Schedule) -> None:
        request_id = tick_request_id(tick.requester, tick.name, tick.tick)
        self._names.add(request_id, tick.name)
        self._observe_lag(schedule, tick)
        data = msgspec.json.encode(tick_request(schedule, request_id))
        sink = JobSink()
        logger.info("tick {} of schedule {} (delivery {})", iso(tick.tick), tick.name, message.metadata.num_delivered)
        work = self._handler.handle(data, tick.requester, request_id, sink, endpoint=Endpoint.TICKS)
        if await self.held(message, work, f"tick {iso(tick.tick)} of {tick.name}"):
            await self._finish(message, tick, sink)

    async def _finish(self, message: Msg, tick: Tick, sink: JobSink) -> None:
        if sink.failure is not None:
            # a definition that no longer passes (inventory or policy changed) is not tried again
            logger.error("tick {} of {} refused: {}", iso(tick.tick), tick.name, sink.failure.message)
            await self.settle_refused(message, sink.failure)
            return
        await message.ack()
        self._metrics.ticks_run.labels(tick.name).inc()
        outcome = sink.outcome
        logger.info(
            "tick {} of {} done: {}/{} devices ok",
            iso(tick.tick),
            tick.name,
            outcome.successful_devices if outcome else 0,
            outcome.total_devices if outcome else 0,
        )

    def _observe_lag(self, schedule: Schedule, tick: Tick) -> None:
        due_at = tick.tick + jitter_of(tick.requester, tick.name, tick.tick, schedule.jitter)
        lag = max(0.0, self._clock() - due_at)
        self._metrics.tick_lag.observe(lag)
        if lag > self._settings.late_after:
            self._metrics.ticks_late.labels(tick.name).inc()
            logger.warning("tick {} of {} starts {:.1f}s late", iso(tick.tick), tick.name, lag)


async def wait_ready(ready: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), timeout)
    return ready.is_set()
