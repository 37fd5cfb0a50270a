"""The change detector and its publisher against small hand-written fakes of the KV bucket and
JetStream (no sockets): outcomes, compare-and-set conflicts, oversized baselines, scope."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from nats.js import api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from service.config import ChangeScope
from service.contract.messages import ChangeEvent, CommandResult, DeviceResult, RequestSummary
from service.domain.changes import DEFAULT_RULES
from service.domain.inventory import Inventory, InventoryDevice
from service.domain.models import DeviceOS, Secret
from service.observability.metrics import ServiceMetrics
from service.transport.changes import (
    MAX_BASELINE_BYTES,
    ChangeDetector,
    ChangeTrackingPublisher,
    baseline_key,
)
from service.transport.subjects import Subjects

pytestmark = pytest.mark.unit


@dataclass
class _Entry:
    value: bytes
    revision: int


class FakeKV:
    """Keys with revisions; ``interfere`` makes the next update lose to another writer once."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.revision = 0
        self.interfere = False

    async def get(self, key: str) -> _Entry:
        if key not in self.entries:
            raise KeyNotFoundError
        return self.entries[key]

    def _write(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = _Entry(value, self.revision)
        return self.revision

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError("exists")
        return self._write(key, value)

    async def update(self, key: str, value: bytes, last: int) -> int:
        if self.interfere:  # another replica rewrote the same baseline first
            self.interfere = False
            self._write(key, self.entries[key].value)
        if self.entries[key].revision != last:
            raise KeyWrongLastSequenceError("wrong last sequence")
        return self._write(key, value)


class FakeJetStream:
    """Keeps what is published; drops a repeated ``Nats-Msg-Id`` like JetStream's duplicate window."""

    def __init__(self) -> None:
        self.published: list[tuple[str, ChangeEvent, dict[str, str]]] = []
        self.ids: set[str] = set()

    async def publish(self, subject: str, payload: bytes, timeout: float, headers: dict[str, str]) -> api.PubAck:
        msg_id = headers["Nats-Msg-Id"]
        if msg_id in self.ids:
            return api.PubAck(stream="CHANGES", seq=len(self.published), duplicate=True)
        self.ids.add(msg_id)
        self.published.append((subject, msgspec.json.decode(payload, type=ChangeEvent), headers))
        return api.PubAck(stream="CHANGES", seq=len(self.published))


def result(request_id: str, parsed: dict[str, Any] | None, output: str | None = None, ok: bool = True) -> DeviceResult:
    command = CommandResult(command="show ip bgp summary", success=ok, parsed=parsed, output=output)
    return DeviceResult(
        request_id=request_id, hostname="10.1.1.1", port=22, os="iosxe", success=True, commands=[command]
    )


def bgp(state: str, up_down: str) -> dict[str, Any]:
    return {
        "vrf": {
            "default": {"neighbor": {"10.0.0.3": {"address_family": {"": {"state_pfxrcd": state, "up_down": up_down}}}}}
        }
    }


INVENTORY = Inventory(
    devices={
        "edge-1": InventoryDevice(
            "edge-1", "10.1.1.1", 22, DeviceOS("iosxe"), "admin", Secret("pw"), groups=frozenset({"edge", "core"})
        )
    }
)


def detector(
    buffer: int = 100, kv: FakeKV | None = None, js: FakeJetStream | None = None, metrics: ServiceMetrics | None = None
) -> tuple[ChangeDetector, FakeKV, FakeJetStream, ServiceMetrics]:
    kv, js, metrics = kv or FakeKV(), js or FakeJetStream(), metrics or ServiceMetrics()
    found = ChangeDetector(
        js,  # type: ignore[arg-type]
        kv,  # type: ignore[arg-type]
        Subjects("p.v1"),
        DEFAULT_RULES,
        metrics,
        lambda: INVENTORY,
        50,
        buffer=buffer,
    )
    return found, kv, js, metrics


def outcomes(metrics: ServiceMetrics) -> dict[str, float]:
    names = ("baseline", "unchanged", "changed", "skipped")
    values = {o: metrics.registry.get_sample_value("pyats_change_comparisons_total", {"outcome": o}) for o in names}
    return {o: v for o, v in values.items() if v}


@pytest.mark.asyncio
async def test_baseline_then_unchanged_then_one_change_then_a_rerun_is_skipped() -> None:
    found, kv, js, metrics = detector()
    found.start()
    found.observe("alice", result("r1", bgp("2", "01:00:00")), None)
    found.observe("alice", result("r2", bgp("2", "01:05:00")), None)  # only the timer moved
    found.observe("alice", result("r3", bgp("Idle", "00:00:01")), "every-minute")
    found.observe("alice", result("r3", bgp("Active", "00:00:09")), "every-minute")  # redelivered r3
    found.observe("alice", result("r4", None, ok=False), None)  # a failed command: nothing to compare
    await found.close(5)
    assert outcomes(metrics) == {"baseline": 1, "unchanged": 1, "changed": 1, "skipped": 1}
    ((subject, event, headers),) = js.published
    key = baseline_key("alice", "10.1.1.1", 22, "show ip bgp summary")
    assert subject == "p.v1.changes.alice.10_1_1_1" and headers["Nats-Msg-Id"] == f"{key}.r3"
    assert [(c.path, c.old, c.new) for c in event.changed] == [
        ("vrf.default.neighbor['10.0.0.3'].address_family[''].state_pfxrcd", "2", "Idle")
    ]
    assert (event.previous.request_id, event.current.request_id) == ("r2", "r3")
    assert event.schedule == "every-minute" and event.rule == "show ip bgp summary"
    assert event.groups == ["core", "edge"] and event.os == "iosxe" and not event.truncated
    assert metrics.registry.get_sample_value("pyats_change_events_total", {"command": "show ip bgp summary"}) == 1
    assert list(kv.entries) == [key]


@pytest.mark.asyncio
async def test_a_compare_and_set_conflict_is_read_again_and_publishes_once() -> None:
    found, kv, js, metrics = detector()
    found.start()
    found.observe("alice", result("r1", bgp("2", "01:00:00")), None)
    await found.close(5)
    again, _, _, _ = detector(kv=kv, js=js, metrics=metrics)  # the same bucket, e.g. after a restart
    kv.interfere = True
    again.start()
    again.observe("alice", result("r2", bgp("Idle", "00:00:01")), None)
    await again.close(5)
    assert len(js.published) == 1  # the second attempt's event had the same Msg-Id
    assert outcomes(metrics) == {"baseline": 1, "changed": 1}
    assert metrics.registry.get_sample_value("pyats_change_events_total", {"command": "show ip bgp summary"}) == 1


@pytest.mark.asyncio
async def test_an_oversized_baseline_keeps_its_digest_and_a_change_is_an_event_without_detail() -> None:
    found, kv, js, _ = detector()
    found.start()
    noise = {"blob": os.urandom(MAX_BASELINE_BYTES).hex()}  # incompressible, twice the limit
    found.observe("alice", result("r1", noise), None)
    found.observe("alice", result("r2", {"blob": "small now"}), None)
    await found.close(5)
    ((_, event, _),) = js.published
    assert event.truncated and event.kind == "parsed" and not event.changed and not event.added
    assert all(len(entry.value) < MAX_BASELINE_BYTES for entry in kv.entries.values())


@pytest.mark.asyncio
async def test_an_oversized_event_goes_without_its_paths() -> None:
    found, kv, js, _ = detector()
    found.start()
    found.observe("alice", result("r1", {"a": 1}), None)
    found.observe("alice", result("r2", {"a": 1, "blob": os.urandom(300 * 1024).hex()}), None)
    await found.close(5)
    ((_, event, _),) = js.published
    assert event.truncated and not event.added and event.current.request_id == "r2"
    assert all(len(entry.value) < MAX_BASELINE_BYTES for entry in kv.entries.values())


@pytest.mark.asyncio
async def test_a_full_queue_drops_the_oldest_and_counts_it_skipped() -> None:
    found, _, _, metrics = detector(buffer=2)
    for n in range(3):  # not started: nothing is taken off the queue
        found.observe("alice", result(f"r{n}", bgp("2", "01:00:00")), None)
    assert outcomes(metrics) == {"skipped": 1}
    found.start()
    await found.close(5)
    assert outcomes(metrics) == {"skipped": 1, "baseline": 1, "unchanged": 1}


class FakePublisher:
    def __init__(self) -> None:
        self.results: list[DeviceResult] = []
        self.summaries: list[RequestSummary] = []

    async def publish_result(self, requester: str, device: DeviceResult) -> asyncio.Future[bool]:
        self.results.append(device)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done

    async def publish_summary(self, requester: str, summary: RequestSummary) -> asyncio.Future[bool]:
        self.summaries.append(summary)
        return await self.publish_result(requester, result(summary.request_id, None))


class RecordingDetector:
    def __init__(self) -> None:
        self.seen: list[tuple[str, DeviceResult, str | None]] = []

    def observe(self, requester: str, device: DeviceResult, schedule: str | None) -> None:
        self.seen.append((requester, device, schedule))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("scope", "observed"), [(ChangeScope.ALL, ["r1", "tick-1"]), (ChangeScope.SCHEDULED, ["tick-1"])]
)
async def test_the_publisher_stores_every_result_and_observes_those_in_scope(
    scope: ChangeScope, observed: list[str]
) -> None:
    inner, seen = FakePublisher(), RecordingDetector()
    ticks = {"tick-1": "nightly"}
    publisher = ChangeTrackingPublisher(inner, seen, scope, ticks.get)  # type: ignore[arg-type]
    first, second = result("r1", bgp("2", "x")), result("tick-1", bgp("2", "x"))
    for device in (first, second):
        assert await (await publisher.publish_result("alice", device)) is True
    summary = RequestSummary(request_id="r1", total_devices=1, successful_devices=1, failed_devices=0, duration_s=1)
    await publisher.publish_summary("alice", summary)
    assert inner.results[:2] == [first, second] and inner.summaries == [summary]
    assert [device.request_id for _, device, _ in seen.seen] == observed
    assert seen.seen[-1] == ("alice", second, "nightly") and seen.seen[-1][1] is second  # the original result


def test_baseline_keys_are_valid_kv_keys() -> None:
    key = baseline_key("al.ice", "fe80::1", 2222, "show ip bgp summary | include Idle")
    assert key.startswith("al_ice.fe80__1-p2222.") and len(key.rsplit(".", 1)[-1]) == 16
    assert baseline_key("a", "h", 22, "show x") != baseline_key("a", "h", 22, "show y")
