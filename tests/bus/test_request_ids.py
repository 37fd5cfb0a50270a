"""Request ids through the whole service: reply, results and every log line, worker threads included."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]
PREFIX = "ids.v1"
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def json_service(service_factory: Callable[..., ServiceProcess]) -> Iterator[ServiceProcess]:
    service = service_factory(
        PYATS_SUBJECT_PREFIX=PREFIX, PYATS_LOG_FORMAT="json", PYATS_LOG_LIBRARY_LEVEL="DEBUG"
    ).wait_ready()
    yield service
    service.stop()  # not left answering $SRV requests in later tests


async def test_a_header_id_reaches_the_reply_the_results_and_the_log_lines_of_worker_threads(
    json_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    request_id = "trace-me-0001"
    results: list[Msg] = []

    async def keep(msg: Msg) -> None:
        results.append(msg)

    sub = await client.subscribe(f"{PREFIX}.results.ops.{request_id}.>", cb=keep)
    devices = [wire_device(lab_device("ios-1")), wire_device(lab_device("nxos-1"))]
    body = {"devices": devices, "commands": [{"command": "show clock"}]}
    msg = await client.request(
        f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60, headers={"Pyats-Request-Id": request_id}
    )
    reply = json.loads(msg.data)
    assert reply["request_id"] == request_id and msg.headers["Pyats-Request-Id"] == request_id
    assert all(r["request_id"] == request_id for r in reply["results"])
    for _ in range(50):
        if len(results) == 3:
            break
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    assert len(results) == 3  # two devices and the summary
    assert all(m.headers["Pyats-Request-Id"] == request_id for m in results)

    lines = [json.loads(line) for line in json_service.log().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line["request_id"] == request_id]
    assert any(line["message"].startswith("request done") for line in mine)
    hosts = {d["hostname"] for d in devices}
    workers = [line for line in mine if line["thread"].startswith("device")]
    assert workers and {line["device"] for line in workers} <= hosts
    assert any(line["module"].startswith("unicon") for line in workers)  # Unicon's own logger, same id
    # no line about these devices' work was written without the id
    for line in lines:
        if line["thread"].startswith("device") and line["device"] in hosts and line["request_id"] == "-":
            pytest.fail(f"a worker line lost its request id: {line}")


async def test_a_body_id_wins_and_without_one_a_uuid7_is_made(
    json_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    device = [wire_device(lab_device("iosxe-1"))]
    body = {"devices": device, "commands": [{"command": "show clock"}], "request_id": "from-body"}
    msg = await client.request(
        f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60, headers={"Pyats-Request-Id": "from-header"}
    )
    assert json.loads(msg.data)["request_id"] == "from-body"
    del body["request_id"]
    first = json.loads((await client.request(f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60)).data)
    second = json.loads((await client.request(f"{PREFIX}.execute.ops", json.dumps(body).encode(), timeout=60)).data)
    assert UUID7.match(first["request_id"]) and UUID7.match(second["request_id"])
    assert first["request_id"] < second["request_id"]  # time-ordered
