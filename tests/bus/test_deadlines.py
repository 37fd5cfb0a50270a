"""Deadlines by phase through the whole service, each with its own error code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.devtools.lab.runner import LabProcess
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]
PREFIX = "deadlines.v1"


@pytest.fixture(scope="module")
def strict_service(service_factory: Callable[..., ServiceProcess]) -> ServiceProcess:
    return service_factory(
        PYATS_SUBJECT_PREFIX=PREFIX,
        PYATS_MAX_CONCURRENT_DEVICES="1",
        PYATS_CONNECT_TIMEOUT="2",
        PYATS_DEVICE_TIMEOUT="5",  # "slow" answers each show command in 3 s
        PYATS_QUEUE_TIMEOUT="1",
        PYATS_SESSION_IDLE_TTL="0",
    ).wait_ready()


async def ask(client: Client, devices: list[dict[str, Any]], commands: list[str], **extra: Any) -> dict[str, Any]:
    body = {"devices": devices, "commands": [{"command": c} for c in commands], **extra}
    msg = await client.request(f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def test_connect_deadline(
    strict_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    reply = await ask(client, [wire_device(lab_device("slow-login"))], ["show clock"])
    assert reply["results"][0]["error_code"] == "connect_timeout"


async def test_command_deadline(
    strict_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    reply = await ask(client, [wire_device(lab_device("hangs"))], ["show clock", "show version"], timeout=1)
    first, second = reply["results"][0]["commands"]
    assert first["error_code"] == "command_timeout"
    assert first["duration_s"] < 3  # cut at the 1 s command deadline, not the 5 s device deadline
    assert second["error_code"] == "disconnected"  # the session is not trusted after a timeout


async def test_device_deadline(
    strict_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    reply = await ask(client, [wire_device(lab_device("slow"))], ["show clock", "show version", "show inventory"])
    codes = [c["error_code"] for c in reply["results"][0]["commands"]]
    assert codes[0] is None
    assert codes[1] == "device_timeout"
    assert reply["results"][0]["duration_s"] < 7


async def test_queue_deadline(
    strict_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    reply = await ask(client, [wire_device(lab_device("slow")), wire_device(lab_device("ios-1"))], ["show clock"])
    slow, waiting = reply["results"]
    assert slow["success"]
    assert waiting["error_code"] == "queue_timeout"


async def test_per_device_session_limit_seen_by_the_lab(
    service: ServiceProcess, client: Client, lab: LabProcess, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    device = lab_device("one-line")
    body = {"devices": [wire_device(device)] * 4, "commands": [{"command": "show clock"}, {"command": "show version"}]}
    replies = await asyncio.gather(
        *(client.request("pyats.v1.execute.vty", json.dumps(body).encode(), timeout=60) for _ in range(2))
    )
    assert all(json.loads(r.data)["successful_devices"] == 4 for r in replies)
    assert lab.max_concurrent_sessions()[device["port"]] == 1
