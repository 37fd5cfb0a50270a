"""Every replica's ``$SRV.INFO`` and ``$SRV.STATS`` (nats.micro), gathered into one row per replica."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from service.client.connect import BusAddress, connect_bus


async def _gather(client: Any, subject: str, wait: float) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        if msg.data:
            replies.append(json.loads(msg.data))

    inbox = client.new_inbox()
    subscription = await client.subscribe(inbox, cb=collect)
    await client.publish(subject, b"", reply=inbox)
    await asyncio.sleep(wait)
    await subscription.unsubscribe()
    return replies


def _uptime(started: str | None) -> str:
    if not started:
        return "-"
    try:
        begun = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if begun.tzinfo is None:
        begun = begun.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - begun).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


async def collect_status(address: BusAddress, service: str, wait: float) -> list[dict[str, Any]]:
    """One row per replica: id, version, uptime, the execute endpoint's numbers and the device
    workers it sends to."""
    client = await connect_bus(address, attempts=1)
    try:
        infos, stats = await asyncio.gather(
            _gather(client, f"$SRV.INFO.{service}", wait), _gather(client, f"$SRV.STATS.{service}", wait)
        )
    finally:
        await client.close()
    by_id = {info["id"]: info for info in infos}
    rows = []
    for stat in stats:
        data: dict[str, Any] = {}
        for endpoint in stat.get("endpoints", []):
            if endpoint.get("name") == "execute" and isinstance(endpoint.get("data"), dict):
                data = endpoint["data"]
        info = by_id.get(stat["id"], {})
        rows.append(
            {
                "replica": stat["id"],
                "version": stat.get("version") or info.get("version", "-"),
                "uptime": _uptime(stat.get("started")),
                "requests": data.get("requests", 0),
                "errors": data.get("errors", 0),
                "average_latency_s": data.get("average_latency_s", 0.0),
                "in_flight": data.get("in_flight", 0),
                "subject_prefix": info.get("metadata", {}).get("subject_prefix", "-"),
                "workers": data.get("workers", []),
            }
        )
    return sorted(rows, key=lambda row: row["replica"])
