"""The requester side: build execute requests for lab devices, send them, time them.

Speaks plain nats-py (not the service's own client) so the bench measures what any
requester sees.  Aggregate replies use ``request``; ``stream=True`` collects the
per-device replies until the empty end marker (for requests whose aggregate reply
would not fit in one NATS message).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client

from service.client.execute import wait_until_serving

SUBJECT = "pyats.v1.execute.bench"
PING = "$SRV.PING.pyats-ro"
COMMANDS = ["show version", "show ip interface brief", "show clock", "show inventory"]


@dataclass
class Reply:
    """One request as the requester saw it."""

    wall_s: float
    results: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    successful: int = 0
    failed: int = 0
    service_duration_s: float | None = None
    error: str | None = None  # a refused request or a transport failure

    @property
    def device_durations(self) -> list[float]:
        return [float(r["duration_s"]) for r in self.results if r.get("duration_s") is not None]

    def error_summary(self, limit: int = 3) -> str:
        """The request error, or the first few distinct device error codes with counts."""
        if self.error:
            return self.error
        counts: dict[str, int] = {}
        for result in self.results:
            if not result.get("success"):
                key = f"{result.get('error_code')}: {str(result.get('error'))[:80]}"
                counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{n}x {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit])


def build_request(devices: list[dict[str, Any]], password: str, commands: int) -> dict[str, Any]:
    return {
        "devices": [
            {"hostname": d["host"], "port": d["port"], "os": d["os"], "username": "admin", "password": password}
            for d in devices
        ],
        "commands": [{"command": c} for c in COMMANDS[:commands]],
    }


async def wait_ready(url: str, timeout: float, alive: Any = None) -> None:
    await wait_until_serving(url, timeout, alive=alive)


async def send(client: Client, request: dict[str, Any], timeout: float, stream: bool = False) -> Reply:
    """One request; never raises for a refused request or a timeout (``Reply.error`` says)."""
    body = json.dumps({**request, "stream": True} if stream else request).encode()
    started = time.perf_counter()
    try:
        if stream:
            return await _send_streamed(client, body, timeout, started)
        message = await client.request(SUBJECT, body, timeout=timeout)
    except (TimeoutError, nats.errors.TimeoutError):
        return Reply(wall_s=time.perf_counter() - started, error=f"no reply within {timeout:.0f} s")
    except nats.errors.Error as exc:
        return Reply(wall_s=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - started
    return _decode(wall, message.data, (message.headers or {}).get("Pyats-Message"))


def _decode(wall: float, data: bytes, kind: str | None) -> Reply:
    document = json.loads(data)
    if kind == "error" or ("error" in document and "results" not in document):
        error = document.get("error") or {}
        return Reply(wall_s=wall, error=f"{error.get('code')}: {error.get('message')}")
    return Reply(
        wall_s=wall,
        results=list(document.get("results", [])),
        total=int(document.get("total_devices", 0)),
        successful=int(document.get("successful_devices", 0)),
        failed=int(document.get("failed_devices", 0)),
        service_duration_s=document.get("duration_s"),
    )


async def _send_streamed(client: Client, body: bytes, timeout: float, started: float) -> Reply:
    inbox = client.new_inbox()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def collect(msg: Any) -> None:
        await queue.put(msg)

    subscription = await client.subscribe(inbox, cb=collect)
    reply = Reply(wall_s=0.0)
    try:
        await client.publish(SUBJECT, body, reply=inbox)
        deadline = started + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError
            msg = await asyncio.wait_for(queue.get(), timeout=remaining)
            kind = (msg.headers or {}).get("Pyats-Message")
            if not msg.data:
                break
            document = json.loads(msg.data)
            if kind == "error":
                error = document.get("error") or {}
                reply.error = f"{error.get('code')}: {error.get('message')}"
                break
            if kind == "summary":
                reply.total = int(document.get("total_devices", 0))
                reply.successful = int(document.get("successful_devices", 0))
                reply.failed = int(document.get("failed_devices", 0))
                reply.service_duration_s = document.get("duration_s")
            else:
                reply.results.append(document)
    except TimeoutError:
        reply.error = f"stream not ended within {timeout:.0f} s ({len(reply.results)} results)"
    finally:
        await subscription.unsubscribe()
    reply.wall_s = time.perf_counter() - started
    return reply
