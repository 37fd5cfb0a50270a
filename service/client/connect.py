"""One way for a requester to reach the bus: an address, a connect, one error when it fails.

The CLI commands, the benchmarks and any front door connect through here; the service's own
connection (reconnects forever, TLS, nkeys, credentials files) is ``service.transport.connection``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import nats
import nats.errors
from nats.aio.client import Client

BusClient = Client  # what callers above the client layer name, without importing nats
NoRespondersError = nats.errors.NoRespondersError  # no replica listens on the subject
BusError = nats.errors.Error  # any other failure of nats-py
DEFAULT_URL = "nats://127.0.0.1:4222"
PASSWORD_VARIABLE = "PYATS_NATS_PASSWORD"  # noqa: S105 - the name of a variable, not a password


class BusUnreachableError(Exception):
    """NATS did not answer at this address (down, wrong URL, refused credentials)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach NATS at {url}")
        self.url = url


@dataclass(frozen=True, slots=True)
class BusAddress:
    """Where and as whom a requester connects; the password is read from the environment, never an argument."""

    url: str = DEFAULT_URL
    user: str | None = None
    inbox_prefix: str = "_INBOX"
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, url: str | None, user: str | None = None, inbox_prefix: str | None = None) -> BusAddress:
        return cls(
            url=url or DEFAULT_URL,
            user=user or None,
            inbox_prefix=inbox_prefix or "_INBOX",
            password=os.environ.get(PASSWORD_VARIABLE) if user else None,
        )


async def _quiet(_: Exception) -> None:  # nats-py would print a traceback per failed attempt
    return


async def connect_bus(address: BusAddress, *, attempts: int = 2, timeout: float = 5.0) -> Client:
    """A connected client; ``BusUnreachableError`` after ``attempts`` failed tries."""
    try:
        return await nats.connect(
            address.url,
            connect_timeout=timeout,
            max_reconnect_attempts=attempts,
            error_cb=_quiet,
            inbox_prefix=address.inbox_prefix,
            user=address.user,
            password=address.password,
        )
    except (OSError, TimeoutError, nats.errors.Error):
        raise BusUnreachableError(address.url) from None


@asynccontextmanager
async def bus(address: BusAddress, *, attempts: int = 2) -> AsyncIterator[Client]:
    """``connect_bus`` as a context: the connection is closed however the block ends."""
    client = await connect_bus(address, attempts=attempts)
    try:
        yield client
    finally:
        await client.close()
