"""The whole service through a real nats-server and the lab over SSH."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.client.execute import ServiceReplyError, execute, execute_streamed
from tests.conftest import ServiceProcess, wire_device
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

SUBJECT = "pyats.v1.execute.alice"


async def ask(client: Client, body: dict[str, Any], timeout: float = 60) -> Any:
    msg = await client.request(SUBJECT, json.dumps(body).encode(), timeout=timeout)
    return msg, json.loads(msg.data)


@pytest.mark.parametrize("output_format", ["raw", "parsed", "both"])
async def test_output_formats_end_to_end(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]], output_format: str
) -> None:
    body = {
        "devices": [wire_device(lab_device("iosxe-1"))],
        "commands": [{"command": "show version"}, {"command": "show clock"}],
        "output_format": output_format,
    }
    msg, reply = await ask(client, body)
    assert msg.headers["Pyats-Request-Id"] == reply["request_id"]
    [device] = reply["results"]
    assert device["success"], device
    version = device["commands"][0]
    if output_format == "raw":
        assert "Cisco IOS XE Software" in version["output"] and version["parsed"] is None
    else:
        assert version["parse_status"] == "ok"
        assert version["parsed"]["version"]["hostname"] == "iosxe-1"
        assert (version["output"] is not None) is (output_format == "both")


async def test_twenty_devices_in_one_request(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    devices = [wire_device(lab_device(f"fleet-{i:02d}")) for i in range(20)]
    body = {"devices": devices, "commands": [{"command": "show version"}, {"command": "show ip interface brief"}]}
    started = time.monotonic()
    _, reply = await ask(client, body, timeout=120)
    elapsed = time.monotonic() - started
    assert reply["total_devices"] == 20 and reply["successful_devices"] == 20, reply
    assert {r["port"] for r in reply["results"]} == {d["port"] for d in devices}
    print(f"20 devices x 2 commands at 100 ms: {elapsed:.2f}s")


async def test_malformed_json_gets_a_structured_error(service: ServiceProcess, client: Client) -> None:
    msg = await client.request(SUBJECT, b'{"devices": [', timeout=10)
    body = json.loads(msg.data)
    assert body["error"]["code"] == "invalid_json"
    assert msg.headers["Nats-Service-Error-Code"] == "400"
    assert msg.headers["Nats-Service-Error"].startswith("request is not valid JSON")


async def test_oversize_request_is_refused(service: ServiceProcess, client: Client) -> None:
    msg = await client.request(SUBJECT, b" " * 70_000 + b"{}", timeout=10)
    body = json.loads(msg.data)
    assert body["error"]["code"] == "payload_too_large"
    assert msg.headers["Nats-Service-Error-Code"] == "413"


async def test_refused_command_names_the_rule(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "configure terminal"}]}
    msg, reply = await ask(client, body)
    assert reply["error"]["code"] == "command_not_allowed"
    assert reply["error"]["details"]["rule"] == "show_only"
    assert msg.headers["Nats-Service-Error-Code"] == "403"


async def test_one_failing_device_does_not_fail_the_others(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {
        "devices": [
            wire_device(lab_device("iosxe-1")),
            wire_device(lab_device("locked")),
            wire_device(lab_device("ios-1"), password="wrong"),
        ],
        "commands": [{"command": "show clock"}],
    }
    _, reply = await ask(client, body)
    assert [r["success"] for r in reply["results"]] == [True, False, False]
    assert [r["error_code"] for r in reply["results"][1:]] == ["auth_failed", "auth_failed"]
    assert reply["failed_devices"] == 2


async def test_streamed_replies_arrive_per_device_then_end(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {
        "devices": [wire_device(lab_device("slow")), wire_device(lab_device("ios-1"))],
        "commands": [{"command": "show clock"}],
    }
    arrivals: list[tuple[str, float]] = []
    started = time.monotonic()

    async def on_result(result: Any) -> None:
        arrivals.append((result.hostname + str(result.port), time.monotonic() - started))

    outcome = await execute_streamed(client, SUBJECT, body, stall_timeout=30, on_result=on_result)
    assert outcome.summary is not None and outcome.summary.total_devices == 2
    assert [r.port for r in outcome.results] == [lab_device("ios-1")["port"], lab_device("slow")["port"]]
    assert arrivals[0][1] < arrivals[1][1] - 1.0  # the fast device did not wait for the slow one


async def test_ping_answers_fast_during_a_long_request(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {
        "devices": [wire_device(lab_device("slow"))],
        "commands": [{"command": "show clock"}, {"command": "show version"}],
    }
    accepted = service.log().count("request accepted")
    long_request = asyncio.create_task(execute(client, SUBJECT, body, timeout=60))
    await wait_for_async(lambda: service.log().count("request accepted") > accepted, 30)
    assert not long_request.done()
    durations = []
    for _ in range(5):
        started = time.monotonic()
        await client.request("$SRV.PING.pyats-ro", b"", timeout=2)
        durations.append(time.monotonic() - started)
    response = await long_request
    assert response.successful_devices == 1
    assert max(durations) < 0.1, durations


async def test_client_helper_raises_on_error_reply(service: ServiceProcess, client: Client) -> None:
    with pytest.raises(ServiceReplyError) as caught:
        await execute(client, SUBJECT, {"devices": [], "commands": []}, timeout=10)
    assert caught.value.reply.error.code == "invalid_request"
