"""Several service processes in one queue group share the load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.devtools.local_server import LocalNatsServer
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


async def stats(client: Client, count: int, subject: str) -> list[dict[str, Any]]:
    """``$SRV.STATS`` of the replicas serving ``subject`` (other tests' services answer too)."""
    inbox = client.new_inbox()
    replies: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        reply = json.loads(msg.data)
        if any(endpoint["subject"] == subject for endpoint in reply["endpoints"]):
            replies.append(reply)

    sub = await client.subscribe(inbox, cb=collect)
    await client.publish("$SRV.STATS.pyats-ro", b"", reply=inbox)
    for _ in range(50):
        if len(replies) >= count:
            break
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    return replies


async def test_two_replicas_in_one_queue_group_share_requests(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
) -> None:
    prefix = "replicas.v1"
    replicas = [service_factory(PYATS_SUBJECT_PREFIX=prefix, PYATS_SERVICE_NAME="pyats-ro") for _ in range(2)]
    for replica in replicas:
        replica.wait_ready()
    body = json.dumps(
        {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show clock"}]}
    ).encode()
    replies = await asyncio.gather(*(client.request(f"{prefix}.execute.bob", body, timeout=60) for _ in range(12)))
    assert all(json.loads(r.data)["successful_devices"] == 1 for r in replies)
    per_instance = [
        endpoint["num_requests"]
        for s in await stats(client, 2, f"{prefix}.execute.>")
        for endpoint in s["endpoints"]
        if endpoint["subject"] == f"{prefix}.execute.>"
    ]
    assert sorted(per_instance) and sum(per_instance) == 12
    assert len(per_instance) == 2 and min(per_instance) > 0, per_instance
    for replica in replicas:
        assert replica.stop() == 0
        assert "stopped" in replica.log()
