"""``pyats-ro http``: the REST ancestor's routes over the bus, on a real uvicorn, nats-server and service.

The gateway runs as its own process (``python -m service http``) with this module's subject
prefix, so its requests meet only this module's service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio

from service.devtools.local_server import LocalNatsServer, free_port
from service.gateway.keys import hash_key
from tests.bus.shipped_auth import PASSWORDS, auth_server, auth_service
from tests.bus.test_jobs import inventory_file, job_service
from tests.conftest import LAB_PASSWORD, ServiceProcess, wire_device
from tests.front_doors import marker_command

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]
__all__ = ["auth_server", "auth_service"]  # fixtures of the shipped auth.conf

RUN = uuid.uuid4().hex[:6]
PREFIX = f"gw{RUN}.v1"
ALICE, BOB = f"gwalice{RUN}", f"gwbob{RUN}"
ALICE_KEY, BOB_KEY = f"pyro_alice_{uuid.uuid4().hex}", f"pyro_bob_{uuid.uuid4().hex}"
KEYS = {
    "alice-key": {"sha256": hash_key(ALICE_KEY), "requester": ALICE},
    "bob-key": {"sha256": hash_key(BOB_KEY), "requester": BOB},
}
NDJSON_TYPE = "application/x-ndjson"
MIGRATING = Path(__file__).resolve().parents[2] / "MIGRATING.md"


class Gateway:
    """``pyats-ro http`` as a child process on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "http", "--port", str(self.port), "--env-file", f"{log}.env"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(log.read_text())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def gateway_env(nats_url: str, prefix: str = PREFIX) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
    env.update(
        {
            "PYATS_NATS_URL": nats_url,
            "PYATS_SUBJECT_PREFIX": prefix,
            "PYATS_GATEWAY_KEYS": json.dumps(KEYS),
            "PYATS_GATEWAY_REQUEST_TIMEOUT": "60",
            "PYATS_MAX_PAYLOAD_BYTES": "65536",
            "PYATS_LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.fixture(scope="module")
def gw_service(service_factory: Callable[..., ServiceProcess]) -> ServiceProcess:
    return service_factory(PYATS_SUBJECT_PREFIX=PREFIX, PYATS_MAX_PAYLOAD_BYTES="65536").wait_ready()


@pytest.fixture(scope="module")
def gateway(
    gw_service: ServiceProcess, nats_server: LocalNatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    running = Gateway(gateway_env(nats_server.url), tmp_path_factory.mktemp("gateway") / "gateway.log")
    try:
        yield running
    finally:
        running.stop()


@pytest_asyncio.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def migrating_body() -> dict[str, Any]:
    """The body of MIGRATING.md's first curl example, as written there."""
    text = MIGRATING.read_text()
    found = re.search(r"curl -X POST http://localhost:8000/api/v1/execute.*?-d '(\{.*?\})'", text, re.S)
    assert found, "MIGRATING.md lost its curl example"
    body: dict[str, Any] = json.loads(found.group(1))
    return body


async def _published(nats_url: str, subject: str) -> tuple[Any, list[str]]:
    client = await nats.connect(nats_url)
    seen: list[str] = []

    async def note(msg: Any) -> None:
        seen.append(msg.subject)

    await client.subscribe(subject, cb=note)
    await client.flush()
    return client, seen


async def test_migrating_example_runs_unchanged_but_for_the_key(
    http: httpx.AsyncClient, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """The ancestor's body, devices pointed at the lab: the answer is the ExecuteResponse."""
    body = migrating_body()
    device = wire_device(lab_device("iosxe-1"))
    body["devices"][0].update({k: device[k] for k in ("hostname", "port", "password", "os", "username")})
    answer = await http.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["total_devices"], data["successful_devices"], data["failed_devices"]) == (1, 1, 0)
    command = data["results"][0]["commands"][0]
    assert command["command"] == "show ip interface brief | include up"
    assert command["success"] is True
    assert data["request_id"]


async def test_no_key_or_a_wrong_key_is_401_and_nothing_is_published(
    http: httpx.AsyncClient, nats_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    watcher, seen = await _published(nats_server.url, f"{PREFIX}.execute.>")
    try:
        body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show version"}]}
        for headers in ({}, bearer("pyro_not-a-key"), {"X-API-Key": "wrong"}, {"Authorization": "Basic eDp5"}):
            answer = await http.post("/api/v1/execute", json=body, headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == "unauthorized"
            assert LAB_SECRET_FREE(answer.text)
        for path in ("/api/v1/history", "/api/v1/diff?a=x&b=y"):
            assert (await http.get(path)).status_code == 401
        assert (await http.post("/api/v1/execute/stream", json=body)).status_code == 401
        await asyncio.sleep(0.5)
        await watcher.flush()
        assert seen == []
    finally:
        await watcher.close()


def LAB_SECRET_FREE(text: str) -> bool:  # noqa: N802 - reads as a claim
    from tests.conftest import LAB_PASSWORD

    return LAB_PASSWORD not in text


async def test_a_key_cannot_act_as_another_requester(
    http: httpx.AsyncClient, nats_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """Headers naming another requester are ignored; a body field naming one is refused by the
    service as an unknown field, on the key's own subject."""
    watcher, seen = await _published(nats_server.url, f"{PREFIX}.execute.>")
    try:
        body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show version"}]}
        sneaky = {"X-Requester": BOB, "Pyats-Requester": BOB, "X-API-Key": BOB_KEY, **bearer(ALICE_KEY)}
        answer = await http.post("/api/v1/execute", json=body, headers=sneaky)
        assert answer.status_code == 200, answer.text
        refused = await http.post("/api/v1/execute", json={**body, "requester": BOB}, headers=bearer(ALICE_KEY))
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
        await watcher.flush()
        assert seen == [f"{PREFIX}.execute.{ALICE}"] * 2
    finally:
        await watcher.close()


async def test_the_ancestors_other_routes_and_the_errors(http: httpx.AsyncClient) -> None:
    root = (await http.get("/")).json()
    assert {"name", "version", "endpoints"} <= set(root)
    assert (await http.get("/health")).json()["status"] == "healthy"
    assert "iosxe" in (await http.get("/api/v1/supported_os")).json()["supported_os"]
    pipes = (await http.get("/api/v1/pipe_options")).json()
    assert pipes["pipe_options"] == ["include", "exclude", "begin", "section"]
    assert "section" not in pipes["by_os"]["iosxr"]
    assert (await http.get("/docs")).status_code == 200
    assert "/api/v1/execute" in (await http.get("/openapi.json")).json()["paths"]
    assert (await http.get("/readyz")).json()["ready"] is True
    missing = await http.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    broken = await http.post(
        "/api/v1/execute", content=b"{not json", headers={**bearer(ALICE_KEY), "Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "invalid_json")
    huge = await http.post("/api/v1/execute", content=b"{" + b" " * 70_000 + b"}", headers=bearer(ALICE_KEY))
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "payload_too_large")


async def test_a_service_refusal_keeps_its_status_and_body(
    http: httpx.AsyncClient, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "configure terminal"}]}
    answer = await http.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "command_not_allowed"
    assert LAB_SECRET_FREE(answer.text)


def _events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_stream_as_server_sent_events_and_ndjson(
    http: httpx.AsyncClient, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {
        "devices": [wire_device(lab_device("iosxe-1")), wire_device(lab_device("ios-1"))],
        "commands": [{"command": "show version"}],
    }
    sse = await http.post(
        "/api/v1/execute/stream", json=body, headers={**bearer(ALICE_KEY), "Accept": "text/event-stream"}
    )
    assert sse.status_code == 200
    assert sse.headers["content-type"].startswith("text/event-stream")
    kinds = [kind for kind, _ in _events(sse.text)]
    assert kinds == ["result", "result", "summary", "end"], sse.text[:500]
    ndjson = await http.post(
        "/api/v1/execute/stream", json=body, headers={**bearer(ALICE_KEY), "Accept": "application/x-ndjson"}
    )
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert [line["event"] for line in lines] == ["result", "result", "summary", "end"]
    assert {line["data"]["hostname"] for line in lines[:2]} == {body["devices"][0]["hostname"]}
    refused = await http.post(
        "/api/v1/execute/stream",
        json={**body, "commands": [{"command": "reload"}]},
        headers=bearer(ALICE_KEY),
    )
    assert refused.status_code == 403


async def _streams_open(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(r"^pyats_gateway_streams_open (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


async def test_a_client_gone_mid_stream_frees_its_inbox(
    http: httpx.AsyncClient, gateway: Gateway, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {
        "devices": [wire_device(lab_device("iosxe-1")), wire_device(lab_device("slow"))],
        "commands": [{"command": "show version"}, {"command": "show clock"}],
    }
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as reader,
        reader.stream("POST", "/api/v1/execute/stream", json=body, headers=bearer(ALICE_KEY)) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("event: result"):
                break
        assert await _streams_open(http) == 1
    deadline = time.monotonic() + 10
    while await _streams_open(http) != 0:
        assert time.monotonic() < deadline, "the stream's inbox is still subscribed"
        await asyncio.sleep(0.1)
    assert (await http.get("/health")).status_code == 200
    again = await http.post("/api/v1/execute", json={**body, "devices": body["devices"][:1]}, headers=bearer(BOB_KEY))
    assert again.status_code == 200


async def test_history_and_diff_are_the_keys_own(
    http: httpx.AsyncClient, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    device = lab_device("iosxe-1")
    ids = [f"gw-{RUN}-{n}" for n in (1, 2)]
    for request_id in ids:
        body = {
            "devices": [wire_device(device)],
            "commands": [{"command": "show version"}],
            "request_id": request_id,
            "output_format": "raw",
        }
        assert (await http.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))).status_code == 200
    mine = (await http.get("/api/v1/history", params={"request_id": ids[0]}, headers=bearer(ALICE_KEY))).json()
    assert mine["count"] == 1
    assert mine["records"][0]["requester"] == ALICE
    assert mine["records"][0]["result"]["commands"][0]["output"]
    theirs = (await http.get("/api/v1/history", params={"request_id": ids[0]}, headers=bearer(BOB_KEY))).json()
    assert theirs["count"] == 0
    newest = await http.get(
        "/api/v1/history",
        params={"device": f"{device['host']}:{device['port']}", "latest": "true", "requester": BOB},
        headers=bearer(ALICE_KEY),
    )
    assert {r["requester"] for r in newest.json()["records"]} == {ALICE}
    diff = await http.get("/api/v1/diff", params={"a": ids[0], "b": ids[1]}, headers=bearer(ALICE_KEY))
    assert diff.status_code == 200, diff.text
    assert (diff.json()["a"]["request_id"], diff.json()["b"]["request_id"]) == tuple(ids)
    none = await http.get("/api/v1/diff", params={"a": ids[0], "b": ids[1]}, headers=bearer(BOB_KEY))
    assert none.status_code == 400


async def test_metrics_count_requests_by_route_template(http: httpx.AsyncClient) -> None:
    await http.get("/api/v1/supported_os")
    text = (await http.get("/metrics")).text
    assert 'pyats_gateway_requests_total{method="GET",route="/api/v1/supported_os",status="200"}' in text
    assert "pyats_gateway_request_duration_seconds_bucket" in text
    assert ALICE_KEY not in text


async def test_no_nats_or_no_service_is_503(
    nats_server: LocalNatsServer, tmp_path: Path, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show version"}]}
    for url, prefix in ((f"nats://127.0.0.1:{free_port()}", PREFIX), (nats_server.url, f"gwnobody{RUN}.v1")):
        running = Gateway(gateway_env(url, prefix), tmp_path / f"gateway-{prefix}.log")
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
                answer = await client.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "service_unavailable"
                ready = await client.get("/readyz")
                assert ready.status_code == (503 if prefix == PREFIX else 200)
        finally:
            running.stop()


async def test_under_the_shipped_auth_the_gateway_speaks_for_its_keys_requesters(
    auth_server: LocalNatsServer,
    auth_service: ServiceProcess,
    tmp_path: Path,
    lab_device: Callable[[str], dict[str, Any]],
) -> None:
    """As NATS user ``gateway``: alice's key is answered under ``_INBOX.alice``, aggregate and streamed."""
    env = gateway_env(auth_server.url, "pyats.v1")
    env["PYATS_GATEWAY_KEYS"] = json.dumps({"alice": {"sha256": hash_key(ALICE_KEY), "requester": "alice"}})
    env.update({"PYATS_GATEWAY_NATS_USER": "gateway", "PYATS_GATEWAY_NATS_PASSWORD": PASSWORDS["gateway"]})
    running = Gateway(env, tmp_path / "gateway-auth.log")
    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [{"command": "show version"}]}
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
            answer = await client.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))
            assert answer.status_code == 200, answer.text
            assert answer.json()["successful_devices"] == 1
            streamed = await client.post(
                "/api/v1/execute/stream", json=body, headers={**bearer(ALICE_KEY), "Accept": NDJSON_TYPE}
            )
            assert [json.loads(line)["event"] for line in streamed.text.splitlines()] == ["result", "summary", "end"]
            assert (await client.get("/readyz")).status_code == 200
            job = {"devices": [{"name": "gateway-job-device"}], "commands": [{"command": "show clock"}]}
            accepted = await client.post("/api/v1/jobs", json=job, headers=bearer(ALICE_KEY))
            assert accepted.status_code == 202, accepted.text  # pyats.v1.jobs.alice, acked to _INBOX.alice
    finally:
        running.stop()


async def test_the_gateways_marker_reaches_the_session_lab(
    http: httpx.AsyncClient, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """The read-only proof (tests/lab/test_readonly_proof.py) finds this command in the session lab's log."""
    body = {"devices": [wire_device(lab_device("iosxe-1"))], "commands": [marker_command("http")]}
    answer = await http.post("/api/v1/execute", json=body, headers=bearer(ALICE_KEY))
    assert answer.status_code == 200, answer.text
    assert answer.json()["successful_devices"] == 1


async def test_a_slow_stream_reader_holds_up_nobody(
    http: httpx.AsyncClient, gateway: Gateway, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """A stream of megabytes nobody reads (the gateway's writes to it back up): another client's
    execute is answered meanwhile, and the slow reader then gets every event, in order, to the end."""
    names = ["bulky", "slow", "ios-1"]  # slow: the stream stays open for seconds
    body = {
        "devices": [wire_device(lab_device(n)) for n in names],
        "commands": [{"command": "show logging"}, {"command": "show ip interface brief"}],
        "output_format": "raw",
    }
    quick = {"devices": [wire_device(lab_device("ios-1"))], "commands": [{"command": "show clock"}]}
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=90) as slow,
        slow.stream("POST", "/api/v1/execute/stream", json=body, headers=bearer(ALICE_KEY)) as stream,
    ):
        assert stream.status_code == 200
        # the slow reader reads nothing until the other client's answer is in (or the bound is over)
        answer = await asyncio.wait_for(http.post("/api/v1/execute", json=quick, headers=bearer(ALICE_KEY)), 30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["successful_devices"] == 1
        assert await _streams_open(http) == 1  # the slow stream is still open: it was not simply done first
        text = (await stream.aread()).decode()
    events = _events(text)
    assert [kind for kind, _ in events] == ["result"] * len(names) + ["summary", "end"], text[:500]
    assert events[-2][1]["total_devices"] == len(names)
    bulky = next(data for kind, data in events if kind == "result" and data["port"] == lab_device("bulky")["port"])
    assert len(bulky["commands"][0]["output"]) >= 1_000_000


async def test_jobs_are_published_for_the_keys_requester(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """``POST /api/v1/jobs``: a durable job on ``<prefix>.jobs.<requester>`` of the key, answered 202 with
    its id; the service runs it from the inventory. Inline passwords are refused before anything
    is published (a job is stored at rest), and so is a request without a valid key."""
    prefix = f"gwjobs{RUN}.v1"
    job_service(service_factory, prefix, inventory_file(tmp_path, lab_device, ["ios-1", "nxos-1"])).wait_ready()
    running = Gateway(gateway_env(nats_server.url, prefix), tmp_path / "gateway-jobs.log")
    watcher, seen = await _published(nats_server.url, f"{prefix}.jobs.>")
    done: asyncio.Queue[Any] = asyncio.Queue()
    await watcher.subscribe(f"{prefix}.notify.{ALICE}.done", cb=done.put)
    job = {
        "devices": [{"name": "*-1"}],
        "commands": [{"command": "show version"}],
        "notify": f"{prefix}.notify.{ALICE}.done",
    }
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
            for headers in ({}, bearer("pyro_not-a-key")):
                assert (await client.post("/api/v1/jobs", json=job, headers=headers)).status_code == 401
            inline = {**job, "devices": [{**wire_device(lab_device("ios-1"))}]}
            refused = await client.post("/api/v1/jobs", json=inline, headers=bearer(ALICE_KEY))
            assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_request")
            assert LAB_PASSWORD not in refused.text
            await watcher.flush()
            assert seen == []
            answer = await client.post("/api/v1/jobs", json=job, headers=bearer(ALICE_KEY))
            assert answer.status_code == 202, answer.text
            accepted = answer.json()
            assert accepted["job_id"] == f"job-{accepted['sequence']}"
            summary = json.loads((await asyncio.wait_for(done.get(), 60)).data)
            assert summary["request_id"] == accepted["job_id"]
            assert summary["successful_devices"] == 2
            bobs = {
                "devices": [{"name": "ios-1"}],
                "commands": [{"command": "show clock"}],
                "request_id": f"gwjob-{RUN}",
            }
            named = await client.post("/api/v1/jobs", json=bobs, headers=bearer(BOB_KEY))
            assert named.status_code == 202, named.text
            assert named.json()["job_id"] == f"gwjob-{RUN}"
            await watcher.flush()
            assert seen == [f"{prefix}.jobs.{ALICE}", f"{prefix}.jobs.{BOB}"]
    finally:
        await watcher.close()
        running.stop()
