"""Requests by inventory name and group; the testbed reloads on SIGHUP and on change."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import LAB_PASSWORD, ServiceProcess
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]
PREFIX = "inventory.v1"


def render_testbed(devices: dict[str, dict[str, Any]]) -> str:
    lines = [
        "testbed:",
        "  credentials:",
        "    default: {username: admin, password: '%ENV{LAB_DEVICE_PASSWORD}'}",
        "devices:",
    ]
    for name, entry in devices.items():
        lines += [
            f"  {name}:",
            f"    os: {entry['os']}",
            f"    connections: {{cli: {{protocol: ssh, ip: {entry['host']}, port: {entry['port']}}}}}",
            f"    groups: {json.dumps(entry.get('groups', []))}",
        ]
    return "\n".join(lines) + "\n"


async def ask(client: Client, devices: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"devices": devices, "commands": [{"command": "show clock"}]}
    msg = await client.request(f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def test_inventory_requests_and_reloads(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    path = tmp_path / "testbed.yaml"
    path.write_text(
        render_testbed(
            {
                "core-1": {**lab_device("ios-1"), "groups": ["core"]},
                "core-2": {**lab_device("nxos-1"), "groups": ["core"]},
            }
        )
    )
    service = service_factory(
        PYATS_SUBJECT_PREFIX=PREFIX,
        PYATS_INVENTORY_FILE=str(path),
        PYATS_ALLOW_INLINE_CREDENTIALS="false",
        PYATS_INVENTORY_POLL_INTERVAL="0.3",
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
    ).wait_ready()

    by_group = await ask(client, [{"group": "core"}])
    assert by_group["successful_devices"] == 2
    by_glob = await ask(client, [{"name": "core-*"}])
    assert by_glob["total_devices"] == 2
    inline = await ask(client, [{"hostname": "10.0.0.1", "os": "ios", "username": "u", "password": "p"}])
    assert inline["error"]["details"]["rule"] == "inline_credentials"

    path.write_text(render_testbed({"edge-1": lab_device("asa-1")}))  # picked up by the file watcher
    for _ in range(50):
        reply = await ask(client, [{"name": "edge-1"}])
        if "error" not in reply:
            break
        await asyncio.sleep(0.1)
    assert reply["successful_devices"] == 1
    assert (await ask(client, [{"group": "core"}]))["error"]["code"] == "unknown_device"

    path.write_text("devices: [broken")
    service._process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    await wait_for_async(lambda: "inventory reload failed, keeping the last good one" in service.log(), 30)
    assert (await ask(client, [{"name": "edge-1"}]))["successful_devices"] == 1  # the last good inventory
    assert service.stop() == 0
    assert LAB_PASSWORD not in service.log()
