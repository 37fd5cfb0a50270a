"""One device worker process: ``pyats-ro worker``.

It logs in, runs the commands and parses, for the devices whose partitions it owns, with
the same engine as a front without workers (warm sessions, the per-device session limit,
login pacing, the watchdog). It listens on ``<prefix>.internal.work.<id>``, beats on
``<prefix>.internal.workers``, and answers each job on the front's internal inbox. When the
partition map changes it closes its idle sessions of the devices it no longer owns.

Stopping (SIGTERM): it says it is leaving (its partitions move at once), stops taking
jobs, finishes the devices it has up to ``PYATS_SHUTDOWN_GRACE``, and closes its sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg

from service import __version__
from service.config import Settings
from service.contract import headers
from service.contract.errors import DeviceError, ErrorCode
from service.contract.messages import DeviceResult
from service.domain.models import DeviceTarget
from service.observability.metrics import ServiceMetrics
from service.pipeline.engine import build_engine, sweep_idle_sessions
from service.pipeline.ports import DeviceSessionFactory, OutputParser
from service.pipeline.runner import device_result
from service.transport.connection import connect
from service.workers.directory import WorkerDirectory
from service.workers.governor import ConcurrencyGovernor
from service.workers.partition import PartitionMap
from service.workers.protocol import DeviceJob, Heartbeat, decode_job, encode, plan_of
from service.workers.remote import CONNECTS_HEADER, PART_HEADER, WARM_HEADER, InternalSubjects

PART_OVERHEAD = 4096  # headers and framing kept free in each piece of a large result
GOVERNOR_INTERVAL = 0.1  # seconds between two looks at the CPU
GOVERNOR_START = 16  # devices at once before the first look
GOVERNOR_FLOOR = 4
ANSWERS_KEPT = 1024  # answers kept to send again: a front resends its jobs when NATS comes back
ANSWERS_KEPT_S = 120.0
ANSWERS_KEPT_BYTES = 64 << 20  # and at most this much of them: an answer may carry megabytes of output
JobKey = tuple[str, str, int, str]  # request id, host, port, the front's reply inbox


class DeviceWorker:
    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        factory: DeviceSessionFactory | None = None,
        parser: OutputParser | None = None,
        parent: int | None = None,
    ) -> None:
        self._parent = parent  # started by serve: stop when that process is gone (even after a kill -9)
        self._stop: asyncio.Event | None = None
        self._close_devices: Callable[[], None] | None = None  # the device layer built here, closed here
        if factory is None or parser is None:
            from service.device.layer import device_layer
            from service.observability.logging import route_library_logger

            default_factory, default_parser = device_layer(settings, route_library_logger)
            factory, parser = factory or default_factory, parser or default_parser
            self._close_devices = default_factory.close
        self.settings = settings
        self.worker_id = worker_id
        self.parser = parser
        self.metrics = ServiceMetrics()
        # the service's login rate is shared by the workers this host starts
        rate = settings.concurrency.login_rate_per_second / max(1, settings.workers.processes())
        self._connects: dict[tuple[str, str, int], list[tuple[float, bool]]] = {}
        # a front sends a job again when NATS comes back (an answer sent while it was away is lost):
        # one still running is not run twice, one answered lately is answered again from here
        self._running: set[JobKey] = set()
        self._answered: OrderedDict[JobKey, tuple[float, bytes, dict[str, str]]] = OrderedDict()
        self._answered_bytes = 0
        threads = settings.workers.threads or settings.concurrency.max_concurrent_devices
        engine_settings = settings.model_copy(
            update={
                "concurrency": settings.concurrency.model_copy(
                    update={"max_concurrent_devices": threads, "max_parallel_per_request": threads}
                )
            }
        )
        self.scheduler, self.sessions = build_engine(
            engine_settings, factory, parser, self.metrics, login_rate=rate, on_connect=self._connected
        )
        self.subjects = InternalSubjects(settings.bus.subject_prefix, settings.workers.group)
        self.governor = ConcurrencyGovernor(floor=min(GOVERNOR_FLOOR, threads), ceiling=threads)
        self.scheduler.set_limit(min(GOVERNOR_START, threads))
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: Client | None = None
        self._directory: WorkerDirectory | None = None
        self.jobs = 0
        self.instance = uuid.uuid4().hex

    def _connected(self, request_id: str, target: DeviceTarget, seconds: float, reused: bool) -> None:
        """Kept for the job's answer: the front counts logins and times connects from them."""
        self._connects.setdefault((request_id, target.hostname, target.port), []).append((seconds, reused))

    def heartbeat(self, leaving: bool = False) -> Heartbeat:
        return Heartbeat(
            worker=self.worker_id,
            instance=self.instance,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            capacity=self.scheduler.limit,
            busy=self.scheduler.busy,
            warm_sessions=self.sessions.idle_count(),
            jobs=self.jobs,
            leaving=leaving,
        )

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        self._stop = stop
        loop = asyncio.get_running_loop()
        prewarm = loop.run_in_executor(None, self.parser.prewarm, settings.parsing.prewarm_pairs())
        client = self._client = await connect(settings, f"{settings.bus.service_name}-worker-{self.worker_id}")
        directory = self._directory = WorkerDirectory(
            client, self.subjects.heartbeats, 3 * settings.workers.heartbeat, settings.workers.heartbeat
        )
        directory.listen(self._on_map)
        await directory.start()
        await prewarm  # a worker that answers jobs has its parsers loaded
        work = await client.subscribe(self.subjects.work(self.worker_id), cb=self._on_job)
        ping = await client.subscribe(f"{self.subjects.heartbeats}.ping", cb=self._on_ping)
        beats = asyncio.create_task(self._beat())
        sweeper = asyncio.create_task(sweep_idle_sessions(self.sessions, settings.sessions.idle_ttl))
        governing = asyncio.create_task(self._govern())
        logger.info(
            "device worker {} ready (up to {} devices at once, tuned to its CPU)",
            self.worker_id,
            self.scheduler.max_workers,
        )
        try:
            await stop.wait()
        finally:
            logger.info("device worker {} stopping: leaving, finishing {} device(s)", self.worker_id, len(self._tasks))
            await client.publish(self.subjects.heartbeats, encode(self.heartbeat(leaving=True)))
            with contextlib.suppress(Exception):
                await work.unsubscribe()
                await ping.unsubscribe()
            beats.cancel()
            sweeper.cancel()
            governing.cancel()
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=settings.shutdown.grace)
            await directory.stop()
            await loop.run_in_executor(None, self.scheduler.shutdown)
            if self._close_devices is not None:
                self._close_devices()  # its jump host sessions
            await client.drain()
            logger.info("device worker {} stopped", self.worker_id)

    async def _beat(self) -> None:
        assert self._client is not None
        while True:
            if self._parent is not None and os.getppid() != self._parent and self._stop is not None:
                logger.warning("device worker {}: the service that started it is gone; stopping", self.worker_id)
                self._stop.set()
                return
            with contextlib.suppress(Exception):  # a reconnecting client buffers; never fatal
                await self._client.publish(self.subjects.heartbeats, encode(self.heartbeat()))
            await asyncio.sleep(self.settings.workers.heartbeat)

    async def _govern(self) -> None:
        """Devices at once: as many as keep this process's core busy, not more (see governor)."""
        while True:
            await asyncio.sleep(GOVERNOR_INTERVAL)
            limit = self.governor.next_limit(self.scheduler.limit, self.scheduler.queued)
            if limit != self.scheduler.limit:
                logger.debug(
                    "devices at once {} -> {} (CPU {:.0%})", self.scheduler.limit, limit, self.governor.utilisation
                )
                self.scheduler.set_limit(limit)

    async def _on_ping(self, msg: Msg) -> None:
        assert self._client is not None
        await self._client.publish(self.subjects.heartbeats, encode(self.heartbeat()))

    def _on_map(self, old: PartitionMap, new: PartitionMap, gone: list[str], leaving: bool) -> None:
        """Let go of idle sessions to devices another worker owns now (their VTY lines)."""

        def elsewhere(hostname: str, port: int) -> bool:
            owner = new.owner(hostname, port)
            return owner is not None and owner != self.worker_id

        closed = self.sessions.close_devices(elsewhere)
        if closed:
            logger.info("closed {} idle session(s) of devices whose partitions moved away", closed)

    async def _on_job(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        started = time.monotonic()
        try:
            job = decode_job(msg.data)
        except Exception:  # noqa: BLE001 - never echo the body: it holds credentials
            logger.error("refused a device job it cannot read (a front of another version?)")
            if msg.reply:  # the front fails that device at once instead of waiting out its deadline
                await self._reply(msg.reply, b"", {headers.REFUSED: f"worker {self.worker_id} ({__version__})"})
            return
        key: JobKey = (job.request_id, job.target.hostname, job.target.port, msg.reply or "")
        if await self._known(key):
            return
        self.jobs += 1
        self._running.add(key)
        try:
            await self._work(job, key, msg.reply, started)
        finally:
            self._running.discard(key)

    async def _known(self, key: JobKey) -> bool:
        """A job sent again: still running (its answer goes to the same inbox) or answered lately
        (answered again, not run again)."""
        if key in self._running:
            return True
        now = time.monotonic()
        while self._answered and (next(iter(self._answered.values()))[0] < now - ANSWERS_KEPT_S):
            self._forget_oldest_answer()
        kept = self._answered.get(key)
        if kept is None:
            return False
        await self._reply(key[3], kept[1], kept[2])
        return True

    def _forget_oldest_answer(self) -> None:
        _, (_, body, _) = self._answered.popitem(last=False)
        self._answered_bytes -= len(body)

    async def _work(self, job: DeviceJob, key: JobKey, reply: str | None, started: float) -> None:
        try:
            result = await self._run(job)
        except Exception as exc:  # noqa: BLE001 - a bug fails this device, not the worker
            logger.opt(exception=exc).error("device job crashed: {}", type(exc).__name__)
            plan = plan_of(job)
            result = device_result(
                job.request_id,
                plan.targets[0],
                [],
                time.monotonic() - started,
                DeviceError(ErrorCode.INTERNAL_ERROR, f"internal error ({type(exc).__name__})"),
            )
        connects = self._connects.pop((job.request_id, job.target.hostname, job.target.port), [])
        if reply:
            answer = {CONNECTS_HEADER: json.dumps(connects), WARM_HEADER: str(self.sessions.idle_count())}
            body = encode(result)
            self._answered[key] = (time.monotonic(), body, answer)
            self._answered_bytes += len(body)
            while len(self._answered) > ANSWERS_KEPT or self._answered_bytes > ANSWERS_KEPT_BYTES:
                self._forget_oldest_answer()
            await self._reply(reply, body, answer)

    async def _run(self, job: DeviceJob) -> DeviceResult:
        plan = plan_of(job)
        with logger.contextualize(request_id=job.request_id, requester=job.requester):
            results = await self.scheduler.run(plan, bucket=f"{job.requester}/{job.request_id}")
        return results[0]

    async def _reply(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        """One message, or pieces of at most the server's max_payload (the last carries ``headers``)."""
        assert self._client is not None
        size = max(1024, self._client.max_payload - PART_OVERHEAD)
        if len(body) <= size:
            await self._client.publish(subject, body, headers=headers)
            return
        total = (len(body) + size - 1) // size
        for index in range(total):
            piece = body[index * size : (index + 1) * size]
            last = headers if index + 1 == total else {}
            await self._client.publish(subject, piece, headers={**last, PART_HEADER: f"{index + 1}/{total}"})


def run_worker(settings: Settings, worker_id: str, parent: int | None = None) -> int:
    import signal

    from service.device import prepare_process

    prepare_process()  # before the device layer is built (and Unicon imported)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await DeviceWorker(settings, worker_id, parent=parent).run(stop)

    asyncio.run(main())
    return 0


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"
