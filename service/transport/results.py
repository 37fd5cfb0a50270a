"""Every device result on its own subject, kept in a JetStream stream for replay.

``<prefix>.results.<requester>.<request_id>.<device>`` per device, ``..._summary`` per
request. Headers carry the request id, requester, device and status; ``Nats-Msg-Id``
(requester + request id + device) lets JetStream drop duplicates, so a redelivered job cannot write
a device twice. Publishing goes through a bounded queue with retries, so a NATS outage
delays results instead of losing them; anything dropped is counted and logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.client import Client
from nats.js import api
from nats.js.client import JetStreamContext

from service.config import ResultsSettings
from service.contract import headers
from service.contract.codec import encode
from service.contract.messages import DeviceResult, RequestSummary
from service.observability.metrics import ServiceMetrics
from service.transport.large_outputs import LargeOutputs
from service.transport.streams import ensure_stream
from service.transport.subjects import SUMMARY_TOKEN, Subjects, device_token, sanitize_token

REQUEST_ID = headers.REQUEST_ID
REQUESTER = headers.REQUESTER
DEVICE = headers.DEVICE
STATUS = headers.STATUS
MSG_ID = headers.MSG_ID
CONNECTED_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class StreamSettings:
    name: str
    max_age: float
    max_bytes: int
    replicas: int
    duplicate_window: float
    storage: str

    @classmethod
    def of(cls, results: ResultsSettings) -> StreamSettings:
        """The results stream as the ``results`` settings section describes it."""
        return cls(
            name=results.stream,
            max_age=results.max_age,
            max_bytes=results.max_bytes,
            replicas=results.replicas,
            duplicate_window=results.duplicate_window,
            storage=results.storage,
        )


@dataclass(slots=True)
class _Pending:
    subject: str
    payload: bytes
    headers: dict[str, str]
    done: asyncio.Future[bool]


def message_id(requester: str, request_id: str, device: str) -> str:
    """JetStream's de-duplication key: request ids are unique per requester only, so one
    requester reusing another's id can neither overwrite nor suppress the other's results."""
    return f"{sanitize_token(requester)}.{sanitize_token(request_id)}.{device}"


async def ensure_results_stream(js: JetStreamContext, subjects: Subjects, wanted: StreamSettings) -> None:
    """Create the results stream, or bring an existing one to the settings; idempotent.

    A stream the service creates denies message deletes and purges (``deny_delete``,
    ``deny_purge``): retention by age and size still works, but no API call can erase or
    rewrite history. nats-server never lets an update turn them off again; on a stream
    created without them the service keeps them as found and warns at every start.
    """
    config = api.StreamConfig(
        name=wanted.name,
        subjects=[subjects.results_wildcard],
        max_age=wanted.max_age,
        max_bytes=wanted.max_bytes,
        num_replicas=wanted.replicas,
        duplicate_window=wanted.duplicate_window,
        storage=api.StorageType(wanted.storage),
        allow_direct=True,
        deny_delete=True,
        deny_purge=True,
    )
    applied = await ensure_stream(js, config, "PYATS_RESULTS_*")
    missing = [
        name for name, on in (("deny_delete", applied.deny_delete), ("deny_purge", applied.deny_purge)) if not on
    ]
    if missing:
        logger.warning(
            "the JetStream stream {} has {} turned off: a client allowed to call the JetStream API on it can "
            "erase stored results; turn them on (an update of the stream config; they can never be turned off "
            "again) or recreate the stream (docs/SECURITY.md)",
            wanted.name,
            " and ".join(missing),
        )


class NatsResultPublisher:
    """Publishes results in order through a bounded buffer; retries while NATS is away."""

    def __init__(
        self,
        client: Client,
        subjects: Subjects,
        metrics: ServiceMetrics,
        jetstream: bool,
        buffer: int,
        retry_delay: float = 0.5,
        outputs: LargeOutputs | None = None,
    ) -> None:
        self._client = client
        self._outputs = outputs
        self._js = client.jetstream() if jetstream else None
        self._subjects = subjects
        self._metrics = metrics
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=buffer)
        self._retry_delay = retry_delay
        self._worker: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    async def publish_result(self, requester: str, result: DeviceResult) -> asyncio.Future[bool]:
        if self._outputs is not None:  # the reply sink reuses this offloaded result
            result = await self._outputs.offload(requester, result)
        token = device_token(result.hostname, result.port)
        headers = {
            REQUEST_ID: result.request_id,
            REQUESTER: requester,
            DEVICE: result.hostname,
            STATUS: "ok" if result.success else (result.error_code or "failed"),
            MSG_ID: message_id(requester, result.request_id, token),
        }
        subject = self._subjects.result(requester, result.request_id, result.hostname, result.port)
        return await self._enqueue(subject, encode(result), headers)

    async def publish_summary(self, requester: str, summary: RequestSummary) -> asyncio.Future[bool]:
        headers = {
            REQUEST_ID: summary.request_id,
            REQUESTER: requester,
            STATUS: summary.status,
            MSG_ID: message_id(requester, summary.request_id, SUMMARY_TOKEN),
        }
        return await self._enqueue(self._subjects.summary(requester, summary.request_id), encode(summary), headers)

    async def _enqueue(self, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        item = _Pending(subject, payload, headers, done)
        if self._queue.full():
            oldest = self._queue.get_nowait()
            self._queue.task_done()
            self._drop(oldest, "the result buffer is full")
        self._queue.put_nowait(item)
        return done

    def _drop(self, item: _Pending, why: str) -> None:
        self._metrics.results_dropped.inc()
        logger.error("result dropped ({}): {}", why, item.subject)
        if not item.done.done():
            item.done.set_result(False)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            failures = 0
            published = False
            while not published:
                try:
                    await self._publish(item)
                    published = True
                except (nats.errors.Error, TimeoutError, OSError) as exc:
                    self._metrics.publish_failures.inc()
                    # while NATS is away, wait for it (the buffer bounds memory); a publish that
                    # fails while connected (no stream, too large) would block every later result
                    if self._client.is_connected:
                        failures += 1
                    if failures >= CONNECTED_ATTEMPTS:
                        self._drop(item, f"publish kept failing while connected ({type(exc).__name__})")
                        break
                    logger.warning("result publish failed ({}); retrying", type(exc).__name__)
                    await asyncio.sleep(self._retry_delay)
            if not item.done.done():
                item.done.set_result(published)
            self._queue.task_done()

    async def _publish(self, item: _Pending) -> None:
        if self._js is not None:
            ack = await self._js.publish(item.subject, item.payload, timeout=5, headers=item.headers)
            if ack.duplicate:
                logger.debug("duplicate result ignored by JetStream: {}", item.subject)
        else:
            await self._client.publish(item.subject, item.payload, headers=item.headers)
        self._metrics.bytes_published.labels("result").inc(len(item.payload))

    async def close(self, grace: float) -> None:
        """Flush what is buffered for up to ``grace`` seconds; count the rest as dropped."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout=grace)
        except TimeoutError:
            logger.error("{} result(s) still unpublished at shutdown", self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "shutdown before it could be published")
