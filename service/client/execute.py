"""A small client for the execute endpoint: aggregate or streamed replies (NATS ADR-47 end marker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
import nats.errors
from nats.aio.client import Client

from service.client.inbox import MESSAGE_KIND, reply_inbox
from service.client.outputs import OutputRoute, resolve_outputs
from service.contract.messages import DeviceResult, ErrorReply, ExecuteResponse, RequestSummary


class ServiceReplyError(Exception):
    """The service refused the request; ``reply.error`` says why."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(f"{reply.error.code}: {reply.error.message}")
        self.reply = reply


@dataclass
class StreamedResult:
    results: list[DeviceResult] = field(default_factory=list)
    summary: RequestSummary | None = None


async def execute(
    client: Client,
    subject: str,
    request: dict[str, Any],
    timeout: float,
) -> ExecuteResponse:
    """Send one request and wait for the aggregate reply; large outputs are fetched back."""
    message = await client.request(subject, msgspec.json.encode(request), timeout=timeout)
    if message.headers and message.headers.get(MESSAGE_KIND) == "error":
        raise ServiceReplyError(msgspec.json.decode(message.data, type=ErrorReply))
    response = msgspec.json.decode(message.data, type=ExecuteResponse)
    route = OutputRoute.of_execute_subject(subject)
    results = [await resolve_outputs(client, result, route) for result in response.results]
    return msgspec.structs.replace(response, results=results)


async def execute_streamed(
    client: Client,
    subject: str,
    request: dict[str, Any],
    stall_timeout: float,
    on_result: Callable[[DeviceResult], Awaitable[None]] | None = None,
) -> StreamedResult:
    """Send with ``stream: true``; collect per-device replies until the empty end marker.

    ``stall_timeout`` bounds the wait between two messages, not the whole request. Outputs
    offloaded to the object store are fetched back before ``on_result`` sees the result.
    """
    outcome = StreamedResult()
    route = OutputRoute.of_execute_subject(subject)
    async with reply_inbox(client) as (inbox, queue):
        await client.publish(subject, msgspec.json.encode({**request, "stream": True}), reply=inbox)
        while True:
            msg = await asyncio.wait_for(queue.get(), timeout=stall_timeout)
            kind = (msg.headers or {}).get(MESSAGE_KIND)
            if not msg.data:
                return outcome
            if kind == "error":
                raise ServiceReplyError(msgspec.json.decode(msg.data, type=ErrorReply))
            if kind == "summary":
                outcome.summary = msgspec.json.decode(msg.data, type=RequestSummary)
            else:
                decoded = msgspec.json.decode(msg.data, type=DeviceResult)
                result = await resolve_outputs(client, decoded, route)
                outcome.results.append(result)
                if on_result is not None:
                    await on_result(result)


async def wait_until_serving(
    url: str,
    timeout: float,
    service: str = "pyats-ro",
    alive: Callable[[], bool] | None = None,
) -> None:
    """Ping ``$SRV.PING.<service>`` until a replica answers (start-up of demos and benchmarks)."""
    client = await nats.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise RuntimeError("the service exited while starting")
            try:
                await client.request(f"$SRV.PING.{service}", b"", timeout=0.5)
                return
            except (TimeoutError, nats.errors.NoRespondersError):
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the service did not answer $SRV.PING.{service} within {timeout:g}s")
    finally:
        await client.close()
