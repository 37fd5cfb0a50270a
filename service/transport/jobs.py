"""Durable jobs: ``<prefix>.jobs.<requester>`` captured by a JetStream work-queue stream.

Every replica pulls from one shared durable consumer. A job is acked only after all its
results are published; while it runs the worker sends in-progress acks. If a replica
dies mid-job, the job is redelivered after ``ack_wait`` and finished by another one;
the redelivered run reuses the job's request id, so JetStream's ``Nats-Msg-Id``
de-duplication keeps exactly one result per device. A job that can never succeed (bad
JSON, inline passwords, policy refusal) is terminated, not redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import msgspec
import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from service.config import JobsSettings
from service.contract import headers
from service.contract.codec import encode
from service.contract.errors import ErrorCode, PyatsRoError, RequestError
from service.contract.messages import DeviceResult, ExecuteResponse, RequestSummary
from service.domain.models import Endpoint
from service.domain.replies import ReplyRule
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.transport.endpoint import MESSAGE_KIND_HEADER, error_message
from service.transport.streams import ensure_stream
from service.transport.subjects import Subjects

CONSUMER = "pyats-ro-jobs"
REQUEST_INFO_HEADER = headers.REQUEST_INFO


@dataclass(frozen=True, slots=True)
class JobSettings:
    stream: str
    ack_wait: float
    max_deliver: int
    concurrency: int
    max_age: float

    @classmethod
    def of(cls, jobs: JobsSettings, max_age: float) -> JobSettings:
        """The ``jobs`` settings section; ``max_age``: how long a job may wait (the results' age)."""
        return cls(
            stream=jobs.stream,
            ack_wait=jobs.ack_wait,
            max_deliver=jobs.max_deliver,
            concurrency=jobs.concurrency,
            max_age=max_age,
        )


class _Notify(msgspec.Struct):
    notify: str | None = None


class _JobSink:
    """Collects what a job produced; a job has no reply inbox."""

    def __init__(self) -> None:
        self.outcome: RequestSummary | None = None
        self.failure: PyatsRoError | None = None
        self.request_id: str | None = None

    async def device_result(self, result: DeviceResult) -> None:
        return

    async def summary(self, summary: RequestSummary) -> None:
        self.outcome = summary

    async def end(self) -> None:
        return

    async def response(self, response: ExecuteResponse) -> None:
        self.outcome = RequestSummary(
            request_id=response.request_id,
            total_devices=response.total_devices,
            successful_devices=response.successful_devices,
            failed_devices=response.failed_devices,
            duration_s=response.duration_s,
        )

    async def error(self, error: PyatsRoError, request_id: str | None) -> None:
        self.failure, self.request_id = error, request_id


class JobWorker:
    def __init__(
        self,
        client: Client,
        handler: RequestHandler,
        subjects: Subjects,
        settings: JobSettings,
        replies: ReplyRule,
        metrics: ServiceMetrics,
    ) -> None:
        self._client = client
        self._replies = replies
        self._metrics = metrics
        self._js = client.jetstream()
        self._handler = handler
        self._subjects = subjects
        self._settings = settings
        self._loops: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._subscription: nats.js.JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        s = self._settings
        subject = self._subjects.jobs_wildcard
        config = api.StreamConfig(
            name=s.stream,
            subjects=[subject],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            max_age=s.max_age,
        )
        await ensure_stream(self._js, config, "PYATS_JOBS_*")
        consumer = api.ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=s.ack_wait,
            max_deliver=s.max_deliver,
            filter_subject=subject,
        )
        subscription = await self._js.pull_subscribe(subject, durable=CONSUMER, stream=s.stream, config=consumer)
        self._subscription = subscription
        self._loops = [asyncio.create_task(self._loop(subscription)) for _ in range(s.concurrency)]
        logger.info("taking jobs from {} (stream {}, {} at a time)", subject, s.stream, s.concurrency)

    async def _loop(self, subscription: nats.js.JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            try:
                messages = await subscription.fetch(1, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error as exc:
                logger.warning("fetching jobs failed ({}); retrying", type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(task)

    async def _process(self, message: Msg) -> None:
        metadata = message.metadata
        requester = self._subjects.requester_of(message.subject, (message.headers or {}).get(REQUEST_INFO_HEADER))
        job_id = f"job-{metadata.sequence.stream}"
        notify = self._notify_subject(message.data)
        why = self._replies.notify_refusal(notify, requester, self._subjects.notify(requester)) if notify else None
        if why is not None:
            # refused before any device is touched, and nothing is published there
            self._metrics.requests.labels(Endpoint.JOBS.value, ErrorCode.REPLY_FORBIDDEN.value).inc()
            with logger.contextualize(requester=requester):
                code = ErrorCode.REPLY_FORBIDDEN.value
                logger.warning("job {} refused ({}): notify {!r}: {}", job_id, code, (notify or "")[:200], why)
            await message.term()
            return
        sink = _JobSink()
        keepalive = asyncio.create_task(self._keep_alive(message))
        try:
            logger.info("job {} (delivery {}) from {}", job_id, metadata.num_delivered, requester)
            await self._handler.handle(message.data, requester, job_id, sink, endpoint=Endpoint.JOBS)
        except asyncio.CancelledError:
            keepalive.cancel()
            raise  # not acked: another replica gets it after ack_wait
        except PyatsRoError as exc:
            keepalive.cancel()
            logger.error("job {} failed ({}); it will be redelivered", job_id, exc.code)
            await message.nak(delay=self._settings.ack_wait / 2)
            return
        keepalive.cancel()
        if sink.failure is not None:
            final = isinstance(sink.failure, RequestError)
            logger.info("job {} refused: {}", job_id, sink.failure.message)
            if notify:
                body, error_headers = error_message(sink.failure, sink.request_id)
                await self._client.publish(notify, body, headers={**error_headers, MESSAGE_KIND_HEADER: "error"})
            await (message.term() if final else message.nak(delay=self._settings.ack_wait / 2))
            return
        if notify and sink.outcome is not None:
            await self._client.publish(notify, encode(sink.outcome), headers={MESSAGE_KIND_HEADER: "summary"})
        await message.ack()
        logger.info("job {} done", job_id)

    async def _keep_alive(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(max(0.2, self._settings.ack_wait / 3))
            with contextlib.suppress(nats.errors.Error):
                await message.in_progress()

    @staticmethod
    def _notify_subject(data: bytes) -> str | None:
        """The job's ``notify`` subject, if it names one (the job's own decoding reports bad JSON)."""
        try:
            return msgspec.json.decode(data, type=_Notify).notify or None
        except msgspec.DecodeError:
            return None

    async def stop(self, grace: float) -> None:
        """Stop taking jobs; jobs still running after ``grace`` are left unacked for another replica."""
        self._stopping = True
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in [*self._running, *self._loops]:
            task.cancel()
        if self._subscription is not None:
            # a pull subscription left open makes the connection's drain wait for its timeout
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
