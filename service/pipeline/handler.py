"""One request from bytes to replies: decode, check policy, schedule, answer.

The handler knows nothing about NATS: it answers through a ``ReplySink`` that the
transport implements and unit tests fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from loguru import logger

from service.contract.codec import decode_request
from service.contract.errors import ErrorCode, PyatsRoError, RequestError
from service.contract.messages import DeviceResult, ExecuteRequest, ExecuteResponse, RequestSummary
from service.domain.ids import new_request_id
from service.domain.inventory import Inventory
from service.domain.models import Endpoint, ExecutionPlan, Timeouts
from service.domain.policy import Limits, build_plan, check_request_id
from service.domain.requester_policy import RateRule, RequesterPolicy, RequesterRules
from service.pipeline.ports import PipelineMetrics, ResultPublisher
from service.pipeline.rate_limit import RequesterLimiter
from service.pipeline.scheduler import Scheduler


class ReplySink(Protocol):
    async def device_result(self, result: DeviceResult) -> None:
        """One device finished (streamed replies only)."""
        ...

    async def summary(self, summary: RequestSummary) -> None:
        """All devices finished (streamed replies only); followed by ``end``."""
        ...

    async def end(self) -> None:
        """The empty end-of-stream marker."""
        ...

    async def response(self, response: ExecuteResponse) -> None:
        """The single aggregate reply."""
        ...

    async def error(self, error: PyatsRoError, request_id: str | None) -> None:
        """The request was refused or failed as a whole."""
        ...


PUBLISH_WAIT = 2.0


class RequestStats:
    """Counts for ``$SRV.STATS`` (nats.micro only sees the hand-off, not the work)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.seconds = 0.0

    def as_dict(self) -> dict[str, float | int]:
        done = self.requests - self.in_flight
        return {
            "requests": self.requests,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "average_latency_s": round(self.seconds / done, 4) if done > 0 else 0.0,
        }


