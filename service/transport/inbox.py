"""A private reply inbox and the queue its messages land in (streamed replies, ADR-47)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client
from nats.aio.msg import Msg


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
