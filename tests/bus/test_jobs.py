"""Durable jobs: stored, acked after their results are published, redelivered when a replica dies."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from tests.bus.test_inventory_reload import render_testbed
from tests.conftest import LAB_PASSWORD, ServiceProcess
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def job_service(factory: Callable[..., ServiceProcess], prefix: str, inventory: Path, **extra: str) -> ServiceProcess:
    tag = prefix.split(".", maxsplit=1)[0].upper()
    return factory(
        PYATS_SUBJECT_PREFIX=prefix,
        PYATS_RESULTS_STREAM=f"RESULTS_{tag}",
        PYATS_JOBS_STREAM=f"JOBS_{tag}",
        PYATS_INVENTORY_FILE=str(inventory),
        PYATS_LOG_FORMAT="json",
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
        **extra,
    )


def inventory_file(tmp_path: Path, lab_device: Callable[[str], dict[str, Any]], names: list[str]) -> Path:
    path = tmp_path / "testbed.yaml"
    path.write_text(render_testbed({name: lab_device(name) for name in names}))
    return path


async def notice(client: Client, subject: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def collect(msg: Any) -> None:
        await queue.put(msg)

    await client.subscribe(subject, cb=collect)
    return queue


async def test_a_job_runs_and_notifies(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    inventory = inventory_file(tmp_path, lab_device, ["ios-1", "nxos-1"])
    job_service(service_factory, "jobs1.v1", inventory).wait_ready()
    done = await notice(client, "jobs1.v1.notify.alice.done")
    job = {
        "devices": [{"name": "*-1"}],
        "commands": [{"command": "show version"}],
        "notify": "jobs1.v1.notify.alice.done",
    }
    ack = await client.jetstream().publish("jobs1.v1.jobs.alice", json.dumps(job).encode())
    summary = await asyncio.wait_for(done.get(), 60)
    body = json.loads(summary.data)
    assert body["successful_devices"] == 2 and body["request_id"] == f"job-{ack.seq}"
    info = await client.jetstream().stream_info("RESULTS_JOBS1", subjects_filter="jobs1.v1.results.alice.>")
    assert sum(info.state.subjects.values()) == 3  # two devices and the summary
    jobs = await client.jetstream().stream_info("JOBS_JOBS1")
    assert jobs.state.messages == 0  # acked and removed from the work queue


async def test_a_job_with_inline_passwords_is_refused_and_not_redelivered(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    inventory = inventory_file(tmp_path, lab_device, ["ios-1"])
    service = job_service(service_factory, "jobs2.v1", inventory).wait_ready()
    refused = await notice(client, "jobs2.v1.notify.bob.refused")
    device = lab_device("ios-1")
    job = {
        "devices": [
            {"hostname": device["host"], "port": device["port"], "os": "ios", "username": "admin", "password": "pw"}
        ],
        "commands": [{"command": "show clock"}],
        "notify": "jobs2.v1.notify.bob.refused",
    }
    await client.jetstream().publish("jobs2.v1.jobs.bob", json.dumps(job).encode())
    error = json.loads((await asyncio.wait_for(refused.get(), 30)).data)["error"]
    assert error["code"] == "feature_disabled" and "credentials" in error["message"]

    async def job_gone() -> bool:
        return (await client.jetstream().stream_info("JOBS_JOBS2")).state.messages == 0

    await wait_for_async(job_gone, 30)  # terminated, not left for a redelivery
    assert refused.empty()
    assert "pw" not in json.dumps(error)
    service.stop()


async def test_a_replica_killed_mid_job_hands_it_to_the_other_with_one_result_per_device(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    names = ["slow", "ios-1", "nxos-1", "iosxr-1"]
    inventory = inventory_file(tmp_path, lab_device, names)
    replicas = [
        job_service(
            service_factory, "jobs3.v1", inventory, PYATS_JOBS_ACK_WAIT="3", PYATS_JOBS_CONCURRENCY="1"
        ).wait_ready()
        for _ in range(2)
    ]
    done = await notice(client, "jobs3.v1.notify.carol.kill")
    job = {
        "devices": [{"name": name} for name in names],
        "commands": [{"command": "show clock"}, {"command": "show version"}],
        "notify": "jobs3.v1.notify.carol.kill",
    }
    await client.jetstream().publish("jobs3.v1.jobs.carol", json.dumps(job).encode())
    deadline = time.monotonic() + 30
    victim = None
    while victim is None and time.monotonic() < deadline:
        victim = next((r for r in replicas if '"job job-' in r.log() or "job job-" in r.log()), None)
        await asyncio.sleep(0.1)
    assert victim is not None, "no replica took the job"

    async def fast_devices_stored() -> bool:
        info = await client.jetstream().stream_info("RESULTS_JOBS3", subjects_filter="jobs3.v1.results.carol.>")
        return len(info.state.subjects or {}) == len(names) - 1

    # the fast devices are done and published; "slow" (3 s per answer) is still running
    await wait_for_async(fast_devices_stored, 60)
    victim._process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    victim._process.wait()  # type: ignore[union-attr]
    victim._process = None
    summary = json.loads((await asyncio.wait_for(done.get(), 90)).data)
    assert summary["total_devices"] == 4 and summary["successful_devices"] == 4
    info = await client.jetstream().stream_info("RESULTS_JOBS3", subjects_filter="jobs3.v1.results.carol.>")
    counts = info.state.subjects
    assert len(counts) == 5 and set(counts.values()) == {1}, counts  # one per device and one summary
    survivor = next(r for r in replicas if r is not victim)
    assert "delivery 2" in survivor.log()
