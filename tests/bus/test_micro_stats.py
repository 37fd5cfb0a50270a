"""$SRV.STATS as the NATS service API (ADR-32) defines it, read back by a NATS client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


async def test_stats_count_real_handling_time_and_error_replies(
    service_factory: Callable[..., ServiceProcess], client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    service_factory(PYATS_SUBJECT_PREFIX="stats.v1", PYATS_SERVICE_NAME="stats-svc").wait_ready()
    good = {"devices": [wire_device(lab_device("slow"))], "commands": [{"command": "show clock"}]}
    for _ in range(2):
        reply = await client.request("stats.v1.execute.alice", json.dumps(good).encode(), timeout=60)
        assert json.loads(reply.data)["successful_devices"] == 1
    bad = [b"{not json", json.dumps({**good, "extra": 1}).encode(), json.dumps({**good, "commands": []}).encode()]
    for body in bad:
        reply = await client.request("stats.v1.execute.alice", body, timeout=10)
        assert reply.headers and "Nats-Service-Error-Code" in reply.headers
    await client.request("stats.v1.history.alice", b"{not json", timeout=10)

    stats = json.loads((await client.request("$SRV.STATS.stats-svc", b"", timeout=5)).data)
    endpoints = {e["name"]: e for e in stats["endpoints"]}
    execute = endpoints["execute"]
    assert execute["num_requests"] == 5
    assert execute["num_errors"] == 3
    assert execute["last_error"].startswith("400:") and "invalid_request" in execute["last_error"]
    # the 'slow' device answers each command after 3 s: the real handling time, not the callback's
    assert execute["processing_time"] >= 2 * 3_000_000_000
    assert execute["average_processing_time"] == execute["processing_time"] // 5
    assert endpoints["history"]["num_requests"] == 1 and endpoints["history"]["num_errors"] == 1
    assert endpoints["outputs"]["num_requests"] == 0 and endpoints["outputs"]["num_errors"] == 0
