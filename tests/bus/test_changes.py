"""Change events end to end: a service with inventory devices of the lab whose answers change from
run to run (``sequence_outputs``), a real nats-server, events read live and from their stream.

Absence of an event is checked once the service counted the comparison
(``pyats_change_comparisons_total``), never after a fixed sleep.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.transport.subjects import device_token
from tests.bus.test_inventory_reload import render_testbed
from tests.conftest import LAB_PASSWORD, ServiceProcess
from tests.lab_sequences import BGP_CHANGED_PATH
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

PREFIX = "chg.v1"
STREAM = "CHANGES_CHG_V1"
REQUESTER = "watcher"
RUN = uuid.uuid4().hex[:6]
DEVICES = ["chg-bgp", "chg-redo", "chg-version", "chg-raw"]


@pytest.fixture(scope="module")
def changes_service(
    service_factory: Callable[..., ServiceProcess],
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> ServiceProcess:
    inventory = tmp_path_factory.mktemp("changes") / "testbed.yaml"
    entries = {name: {**lab_device(name), "groups": ["watched", "core"]} for name in DEVICES}
    inventory.write_text(render_testbed(entries))
    return service_factory(
        PYATS_SUBJECT_PREFIX=PREFIX,
        PYATS_INVENTORY_FILE=str(inventory),
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
    ).wait_ready()


def comparisons(service: ServiceProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{service.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    found = re.findall(r'^pyats_change_comparisons_total\{outcome="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return {outcome: float(value) for outcome, value in found}


async def counted(service: ServiceProcess, before: dict[str, float], **wanted: int) -> None:
    """Wait until the service counted these comparison outcomes since ``before``."""

    def done() -> bool:
        now = comparisons(service)
        return all(now.get(outcome, 0) - before.get(outcome, 0) >= n for outcome, n in wanted.items())

    await wait_for_async(done, timeout=30, what=f"comparisons {wanted}")


async def execute(
    client: Client, device: str, command: str, request_id: str, output_format: str = "parsed"
) -> dict[str, Any]:
    body = {
        "devices": [{"name": device}],
        "commands": [{"command": command}],
        "output_format": output_format,
        "request_id": request_id,
    }
    reply = await client.request(f"{PREFIX}.execute.{REQUESTER}", json.dumps(body).encode(), timeout=60)
    data: dict[str, Any] = json.loads(reply.data)
    assert data.get("successful_devices") == 1, data
    return data


class Events:
    """Change events of one device: as they arrive, and as kept in the stream."""

    def __init__(self, client: Client, subject: str) -> None:
        self.client = client
        self.subject = subject
        self.live: list[dict[str, Any]] = []

    async def start(self) -> Events:
        async def collect(msg: Any) -> None:
            self.live.append(json.loads(msg.data))

        await self.client.subscribe(f"{PREFIX}.changes.>", cb=collect)
        await self.client.flush()
        return self

    async def stored(self) -> int:
        info = await self.client.jetstream().stream_info(STREAM, subjects_filter=self.subject)
        return sum((info.state.subjects or {}).values())


async def events_of(client: Client, lab_device: Callable[[str], dict[str, Any]], name: str) -> Events:
    entry = lab_device(name)
    subject = f"{PREFIX}.changes.{REQUESTER}.{device_token(entry['host'], entry['port'])}"
    return await Events(client, subject).start()


def of_device(events: Events) -> list[dict[str, Any]]:
    token = events.subject.rsplit(".", 1)[-1]
    return [e for e in events.live if device_token(e["device"], e["port"]) == token]


async def test_a_changed_bgp_neighbour_is_one_event_after_a_baseline(
    changes_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    events = await events_of(client, lab_device, "chg-bgp")
    ids = [f"bgp-{n}-{RUN}" for n in (1, 2, 3)]
    before = comparisons(changes_service)
    await execute(client, "chg-bgp", "show ip bgp summary", ids[0])
    await counted(changes_service, before, baseline=1)
    assert await events.stored() == 0 and not of_device(events)  # (a) the first result is a baseline

    before = comparisons(changes_service)
    await execute(client, "chg-bgp", "show ip bgp summary", ids[1])  # 10.0.0.3 went Idle
    await counted(changes_service, before, changed=1)
    await wait_for_async(lambda: of_device(events), what="the change event")
    (event,) = of_device(events)
    assert event["kind"] == "parsed" and event["command"] == "show ip bgp summary"
    assert event["changed"] == [{"path": BGP_CHANGED_PATH, "old": "2", "new": "Idle"}]
    assert event["added"] == [] and event["removed"] == [] and event["truncated"] is False
    assert event["previous"]["request_id"] == ids[0] and event["current"]["request_id"] == ids[1]
    assert event["previous"]["time"] < event["current"]["time"]
    assert event["rule"] == "show ip bgp summary" and event["os"] == "iosxe"
    assert event["groups"] == ["core", "watched"] and event["requester"] == REQUESTER
    assert event["name"] == "chg-bgp"
    assert event["schedule"] is None

    before = comparisons(changes_service)
    await execute(client, "chg-bgp", "show ip bgp summary", ids[2])  # only timers and counters moved
    await counted(changes_service, before, unchanged=1)
    assert await events.stored() == 1 and len(of_device(events)) == 1


async def test_an_uptime_only_change_of_show_version_is_no_event(
    changes_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    events = await events_of(client, lab_device, "chg-version")
    before = comparisons(changes_service)
    first = await execute(client, "chg-version", "show version", f"ver-1-{RUN}", "both")
    second = await execute(client, "chg-version", "show version", f"ver-2-{RUN}", "both")
    await counted(changes_service, before, baseline=1, unchanged=1)
    outputs = [reply["results"][0]["commands"][0] for reply in (first, second)]
    assert outputs[0]["output"] != outputs[1]["output"], "the lab should have answered another uptime"
    assert outputs[0]["parsed"]["version"]["uptime"] != outputs[1]["parsed"]["version"]["uptime"]
    assert await events.stored() == 0 and not of_device(events)


async def test_the_same_request_id_again_is_no_second_event(
    changes_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    events = await events_of(client, lab_device, "chg-redo")
    ids = [f"redo-{n}-{RUN}" for n in (1, 2)]
    before = comparisons(changes_service)
    await execute(client, "chg-redo", "show ip bgp summary", ids[0])
    await execute(client, "chg-redo", "show ip bgp summary", ids[1])
    await counted(changes_service, before, baseline=1, changed=1)
    await wait_for_async(lambda: of_device(events), what="the change event")

    before = comparisons(changes_service)
    await execute(client, "chg-redo", "show ip bgp summary", ids[1])  # like a redelivered job
    await counted(changes_service, before, skipped=1)
    assert await events.stored() == 1 and len(of_device(events)) == 1


async def test_a_changed_line_of_a_raw_output_is_a_text_event(
    changes_service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    events = await events_of(client, lab_device, "chg-raw")
    ids = [f"raw-{n}-{RUN}" for n in (1, 2)]
    before = comparisons(changes_service)
    await execute(client, "chg-raw", "show widget status", ids[0], "raw")
    await execute(client, "chg-raw", "show widget status", ids[1], "raw")
    await counted(changes_service, before, baseline=1, changed=1)
    await wait_for_async(lambda: of_device(events), what="the change event")
    (event,) = of_device(events)
    assert event["kind"] == "text" and event["rule"] is None
    assert event["lines_removed"] == ["widget beta    ok      7"]
    assert event["lines_added"] == ["widget beta    FAILED  7"]
    assert event["changed"] == [] and event["current"]["request_id"] == ids[1]
    assert await events.stored() == 1
