"""The MCP server's view of the settings: who it asks as, where, and how long it waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.client.connect import BusAddress
from service.config import Settings


@dataclass(frozen=True, slots=True)
class McpOptions:
    requester: str = "mcp"
    address: BusAddress = field(default_factory=BusAddress)
    prefix: str = "pyats.v1"
    service_name: str = "pyats-ro"
    stream: str = "PYATS_RESULTS"
    inventory_file: Path | None = None
    request_timeout: float = 120.0
    host: str = "127.0.0.1"
    port: int = 8765

    @property
    def execute_subject(self) -> str:
        return f"{self.prefix}.execute.{self.requester}"

    @classmethod
    def of(cls, settings: Settings) -> McpOptions:
        mcp = settings.mcp
        user = mcp.nats_user or settings.nats.user
        inbox = mcp.inbox_prefix
        if inbox == "auto":
            inbox = f"_INBOX.{user}" if user else "_INBOX"
        address = BusAddress(
            url=settings.nats.url[0],
            user=user,
            inbox_prefix=inbox,
            password=settings.nats.password.get_secret_value() if user and settings.nats.password else None,
        )
        return cls(
            requester=mcp.requester,
            address=address,
            prefix=settings.bus.subject_prefix,
            service_name=settings.bus.service_name,
            stream=settings.results.stream,
            inventory_file=settings.inventory.file,
            request_timeout=mcp.request_timeout,
            host=mcp.host,
            port=mcp.port,
        )
