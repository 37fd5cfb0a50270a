"""The HTTP gateway: the REST ancestor's routes, and the bus's streams and history, over NATS.

Every route that reaches the bus first resolves the caller's API key to its requester; the
requester token of every subject comes from the key, never from the request. A request without
a valid key is answered 401 before anything is published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import __version__
from service.client.connect import BusError, BusUnreachableError, NoRespondersError
from service.client.history import (
    HistoryError,
    HistoryQuery,
    StoredResult,
    latest,
    parse_time,
    query_results,
    result_at,
    result_of_request,
)
from service.client.inbox import MESSAGE_KIND, streamed_replies
from service.client.outputs import OutputRoute, resolve_outputs
from service.contract.errors import ErrorCode, status_for
from service.contract.messages import DeviceResult, ErrorReply, ExecuteResponse
from service.domain.diff import diff_outputs
from service.domain.models import DeviceOS, PipeOption
from service.domain.policy import PIPES_BY_OS
from service.gateway.bus import Connections
from service.gateway.keys import KeyStore, presented_key
from service.gateway.metrics import GatewayMetrics

T = TypeVar("T")
NAME = "PyATS Show Command API (pyats-ro-bus HTTP gateway)"
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
DEFAULT_RETRY_AFTER = 60
CREDENTIAL_FIELDS = frozenset({"password", "enable_password"})


class GatewayError(Exception):
    """An HTTP answer with the service's error body ``{"error": {code, message, details}, "request_id"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}, "request_id": None}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    prefix: str = "pyats.v1"
    request_timeout: float = 330.0
    max_payload_bytes: int = 1_048_576


def retry_after(details: dict[str, Any]) -> int:
    """Whole seconds for ``Retry-After``: the service's ``retry_after``, else the rule's period."""
    for name in ("retry_after", "period"):
        value = details.get(name)
        if isinstance(value, int | float) and value > 0:
            return max(1, math.ceil(value))
    return DEFAULT_RETRY_AFTER


def error_answer(reply: ErrorReply) -> JSONResponse:
    """The service's error reply as HTTP: its status (``Nats-Service-Error-Code``) and its body."""
    status = status_for(ErrorCode(reply.error.code)) if reply.error.code in set(ErrorCode) else 400
    headers = {"Retry-After": str(retry_after(reply.error.details))} if status == 429 else {}
    return JSONResponse(msgspec.to_builtins(reply), status_code=status, headers=headers)


def _unreachable() -> GatewayError:
    return GatewayError(503, ErrorCode.SERVICE_UNAVAILABLE, "the bus or the service is not reachable; retry")


def _timed_out(seconds: float) -> GatewayError:
    return GatewayError(504, ErrorCode.REQUEST_TIMEOUT, f"no answer from the service within {seconds:g}s")


def frame(kind: str, data: Any, media: str) -> bytes:
    """One streamed message: an SSE event, or an NDJSON line ``{"event", "data"}``."""
    if media == NDJSON:
        return json.dumps({"event": kind, "data": data}).encode() + b"\n"
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object of the body; 413 past ``limit`` bytes (read no further), 400 when not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body is over {limit} bytes", {"limit": limit})
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise GatewayError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body is over {limit} bytes", {"limit": limit})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GatewayError(400, ErrorCode.INVALID_JSON, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise GatewayError(400, ErrorCode.INVALID_REQUEST, "the body must be a JSON object", {"path": "$"})
    return data


EXECUTE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "the execute request (docs/CONTRACT.md, schemas/)"},
                "example": {
                    "devices": [
                        {"hostname": "192.168.1.1", "port": 22, "username": "admin", "password": "...", "os": "iosxe"}
                    ],
                    "commands": [{"command": "show ip interface brief", "pipe_option": "include", "pipe_value": "up"}],
                    "timeout": 30,
                    "output_format": "parsed",
                },
            }
        },
    }
}


