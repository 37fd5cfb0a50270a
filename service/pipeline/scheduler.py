"""The one sync/async crossing: device work goes to a bounded, shared thread pool.

Unicon is synchronous, so each device runs in a worker thread; the event loop only
awaits futures, so ``$SRV.PING`` and other requests stay responsive. The pool is shared
by all requests; each request may use at most ``max_parallel_per_request`` workers.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from loguru import logger

from service.contract.messages import DeviceResult
from service.domain.models import DeviceTarget, ExecutionPlan
from service.errors import ErrorCode
from service.pipeline.rate_limit import LoginLimiter
from service.pipeline.runner import DeviceRunner

ResultCallback = Callable[[DeviceResult], Awaitable[None]]


class Scheduler:
    def __init__(
        self,
        runner: DeviceRunner,
        max_workers: int,
        max_parallel_per_request: int,
        login_limiter: LoginLimiter | None = None,
    ) -> None:
        self._runner = runner
        self._logins = login_limiter or LoginLimiter(0)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="device")
        self._max_workers = max_workers
        self._per_request = max_parallel_per_request
        self._busy = 0

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def busy(self) -> int:
        return self._busy

    async def run(self, plan: ExecutionPlan, on_result: ResultCallback | None = None) -> list[DeviceResult]:
        """Run every device of ``plan``; results come back in request order."""
        gate = asyncio.Semaphore(min(self._per_request, self._max_workers))

        async def one(target: DeviceTarget) -> DeviceResult:
            async with gate:
                await self._logins.wait()
                result = await self._run_device(plan, target)
            if on_result is not None:
                await on_result(result)
            return result

        return list(await asyncio.gather(*(one(target) for target in plan.targets)))

    async def _run_device(self, plan: ExecutionPlan, target: DeviceTarget) -> DeviceResult:
        loop = asyncio.get_running_loop()
        with logger.contextualize(device=target.hostname):
            # run_in_executor does not carry context variables; copy them so log lines
            # from the worker thread keep the request id and device.
            context = contextvars.copy_context()
            call = functools.partial(
                context.run,
                self._runner.run,
                plan.request_id,
                target,
                plan.commands,
                plan.output_format,
                plan.timeouts,
            )
            self._busy += 1
            try:
                return await loop.run_in_executor(self._pool, call)
            except Exception as exc:  # noqa: BLE001 - a bug in a device adapter must not lose the other devices
                logger.opt(exception=exc).error("device worker crashed: {}", type(exc).__name__)
                return DeviceResult(
                    request_id=plan.request_id,
                    hostname=target.hostname,
                    port=target.port,
                    os=target.os.value,
                    success=False,
                    commands=[],
                    error=f"internal error in the device worker ({type(exc).__name__})",
                    error_code=ErrorCode.INTERNAL_ERROR,
                )
            finally:
                self._busy -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
