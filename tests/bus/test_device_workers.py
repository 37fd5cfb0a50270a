"""Device workers in their own processes, over a real nats-server and the lab: the same
device stays on the same worker, a killed worker's devices still get exactly one result,
a worker started alone (as on another machine) joins and leaves, and requesters cannot
reach the internal subjects under the shipped auth.conf."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.client.connect import BusAddress
from service.client.status import collect_status
from service.devtools.local_server import LocalNatsServer
from service.workers.partition import PartitionMap
from service.workers.protocol import Heartbeat, decode_heartbeat
from service.workers.remote import InternalSubjects
from tests.bus.shipped_auth import auth_server, auth_service, connect_as
from tests.conftest import ServiceProcess, wire_device
from tests.waiting import wait_for_async

__all__ = ["auth_server", "auth_service", "connect_as"]  # fixtures, used by name

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

# each test's services have a prefix of their own: the session's other services (one queue group on
# pyats.v1) must never take these requests, and these fronts never take theirs
TWO, EXT, ORPHANS = "wtwo.v1", "wext.v1", "worphans.v1"
FLEET = [f"fleet-{i:02d}" for i in range(12)]
Lab = Callable[[str], dict[str, Any]]


async def ask(client: Client, body: dict[str, Any], prefix: str = TWO, timeout: float = 90) -> dict[str, Any]:
    msg = await client.request(f"{prefix}.execute.alice", json.dumps(body).encode(), timeout=timeout)
    return dict(json.loads(msg.data))


async def heartbeats(client: Client, prefix: str, group: str, seconds: float = 1.5) -> dict[str, Heartbeat]:
    """The live workers of ``group`` as their heartbeats say (the last one of each)."""
    seen: dict[str, Heartbeat] = {}

    async def take(msg: Any) -> None:
        beat = decode_heartbeat(msg.data)
        if beat.leaving:
            seen.pop(beat.worker, None)
        else:
            seen[beat.worker] = beat

    sub = await client.subscribe(InternalSubjects(prefix, group).heartbeats, cb=take)
    await asyncio.sleep(seconds)
    await sub.unsubscribe()
    return seen


async def until_workers(
    client: Client, prefix: str, group: str, count: int, timeout: float = 60
) -> dict[str, Heartbeat]:
    deadline = time.monotonic() + timeout
    while True:
        live = await heartbeats(client, prefix, group, 1.2)
        if len(live) == count or time.monotonic() > deadline:
            assert len(live) == count, live
            return live


def opened(lab: Any, ports: set[int]) -> int:
    return sum(1 for e in lab.read_events() if e.get("event") == "session_open" and e.get("port") in ports)


def received(lab: Any, port: int) -> int:
    """Lines the lab device on ``port`` has received (logins and commands)."""
    return sum(1 for e in lab.read_log() if e.get("port") == port)


@pytest.fixture(scope="module")
def two_workers(service_factory: Callable[..., ServiceProcess]) -> ServiceProcess:
    return service_factory(
        PYATS_SUBJECT_PREFIX=TWO, PYATS_DEVICE_WORKERS="2", PYATS_WORKER_GROUP="two", PYATS_SESSION_IDLE_TTL="120"
    ).wait_ready()


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return str(answer.read().decode())


def metrics_text(port: int) -> str:
    return http_get(port, "/metrics")


async def test_the_devices_are_spread_and_each_stays_on_its_worker(
    two_workers: ServiceProcess, client: Client, lab: Any, lab_device: Lab, nats_server: LocalNatsServer
) -> None:
    live = await until_workers(client, TWO, "two", 2)
    devices = [wire_device(lab_device(name)) for name in FLEET]
    ports = {d["port"] for d in devices}
    body = {"devices": devices, "commands": [{"command": "show version"}, {"command": "show clock"}]}
    first = await ask(client, body)
    assert first["successful_devices"] == len(FLEET), first
    owners = PartitionMap(live).counts()
    assert sorted(owners) == sorted(live) and sum(owners.values()) == 256
    jobs = {worker: beat.jobs for worker, beat in (await heartbeats(client, TWO, "two")).items()}
    assert all(count > 0 for count in jobs.values()), jobs  # both workers did device work
    rows = await collect_status(BusAddress.of(nats_server.url), "pyats-ro", 1.0)
    [row] = [r for r in rows if r["subject_prefix"] == TWO]
    assert sum(w["partitions"] for w in row["workers"]) == 256
    assert sum(w["jobs"] for w in row["workers"]) >= len(FLEET)
    metrics = metrics_text(two_workers.metrics_port)
    assert "pyats_device_workers 2.0" in metrics
    assert (
        sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("pyats_worker_partitions{"))
        == 256
    )
    ready = json.loads(http_get(two_workers.metrics_port, "/readyz"))
    assert ready["checks"]["workers"] is True
    before = opened(lab, ports)
    again = await ask(client, body)
    assert again["successful_devices"] == len(FLEET)
    assert opened(lab, ports) == before  # every device went back to its warm session: same worker


async def test_killing_a_worker_mid_request_still_gives_every_device_one_result(
    two_workers: ServiceProcess, client: Client, lab_device: Lab, lab: Any
) -> None:
    live = await until_workers(client, TWO, "two", 2)
    names = [*FLEET, "slow"]
    victim = PartitionMap(live).owner(lab_device("slow")["host"], lab_device("slow")["port"])
    assert victim is not None
    body = {"devices": [wire_device(lab_device(n)) for n in names], "commands": [{"command": "show clock"}]}
    before = received(lab, lab_device("slow")["port"])
    pending = asyncio.ensure_future(ask(client, body, timeout=120))
    # the slow device (3 s per answer) has its first line: it is mid-request for seconds yet
    await wait_for_async(lambda: received(lab, lab_device("slow")["port"]) > before, 60)
    os.kill(live[victim].pid, signal.SIGKILL)
    started = time.monotonic()
    reply = await pending
    results = reply["results"]
    assert sorted((r["hostname"], r["port"]) for r in results) == sorted(
        (lab_device(n)["host"], lab_device(n)["port"]) for n in names
    )  # exactly one result per device
    slow = next(r for r in results if r["port"] == lab_device("slow")["port"])
    assert slow["success"] or slow["error_code"] in ("service_unavailable", "device_timeout"), slow
    assert slow["success"], slow  # sent once more, to the worker that took its partition
    assert time.monotonic() - started < 60
    live_again = await until_workers(client, TWO, "two", 2)  # the supervisor started it again
    assert live_again[victim].pid != live[victim].pid


def worker_env(service: ServiceProcess, worker_id: str) -> tuple[list[str], dict[str, str]]:
    command = [sys.executable, "-m", "service", "worker", "--id", worker_id, "--env-file", os.devnull]
    return command, dict(service.env)


async def test_a_worker_started_alone_joins_and_leaves(
    service_factory: Callable[..., ServiceProcess], client: Client, lab_device: Lab, tmp_path: Any
) -> None:
    front = service_factory(
        PYATS_SUBJECT_PREFIX=EXT, PYATS_DEVICE_WORKERS="0", PYATS_EXTERNAL_WORKERS="true", PYATS_WORKER_GROUP="ext"
    )
    body = {"devices": [wire_device(lab_device(n)) for n in FLEET[:6]], "commands": [{"command": "show clock"}]}
    started: list[subprocess.Popen[bytes]] = []
    try:
        for worker_id in ("ext-a", "ext-b"):
            command, env = worker_env(front, worker_id)
            with (tmp_path / f"{worker_id}.log").open("wb") as log:  # the child keeps its own descriptor
                started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))  # noqa: ASYNC220
            if worker_id == "ext-a":
                front.wait_ready()  # not ready before a worker is live
                assert (await ask(client, body, EXT))["successful_devices"] == 6
        live = await until_workers(client, EXT, "ext", 2)
        assert set(live) == {"ext-a", "ext-b"}
        assert (await ask(client, body, EXT))["successful_devices"] == 6
        started[0].send_signal(signal.SIGTERM)  # leaves: its partitions move to ext-b at once
        assert started[0].wait(30) == 0
        assert set(await until_workers(client, EXT, "ext", 1)) == {"ext-b"}
        assert (await ask(client, body, EXT))["successful_devices"] == 6
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        front.stop()


async def test_requesters_cannot_reach_the_internal_subjects(
    auth_service: ServiceProcess, connect_as: Callable[..., Any]
) -> None:
    alice = await connect_as("alice")
    await alice.client.subscribe("pyats.v1.internal.>")
    await alice.wait_error('permissions violation for subscription to "pyats.v1.internal.>"')
    for subject in ("pyats.v1.internal.default.work.x", "pyats.v1.internal.default.workers"):
        await alice.client.publish(subject, b"{}")
        await alice.wait_error(f'permissions violation for publish to "{subject}"')


async def test_replicas_of_one_group_share_the_workers_and_each_device_s_session_limit(
    service_factory: Callable[..., ServiceProcess],
    client: Client,
    lab: Any,
    lab_device: Lab,
    nats_server: LocalNatsServer,
) -> None:
    shared = {"PYATS_SUBJECT_PREFIX": "wshare.v1", "PYATS_WORKER_GROUP": "shared"}
    with_workers = service_factory(**shared, PYATS_DEVICE_WORKERS="2").wait_ready()
    front_only = service_factory(**shared, PYATS_DEVICE_WORKERS="0", PYATS_EXTERNAL_WORKERS="true").wait_ready()
    assert with_workers and front_only
    device = lab_device("one-line-shared")  # a device with one VTY line, no other test's warm session on it
    body = {"devices": [wire_device(device)], "commands": [{"command": "show clock"}, {"command": "show version"}]}
    replies = await asyncio.gather(
        *(client.request("wshare.v1.execute.vty", json.dumps(body).encode(), timeout=60) for _ in range(8))
    )
    assert all(json.loads(r.data)["successful_devices"] == 1 for r in replies)
    assert lab.max_concurrent_sessions()[device["port"]] == 1
    stats = await collect_status(BusAddress.of(nats_server.url), "pyats-ro", 1.0)
    fronts = [row for row in stats if row["subject_prefix"] == "wshare.v1"]
    assert len(fronts) == 2 and all(len(row["workers"]) == 2 for row in fronts)  # both fronts see both workers


async def test_the_workers_of_a_killed_service_stop_too(
    service_factory: Callable[..., ServiceProcess], client: Client
) -> None:
    service = service_factory(
        PYATS_SUBJECT_PREFIX=ORPHANS, PYATS_DEVICE_WORKERS="2", PYATS_WORKER_GROUP="orphans"
    ).wait_ready()
    pids = [beat.pid for beat in (await until_workers(client, ORPHANS, "orphans", 2)).values()]
    assert service._process is not None
    os.kill(service._process.pid, signal.SIGKILL)
    await wait_for_async(lambda: not any(alive(pid) for pid in pids), 20, "orphaned device workers kept running")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


async def test_a_small_request_is_answered_while_a_big_one_still_runs(
    service_factory: Callable[..., ServiceProcess], client: Client, lab_device: Lab
) -> None:
    """Four devices in flight at once: the 20-device request needs several rounds, and the
    1-device request sent during it takes the next free slot instead of waiting for the end."""
    prefix = "wfair.v1"
    service = service_factory(
        PYATS_SUBJECT_PREFIX=prefix, PYATS_WORKER_GROUP="fair", PYATS_MAX_CONCURRENT_DEVICES="4"
    ).wait_ready()
    commands = [{"command": "show clock"}, {"command": "show version"}]
    big = {"devices": [wire_device(lab_device(f"fleet-{i:02d}")) for i in range(20)], "commands": commands}
    small = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": commands}
    started = time.monotonic()
    big_reply = asyncio.ensure_future(ask(client, big, prefix))
    await wait_for_async(lambda: "request accepted: 20 devices" in service.log(), 30)
    small_reply = await ask(client, small, prefix)
    small_done = time.monotonic() - started
    assert small_reply["successful_devices"] == 1
    assert not big_reply.done(), "the big request finished first: nothing to compare"
    assert (await big_reply)["successful_devices"] == 20
    big_done = time.monotonic() - started
    assert small_done < big_done / 2, (small_done, big_done)


async def test_a_job_a_worker_cannot_read_is_refused_at_once(two_workers: ServiceProcess, client: Client) -> None:
    """A front of another version (a rolling upgrade): the worker says so instead of staying silent."""
    live = await until_workers(client, TWO, "two", 2)
    worker = sorted(live)[0]
    reply = await client.request(InternalSubjects(TWO, "two").work(worker), b"\x00 not a job", timeout=10)
    assert worker in (reply.headers or {}).get("Pyats-Refused", "")


async def test_a_worker_that_is_stopped_finishes_its_devices_and_none_runs_twice(
    service_factory: Callable[..., ServiceProcess], client: Client, lab: Any, lab_device: Lab
) -> None:
    """SIGTERM to a worker while it works on a slow device: it says it is leaving (its partitions
    move at once) but answers that device itself; the front does not send it elsewhere meanwhile."""
    prefix = "wleave.v1"
    service_factory(
        PYATS_SUBJECT_PREFIX=prefix, PYATS_WORKER_GROUP="leave", PYATS_DEVICE_WORKERS="2", PYATS_SHUTDOWN_GRACE="40"
    ).wait_ready()
    live = await until_workers(client, prefix, "leave", 2)
    slow = lab_device("slow")  # 3 s per answer
    owner = PartitionMap(live).owner(slow["host"], slow["port"])
    assert owner is not None
    before = opened(lab, {slow["port"]})
    body = {"devices": [wire_device(slow)], "commands": [{"command": "show clock"}]}
    pending = asyncio.ensure_future(ask(client, body, prefix, timeout=120))
    await wait_for_async(lambda: opened(lab, {slow["port"]}) == before + 1, 60)  # logging in (3 s per answer)
    os.kill(live[owner].pid, signal.SIGTERM)
    reply = await pending
    assert reply["successful_devices"] == 1, reply
    assert opened(lab, {slow["port"]}) == before + 1  # one session: the leaving worker's own
