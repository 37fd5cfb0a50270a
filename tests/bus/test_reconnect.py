"""nats-server restarts under load: the service reconnects, keeps serving, loses no job or result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from service.devtools.local_server import LocalNatsServer
from tests.bus.test_jobs import inventory_file
from tests.conftest import LAB_PASSWORD, ServiceProcess, wire_device
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


@pytest.mark.parametrize("outage", ["job-half-done", "job-just-accepted"])
async def test_the_service_survives_a_nats_server_restart(
    service_factory: Callable[..., ServiceProcess],
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
    outage: str,
) -> None:
    """``job-just-accepted``: every answer of the job's device workers comes while NATS is away
    or reconnecting; the front sends those jobs again when it is back, and the workers answer
    them without running them twice."""
    server = LocalNatsServer(tmp_path / "nats")
    server.start()
    try:
        inventory = inventory_file(tmp_path, lab_device, ["ios-1", "nxos-1", "slow"])
        service = service_factory(
            PYATS_NATS_URL=server.url,
            PYATS_INVENTORY_FILE=str(inventory),
            LAB_DEVICE_PASSWORD=LAB_PASSWORD,
            PYATS_JOBS_ACK_WAIT="5",
        ).wait_ready()
        client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        slow_body = {
            "devices": [wire_device(lab_device("slow"))],
            "commands": [{"command": "show clock"}],
            "request_id": "during-outage",
        }
        # a request in flight when the server goes away: its result is buffered and published later
        await client.publish("pyats.v1.execute.ops", json.dumps(slow_body).encode())
        # a job already stored before the outage, not yet done
        job = {
            "devices": [{"name": "slow"}, {"name": "ios-1"}],
            "commands": [{"command": "show clock"}],
            "request_id": "job-before-outage",
        }
        await client.jetstream().publish("pyats.v1.jobs.ops", json.dumps(job).encode())
        await client.flush()

        def accepted(request_id: str) -> bool:
            return any(request_id in line and "accepted" in line for line in service.log().splitlines())

        async def job_half_done() -> bool:
            """ios-1's result of the job is stored; "slow" (3 s per answer) is still running."""
            info = await client.jetstream().stream_info(
                "PYATS_RESULTS", subjects_filter="pyats.v1.results.ops.job-before-outage.>"
            )
            return len(info.state.subjects or {}) == 1

        # both requests are in flight on the slow device when the server goes away
        await wait_for_async(lambda: accepted("during-outage"), 30)
        if outage == "job-half-done":
            await wait_for_async(job_half_done, 30)
        else:
            await wait_for_async(lambda: accepted("job-before-outage"), 30)
        server.stop()
        await wait_for_async(lambda: "disconnected from NATS" in service.log(), 30)
        server.start()
        await wait_for_async(lambda: "reconnected to NATS" in service.log(), 60)

        body = {"devices": [wire_device(lab_device("nxos-1"))], "commands": [{"command": "show clock"}]}
        reply = None
        for _ in range(60):
            try:
                msg = await client.request("pyats.v1.execute.ops", json.dumps(body).encode(), timeout=5)
                reply = json.loads(msg.data)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
                await asyncio.sleep(0.5)
        assert reply is not None and reply["successful_devices"] == 1

        js = client.jetstream()
        for _ in range(100):
            info = await js.stream_info("PYATS_RESULTS", subjects_filter="pyats.v1.results.ops.>")
            subjects = info.state.subjects or {}
            done = [s for s in subjects if "during-outage" in s] and len(
                [s for s in subjects if "job-before-outage" in s]
            ) == 3
            if done:
                break
            await asyncio.sleep(0.3)
        assert any("during-outage" in s for s in subjects), subjects
        assert len([s for s in subjects if "job-before-outage" in s]) == 3, subjects  # 2 devices + summary
        assert set(subjects.values()) == {1}
        await client.close()
        assert service.stop() == 0
        assert "reconnected to NATS" in service.log()
    finally:
        server.stop()


async def test_a_result_waits_for_nats_while_it_is_away_and_is_dropped_only_while_connected() -> None:
    """The restart above is shorter than three publish timeouts; this one is as long as needed."""
    from types import SimpleNamespace

    from service.contract.messages import RequestSummary
    from service.observability.metrics import ServiceMetrics
    from service.transport.results import CONNECTED_ATTEMPTS, NatsResultPublisher
    from service.transport.subjects import Subjects

    class Js:
        calls = failures = 0

        async def publish(self, subject: str, payload: bytes, timeout: float, headers: dict[str, str]) -> Any:
            self.calls += 1
            if self.failures:
                self.failures -= 1
                raise TimeoutError
            return SimpleNamespace(duplicate=False)

    js = Js()
    client = SimpleNamespace(is_connected=False, jetstream=lambda: js)
    publisher = NatsResultPublisher(client, Subjects("t.v1"), ServiceMetrics(), True, 10, retry_delay=0.001)  # type: ignore[arg-type]
    publisher.start()
    summary = RequestSummary(request_id="r1", total_devices=1, successful_devices=1, failed_devices=0, duration_s=0)
    js.failures = 10  # NATS is away for ten attempts
    assert await asyncio.wait_for(await publisher.publish_summary("alice", summary), 10) is True
    assert js.calls == 11
    client.is_connected, js.failures = True, 10  # connected, but every publish fails
    assert await asyncio.wait_for(await publisher.publish_summary("alice", summary), 10) is False
    assert js.calls == 11 + CONNECTED_ATTEMPTS
    await publisher.close(1)
