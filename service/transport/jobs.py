"""Durable jobs: ``<prefix>.jobs.<requester>`` captured by a JetStream work-queue stream.

Every replica pulls from one shared durable consumer. A job is acked only after all its
results are published; while it runs the worker sends in-progress acks. If a replica
dies mid-job, the job is redelivered after ``ack_wait`` and finished by another one;
the redelivered run reuses the job's request id, so JetStream's ``Nats-Msg-Id``
de-duplication keeps exactly one result per device. A job that can never succeed (bad
JSON, inline passwords, policy refusal) is terminated, not redelivered.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg

from service.config import JobsSettings
from service.contract import headers
from service.contract.codec import encode
from service.contract.errors import ErrorCode, PyatsRoError
from service.contract.messages import DeviceResult, ExecuteResponse, RequestSummary
from service.domain.models import Endpoint
from service.domain.replies import ReplyRule
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.transport.endpoint import MESSAGE_KIND_HEADER, error_message
from service.transport.subjects import Subjects
from service.transport.work_queue import QueueSettings, WorkQueueWorker

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


class JobSink:
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


class JobWorker(WorkQueueWorker):
    def __init__(
        self,
        client: Client,
        handler: RequestHandler,
        subjects: Subjects,
        settings: JobSettings,
        replies: ReplyRule,
        metrics: ServiceMetrics,
    ) -> None:
        super().__init__(
            client,
            QueueSettings(
                stream=settings.stream,
                subject=subjects.jobs_wildcard,
                consumer=CONSUMER,
                ack_wait=settings.ack_wait,
                max_deliver=settings.max_deliver,
                concurrency=settings.concurrency,
                max_age=settings.max_age,
            ),
        )
        self._replies = replies
        self._metrics = metrics
        self._handler = handler
        self._subjects = subjects
        self._settings = settings

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
        sink = JobSink()
        logger.info("job {} (delivery {}) from {}", job_id, metadata.num_delivered, requester)
        work = self._handler.handle(message.data, requester, job_id, sink, endpoint=Endpoint.JOBS)
        if not await self.held(message, work, f"job {job_id}"):
            return
        if sink.failure is not None:
            logger.info("job {} refused: {}", job_id, sink.failure.message)
            if notify:
                body, error_headers = error_message(sink.failure, sink.request_id)
                await self._client.publish(notify, body, headers={**error_headers, MESSAGE_KIND_HEADER: "error"})
            await self.settle_refused(message, sink.failure)
            return
        if notify and sink.outcome is not None:
            await self._client.publish(notify, encode(sink.outcome), headers={MESSAGE_KIND_HEADER: "summary"})
        await message.ack()
        logger.info("job {} done", job_id)

    @staticmethod
    def _notify_subject(data: bytes) -> str | None:
        """The job's ``notify`` subject, if it names one (the job's own decoding reports bad JSON)."""
        try:
            return msgspec.json.decode(data, type=_Notify).notify or None
        except msgspec.DecodeError:
            return None
