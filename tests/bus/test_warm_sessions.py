"""Warm sessions through the whole service: the second request reuses the login."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_second_request_reuses_the_session_and_is_faster(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = json.dumps(
        {"devices": [wire_device(lab_device("asa-1"))], "commands": [{"command": "show version"}]}
    ).encode()
    reused_before = metric(service.metrics_port, 'pyats_logins_total{kind="reused"}')
    timings = []
    for _ in range(3):
        started = time.monotonic()
        reply = json.loads((await client.request("pyats.v1.execute.warm", body, timeout=60)).data)
        timings.append(time.monotonic() - started)
        assert reply["successful_devices"] == 1
    assert metric(service.metrics_port, 'pyats_logins_total{kind="reused"}') - reused_before == 2
    assert metric(service.metrics_port, "pyats_sessions_warm") >= 1
    assert max(timings[1:]) < timings[0]  # no login on the warm path