class RequestHandler:
    def __init__(
        self,
        scheduler: Scheduler,
        limits: Limits,
        timeouts: Timeouts,
        metrics: PipelineMetrics,
        requester_limiter: RequesterLimiter | None = None,
        policy: RequesterPolicy | None = None,
        inventory: Callable[[], Inventory | None] = lambda: None,
        publisher: ResultPublisher | None = None,
        tick_max_devices: int | None = None,
    ) -> None:
        self._tick_max_devices = tick_max_devices  # a schedule's bound instead of the per-request one
        self._inventory = inventory
        self.publisher = publisher
        self._scheduler = scheduler
        self._requester_limiter = requester_limiter or RequesterLimiter()
        self.policy = policy or RequesterPolicy(RequesterRules(rate=RateRule(0, 0, 1.0)))
        self._limits = limits
        self._timeouts = timeouts
        self._metrics = metrics
        self.stats = RequestStats()

    async def handle(
        self,
        data: bytes,
        requester: str,
        header_request_id: str | None,
        sink: ReplySink,
        endpoint: Endpoint = Endpoint.EXECUTE,
    ) -> None:
        """Answer one request. For a stored endpoint (a job, a schedule's tick) the request is kept at rest: inline
        credentials are refused, and this returns only once every result is published."""
        started = time.monotonic()
        self._metrics.request_started()
        self.stats.requests += 1
        self.stats.in_flight += 1
        try:
            plan = await self._admit(data, requester, header_request_id, sink, endpoint)
            if plan is not None:
                with logger.contextualize(request_id=plan.request_id, requester=requester):
                    await self._execute(plan, sink, started, requester, endpoint)
        finally:
            self._metrics.request_ended()
            self.stats.in_flight -= 1
            self.stats.seconds += time.monotonic() - started

    async def _admit(
        self, data: bytes, requester: str, header_request_id: str | None, sink: ReplySink, endpoint: Endpoint
    ) -> ExecutionPlan | None:
        """The checked plan, or None once the refusal has been answered."""
        request_id = header_request_id if header_request_id and not check_request_id(header_request_id) else None
        try:
            request = decode_request(data, self._limits.max_payload_bytes, job=endpoint.stored)
            request_id = _request_id(request, request_id)
            return await self._plan(request, requester, request_id, endpoint)
        except PyatsRoError as exc:
            await self._refuse(exc, request_id, requester, sink, endpoint)
            return None

    def check(
        self, request: ExecuteRequest, requester: str, request_id: str, endpoint: Endpoint
    ) -> tuple[ExecutionPlan, RequesterRules]:
        """The safety rules and the requester's own rules, without taking any rate budget
        (a schedule is checked this way when it is added); raises ``PyatsRoError``."""
        plan = build_plan(
            request,
            requester=requester,
            request_id=request_id,
            limits=self._limits_for(endpoint),
            timeouts=self._timeouts,
            inventory=self._inventory(),
        )
        rules, source = self.policy.rules_for(requester)
        rules.check(requester, plan.commands, len(plan.targets), source)
        return plan, rules

    def _limits_for(self, endpoint: Endpoint) -> Limits:
        """Stored requests carry no credentials; a schedule's tick has its own device bound."""
        if not endpoint.stored:
            return self._limits
        limits = dataclasses.replace(self._limits, inline_credentials=False)
        if endpoint is Endpoint.TICKS and self._tick_max_devices is not None:
            limits = dataclasses.replace(limits, max_devices=self._tick_max_devices)
        return limits

    async def _plan(
        self, request: ExecuteRequest, requester: str, request_id: str, endpoint: Endpoint
    ) -> ExecutionPlan:
        """The safety rules, then the requester's own rules and rate; raises ``PyatsRoError``."""
        plan, rules = self.check(request, requester, request_id, endpoint)
        await self._requester_limiter.admit(endpoint, requester, len(plan.targets), rules.rate)
        return dataclasses.replace(plan, redact=rules.redact)

    async def _refuse(
        self, exc: PyatsRoError, request_id: str | None, requester: str, sink: ReplySink, endpoint: Endpoint
    ) -> None:
        if request_id is None and isinstance((exc.details or {}).get("request_id"), str):
            request_id = exc.details["request_id"]  # a body that failed to decode named its id
        with logger.contextualize(request_id=request_id or "-", requester=requester):
            logger.info("request refused: {}", exc.message)
        self._metrics.request_refused(endpoint, exc.code)
        self.stats.errors += 1
        await sink.error(exc, request_id)

    async def _execute(
        self, plan: ExecutionPlan, sink: ReplySink, started: float, requester: str, endpoint: Endpoint
    ) -> None:
        logger.info(
            "request accepted: {} devices x {} commands, format {}, stream {}",
            len(plan.targets),
            len(plan.commands),
            plan.output_format.value,
            plan.stream,
        )
        published: list[Awaitable[bool]] = []
        results = await self._run(plan, sink, requester, published)
        summary = _summary(plan.request_id, results, round(time.monotonic() - started, 4))
        logger.info(
            "request done: {}/{} devices ok in {:.2f}s",
            summary.successful_devices,
            summary.total_devices,
            summary.duration_s,
        )
        self._metrics.request_done(endpoint, summary)
        if self.publisher is not None:
            published.append(await self.publisher.publish_summary(requester, summary))
            # The device results were queued as each device finished; give them a moment to be
            # stored, so history already holds them when the requester sees the reply. Bounded:
            # a JetStream outage delays the stored copy, never the reply.
            await asyncio.wait([asyncio.ensure_future(p) for p in published], timeout=PUBLISH_WAIT)
        await _answer(plan, sink, results, summary)
        if endpoint.stored and not all(await asyncio.gather(*published)):
            raise PyatsRoError(ErrorCode.INTERNAL_ERROR, "some results of the job could not be published")

    async def _run(
        self, plan: ExecutionPlan, sink: ReplySink, requester: str, published: list[Awaitable[bool]]
    ) -> list[DeviceResult]:
        """Every device's result, each recorded, published and (when streamed) sent as it comes."""
        delivered: set[int] = set()

        async def deliver(result: DeviceResult) -> None:
            delivered.add(id(result))
            self._metrics.device_done(result)
            if self.publisher is not None:
                published.append(await self.publisher.publish_result(requester, result))
            if plan.stream:
                await sink.device_result(result)

        results = await self._scheduler.run(plan, deliver)
        for result in results:  # devices cut off at shutdown were not delivered one by one
            if id(result) not in delivered and result.error_code == ErrorCode.SERVICE_UNAVAILABLE:
                await deliver(result)
        return results


def _request_id(request: ExecuteRequest, header_request_id: str | None) -> str:
    """The body's id (checked), else the header's, else a new one."""
    if request.request_id is not None:
        why = check_request_id(request.request_id)
        if why:
            raise RequestError(ErrorCode.INVALID_REQUEST, why, {"path": "$.request_id"})
        return request.request_id
    return header_request_id or new_request_id()


def _summary(request_id: str, results: list[DeviceResult], duration: float) -> RequestSummary:
    ok = sum(1 for r in results if r.success)
    return RequestSummary(
        request_id=request_id,
        total_devices=len(results),
        successful_devices=ok,
        failed_devices=len(results) - ok,
        duration_s=duration,
    )


async def _answer(plan: ExecutionPlan, sink: ReplySink, results: list[DeviceResult], summary: RequestSummary) -> None:
    """The streamed tail (summary, end marker) or the one aggregate reply."""
    if plan.stream:
        await sink.summary(summary)
        await sink.end()
        return
    await sink.response(
        ExecuteResponse(
            request_id=summary.request_id,
            results=results,
            total_devices=summary.total_devices,
            successful_devices=summary.successful_devices,
            failed_devices=summary.failed_devices,
            duration_s=summary.duration_s,
        )
    )
