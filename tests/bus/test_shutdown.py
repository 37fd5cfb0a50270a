"""SIGTERM mid-request: intake stops, in-flight work finishes or is cut off, every request gets its reply."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.devtools.lab.runner import LabProcess
from service.devtools.local_server import LocalNatsServer
from tests.conftest import ServiceProcess, wire_device
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


async def test_sigterm_mid_request_still_answers_every_accepted_request(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    client: Client,
    lab: LabProcess,
    lab_device: Callable[[str], dict[str, Any]],
) -> None:
    prefix = "shutdown.v1"
    replica = service_factory(PYATS_SUBJECT_PREFIX=prefix, PYATS_SHUTDOWN_GRACE="2").wait_ready()
    quick = {"devices": [wire_device(lab_device("ios-1"))], "commands": [{"command": "show clock"}]}
    slow = {
        "devices": [wire_device(lab_device("iosxe-1")), wire_device(lab_device("slow"))],
        "commands": [{"command": "show clock"}, {"command": "show version"}, {"command": "show inventory"}],
    }
    streamed = {**slow, "stream": True, "devices": [wire_device(lab_device("nxos-1")), wire_device(lab_device("slow"))]}

    async def ask(body: dict[str, Any]) -> Any:
        return await client.request(f"{prefix}.execute.ops", json.dumps(body).encode(), timeout=30)

    inbox = client.new_inbox()
    stream_messages: list[Any] = []

    async def collect(msg: Any) -> None:
        stream_messages.append(msg)

    def last_commands() -> int:
        """How often the fast devices of both slow requests have received their last command."""
        ports = {lab_device("iosxe-1")["port"], lab_device("nxos-1")["port"]}
        return sum(
            1 for e in lab.read_log() if e.get("port") in ports and e.get("line", "").strip() == "show inventory"
        )

    before = last_commands()
    await client.subscribe(inbox, cb=collect)
    slow_reply = asyncio.create_task(ask(slow))
    quick_reply = asyncio.create_task(ask(quick))
    await client.publish(f"{prefix}.execute.ops", json.dumps(streamed).encode(), reply=inbox)
    # every request accepted and the fast devices through their commands; the slow device
    # (3 s per command) is mid-request
    await wait_for_async(lambda: replica.log().count("request accepted") == 3 and last_commands() == before + 2, 60)
    replica._process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    quick_body = json.loads((await quick_reply).data)
    assert quick_body["successful_devices"] == 1
    slow_body = json.loads((await slow_reply).data)
    by_port = {r["port"]: r for r in slow_body["results"]}
    assert by_port[lab_device("iosxe-1")["port"]]["success"]
    assert by_port[lab_device("slow")["port"]]["error_code"] == "service_unavailable"
    for _ in range(100):
        if stream_messages and not stream_messages[-1].data:
            break
        await asyncio.sleep(0.1)
    kinds = [(m.headers or {}).get("Pyats-Message") for m in stream_messages]
    assert kinds == ["result", "result", "summary", "end"]
    assert replica.stop() == 0
    assert "cut off at shutdown" in replica.log()