ENDPOINTS = {
    "execute": "POST /api/v1/execute",
    "execute_stream": "POST /api/v1/execute/stream",
    "jobs": "POST /api/v1/jobs",
    "history": "GET /api/v1/history",
    "diff": "GET /api/v1/diff",
    "supported_os": "GET /api/v1/supported_os",
    "pipe_options": "GET /api/v1/pipe_options",
    "health": "GET /health",
    "ready": "GET /readyz",
    "metrics": "GET /metrics",
    "docs": "GET /docs",
}


async def root() -> dict[str, Any]:
    return {"name": NAME, "version": __version__, "endpoints": ENDPOINTS}


async def health() -> dict[str, Any]:
    return {"status": "healthy", "version": __version__}


async def supported_os() -> dict[str, Any]:
    return {"supported_os": [os_name.value for os_name in DeviceOS]}


async def pipe_options() -> dict[str, Any]:
    by_os = {os_name.value: sorted(p.value for p in PIPES_BY_OS[os_name]) for os_name in DeviceOS}
    return {"pipe_options": [p.value for p in PipeOption], "by_os": by_os}


async def _gateway_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response()


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = "not_found" if exc.status_code == 404 else "http_error"
    return GatewayError(exc.status_code, code, str(exc.detail)).response()


async def _invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [{"path": "$." + ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in exc.errors()]
    return GatewayError(400, ErrorCode.INVALID_REQUEST, "invalid query", {"problems": problems}).response()


class Gateway:
    """The routes that reach the bus, as the requester of the caller's key."""

    def __init__(
        self, keys: KeyStore, connections: Connections, options: GatewayOptions, metrics: GatewayMetrics
    ) -> None:
        self.keys, self.connections, self.options, self.metrics = keys, connections, options, metrics

    def requester_of(self, request: Request) -> str:
        """The requester of the caller's key; 401 (nothing published) without a valid one."""
        requester = self.keys.requester_for(
            presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        )
        if requester is None:
            raise GatewayError(
                401,
                "unauthorized",
                "a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return requester

    async def bus_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` with the bus's failures as answers: 503 unreachable, 504 no answer in time."""
        try:
            return await call()
        except (BusUnreachableError, NoRespondersError):
            raise _unreachable() from None
        except TimeoutError:
            raise _timed_out(self.options.request_timeout) from None
        except BusError:
            raise _unreachable() from None

    def subject(self, requester: str) -> str:
        return f"{self.options.prefix}.execute.{requester}"

    async def readyz(self) -> JSONResponse:
        ready = await self.connections.ready()
        return JSONResponse({"ready": ready, "nats_connected": ready}, status_code=200 if ready else 503)

    async def execute(self, request: Request) -> Response:
        """The execute request; the answer is the ExecuteResponse of the NATS reply (large outputs fetched back)."""
        requester = self.requester_of(request)
        body = await _body(request, self.options.max_payload_bytes)
        body.pop("stream", None)  # the aggregate reply; streams have their own route
        client = await self.bus_call(lambda: self.connections.for_requester(requester))
        subject, payload, timeout = self.subject(requester), msgspec.json.encode(body), self.options.request_timeout
        message = await self.bus_call(lambda: client.request(subject, payload, timeout=timeout))
        if (message.headers or {}).get(MESSAGE_KIND) == "error":
            return error_answer(msgspec.json.decode(message.data, type=ErrorReply))
        response = msgspec.json.decode(message.data, type=ExecuteResponse)
        if not any(c.output_ref is not None for r in response.results for c in r.commands):
            return Response(message.data, media_type="application/json")  # the service's own bytes, as sent
        route = OutputRoute.of_execute_subject(subject)
        results = [await self.bus_call(functools.partial(resolve_outputs, client, r, route)) for r in response.results]
        return JSONResponse(msgspec.to_builtins(msgspec.structs.replace(response, results=results)))

    async def execute_stream(self, request: Request) -> Response:
        """Each device's result as it finishes: Server-Sent Events (``Accept: text/event-stream``, the
        default) or NDJSON (``Accept: application/x-ndjson``); events ``result``, ``summary``,
        ``error``, then ``end``."""
        requester = self.requester_of(request)
        media = NDJSON if NDJSON in request.headers.get("accept", "") else SSE
        body = await _body(request, self.options.max_payload_bytes)
        payload = msgspec.json.encode({**body, "stream": True})
        client = await self.bus_call(lambda: self.connections.for_requester(requester))
        replies = streamed_replies(client, self.subject(requester), payload, self.options.request_timeout)
        try:
            first = await self.bus_call(lambda: anext(replies))
        except BaseException:
            await replies.aclose()
            raise
        if (first.headers or {}).get(MESSAGE_KIND) == "error":
            await replies.aclose()
            return error_answer(msgspec.json.decode(first.data, type=ErrorReply))
        route = OutputRoute(self.options.prefix, requester)
        frames = self._frames(client, route, first, replies, media)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        # the background close covers a client gone before the first frame (the generator never ran)
        return StreamingResponse(frames, media_type=media, headers=headers, background=BackgroundTask(replies.aclose))

    async def jobs(self, request: Request) -> Response:
        """A durable job on ``<prefix>.jobs.<requester>`` (a JetStream publish): 202 with its stream
        sequence and job id. Jobs are stored at rest, so inline credentials are refused here, before
        anything is published; devices are named from the service's inventory."""
        requester = self.requester_of(request)
        body = await _body(request, self.options.max_payload_bytes)
        body.pop("stream", None)  # a job has no reply inbox to stream to
        devices = body.get("devices")
        if isinstance(devices, list) and any(isinstance(d, dict) and set(d) & CREDENTIAL_FIELDS for d in devices):
            raise GatewayError(
                400,
                ErrorCode.INVALID_REQUEST,
                "jobs are stored at rest and may not carry passwords: name inventory devices (name / group)",
                {"path": "$.devices"},
            )
        client = await self.bus_call(lambda: self.connections.for_requester(requester))
        subject = f"{self.options.prefix}.jobs.{requester}"
        payload = msgspec.json.encode(body)
        ack = await self.bus_call(
            lambda: client.jetstream().publish(subject, payload, timeout=min(10.0, self.options.request_timeout))
        )
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else f"job-{ack.seq}"
        answer = {"job_id": request_id, "request_id": request_id, "stream": ack.stream, "sequence": ack.seq}
        return JSONResponse(answer, status_code=202)

    async def _frames(
        self, client: Any, route: OutputRoute, first: Any, replies: AsyncGenerator[Any, None], media: str
    ) -> AsyncGenerator[bytes, None]:
        msg = first
        self.metrics.streams.inc()
        try:
            while msg.data:
                kind = (msg.headers or {}).get(MESSAGE_KIND) or "result"
                if kind == "result":
                    result = await resolve_outputs(client, msgspec.json.decode(msg.data, type=DeviceResult), route)
                    yield frame("result", msgspec.to_builtins(result), media)
                else:
                    yield frame(kind, json.loads(msg.data), media)
                try:
                    msg = await anext(replies)
                except TimeoutError:
                    error = _timed_out(self.options.request_timeout)
                    yield frame("error", {"error": {"code": error.code, "message": error.message}}, media)
                    break
            yield frame("end", {}, media)
        except StopAsyncIteration:
            return
        finally:
            await replies.aclose()  # a client gone mid-stream: stop reading the inbox
            self.metrics.streams.dec()

    async def _resolved(self, client: Any, record: StoredResult) -> StoredResult:
        route = OutputRoute(self.options.prefix, record.requester)
        result = await resolve_outputs(client, record.result, route)
        return record if result is record.result else dataclasses.replace(record, result=result)

    async def history(
        self,
        request: Request,
        device: str | None = None,
        command: str | None = None,
        request_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        newest: bool = Query(False, alias="latest"),
    ) -> Response:
        """The key's requester's own stored results (never another's), oldest first; ``latest=true``
        keeps the newest per device and command."""
        requester = self.requester_of(request)
        try:
            query = HistoryQuery(
                requester=requester,
                request_id=request_id,
                device=device,
                command=command,
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
            )
            client = await self.bus_call(lambda: self.connections.for_requester(requester))
            records = await self.bus_call(lambda: query_results(client, query, prefix=self.options.prefix))
            if newest:
                records = latest(records)
            records = [await self._resolved(client, record) for record in records]
        except HistoryError as exc:
            raise GatewayError(400, "history_failed", str(exc)) from None
        return JSONResponse({"count": len(records), "records": [r.as_dict() for r in records]})

    async def _pair(
        self, requester: str, device: str | None, command: str | None, query: dict[str, str]
    ) -> tuple[StoredResult, StoredResult]:
        client = await self.bus_call(lambda: self.connections.for_requester(requester))
        common: dict[str, Any] = {"prefix": self.options.prefix, "requester": requester}
        a, b, since, until = query.get("a"), query.get("b"), query.get("from"), query.get("to") or "latest"
        if a and b:
            first = await self.bus_call(lambda: result_of_request(client, a, device=device, command=command, **common))
            cmd = command or first.result.commands[0].command
            dev = device or f"{first.result.hostname}:{first.result.port}"
            second = await self.bus_call(lambda: result_of_request(client, b, device=dev, command=cmd, **common))
        elif device and command and since:
            older = await self.bus_call(lambda: result_at(client, device, command, since, **common))
            newer = await self.bus_call(lambda: result_at(client, device, command, until, **common))
            if older is None or newer is None:
                raise HistoryError(f"no stored result of {command!r} on {device}")
            first, second = older, newer
        else:
            raise HistoryError("give device, command and from (and to, default latest), or a and b")
        return await self._resolved(client, first), await self._resolved(client, second)

    async def diff(
        self, request: Request, device: str | None = None, command: str | None = None, text: bool = False
    ) -> Response:
        """Two stored results of one command on one device: by time (``from``, ``to``: ``latest``,
        ISO or relative like ``24h``) or by request id (``a``, ``b``)."""
        requester = self.requester_of(request)
        try:
            first, second = await self._pair(requester, device, command, dict(request.query_params))
        except HistoryError as exc:
            raise GatewayError(400, "history_failed", str(exc)) from None
        old, new = first.result.commands[0], second.result.commands[0]
        changes = diff_outputs(
            old.parsed, old.output, new.parsed, new.output, first.request_id, second.request_id, text=text
        )
        return JSONResponse({"a": first.as_dict(), "b": second.as_dict(), **changes.as_dict()})


def create_app(keys: KeyStore, connections: Connections, options: GatewayOptions) -> FastAPI:
    """The gateway's ASGI app; ``connections`` are closed when it shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await connections.close()

    app = FastAPI(
        title=NAME,
        version=__version__,
        description="The REST ancestor's routes in front of pyats-ro-bus: every request travels over NATS.",
        lifespan=lifespan,
    )
    metrics = GatewayMetrics()
    app.add_middleware(metrics.middleware)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    gateway = Gateway(keys, connections, options, metrics)

    async def prometheus() -> Response:
        body, media = metrics.exposition()
        return Response(body, media_type=media)

    app.add_api_route("/", root, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/readyz", gateway.readyz, methods=["GET"])
    app.add_api_route("/metrics", prometheus, methods=["GET"])
    app.add_api_route("/api/v1/supported_os", supported_os, methods=["GET"])
    app.add_api_route("/api/v1/pipe_options", pipe_options, methods=["GET"])
    app.add_api_route("/api/v1/execute", gateway.execute, methods=["POST"], openapi_extra=EXECUTE_BODY)
    app.add_api_route("/api/v1/execute/stream", gateway.execute_stream, methods=["POST"], openapi_extra=EXECUTE_BODY)
    app.add_api_route("/api/v1/jobs", gateway.jobs, methods=["POST"], status_code=202)
    app.add_api_route("/api/v1/history", gateway.history, methods=["GET"])
    app.add_api_route("/api/v1/diff", gateway.diff, methods=["GET"])
    return app
