"""The one sync/async crossing: device work goes to a bounded, shared thread pool.

Unicon is synchronous, so each device runs in a worker thread; the event loop only
awaits futures, so ``$SRV.PING`` and other requests stay responsive.

- One pool of ``max_workers`` slots is shared by every request. A free slot goes to the
  request with the fewest devices running (least recently served among equals), so a
  1-device request takes the next free slot even behind a 500-device one; a request also
  never holds more than ``max_parallel_per_request``.
- With device workers (``remote``) the slots are devices in flight to the workers, which
  keep the per-device session limits, login pacing, threads and parsers themselves.
- At most ``max_sessions_per_device`` sessions per host:port (devices have few VTY lines).
- New logins are paced (``LoginLimiter``); reused warm sessions are not.
- Deadlines by phase: queue wait, request, device (a watchdog tears down the session
  of a worker that overruns), with connect and command deadlines inside the runner.
- Parsing runs on a separate small pool, so device workers and VTY lines are freed early.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger

from service.contract.errors import DeviceError, ErrorCode
from service.contract.messages import DeviceResult
from service.domain.models import DeviceTarget, ExecutionPlan, Timeouts
from service.pipeline.rate_limit import LoginLimiter
from service.pipeline.result_parser import ResultParser
from service.pipeline.runner import AbortHandle, DeviceRunner, device_result
from service.pipeline.session_pool import SessionPool

ResultCallback = Callable[[DeviceResult], Awaitable[None]]


class RemoteRunner(Protocol):
    """Runs one device elsewhere (a device worker process) and returns its result."""

    async def run(self, plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceResult: ...


@dataclass(frozen=True, slots=True)
class SchedulerLimits:
    max_workers: int
    max_parallel_per_request: int
    max_sessions_per_device: int
    queue_timeout: float
    request_timeout: float
    parse_workers: int
    watchdog_grace: float = 5.0


@dataclass(slots=True, eq=False)
class _Job:
    plan: ExecutionPlan
    target: DeviceTarget
    future: asyncio.Future[DeviceResult]
    enqueued: float
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Request:
    """A fairness bucket: one request's devices (or, in a device worker, every device of one
    front request, which arrive one plan at a time)."""

    deadline: float
    bucket: str | None = None
    jobs: deque[_Job] = field(default_factory=deque)
    running: int = 0
    users: int = 0
    served: int = -1  # when it last got a slot (a serial number; -1: never)


class Scheduler:
    def __init__(
        self,
        runner: DeviceRunner,
        result_parser: ResultParser,
        pool: SessionPool,
        limits: SchedulerLimits,
        login_limiter: LoginLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_queue_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._on_queue_wait = on_queue_wait
        self._runner = runner
        self._result_parser = result_parser
        self._pool = pool
        self._limits = limits
        self._logins = login_limiter or LoginLimiter(0)
        self._clock = clock
        self._workers = ThreadPoolExecutor(max_workers=limits.max_workers, thread_name_prefix="device")
        self._parsers = ThreadPoolExecutor(max_workers=limits.parse_workers, thread_name_prefix="parse")
        self._requests: OrderedDict[int, _Request] = OrderedDict()
        self._buckets: dict[str, int] = {}
        self._serial = 0
        self._limit = limits.max_workers  # slots in use now; a device worker tunes it (set_limit)
        self._free = limits.max_workers
        self._device_gates: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._next_key = 0
        self._progress_at = clock()
        self._overrun: set[asyncio.Future[DeviceResult]] = set()  # worker threads the watchdog could not free yet
        self.queued = 0
        # set: every device goes to a device worker process, which keeps its own session limit,
        # login pacing, threads and parsers; this scheduler then only orders and times devices
        self.remote: RemoteRunner | None = None

    @property
    def max_workers(self) -> int:
        return self._limits.max_workers

    @property
    def busy(self) -> int:
        return self._limit - self._free

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        """Work on at most ``limit`` devices at once (1..max_workers); devices past it wait."""
        limit = max(1, min(limit, self._limits.max_workers))
        self._free += limit - self._limit
        self._limit = limit
        if self._free > 0 and self.queued:
            self._pump()

    def wedged(self, stall_after: float) -> bool:
        """Every worker thread is held by a device past its deadline, or devices are waiting, every
        worker is busy, and none has started or finished for ``stall_after`` s.

        Deadlines and the watchdog should make this impossible; /readyz reports it if it happens.
        """
        if len(self._overrun) >= self._limits.max_workers:
            return True  # every worker thread is held by a device past its deadline
        return self.queued > 0 and self._free <= 0 and self._clock() - self._progress_at > stall_after

    async def run(
        self, plan: ExecutionPlan, on_result: ResultCallback | None = None, bucket: str | None = None
    ) -> list[DeviceResult]:
        """Run every device of ``plan``; results come back in request order. Plans with the same
        ``bucket`` share one place in the line (a device worker gets a front request's devices
        one plan each, and must still treat them as one request).

        If cancelled (shutdown), devices not finished are reported as ``service_unavailable``.
        """
        loop = asyncio.get_running_loop()
        key, request = self._join(bucket)
        jobs = [_Job(plan, target, loop.create_future(), self._clock()) for target in plan.targets]
        request.jobs.extend(jobs)
        self.queued += len(jobs)
        self._pump()

        async def deliver(job: _Job) -> DeviceResult:
            result = await job.future
            if on_result is not None:
                await on_result(result)
            return result

        try:
            return list(await asyncio.gather(*(deliver(job) for job in jobs)))
        except asyncio.CancelledError:
            for job in jobs:
                if job.task is not None:
                    job.task.cancel()  # tears down the sessions of devices still running
            return [
                job.future.result()
                if job.future.done() and not job.future.cancelled()
                else _failed(
                    plan, job.target, ErrorCode.SERVICE_UNAVAILABLE, "the service stopped before this device finished"
                )
                for job in jobs
            ]
        finally:
            self._leave(key, request, jobs)

    def _join(self, bucket: str | None) -> tuple[int, _Request]:
        """The place in the line of ``bucket`` (a new one for a new bucket, or for no bucket)."""
        key = self._buckets.get(bucket) if bucket is not None else None
        request = self._requests.get(key) if key is not None else None
        if request is None or key is None:
            request = _Request(self._clock() + self._limits.request_timeout, bucket)
            key = self._next_key
            self._next_key += 1
            self._requests[key] = request
            if bucket is not None:
                self._buckets[bucket] = key
        request.users += 1
        return key, request

    def _leave(self, key: int, request: _Request, jobs: list[_Job]) -> None:
        """Forget this plan's devices still waiting; the last plan of a bucket gives up its place."""
        waiting = [job for job in request.jobs if job in jobs]
        self.queued -= len(waiting)
        for job in waiting:
            request.jobs.remove(job)
        request.users -= 1
        if request.users == 0:
            self._requests.pop(key, None)
            if request.bucket is not None:
                self._buckets.pop(request.bucket, None)

    def _pump(self) -> None:
        """Start waiting devices while slots are free. A free slot goes to the request with the
        fewest devices running (a request that just arrived has none), the one served longest
        ago among equals: a 1-device request sent during a 500-device one takes the next free slot."""
        cap = self._limits.max_parallel_per_request
        while self._free > 0:
            waiting = [
                (request.running, request.served, key)
                for key, request in self._requests.items()
                if request.jobs and request.running < cap
            ]
            if not waiting:
                return
            key = min(waiting)[2]  # fewest running, then served longest ago (or never)
            request = self._requests[key]
            request.served = self._serial
            self._serial += 1
            job = request.jobs.popleft()
            self.queued -= 1
            request.running += 1
            self._free -= 1
            self._progress_at = self._clock()
            job.task = asyncio.get_running_loop().create_task(self._start(request, job))

    async def _start(self, request: _Request, job: _Job) -> None:
        try:
            result = await self._run_job(request, job)
        except Exception as exc:  # noqa: BLE001 - a bug must fail one device, not the request
            logger.opt(exception=exc).error("device worker crashed: {}", type(exc).__name__)
            result = _failed(job.plan, job.target, ErrorCode.INTERNAL_ERROR, f"internal error ({type(exc).__name__})")
        finally:
            request.running -= 1
            self._free += 1
            self._progress_at = self._clock()
            self._pump()
        if not job.future.done():
            job.future.set_result(result)

    async def _run_job(self, request: _Request, job: _Job) -> DeviceResult:
        plan, target = job.plan, job.target
        now = self._clock()
        if self._on_queue_wait is not None:
            self._on_queue_wait(now - job.enqueued)
        if now - job.enqueued > self._limits.queue_timeout:
            return _failed(
                plan, target, ErrorCode.QUEUE_TIMEOUT, f"waited more than {self._limits.queue_timeout:g}s for a worker"
            )
        if now >= request.deadline:
            return _failed(
                plan, target, ErrorCode.REQUEST_TIMEOUT, "the request deadline passed before this device started"
            )
        if self.remote is not None:
            return await self.remote.run(plan, target, self._timeouts(plan, request.deadline))
        gate = self._device_gates.setdefault(
            (target.hostname, target.port), asyncio.Semaphore(self._limits.max_sessions_per_device)
        )
        async with gate:
            if not self._pool.has_warm(target):
                await self._logins.wait()
            result = await self._in_worker(plan, target, self._timeouts(plan, request.deadline))
        if plan.output_format.wants_parse or plan.redact:
            loop = asyncio.get_running_loop()
            call = functools.partial(
                contextvars.copy_context().run, self._result_parser.apply, result, plan.output_format, plan.redact
            )
            result = await loop.run_in_executor(self._parsers, call)
        return result

    def _timeouts(self, plan: ExecutionPlan, deadline: float) -> Timeouts:
        """The plan's deadlines, the device's cut to what is left of the request's."""
        remaining = deadline - self._clock()
        return Timeouts(
            connect=plan.timeouts.connect,
            command=plan.timeouts.command,
            device=max(0.001, min(plan.timeouts.device, remaining)),
        )

    async def _in_worker(self, plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceResult:
        loop = asyncio.get_running_loop()
        abort = AbortHandle()
        with logger.contextualize(device=target.hostname):
            # run_in_executor does not carry context variables; copy them so log lines
            # from the worker thread keep the request id and device.
            call = functools.partial(
                contextvars.copy_context().run,
                self._runner.run,
                plan.request_id,
                target,
                plan.commands,
                timeouts,
                abort,
            )
            future = loop.run_in_executor(self._workers, call)
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeouts.device + self._limits.watchdog_grace)
            except asyncio.CancelledError:
                abort.abort()  # shutdown: free the worker thread now
                raise
            except TimeoutError:
                logger.warning("device overran its deadline; tearing the session down")
                self._overrun.add(future)
                future.add_done_callback(self._overrun.discard)
                await loop.run_in_executor(None, abort.abort)
                return _failed(
                    plan,
                    target,
                    ErrorCode.DEVICE_TIMEOUT,
                    f"no result within the device deadline ({timeouts.device:g}s)",
                )

    def shutdown(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._parsers.shutdown(wait=True, cancel_futures=True)
        self._pool.close_all()


def _failed(plan: ExecutionPlan, target: DeviceTarget, code: ErrorCode, message: str) -> DeviceResult:
    return device_result(plan.request_id, target, [], 0.0, DeviceError(code, message))
