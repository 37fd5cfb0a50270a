"""The nats.micro service: its execute endpoint and the outputs endpoint.

nats-py runs a subscription's callbacks one after another, so each request gets its
own task; the callback returns at once and one slow request never delays the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from service import __version__
from service.contract import headers
from service.contract.codec import encode
from service.contract.errors import ErrorCode, PyatsRoError, RequestError, status_for
from service.contract.messages import (
    DeviceResult,
    ErrorDetail,
    ErrorReply,
    ExecuteResponse,
    HistoryRequest,
    OutputRef,
    RequestSummary,
    ScheduleReply,
)
from service.domain.models import Endpoint
from service.domain.replies import ReplyRule
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.transport.history import (
    TRUNCATED,
    HistoryError,
    HistoryQuery,
    StoredResult,
    iter_results,
    parse_device,
    parse_time,
    stored_headers,
)
from service.transport.large_outputs import LargeOutputs
from service.transport.micro_stats import EndpointStats
from service.transport.subjects import Subjects

REQUEST_ID_HEADER = headers.REQUEST_ID
if TYPE_CHECKING:
    from service.transport.schedule_desk import ScheduleDesk

T = TypeVar("T")
REQUEST_INFO_HEADER = headers.REQUEST_INFO
MESSAGE_KIND_HEADER = headers.MESSAGE
ERROR_HEADER = headers.SERVICE_ERROR
ERROR_CODE_HEADER = headers.SERVICE_ERROR_CODE


class NatsReplySink:
    """Answers one request on its reply inbox."""

    def __init__(
        self, request: Request, metrics: ServiceMetrics, requester: str, outputs: LargeOutputs | None = None
    ) -> None:
        self._request = request
        self._requester = requester
        self.failure: str | None = None  # the error reply sent, for $SRV.STATS
        self._metrics = metrics
        self._outputs = outputs

    async def _send(self, kind: str, payload: bytes, headers: dict[str, str]) -> None:
        headers = {MESSAGE_KIND_HEADER: kind, **headers}
        try:
            await self._request.respond(payload, headers=headers)
        except ValueError:  # published without a reply inbox: nobody to answer
            return
        self._metrics.bytes_published.labels(kind).inc(len(payload))

    async def device_result(self, result: DeviceResult) -> None:
        if self._outputs is not None:
            result = await self._outputs.sent(self._requester, result)
        await self._send("result", encode(result), {REQUEST_ID_HEADER: result.request_id})

    async def summary(self, summary: RequestSummary) -> None:
        await self._send("summary", encode(summary), {REQUEST_ID_HEADER: summary.request_id})

    async def end(self) -> None:
        await self._send("end", b"", {})

    async def stored(self, record: StoredResult) -> None:
        await self._send("record", encode(record.result), stored_headers(record))

    async def history_end(self, truncated_at: int | None) -> None:
        await self._send("end", b"", {TRUNCATED: str(truncated_at)} if truncated_at else {})

    async def schedules(self, reply: ScheduleReply) -> None:
        await self._send("schedules", encode(reply), {})

    async def output_chunk(self, chunk: bytes) -> None:
        await self._send("output", chunk, {})

    async def response(self, response: ExecuteResponse) -> None:
        if self._outputs is not None:
            results = [await self._outputs.sent(self._requester, result) for result in response.results]
            response = msgspec.structs.replace(response, results=results)
        await self._send("response", encode(response), {REQUEST_ID_HEADER: response.request_id})

    async def error(self, error: PyatsRoError, request_id: str | None) -> None:
        body, headers = error_message(error, request_id)
        self.failure = f"{status_for(error.code)}:{error.code.value}: {error.message[:200]}"
        await self._send("error", body, headers)


def error_message(error: PyatsRoError, request_id: str | None) -> tuple[bytes, dict[str, str]]:
    """An error as every requester-facing reply carries it: the ``ErrorReply`` body and the
    nats.micro error headers (``Nats-Service-Error``, ``Nats-Service-Error-Code``)."""
    body = ErrorReply(
        error=ErrorDetail(code=error.code.value, message=error.message, details=error.details),
        request_id=request_id,
    )
    headers = {ERROR_HEADER: error.message[:512], ERROR_CODE_HEADER: str(status_for(error.code))}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return encode(body), headers


def reply_subject(request: Request) -> str | None:
    """The reply subject the requester chose (nats.micro's Request does not expose it)."""
    return request._msg.reply or None


def guard_discovery_replies(client: Client, rule: ReplyRule, metrics: ServiceMetrics) -> None:
    """nats.micro answers $SRV.PING/INFO/STATS itself, on whatever reply subject came with the
    request: its messages are made to refuse a reply outside every requester's inbox."""

    class InboxOnlyMsg(Msg):
        async def respond(self, data: bytes) -> None:
            why = rule.refusal(self.reply, None)
            if why is not None:
                metrics.requests.labels("discovery", ErrorCode.REPLY_FORBIDDEN.value).inc()
                logger.warning("discovery request on {} dropped: {}", self.subject, why)
                return
            await super().respond(data)

    client.msg_class = InboxOnlyMsg


class ExecuteService:
    """Registers the micro service; owns the tasks of requests in flight."""

    def __init__(
        self,
        client: Client,
        handler: RequestHandler,
        subjects: Subjects,
        name: str,
        queue_group: str,
        metrics: ServiceMetrics,
        replies: ReplyRule,
        outputs: LargeOutputs | None = None,
        results_stream: str = "PYATS_RESULTS",
        workers: Callable[[], list[dict[str, Any]]] | None = None,
        schedules: ScheduleDesk | None = None,
    ) -> None:
        self._schedules = schedules  # None: schedules are off (no JetStream, or turned off)
        self._workers = workers  # the device workers this front sends to, for $SRV.STATS
        self._client = client
        self._replies = replies
        self._outputs = outputs
        self._results_stream = results_stream
        self._handler = handler
        self._subjects = subjects
        self._name = name
        self._queue_group = queue_group
        self._metrics = metrics
        self._service: Service | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats: dict[Endpoint, EndpointStats] = {}
        self._accepting = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _stats_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self._handler.stats.as_dict()
        if self._workers is not None:
            data["workers"] = self._workers()
        return data

    async def start(self) -> None:
        self._service = await add_service(
            self._client,
            name=self._name,
            version=__version__,
            description="Read-only Cisco show commands over NATS (pyATS/Unicon, Genie)",
            queue_group=self._queue_group,
            metadata={"subject_prefix": self._subjects.prefix},
            stats_handler=lambda _endpoint: self._stats_data(),
        )
        await self._service.add_endpoint(
            name=Endpoint.EXECUTE.value,
            subject=self._subjects.execute_wildcard,
            handler=self._on_request,
            queue_group=self._queue_group,
        )
        await self._service.add_endpoint(
            name=Endpoint.OUTPUTS.value,
            subject=self._subjects.outputs_wildcard,
            handler=self._on_output,
            queue_group=self._queue_group,
        )
        await self._service.add_endpoint(
            name=Endpoint.HISTORY.value,
            subject=self._subjects.history_wildcard,
            handler=self._on_history,
            queue_group=self._queue_group,
        )
        endpoints = [Endpoint.EXECUTE, Endpoint.OUTPUTS, Endpoint.HISTORY]
        if self._schedules is not None:
            await self._service.add_endpoint(
                name=Endpoint.SCHEDULES.value,
                subject=self._subjects.schedules_wildcard,
                handler=self._on_schedules,
                queue_group=self._queue_group,
            )
            endpoints.append(Endpoint.SCHEDULES)
        self._stats = {endpoint: EndpointStats.of(self._service, endpoint.value) for endpoint in endpoints}
        self._accepting = True
        logger.info(
            "listening on {} (queue group {}), service {} {} id {}",
            self._subjects.execute_wildcard,
            self._queue_group,
            self._name,
            __version__,
            self._service.id,
        )

    def _requester(self, request: Request, endpoint: Endpoint) -> str | None:
        """Who asks, or None when the reply subject lies outside that requester's inbox: then
        nothing is done and nothing is published (there is nowhere safe to send an error)."""
        requester = self._subjects.requester_of(request.subject, (request.headers or {}).get(REQUEST_INFO_HEADER))
        reply = reply_subject(request)
        why = self._replies.refusal(reply, requester)
        if why is None:
            return requester
        self._metrics.requests.labels(endpoint.value, ErrorCode.REPLY_FORBIDDEN.value).inc()
        self._stats[endpoint].finished(0, f"{status_for(ErrorCode.REPLY_FORBIDDEN)}:{ErrorCode.REPLY_FORBIDDEN.value}")
        with logger.contextualize(requester=requester):
            logger.warning(
                "request refused ({}): reply subject {!r}: {}",
                ErrorCode.REPLY_FORBIDDEN.value,
                (reply or "")[:200],
                why,
            )
        return None

    async def _on_request(self, request: Request) -> None:
        requester = self._requester(request, Endpoint.EXECUTE)
        if requester is None:
            return
        sink = NatsReplySink(request, self._metrics, requester, self._outputs)
        if not self._accepting:
            await sink.error(PyatsRoError(ErrorCode.SERVICE_UNAVAILABLE, "the service is shutting down; retry"), None)
            self._stats[Endpoint.EXECUTE].finished(0, sink.failure)
            return
        header_id = (request.headers or {}).get(REQUEST_ID_HEADER)
        self._spawn(Endpoint.EXECUTE, sink, self._guarded(request.data, requester, header_id, sink))

    def _spawn(self, endpoint: Endpoint, sink: NatsReplySink, work: Coroutine[Any, Any, None]) -> None:
        """Run one request in its own task; its real time and error reach ``$SRV.STATS`` at the end."""
        stats = self._stats[endpoint]

        async def timed() -> None:
            started = time.perf_counter_ns()
            try:
                await work
            finally:
                stats.finished(time.perf_counter_ns() - started, sink.failure)

        task = asyncio.create_task(timed())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_output(self, request: Request) -> None:
        requester = self._requester(request, Endpoint.OUTPUTS)
        if requester is not None:
            sink = NatsReplySink(request, self._metrics, requester)
            self._spawn(Endpoint.OUTPUTS, sink, self._send_output(request.data, requester, sink))

    async def _on_history(self, request: Request) -> None:
        requester = self._requester(request, Endpoint.HISTORY)
        if requester is not None:
            sink = NatsReplySink(request, self._metrics, requester)
            self._spawn(Endpoint.HISTORY, sink, self._send_history(request.data, requester, sink))

    async def _send_history(self, data: bytes, requester: str, sink: NatsReplySink) -> None:
        """The requester's own stored results, one message each, then an end marker."""
        ok, truncated = await self._answered(Endpoint.HISTORY, requester, sink, self._replay(data, requester, sink))
        if ok:
            await sink.history_end(truncated)
            self._metrics.requests.labels(Endpoint.HISTORY.value, "ok").inc()

    async def _replay(self, data: bytes, requester: str, sink: NatsReplySink) -> int | None:
        """Send the stored results; the limit that cut the replay short, if one did."""
        try:
            asked = msgspec.json.decode(data, type=HistoryRequest)
            query = HistoryQuery(
                requester=requester,  # from the subject the server let this user publish on
                request_id=asked.request_id,
                device=asked.device,
                command=asked.command,
                since=parse_time(asked.since) if asked.since else None,
                until=parse_time(asked.until) if asked.until else None,
            )
            if query.device:
                parse_device(query.device)
        except (msgspec.DecodeError, HistoryError) as exc:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"not a history request: {exc}") from None
        sent = 0
        try:
            async with contextlib.aclosing(
                iter_results(self._client, query, prefix=self._subjects.prefix, stream=self._results_stream)
            ) as records:
                async for record in records:
                    if sent == asked.limit:
                        return asked.limit
                    await sink.stored(record)
                    sent += 1
        except HistoryError as exc:
            raise PyatsRoError(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from None
        return None

    async def _on_schedules(self, request: Request) -> None:
        requester = self._requester(request, Endpoint.SCHEDULES)
        if requester is not None:
            sink = NatsReplySink(request, self._metrics, requester)
            self._spawn(Endpoint.SCHEDULES, sink, self._send_schedules(request.data, requester, sink))

    async def _send_schedules(self, data: bytes, requester: str, sink: NatsReplySink) -> None:
        """A requester manages its own schedules; the requester is the subject's."""
        assert self._schedules is not None
        ok, reply = await self._answered(Endpoint.SCHEDULES, requester, sink, self._schedules.answer(data, requester))
        if ok and reply is not None:
            await sink.schedules(reply)
            self._metrics.requests.labels(Endpoint.SCHEDULES.value, "ok").inc()

    async def _answered(
        self, endpoint: Endpoint, requester: str, sink: NatsReplySink, work: Awaitable[T]
    ) -> tuple[bool, T | None]:
        """``(True, work's value)``, or ``(False, None)`` once a refusal or an internal error has
        been answered: a bug never kills the endpoint nor leaves a requester unanswered."""
        try:
            return True, await work
        except PyatsRoError as exc:
            await self._refuse(endpoint, requester, exc, sink)
        except Exception as exc:  # noqa: BLE001 - never let a bug kill the endpoint or go unanswered
            await self._internal_error(endpoint, exc, sink)
        return False, None

    async def _internal_error(self, endpoint: Endpoint, exc: Exception, sink: NatsReplySink) -> None:
        logger.opt(exception=exc).error("{} failed inside the service: {}", endpoint.value, type(exc).__name__)
        self._metrics.requests.labels(endpoint.value, ErrorCode.INTERNAL_ERROR.value).inc()
        await sink.error(PyatsRoError(ErrorCode.INTERNAL_ERROR, "internal error; see the service log"), None)

    async def _refuse(self, endpoint: Endpoint, requester: str, error: PyatsRoError, sink: NatsReplySink) -> None:
        self._metrics.requests.labels(endpoint.value, error.code.value).inc()
        with logger.contextualize(requester=requester):
            logger.info("{} refused: {}", endpoint.value, error.message)
        await sink.error(error, None)

    async def _send_output(self, data: bytes, requester: str, sink: NatsReplySink) -> None:
        """One of the requester's large outputs, in chunks of half the server's max_payload."""
        ok, body = await self._answered(Endpoint.OUTPUTS, requester, sink, self._read_output(data, requester))
        if not ok or body is None:
            return
        size = max(1024, self._client.max_payload // 2)
        view = memoryview(body)
        for start in range(0, len(view), size):
            await sink.output_chunk(bytes(view[start : start + size]))
        await sink.end()
        self._metrics.requests.labels(Endpoint.OUTPUTS.value, "ok").inc()

    async def _read_output(self, data: bytes, requester: str) -> bytes:
        try:
            ref = msgspec.json.decode(data, type=OutputRef)
        except msgspec.DecodeError as exc:
            raise RequestError(ErrorCode.INVALID_REQUEST, f"not an output reference: {exc}") from None
        if self._outputs is None:
            raise RequestError(ErrorCode.OUTPUT_NOT_FOUND, "this replica keeps no large outputs")
        return await self._outputs.read_for(self._client, self._results_stream, self._subjects, requester, ref)

    async def _guarded(self, data: bytes, requester: str, header_id: str | None, sink: NatsReplySink) -> None:
        try:
            await self._handler.handle(data, requester, header_id, sink)
        except asyncio.CancelledError:
            # cut off at shutdown: the requester still gets an answer
            await sink.error(
                PyatsRoError(ErrorCode.SERVICE_UNAVAILABLE, "the service stopped before finishing; retry"), None
            )
            raise
        except Exception as exc:  # noqa: BLE001 - never let a bug kill the endpoint or go unanswered
            logger.opt(exception=exc).error("request failed inside the service: {}", type(exc).__name__)
            try:
                await sink.error(PyatsRoError(ErrorCode.INTERNAL_ERROR, "internal error; see the service log"), None)
            except Exception as reply_exc:  # noqa: BLE001 - the connection itself may be gone
                logger.error("could not send the error reply: {}", type(reply_exc).__name__)

    async def stop_intake(self) -> None:
        """Stop taking new requests; the ones in flight continue."""
        self._accepting = False
        if self._service is not None:
            await self._service.stop()

    async def wait_in_flight(self, grace: float) -> int:
        """Wait for requests in flight up to ``grace`` seconds; return how many were cut off."""
        if not self._tasks:
            return 0
        logger.info("waiting up to {:.0f}s for {} request(s) in flight", grace, len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        return len(pending)
