"""Replay of stored results (``pyats-ro history``) and diffs of two results (``pyats-ro diff``).

Other tests publish to the same stream, so every query here names this module's requesters.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client

from service.client.history import latest, query_results, result_at, result_of_request
from service.contract.codec import encode
from service.contract.messages import DeviceResult
from service.devtools.local_server import LocalNatsServer
from service.transport.history import HistoryQuery
from service.transport.subjects import device_token
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

RUN = uuid.uuid4().hex[:6]
A, B = f"hist-a-{RUN}", f"hist-b-{RUN}"


@dataclass
class Seeded:
    ids: dict[str, str]  # hist-1 .. hist-4 -> this run's request ids
    marks: list[dt.datetime]  # before hist-1, between each request, after hist-4
    ios: str  # host:port
    iosxe: str


_SEEDED: dict[str, Seeded] = {}  # one seeding per run, shared by the tests below


def _spec(device: dict[str, Any]) -> str:
    return f"{device['host']}:{device['port']}"


async def _request(client: Client, requester: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(f"pyats.v1.execute.{requester}", json.dumps(body).encode(), timeout=60)
    data: dict[str, Any] = json.loads(reply.data)
    assert data.get("successful_devices") == len(body["devices"]), data
    return data


async def _mark(marks: list[dt.datetime]) -> None:
    await asyncio.sleep(0.3)
    marks.append(dt.datetime.now(dt.UTC))
    await asyncio.sleep(0.3)


@pytest_asyncio.fixture
async def seeded(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> AsyncIterator[Seeded]:
    """Four requests, once per run: three through the service and one changed copy published directly."""
    if "run" not in _SEEDED:
        ios, iosxe = lab_device("ios-1"), lab_device("iosxe-1")
        ids = {name: f"{name}-{RUN}" for name in ("hist-1", "hist-2", "hist-3", "hist-4")}
        marks: list[dt.datetime] = []
        await _mark(marks)
        await _request(
            client,
            A,
            {
                "devices": [wire_device(ios), wire_device(iosxe)],
                "commands": [{"command": "show clock"}, {"command": "show version"}],
                "output_format": "both",
                "request_id": ids["hist-1"],
            },
        )
        await _mark(marks)
        await _request(
            client,
            B,
            {
                "devices": [wire_device(iosxe)],
                "commands": [{"command": "show version"}],
                "output_format": "both",
                "request_id": ids["hist-2"],
            },
        )
        await _mark(marks)
        await _request(
            client,
            A,
            {
                "devices": [wire_device(ios)],
                "commands": [{"command": "show clock"}],
                "output_format": "raw",
                "request_id": ids["hist-3"],
            },
        )
        await _mark(marks)
        # hist-4: hist-2 a little later, with another uptime in the parsed data and the text
        earlier = await result_of_request(client, ids["hist-2"], requester=B)
        command = earlier.result.commands[0]
        assert command.parsed is not None, "the lab's show version should parse"
        parsed = copy.deepcopy(command.parsed)
        parsed.setdefault("version", {})["uptime"] = "2 days"
        later = msgspec.structs.replace(
            earlier.result,
            request_id=ids["hist-4"],
            commands=[
                msgspec.structs.replace(
                    command, parsed=parsed, output=(command.output or "") + "\nuptime is 2 days (hist)"
                )
            ],
        )
        token = device_token(later.hostname, later.port)
        await client.jetstream().publish(
            f"pyats.v1.results.{B}.{ids['hist-4']}.{token}",
            encode(later),
            headers={
                "Pyats-Request-Id": ids["hist-4"],
                "Pyats-Requester": B,
                "Pyats-Device": later.hostname,
                "Pyats-Status": "ok",
                "Nats-Msg-Id": f"{B}.{ids['hist-4']}.{token}",
            },
        )
        await _mark(marks)
        _SEEDED["run"] = Seeded(ids, marks, _spec(ios), _spec(iosxe))
    yield _SEEDED["run"]


def _ids(records: list[Any]) -> list[str]:
    return [r.request_id for r in records]


def _cli(nats_server: LocalNatsServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
    env["PYATS_NATS_URL"] = nats_server.url
    env["COLUMNS"] = "200"  # rich tables, unwrapped
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_filter_by_requester(seeded: Seeded, client: Client) -> None:
    found = await query_results(client, HistoryQuery(requester=A))
    assert _ids(found) == [seeded.ids["hist-1"], seeded.ids["hist-1"], seeded.ids["hist-3"]]
    assert all(r.requester == A and isinstance(r.result, DeviceResult) for r in found)
    assert [r.stored_at for r in found] == sorted(r.stored_at for r in found)
    assert {len(r.result.commands) for r in found[:2]} == {2}


async def test_filter_by_device(seeded: Seeded, client: Client) -> None:
    on_iosxe = await query_results(client, HistoryQuery(requester=B, device=seeded.iosxe))
    assert _ids(on_iosxe) == [seeded.ids["hist-2"], seeded.ids["hist-4"]]
    on_ios = await query_results(client, HistoryQuery(requester=B, device=seeded.ios))
    assert on_ios == []
    by_a = await query_results(client, HistoryQuery(requester=A, device=seeded.ios))
    assert _ids(by_a) == [seeded.ids["hist-1"], seeded.ids["hist-3"]]
    assert {f"{r.result.hostname}:{r.result.port}" for r in by_a} == {seeded.ios}


async def test_filter_by_request_id(seeded: Seeded, client: Client) -> None:
    found = await query_results(client, HistoryQuery(request_id=seeded.ids["hist-1"]))
    assert sorted(f"{r.result.hostname}:{r.result.port}" for r in found) == sorted([seeded.ios, seeded.iosxe])
    assert all(r.requester == A for r in found)


async def test_filter_by_command(seeded: Seeded, client: Client) -> None:
    found = await query_results(client, HistoryQuery(requester=A, command="Show  VERSION"))
    assert _ids(found) == [seeded.ids["hist-1"], seeded.ids["hist-1"]]
    assert all([c.command for c in r.result.commands] == ["show version"] for r in found)


async def test_filter_by_time_window(seeded: Seeded, client: Client) -> None:
    m = seeded.marks
    assert _ids(await query_results(client, HistoryQuery(requester=A, until=m[1]))) == [seeded.ids["hist-1"]] * 2
    assert _ids(await query_results(client, HistoryQuery(requester=A, since=m[1]))) == [seeded.ids["hist-3"]]
    window = await query_results(client, HistoryQuery(requester=B, since=m[1], until=m[2]))
    assert _ids(window) == [seeded.ids["hist-2"]]
    assert await query_results(client, HistoryQuery(requester=A, since=m[4])) == []


async def test_latest_per_device_and_command(seeded: Seeded, client: Client) -> None:
    found = latest(await query_results(client, HistoryQuery(requester=A)))
    got = {(f"{r.result.hostname}:{r.result.port}", r.result.commands[0].command): r.request_id for r in found}
    assert got == {
        (seeded.ios, "show clock"): seeded.ids["hist-3"],
        (seeded.ios, "show version"): seeded.ids["hist-1"],
        (seeded.iosxe, "show clock"): seeded.ids["hist-1"],
        (seeded.iosxe, "show version"): seeded.ids["hist-1"],
    }


async def test_history_cli_prints_json(seeded: Seeded, nats_server: LocalNatsServer) -> None:
    done = await asyncio.to_thread(_cli, nats_server, "history", "--requester", B, "--device", seeded.iosxe, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["request_id"] for r in rows] == [seeded.ids["hist-2"], seeded.ids["hist-4"]]
    assert rows[0]["result"]["hostname"] == seeded.iosxe.split(":")[0]
    assert rows[0]["requester"] == B and dt.datetime.fromisoformat(rows[0]["stored_at"]).tzinfo is not None
    since = seeded.marks[0].isoformat()
    done = await asyncio.to_thread(
        _cli,
        nats_server,
        "history",
        "--requester",
        A,
        "--since",
        since,
        "--command",
        "show clock",
        "--latest",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sorted((r["request_id"], r["result"]["commands"][0]["command"]) for r in rows) == [
        (seeded.ids["hist-1"], "show clock"),
        (seeded.ids["hist-3"], "show clock"),
    ]
    table = await asyncio.to_thread(_cli, nats_server, "history", "--requester", A, "--since", "1h")
    assert table.returncode == 0, table.stderr
    assert seeded.ids["hist-3"] in table.stdout and "show clock" in table.stdout


async def test_diff_of_two_parsed_results(seeded: Seeded, client: Client, nats_server: LocalNatsServer) -> None:
    done = await asyncio.to_thread(
        _cli, nats_server, "diff", "--a", seeded.ids["hist-2"], "--b", seeded.ids["hist-4"], "--json"
    )
    assert done.returncode == 1, done.stderr  # different
    diff = json.loads(done.stdout)
    assert diff["kind"] == "parsed" and not diff["identical"]
    assert [c["path"] for c in diff["changes"]] == ["version.uptime"]
    assert diff["changes"][0]["new"] == "2 days"
    assert diff["a"]["request_id"] == seeded.ids["hist-2"] and diff["b"]["request_id"] == seeded.ids["hist-4"]
    # by time: the newest at or before the mark after hist-2, against the latest
    older = await result_at(client, seeded.iosxe, "show version", seeded.marks[2].isoformat(), requester=B)
    newer = await result_at(client, seeded.iosxe, "show version", "latest", requester=B)
    assert older is not None and newer is not None
    assert (older.request_id, newer.request_id) == (seeded.ids["hist-2"], seeded.ids["hist-4"])
    done = await asyncio.to_thread(
        _cli,
        nats_server,
        "diff",
        "--device",
        seeded.iosxe,
        "--command",
        "show version",
        "--requester",
        B,
        "--from",
        seeded.marks[2].isoformat(),
        "--to",
        "latest",
    )
    assert done.returncode == 1, done.stderr
    assert "version.uptime" in done.stdout and "2 days" in done.stdout


async def test_diff_of_two_raw_results(seeded: Seeded, nats_server: LocalNatsServer) -> None:
    # hist-3 has raw output only: a text diff; the lab's clock does not move, so none
    done = await asyncio.to_thread(
        _cli,
        nats_server,
        "diff",
        "--a",
        seeded.ids["hist-1"],
        "--b",
        seeded.ids["hist-3"],
        "--device",
        seeded.ios,
        "--command",
        "show clock",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert diff["kind"] == "text" and diff["identical"] and diff["text"] == []
    done = await asyncio.to_thread(
        _cli, nats_server, "diff", "--a", seeded.ids["hist-2"], "--b", seeded.ids["hist-4"], "--text", "--json"
    )
    assert done.returncode == 1, done.stderr
    diff = json.loads(done.stdout)
    assert diff["kind"] == "text" and "+uptime is 2 days (hist)" in diff["text"]
    assert diff["text"][0].startswith("--- " + seeded.ids["hist-2"])


async def test_diff_needs_enough_to_pick_two_results(seeded: Seeded, nats_server: LocalNatsServer) -> None:
    done = await asyncio.to_thread(_cli, nats_server, "diff", "--a", seeded.ids["hist-1"], "--b", seeded.ids["hist-3"])
    assert done.returncode == 2 and "several results" in done.stderr
    done = await asyncio.to_thread(_cli, nats_server, "diff", "--device", seeded.ios)
    assert done.returncode == 2 and "--from" in done.stderr


async def test_no_consumer_is_left_on_the_stream(seeded: Seeded, client: Client) -> None:
    js = client.jetstream()
    before = (await js.stream_info("PYATS_RESULTS")).state.consumer_count
    await query_results(client, HistoryQuery(requester=A))
    await query_results(client, HistoryQuery(requester=B, since=seeded.marks[0], until=seeded.marks[2]))
    await query_results(client, HistoryQuery(requester="nobody-" + RUN))
    consumers = await js.consumers_info("PYATS_RESULTS")
    assert not [c for c in consumers if c.config.durable_name]
    assert not [c for c in consumers if "hist-" in (c.config.filter_subject or "")]
    assert (await js.stream_info("PYATS_RESULTS")).state.consumer_count <= before
