"""The live /metrics of a running service passes `promtool check metrics` (Prometheus' own linter)."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


async def test_live_metrics_pass_promtool_check_metrics(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH: `make promtool` installs Debian's prometheus package (as root)")
    answered = {"endpoint": "execute", "outcome": "ok"}
    before = sample(await asyncio.to_thread(scrape, service.metrics_port), "pyats_requests_total", **answered)

    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show version"}]}
    msg = await client.request("pyats.v1.execute.alice", json.dumps(body).encode(), timeout=60)
    reply = json.loads(msg.data)
    assert reply["successful_devices"] == 1, reply

    text = await asyncio.to_thread(scrape, service.metrics_port)
    assert sample(text, "pyats_requests_total", **answered) == before + 1
    assert sample(text, "pyats_device_results_total", os="iosxe", outcome="ok", error_code="none") >= 1
    assert sample(text, "pyats_request_duration_seconds_count", endpoint="execute") >= 1

    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(text.encode()), timeout=60)
    assert process.returncode == 0, f"promtool check metrics complains:\n{output.decode()}"
    assert not output.strip(), output.decode()
