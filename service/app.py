"""Wires the parts together; start-up and ordered shutdown.

Shutdown order: stop intake -> finish in-flight requests up to the grace period
(each still gets a reply) -> stop device workers -> drain NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any

from loguru import logger

from service import __version__
from service.config import Settings
from service.contract.errors import ConfigError
from service.contract.messages import Schedule
from service.device.inventory import InventoryStore
from service.domain.changes import SHIPPED_RULES, ChangeRules
from service.domain.models import DeviceOS
from service.domain.schedules import Cadence
from service.observability.health import HealthServer
from service.observability.logging import route_library_logger
from service.observability.metrics import ServiceMetrics
from service.pipeline.change_rules_file import load_change_rules
from service.pipeline.engine import build_engine, sweep_idle_sessions
from service.pipeline.handler import RequestHandler
from service.pipeline.policy_file import load_policy
from service.pipeline.ports import DeviceSessionFactory, OutputParser, ResultPublisher
from service.pipeline.rate_limit import RequesterLimiter
from service.pipeline.schedule_checks import ScheduleLimits, check_schedule
from service.transport.changes import ChangeDetector, ChangeTrackingPublisher, ensure_changes_stream
from service.transport.connection import BusClient, connect
from service.transport.endpoint import ExecuteService, guard_discovery_replies
from service.transport.jobs import JobSettings, JobWorker
from service.transport.large_outputs import LargeOutputs
from service.transport.results import NatsResultPublisher, StreamSettings, ensure_results_stream
from service.transport.schedule_desk import ScheduleDesk
from service.transport.schedule_store import ScheduleStore
from service.transport.schedules import ScheduleClock, TickNames, TickWorker
from service.transport.streams import JetStreamUnavailableError
from service.transport.subjects import Subjects, sanitize_token
from service.workers.directory import WorkerDirectory
from service.workers.remote import WORKER_GRACE, InternalSubjects, NoDeviceLayer, RemoteDevices
from service.workers.supervisor import WorkerSupervisor

if TYPE_CHECKING:
    from service.device.unicon_session import UniconSessionFactory


class App:
    def __init__(
        self,
        settings: Settings,
        factory: DeviceSessionFactory | None = None,
        parser: OutputParser | None = None,
        env_file: str | None = None,
    ) -> None:
        self.settings = settings
        # an injected device layer (tests, embedding) runs here; otherwise device workers do the device work
        self.uses_workers = settings.workers.enabled and factory is None
        self._own_devices: UniconSessionFactory | None = None  # built here, so closed here
        if self.uses_workers:
            factory = parser = NoDeviceLayer()
        elif factory is None or parser is None:
            from service.device.layer import device_layer  # here: a front with device workers loads no Unicon

            default_factory, default_parser = device_layer(settings, route_library_logger)
            self._own_devices = default_factory
            factory = factory or default_factory
            parser = parser or default_parser
        self.parser = parser
        self.metrics = metrics = ServiceMetrics()
        self.inventory = InventoryStore(settings.inventory.file)
        self.scheduler, self.sessions = build_engine(settings, factory, parser, metrics)
        self.workers: WorkerDirectory | None = None
        self.metrics.workers.set(settings.concurrency.max_concurrent_devices)
        self.metrics.busy_workers.set_function(lambda: self.scheduler.busy)
        self.metrics.queued_devices.set_function(lambda: self.scheduler.queued)
        if self.uses_workers:
            self.metrics.warm_sessions.set_function(lambda: self.remote.warm_sessions() if self.remote else 0)
            self.metrics.watch_logins(lambda: (self._logins, self._reuses))
            self.metrics.watch_workers(lambda: self.workers, lambda: self.remote)
        else:
            self.metrics.warm_sessions.set_function(self.sessions.idle_count)
            self.metrics.watch_logins(lambda: (self.sessions.logins, self.sessions.reuses))
        self.remote: RemoteDevices | None = None
        self.supervisor: WorkerSupervisor | None = None
        self._internal: BusClient | None = None
        self._logins = self._reuses = 0  # sessions the device workers used for this front
        self._env_file = env_file
        self.handler = RequestHandler(
            self.scheduler,
            settings.limits(),
            settings.timeouts.by_phase(),
            self.metrics,
            RequesterLimiter(),
            load_policy(settings.policy.file, settings.policy.rate_rule(), settings.policy.redact_outputs),
            inventory=lambda: self.inventory.current,
            tick_max_devices=settings.schedules.max_devices,
        )
        self.subjects = Subjects(settings.bus.subject_prefix, settings.bus.trust_request_info)
        self.ready = asyncio.Event()
        self._service: ExecuteService | None = None
        self.outputs: LargeOutputs | None = None
        self._connected = False
        self._jetstream_ok: bool | None = None  # None: results are not kept, nothing to check
        self.tick_names = TickNames()  # request id -> schedule, for the change events of ticks run here
        self._parsers_warm = False  # PYATS_PARSER_PREWARM loaded: until then a cold request shares the CPU with it

    def worker_rows(self) -> list[dict[str, Any]]:
        """The live device workers as ``pyats-ro status`` shows them."""
        if self.workers is None:
            return []
        counts = self.workers.map.counts()
        return [
            {
                "id": worker,
                "host": beat.host,
                "pid": beat.pid,
                "partitions": counts.get(worker, 0),
                "busy": beat.busy,
                "capacity": beat.capacity,
                "warm_sessions": beat.warm_sessions,
                "jobs": beat.jobs,
            }
            for worker, beat in sorted(self.workers.live.items())
        ]

    def _worker_connect(self, os: DeviceOS, seconds: float, reused: bool) -> None:
        """A device worker used a session for one of our devices (as its answer says)."""
        self.metrics.observe_connect(os, seconds, reused)
        if reused:
            self._reuses += 1
        else:
            self._logins += 1

    async def _start_workers(self) -> None:
        """Device workers: start this host's own, then follow every worker's heartbeats."""
        settings = self.settings
        internal = InternalSubjects(settings.bus.subject_prefix, settings.workers.group)
        front = f"{socket.gethostname()}-{os.getpid()}"

        def state(connected: bool) -> None:
            if connected and self.remote is not None:
                self.remote.reconnected()  # answers sent while NATS was away are lost: ask again

        client = await connect(
            settings,
            f"{settings.bus.service_name}-front-{front}",
            state,
            inbox_prefix=internal.inbox_prefix(sanitize_token(front)),
        )
        self._internal = client
        self.workers = WorkerDirectory(
            client, internal.heartbeats, 3 * settings.workers.heartbeat, settings.workers.heartbeat
        )
        await self.workers.start()
        self.remote = RemoteDevices(
            client,
            self.workers,
            internal,
            settings.workers.wait,
            WORKER_GRACE,
            on_connect=self._worker_connect,
            leave_grace=settings.shutdown.grace + WORKER_GRACE,  # a worker that leaves has that long to finish
        )
        self.scheduler.remote = self.remote
        count = settings.workers.processes()
        if count:
            # the workers read the same settings; the NATS URL may have been filled in here (--with-nats)
            urls = {"PYATS_NATS_URL": ",".join(settings.nats.url)}
            self.supervisor = WorkerSupervisor(count, sanitize_token(front), self._env_file, urls)
            self.supervisor.start()
            logger.info("started {} device worker process(es)", count)
        if await self.workers.wait_for_worker(settings.workers.wait, max(count, 1)):
            logger.info("{} device worker(s) live", len(self.workers.live))
        else:
            logger.warning("no device worker is live yet; devices wait up to {:g}s for one", settings.workers.wait)

    async def _stop_workers(self) -> None:
        if self.supervisor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.supervisor.stop, self.settings.shutdown.grace)
        if self.workers is not None:
            await self.workers.stop()
        if self._internal is not None:
            await self._internal.drain()

    def reload(self) -> None:
        """SIGHUP: re-read the inventory and the requester policy; keep the old ones if broken."""
        self.inventory.reload()
        try:
            self.handler.policy = load_policy(
                self.settings.policy.file, self.settings.policy.rate_rule(), self.settings.policy.redact_outputs
            )
            logger.info("requester policy reloaded")
        except ConfigError as exc:
            logger.error("policy reload failed, keeping the last good one: {}", exc.message)

    async def _watch_inventory(self) -> None:
        interval = self.settings.inventory.poll_interval
        if self.inventory.path is None or interval <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if self.inventory.changed_on_disk():
                await loop.run_in_executor(None, self.inventory.reload)

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected

    async def _probe_jetstream(self, client: BusClient) -> None:
        """Keep /readyz and ``pyats_jetstream_available`` honest about JetStream after start-up."""
        while True:
            await asyncio.sleep(self.settings.metrics.readiness_probe_interval)
            try:
                await asyncio.wait_for(client.jetstream().account_info(), timeout=2.0)
                ok = True
            except Exception:  # noqa: BLE001 - any failure means results are not being stored now
                ok = False
            if ok != self._jetstream_ok:
                (logger.info if ok else logger.error)("JetStream is {}", "reachable again" if ok else "not reachable")
            self._jetstream_ok = ok
            self.metrics.jetstream_available.set(1 if ok else 0)

    def readiness(self) -> dict[str, bool]:
        """What /readyz reports; every value must be true to be ready."""
        settings = self.settings
        # the watchdog frees a worker at the device deadline plus its grace; allow a margin on top
        stall_after = settings.timeouts.device + settings.timeouts.connect + 30.0
        checks = {
            "nats_connected": self._connected,
            "serving": self._service is not None and self.ready.is_set(),
            "pool": not self.scheduler.wedged(stall_after),
            "parsers": self._parsers_warm,
        }
        if self.uses_workers:
            checks["workers"] = self.workers is not None and bool(self.workers.live)
        if self._jetstream_ok is not None:
            checks["jetstream"] = self._jetstream_ok
        return checks

    async def run(self, stop: asyncio.Event) -> None:
        """Start every part, serve until ``stop``, then stop them in reverse order.

        Each part is entered on one ``AsyncExitStack`` right after it starts, so a part that
        fails to start (a ``ConfigError`` from stream setup, NATS down) leaves nothing behind:
        what started before it is stopped, in reverse order, before the error propagates.
        """
        logger.info("pyats-ro {} starting", __version__)
        async with contextlib.AsyncExitStack() as stack:
            await self._start(stack)
            self.ready.set()
            await stop.wait()
            logger.info("stopping: no new requests")
        logger.info("stopped")

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        """The start-up steps in order; each pushes how to undo it."""
        settings = self.settings
        self._start_health(stack)
        self._start_prewarm(stack)
        client = await self._connect(stack)
        await self._start_results(stack, client)
        self._start_background(stack, client)
        jobs = await self._start_jobs(stack, client)
        desk, ticks = await self._start_schedules(stack, client)
        if self.uses_workers:  # after everything that may refuse to start
            stack.push_async_callback(self._stop_workers)
            await self._start_workers()
        self._service = service = ExecuteService(
            client,
            self.handler,
            self.subjects,
            settings.bus.service_name,
            settings.bus.queue_group,
            self.metrics,
            settings.reply_rule(),
            outputs=self.outputs,
            results_stream=settings.results.stream,
            workers=self.worker_rows if self.uses_workers else None,
            schedules=desk,
        )
        stack.push_async_callback(self._drain, service, jobs, ticks)
        await service.start()

    def _start_health(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        if not settings.metrics.port:
            return
        health = HealthServer(settings.metrics.host, settings.metrics.port, self.metrics.registry, self.readiness)
        health.start()
        stack.callback(health.stop)
        logger.info("metrics and health on http://{}:{}/metrics", settings.metrics.host, health.port)

    def _start_prewarm(self, stack: contextlib.AsyncExitStack) -> None:
        """Genie's parser indexes load in the background; shutdown waits for that thread."""
        pairs = [] if self.uses_workers else self.settings.parsing.prewarm_pairs()  # the workers parse, not the front
        prewarm = asyncio.get_running_loop().run_in_executor(None, self.parser.prewarm, pairs)
        prewarm.add_done_callback(lambda _: setattr(self, "_parsers_warm", True))

        async def wait_prewarm() -> None:
            with contextlib.suppress(Exception):
                await prewarm

        stack.push_async_callback(wait_prewarm)

    async def _connect(self, stack: contextlib.AsyncExitStack) -> BusClient:
        settings = self.settings
        client = await connect(settings, f"{settings.bus.service_name}-{__version__}", self._set_connected)

        async def close() -> None:
            await client.drain()
            self._connected = False

        stack.push_async_callback(close)
        guard_discovery_replies(client, settings.reply_rule(), self.metrics)
        return client

    async def _start_results(self, stack: contextlib.AsyncExitStack, client: BusClient) -> None:
        """The results stream (without JetStream: say so and publish results anyway), the
        large-output bucket and the publisher; the device layer's shutdown comes before the
        publisher's close, so every last result is still published."""
        settings = self.settings
        jetstream = settings.results.jetstream
        if jetstream:
            try:
                await ensure_results_stream(client.jetstream(), self.subjects, StreamSettings.of(settings.results))
            except JetStreamUnavailableError:
                logger.warning("JetStream is not available: results are published on their subjects but not kept")
                jetstream = False
        self.metrics.jetstream_available.set(1 if jetstream else 0)
        self._jetstream_ok = True if jetstream else None
        self.outputs = await LargeOutputs.start(client, jetstream, settings.results.max_age, settings.results.storage)
        publisher = NatsResultPublisher(
            client, self.subjects, self.metrics, jetstream, settings.results.buffer, outputs=self.outputs
        )
        publisher.start()
        stack.push_async_callback(publisher.close, 5.0)
        self.handler.publisher = await self._track_changes(stack, client, publisher) if jetstream else publisher
        stack.push_async_callback(self._stop_device_layer)

    async def _track_changes(
        self, stack: contextlib.AsyncExitStack, client: BusClient, publisher: ResultPublisher
    ) -> ResultPublisher:
        """Change events on top of the results publisher; its queue is compared out before the
        publisher closes (the device layer stops first, so the last results are compared too)."""
        settings = self.settings
        if not settings.changes.enabled:
            return publisher
        js = client.jetstream()
        try:
            kv = await ensure_changes_stream(js, self.subjects, settings.changes, settings.results.duplicate_window)
        except JetStreamUnavailableError:
            logger.warning("JetStream is not available: no change events")
            return publisher
        detector = ChangeDetector(
            js,
            kv,
            self.subjects,
            ChangeRules(SHIPPED_RULES).extended(load_change_rules(settings.changes.rules_file)),
            self.metrics,
            lambda: self.inventory.current,
            settings.changes.max_paths,
        )
        detector.start()
        stack.push_async_callback(detector.close, 5.0)
        return ChangeTrackingPublisher(publisher, detector, settings.changes.scope, self.tick_names.get)

    def _start_background(self, stack: contextlib.AsyncExitStack, client: BusClient) -> None:
        """The JetStream probe, the idle-session sweeper and the inventory watcher."""
        tasks = [
            asyncio.create_task(sweep_idle_sessions(self.sessions, self.settings.sessions.idle_ttl)),
            asyncio.create_task(self._watch_inventory()),
        ]
        if self._jetstream_ok:
            tasks.append(asyncio.create_task(self._probe_jetstream(client)))

        async def cancel() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(cancel)

    async def _start_jobs(self, stack: contextlib.AsyncExitStack, client: BusClient) -> JobWorker | None:
        settings = self.settings
        if not (settings.jobs.enabled and self._jetstream_ok):
            return None
        jobs = JobWorker(
            client,
            self.handler,
            self.subjects,
            JobSettings.of(settings.jobs, max_age=settings.results.max_age),
            settings.reply_rule(),
            self.metrics,
        )
        stack.push_async_callback(jobs.stop, 0.0)  # a start that fails half-way leaves no pull loop
        await jobs.start()
        return jobs

    async def _start_schedules(
        self, stack: contextlib.AsyncExitStack, client: BusClient
    ) -> tuple[ScheduleDesk | None, TickWorker | None]:
        """The schedules' KV buckets, the tick runner (one replica per tick) and the clock that
        enqueues ticks; the desk answers ``<prefix>.schedules.<requester>``."""
        settings = self.settings
        if not (settings.schedules.enabled and self._jetstream_ok):
            return None, None
        s = settings.schedules
        store = await ScheduleStore.open(client.jetstream(), s.bucket, s.state_bucket)
        limits = ScheduleLimits(min_interval=s.min_interval, max_per_requester=s.max_per_requester)
        ticks = TickWorker(
            client, self.handler, store, self.subjects, s, self.metrics, self.tick_names, settings.jobs.ack_wait
        )
        stack.push_async_callback(ticks.stop, 0.0)  # a start that fails half-way leaves no pull loop
        await ticks.start()

        def check(schedule: Schedule, requester: str | None = None) -> Cadence:
            return check_schedule(schedule, requester or schedule.requester or "", self.handler, limits)

        clock = ScheduleClock(client, store, self.subjects, s, self.metrics, check)
        clock.start()
        stack.push_async_callback(clock.stop)
        return ScheduleDesk(store, clock, check, limits), ticks

    async def _drain(self, service: ExecuteService, jobs: JobWorker | None, ticks: TickWorker | None) -> None:
        """Stop intake, then give jobs, ticks and requests in flight the shutdown grace (each still gets a reply)."""
        grace = self.settings.shutdown.grace
        self.ready.clear()
        await service.stop_intake()
        await asyncio.gather(*(worker.stop(grace) for worker in (jobs, ticks) if worker is not None))
        cut = await service.wait_in_flight(grace)
        if cut:
            logger.warning("{} request(s) cut off at shutdown were answered with service_unavailable", cut)

    async def _stop_device_layer(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.scheduler.shutdown)
        if self._own_devices is not None:
            self._own_devices.close()  # its jump host sessions
