"""The device engine: warm sessions, the runner and the scheduler's threads, built the same
way for the front's own process (no device workers) and for each device worker."""

from __future__ import annotations

import asyncio

from service.config import Settings
from service.domain.models import DeviceTarget
from service.pipeline.ports import DeviceSessionFactory, OutputParser, PipelineMetrics
from service.pipeline.rate_limit import LoginLimiter
from service.pipeline.result_parser import ResultParser
from service.pipeline.runner import ConnectObserver, DeviceRunner
from service.pipeline.scheduler import Scheduler, SchedulerLimits
from service.pipeline.session_pool import SessionPool


def build_engine(
    settings: Settings,
    factory: DeviceSessionFactory,
    parser: OutputParser,
    metrics: PipelineMetrics,
    login_rate: float | None = None,
    on_connect: ConnectObserver | None = None,
) -> tuple[Scheduler, SessionPool]:
    """``login_rate``: new logins per second for this engine (the service's, by default);
    ``on_connect``: told of every usable session too (a device worker reports them to its front)."""
    sessions = SessionPool(factory, settings.sessions.idle_ttl, settings.sessions.max_warm)

    def connected(request_id: str, target: DeviceTarget, seconds: float, reused: bool) -> None:
        metrics.observe_connect(target.os, seconds, reused)
        if on_connect is not None:
            on_connect(request_id, target, seconds, reused)

    runner = DeviceRunner(sessions, settings.retries.count, settings.retries.delay, on_connect=connected)
    scheduler = Scheduler(
        runner,
        ResultParser(parser, settings.parsing.max_bytes),
        sessions,
        SchedulerLimits(
            max_workers=settings.concurrency.max_concurrent_devices,
            max_parallel_per_request=settings.concurrency.max_parallel_per_request,
            max_sessions_per_device=settings.concurrency.max_sessions_per_device,
            queue_timeout=settings.timeouts.queue,
            request_timeout=settings.timeouts.request,
            parse_workers=settings.parsing.workers,
        ),
        LoginLimiter(settings.concurrency.login_rate_per_second if login_rate is None else login_rate),
        on_queue_wait=metrics.observe_queue_wait,
    )
    return scheduler, sessions


async def sweep_idle_sessions(sessions: SessionPool, idle_ttl: float) -> None:
    """Close warm sessions idle past their TTL, off the event loop, until cancelled."""
    loop = asyncio.get_running_loop()
    interval = max(1.0, min(10.0, idle_ttl / 4 or 10.0))
    while True:
        await asyncio.sleep(interval)
        await loop.run_in_executor(None, sessions.sweep)
