"""The nats.micro service: its execute endpoint and the outputs endpoint.

nats-py runs a subscription's callbacks one after another, so each request gets its
own task; the callback returns at once and one slow request never delays the next.
"""

from __future__ import annotations

import asyncio

import msgspec
from loguru import logger
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from service import __version__
from service.contract.codec import encode
from service.contract.messages import (
    DeviceResult,
    ErrorDetail,
    ErrorReply,
    ExecuteResponse,
    OutputRef,
    RequestSummary,
)
from service.errors import ErrorCode, PyatsRoError, RequestError, status_for
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.transport.large_outputs import LargeOutputs
from service.transport.subjects import Subjects

REQUEST_ID_HEADER = "Pyats-Request-Id"
REQUEST_INFO_HEADER = "Nats-Request-Info"
MESSAGE_KIND_HEADER = "Pyats-Message"
ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"


class NatsReplySink:
    """Answers one request on its reply inbox."""

    def __init__(self, request: Request, metrics: ServiceMetrics, outputs: LargeOutputs | None = None) -> None:
        self._request = request
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
            result = await self._outputs.sent(result)
        await self._send("result", encode(result), {REQUEST_ID_HEADER: result.request_id})

    async def summary(self, summary: RequestSummary) -> None:
        await self._send("summary", encode(summary), {REQUEST_ID_HEADER: summary.request_id})

    async def end(self) -> None:
        await self._send("end", b"", {})

    async def output_chunk(self, chunk: bytes) -> None:
        await self._send("output", chunk, {})

    async def response(self, response: ExecuteResponse) -> None:
        if self._outputs is not None:
            results = [await self._outputs.sent(result) for result in response.results]
            response = msgspec.structs.replace(response, results=results)
        await self._send("response", encode(response), {REQUEST_ID_HEADER: response.request_id})

    async def error(self, error: PyatsRoError, request_id: str | None) -> None:
        body = ErrorReply(
            error=ErrorDetail(code=error.code.value, message=error.message, details=error.details),
            request_id=request_id,
        )
        headers = {ERROR_HEADER: error.message[:512], ERROR_CODE_HEADER: str(status_for(error.code))}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        await self._send("error", encode(body), headers)


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
        outputs: LargeOutputs | None = None,
        results_stream: str = "PYATS_RESULTS",
    ) -> None:
        self._client = client
        self._outputs = outputs
        self._results_stream = results_stream
        self._handler = handler
        self._subjects = subjects
        self._name = name
        self._queue_group = queue_group
        self._metrics = metrics
        self._service: Service | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._service = await add_service(
            self._client,
            name=self._name,
            version=__version__,
            description="Read-only Cisco show commands over NATS (pyATS/Unicon, Genie)",
            queue_group=self._queue_group,
            metadata={"subject_prefix": self._subjects.prefix},
            stats_handler=lambda _endpoint: self._handler.stats.as_dict(),
        )
        await self._service.add_endpoint(
            name="execute",
            subject=self._subjects.execute_wildcard,
            handler=self._on_request,
            queue_group=self._queue_group,
        )
        await self._service.add_endpoint(
            name="outputs",
            subject=self._subjects.outputs_wildcard,
            handler=self._on_output,
            queue_group=self._queue_group,
        )
        self._accepting = True
        logger.info(
            "listening on {} (queue group {}), service {} {} id {}",
            self._subjects.execute_wildcard,
            self._queue_group,
            self._name,
            __version__,
            self._service.id,
        )

    async def _on_request(self, request: Request) -> None:
        sink = NatsReplySink(request, self._metrics, self._outputs)
        if not self._accepting:
            await sink.error(PyatsRoError(ErrorCode.SERVICE_UNAVAILABLE, "the service is shutting down; retry"), None)
            return
        headers = request.headers or {}
        requester = self._subjects.requester_of(request.subject, headers.get(REQUEST_INFO_HEADER))
        header_id = headers.get(REQUEST_ID_HEADER)
        task = asyncio.create_task(self._guarded(request.data, requester, header_id, sink))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_output(self, request: Request) -> None:
        sink = NatsReplySink(request, self._metrics)
        headers = request.headers or {}
        requester = self._subjects.requester_of(request.subject, headers.get(REQUEST_INFO_HEADER))
        task = asyncio.create_task(self._send_output(request.data, requester, sink))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_output(self, data: bytes, requester: str, sink: NatsReplySink) -> None:
        """One of the requester's large outputs, in chunks of half the server's max_payload."""
        try:
            try:
                ref = msgspec.json.decode(data, type=OutputRef)
            except msgspec.DecodeError as exc:
                raise RequestError(ErrorCode.INVALID_REQUEST, f"not an output reference: {exc}") from None
            if self._outputs is None:
                raise RequestError(ErrorCode.OUTPUT_NOT_FOUND, "this replica keeps no large outputs")
            body = await self._outputs.read_for(self._client, self._results_stream, self._subjects, requester, ref)
        except PyatsRoError as exc:
            self._metrics.requests.labels("outputs", exc.code.value).inc()
            with logger.contextualize(requester=requester):
                logger.info("output refused: {}", exc.message)
            await sink.error(exc, None)
            return
        except Exception as exc:  # noqa: BLE001 - never let a bug kill the endpoint or go unanswered
            logger.opt(exception=exc).error("output read failed: {}", type(exc).__name__)
            self._metrics.requests.labels("outputs", ErrorCode.INTERNAL_ERROR.value).inc()
            await sink.error(PyatsRoError(ErrorCode.INTERNAL_ERROR, "internal error; see the service log"), None)
            return
        size = max(1024, self._client.max_payload // 2)
        view = memoryview(body)
        for start in range(0, len(view), size):
            await sink.output_chunk(bytes(view[start : start + size]))
        await sink.end()
        self._metrics.requests.labels("outputs", "ok").inc()

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
