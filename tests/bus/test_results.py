"""Per-device result subjects, kept in JetStream, de-duplicated by Nats-Msg-Id."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import api

from service.devtools.local_server import LocalNatsServer, free_port
from tests.conftest import ServiceProcess, serve_until_exit, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def stored(client: Client, subject: str, expected: int) -> list[Any]:
    js = client.jetstream()
    sub = await js.subscribe(subject, ordered_consumer=True)
    messages = []
    try:
        for _ in range(expected):
            messages.append(await sub.next_msg(timeout=10))
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
    finally:
        await sub.unsubscribe()
    return messages


async def test_each_device_result_and_the_summary_are_kept(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    devices = [lab_device("ios-1"), lab_device("locked")]
    body = {
        "devices": [wire_device(d) for d in devices],
        "commands": [{"command": "show clock"}],
        "request_id": "res-1",
    }
    reply = json.loads((await client.request("pyats.v1.execute.alice", json.dumps(body).encode(), timeout=60)).data)
    assert reply["total_devices"] == 2
    messages = await stored(client, "pyats.v1.results.alice.res-1.>", 3)
    by_subject = {m.subject: m for m in messages}
    ok_subject = f"pyats.v1.results.alice.res-1.127_0_0_1-p{devices[0]['port']}"
    assert set(by_subject) == {
        ok_subject,
        f"pyats.v1.results.alice.res-1.127_0_0_1-p{devices[1]['port']}",
        "pyats.v1.results.alice.res-1._summary",
    }
    ok = by_subject[ok_subject]
    assert json.loads(ok.data)["hostname"] == "127.0.0.1"  # the body keeps the real hostname
    assert ok.headers["Pyats-Request-Id"] == "res-1" and ok.headers["Pyats-Requester"] == "alice"
    assert ok.headers["Pyats-Device"] == "127.0.0.1" and ok.headers["Pyats-Status"] == "ok"
    assert ok.headers["Nats-Msg-Id"] == f"alice.res-1.127_0_0_1-p{devices[0]['port']}"  # scoped to the requester
    failed = by_subject[f"pyats.v1.results.alice.res-1.127_0_0_1-p{devices[1]['port']}"]
    assert failed.headers["Pyats-Status"] == "auth_failed"
    summary = json.loads(by_subject["pyats.v1.results.alice.res-1._summary"].data)
    assert summary["failed_devices"] == 1


async def test_a_duplicate_publish_is_dropped(service: ServiceProcess, client: Client) -> None:
    js = client.jetstream()
    headers = {"Nats-Msg-Id": "dup-1.r1"}
    first = await js.publish("pyats.v1.results.tester.dup-1.r1", b"{}", headers=headers)
    second = await js.publish("pyats.v1.results.tester.dup-1.r1", b"{}", headers=headers)
    assert not first.duplicate and second.duplicate
    info = await js.stream_info("PYATS_RESULTS", subjects_filter="pyats.v1.results.tester.>")
    assert info.state.subjects == {"pyats.v1.results.tester.dup-1.r1": 1}


async def test_without_jetstream_the_service_still_serves(
    service_factory: Callable[..., ServiceProcess],
    tmp_path_factory: pytest.TempPathFactory,
    lab_device: Callable[[str], dict[str, Any]],
) -> None:
    server = LocalNatsServer(tmp_path_factory.mktemp("plain-nats"), jetstream=False)
    server.start()
    try:
        service = service_factory(PYATS_NATS_URL=server.url).wait_ready()
        client = await nats.connect(server.url)
        try:
            body = {"devices": [wire_device(lab_device("ios-1"))], "commands": [{"command": "show clock"}]}
            reply = json.loads((await client.request("pyats.v1.execute.x", json.dumps(body).encode(), timeout=60)).data)
            assert reply["successful_devices"] == 1
        finally:
            await client.close()
        assert "pyats_jetstream_available 0.0" in await asyncio.to_thread(scrape, service.metrics_port)
        service.stop()
        assert "JetStream is not available" in service.log()
    finally:
        server.stop()


async def test_an_incompatible_existing_stream_stops_start_up_clearly(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = LocalNatsServer(tmp_path_factory.mktemp("odd-stream"))
    server.start()
    try:
        client = await nats.connect(server.url)
        await client.jetstream().add_stream(
            name="PYATS_RESULTS", subjects=["pyats.v1.results.>"], storage=api.StorageType.MEMORY
        )
        await client.close()
        settings = {
            "PYATS_NATS_URL": server.url,
            "PYATS_METRICS_PORT": str(free_port()),
            "PYATS_PARSER_PREWARM": "iosxe:show version",
        }
        result = await asyncio.to_thread(serve_until_exit, settings)
        assert result.returncode == 2, result.stderr
        assert "PYATS_RESULTS" in result.stderr and "cannot take these settings" in result.stderr
    finally:
        server.stop()


async def test_a_stream_name_taken_by_another_prefix_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = LocalNatsServer(tmp_path_factory.mktemp("taken-stream"))
    server.start()
    try:
        client = await nats.connect(server.url)
        await client.jetstream().add_stream(name="PYATS_RESULTS", subjects=["other.v1.results.>"])
        await client.close()
        settings = {
            "PYATS_NATS_URL": server.url,
            "PYATS_METRICS_PORT": str(free_port()),
            "PYATS_PARSER_PREWARM": "iosxe:show version",
        }
        result = await asyncio.to_thread(serve_until_exit, settings)
        assert result.returncode == 2, result.stderr
        assert "PYATS_RESULTS_STREAM" in result.stderr
    finally:
        server.stop()
