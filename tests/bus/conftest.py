from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest_asyncio
from nats.aio.client import Client

from service.transport.local_server import LocalNatsServer


@pytest_asyncio.fixture
async def client(nats_server: LocalNatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(nats_server.url)
    try:
        yield connection
    finally:
        await connection.close()
