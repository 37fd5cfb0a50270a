"""A private reply inbox and the queue its messages land in (streamed replies, ADR-47)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from service.contract import headers
from service.contract.messages import ErrorReply

MESSAGE_KIND = headers.MESSAGE


@asynccontextmanager
async def reply_inbox(client: Client) -> AsyncIterator[tuple[str, asyncio.Queue[Msg]]]:
    """``(inbox, queue)``: subscribed before the caller publishes, unsubscribed after."""
    inbox = client.new_inbox()
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        await queue.put(msg)

    subscription = await client.subscribe(inbox, cb=collect)
    try:
        yield inbox, queue
    finally:
        await subscription.unsubscribe()


async def streamed_replies(client: Client, subject: str, payload: bytes, stall: float) -> AsyncGenerator[Msg, None]:
    """Ask on ``subject`` and yield the service's replies as they come, the end marker too.

    ``NoRespondersError`` when no replica listens; ``TimeoutError`` after ``stall`` seconds
    without a reply (also what a request the server's permissions dropped looks like).
    """
    async with reply_inbox(client) as (inbox, queue):
        await client.publish(subject, payload, reply=inbox)
        while True:
            msg = await asyncio.wait_for(queue.get(), timeout=stall)
            if (msg.headers or {}).get("Status") == "503":
                raise nats.errors.NoRespondersError
            yield msg


def error_of(msg: Msg) -> str | None:
    """``code: message`` of an error reply, None for any other message."""
    if (msg.headers or {}).get(MESSAGE_KIND) != "error":
        return None
    reply = msgspec.json.decode(msg.data, type=ErrorReply)
    return f"{reply.error.code}: {reply.error.message}"
