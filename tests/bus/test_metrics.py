"""Metrics through the whole service: exact deltas after a known sequence, bounded labels, readiness."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families

from service.devtools.local_server import LocalNatsServer, free_port
from tests.conftest import READY_CHECKS, ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_sets(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> set[tuple[str, tuple[str, ...]]]:
    """Distinct series, a histogram's buckets counted once."""
    sets = set()
    for name, labels in samples:
        base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum").removesuffix("_created")
        sets.add((base, tuple(f"{k}={v}" for k, v in labels if k != "le")))
    return sets


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_exact_metric_deltas_after_a_known_sequence(
    service_factory: Callable[..., ServiceProcess], client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    prefix = "metrics.v1"
    service = service_factory(
        PYATS_SUBJECT_PREFIX=prefix, PYATS_RATE_LIMIT_REQUESTS="4", PYATS_RATE_LIMIT_PERIOD="600"
    ).wait_ready()
    try:
        before = scrape(service.metrics_port)

        async def ask(device: dict[str, Any], commands: list[str], **extra: Any) -> dict[str, Any]:
            body = {"devices": [device], "commands": [{"command": c} for c in commands], **extra}
            msg = await client.request(f"{prefix}.execute.ops", json.dumps(body).encode(), timeout=60)
            reply: dict[str, Any] = json.loads(msg.data)
            return reply

        ios = lab_device("ios-1")
        assert (await ask(wire_device(ios), ["show version", "show clock"]))["successful_devices"] == 1
        assert (await ask(wire_device(ios), ["show version", "show clock"]))["successful_devices"] == 1  # warm
        auth = await ask(wire_device(ios, password="wrong-password"), ["show clock"])
        assert auth["results"][0]["error_code"] == "auth_failed"
        hung = await ask(wire_device(lab_device("hangs")), ["show clock"], timeout=1)
        assert hung["results"][0]["commands"][0]["error_code"] == "command_timeout"
        limited = await ask(wire_device(ios), ["show clock"])
        assert limited["error"]["code"] == "rate_limited"

        after = scrape(service.metrics_port)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("pyats_requests_total", endpoint="execute", outcome="ok") == 2
        assert delta("pyats_requests_total", endpoint="execute", outcome="failed") == 2
        assert delta("pyats_requests_total", endpoint="execute", outcome="partial") == 0
        assert delta("pyats_requests_total", endpoint="execute", outcome="rate_limited") == 1
        assert delta("pyats_rate_limited_requests_total", endpoint="execute") == 1
        assert delta("pyats_request_duration_seconds_count", endpoint="execute") == 4  # the refused one ran nothing
        assert delta("pyats_device_results_total", os="ios", outcome="ok", error_code="none") == 2
        assert delta("pyats_device_results_total", os="ios", outcome="failed", error_code="auth_failed") == 1
        assert delta("pyats_device_results_total", os="iosxe", outcome="failed", error_code="command_timeout") == 1
        assert delta("pyats_logins_total", kind="new") == 2  # ios-1 once, hangs once; a refused login is none
        assert delta("pyats_logins_total", kind="reused") == 1
        assert delta("pyats_connect_duration_seconds_count", os="ios", kind="new") == 1
        assert delta("pyats_connect_duration_seconds_count", os="ios", kind="reused") == 1
        assert delta("pyats_connect_duration_seconds_count", os="iosxe", kind="new") == 1
        assert delta("pyats_command_duration_seconds_count", os="ios") == 4
        assert delta("pyats_command_duration_seconds_count", os="iosxe") == 1
        assert delta("pyats_command_duration_seconds_sum", os="iosxe") >= 1.0  # it waited out its timeout
        assert delta("pyats_queue_wait_seconds_count") == 4
        assert delta("pyats_device_duration_seconds_count", os="ios") == 3
        assert value(after, "pyats_requests_in_flight") == 0
        assert value(after, "pyats_results_dropped_total") == 0
        assert delta("pyats_bytes_published_total", kind="result") > 0
    finally:
        service.stop()


async def test_label_cardinality_stays_bounded_after_a_thousand_devices(
    service_factory: Callable[..., ServiceProcess], client: Client
) -> None:
    prefix = "cardinality.v1"
    service = service_factory(
        PYATS_SUBJECT_PREFIX=prefix,
        PYATS_SSH_BACKEND="paramiko",  # refused connects in-process: no ssh process per device
        PYATS_MAX_DEVICES_PER_REQUEST="1000",
        PYATS_MAX_PAYLOAD_BYTES="1048576",
        PYATS_LOGIN_RATE_PER_SECOND="0",
        PYATS_LOG_LEVEL="INFO",
    ).wait_ready()
    try:
        before = scrape(service.metrics_port)
        # 1,000 distinct devices: 127.0.x.y addresses on a port nothing listens on
        port = free_port()
        devices = [
            {
                "hostname": f"127.0.{i // 250}.{i % 250 + 1}",
                "port": port,
                "os": "iosxe",
                "username": "u",
                "password": "p",
            }
            for i in range(1000)
        ]
        body = {"devices": devices, "commands": [{"command": "show clock"}]}
        msg = await client.request(f"{prefix}.execute.ops", json.dumps(body).encode(), timeout=300)
        reply = json.loads(msg.data)
        assert reply["total_devices"] == 1000 and reply["failed_devices"] == 1000
        after = scrape(service.metrics_port)
        new_series = label_sets(after) - label_sets(before)
        # every failed device lands in a few label sets (os, outcome, code), not one series per device
        assert len(new_series) <= 12, sorted(new_series)
        assert len(label_sets(after)) < 150, len(label_sets(after))
        assert (
            value(after, "pyats_device_results_total", os="iosxe", outcome="failed", error_code="connect_refused")
            == 1000
        )
        labels = {v for _, pairs in after for _, v in pairs}
        assert not any(v.startswith("127.0.") for v in labels)
        assert str(port) not in labels
    finally:
        service.stop()


async def test_readiness_follows_the_nats_server(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    server = LocalNatsServer(tmp_path / "nats")
    server.start()
    service = service_factory(PYATS_NATS_URL=server.url, PYATS_READINESS_PROBE_INTERVAL="0.5").wait_ready()
    try:
        port = service.metrics_port

        async def until(ready: bool, timeout: float = 30.0) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            while True:
                status, body = readyz(port)
                if (status == 200) == ready or time.monotonic() > deadline:
                    assert body["ready"] is ready, body
                    assert status == (200 if ready else 503)
                    return body
                await asyncio.sleep(0.2)

        assert (await until(True))["checks"]["jetstream"] is True
        server.stop()
        down = await until(False)
        assert down["checks"]["nats_connected"] is False
        server.start()
        up = await until(True)
        checks = READY_CHECKS
        assert up["checks"] == checks
        plain = await nats.connect(server.url)  # and it serves again
        try:
            response = await plain.request("$SRV.PING.pyats-ro", b"", timeout=5)
            assert json.loads(response.data)["name"] == "pyats-ro"
        finally:
            await plain.close()
    finally:
        service.stop()
        server.stop()
