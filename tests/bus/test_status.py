"""`pyats-ro status` against two replicas."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.devtools.local_server import LocalNatsServer
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


async def test_status_lists_every_replica_with_its_numbers(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
) -> None:
    replicas = [
        service_factory(PYATS_SUBJECT_PREFIX="status.v1", PYATS_SERVICE_NAME="pyats-status").wait_ready()
        for _ in range(2)
    ]
    body = json.dumps({"devices": [wire_device(lab_device("ios-1"))], "commands": [{"command": "show clock"}]})
    for _ in range(6):
        await client.request("status.v1.execute.ops", body.encode(), timeout=60)
    await client.request("status.v1.execute.ops", b"{bad", timeout=10)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "service",
            "status",
            "--nats-url",
            nats_server.url,
            "--service",
            "pyats-status",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    assert sum(row["requests"] for row in rows) == 7
    assert sum(row["errors"] for row in rows) == 1
    assert all(row["version"] and row["uptime"] != "-" for row in rows)
    assert any(row["average_latency_s"] > 0 for row in rows)
    table = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service", "status", "--nats-url", nats_server.url, "--service", "pyats-status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "2 replica(s)" in table.stdout
    for replica in replicas:
        replica.stop()
