"""The gateway's NATS side: one connection per requester, each with the requester's own inbox.

Under the shipped auth.conf the service answers only under ``_INBOX.<requester>``; nats-py sets
the inbox prefix per connection, so the gateway keeps one (cached) connection per requester its
keys map to, all as the gateway's own NATS user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from service.client.connect import BusAddress, BusClient, connect_bus
from service.config import Settings
from service.domain.replies import REQUESTER_FIELD


@dataclass(frozen=True, slots=True)
class GatewayBus:
    """Where and as whom the gateway connects (the password never in a repr)."""

    url: str
    user: str | None
    password: str | None = field(repr=False)
    inbox_prefix: str
    prefix: str

    @classmethod
    def of(cls, settings: Settings) -> GatewayBus:
        gateway = settings.gateway
        user = gateway.nats_user or settings.nats.user
        secret = gateway.nats_password or (settings.nats.password if user == settings.nats.user else None)
        return cls(
            url=",".join(settings.nats.url),
            user=user,
            password=secret.get_secret_value() if secret is not None else None,
            inbox_prefix=gateway.inbox_prefix,
            prefix=settings.bus.subject_prefix,
        )

    def address(self, requester: str) -> BusAddress:
        return BusAddress(
            url=self.url,
            user=self.user,
            inbox_prefix=self.inbox_prefix.replace(REQUESTER_FIELD, requester),
            password=self.password,
        )


class Connections:
    """One live connection per requester, opened on first use and again after it closed."""

    def __init__(self, bus: GatewayBus) -> None:
        self.bus = bus
        self._clients: dict[str, BusClient] = {}
        self._lock = asyncio.Lock()

    async def for_requester(self, requester: str) -> BusClient:
        """``BusUnreachableError`` when NATS does not answer."""
        async with self._lock:
            client = self._clients.get(requester)
            if client is None or client.is_closed:
                client = await connect_bus(self.bus.address(requester), attempts=1)
                self._clients[requester] = client
            return client

    async def ready(self) -> bool:
        """Connected to NATS: any live connection, else a fresh one (kept for the next check)."""
        if any(c.is_connected for c in self._clients.values()):
            return True
        try:
            client = await self.for_requester("_ready")
        except Exception:  # noqa: BLE001 - not ready, whatever the reason
            return False
        return bool(client.is_connected)

    async def close(self) -> None:
        async with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            if not client.is_closed:
                await client.close()
