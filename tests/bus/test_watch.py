"""`pyats-ro watch` as a subprocess against a real nats-server: change events published where the
service publishes them come out as JSON lines or readable lines, filtered; the shipped auth.conf
lets a requester watch only its own changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from service.client.changes import WatchRefusedError, watch_changes
from service.contract.codec import encode
from service.contract.messages import ChangeEvent, ChangeSide, PathChange, PathValue
from service.devtools.local_server import LocalNatsServer, free_port
from service.transport.subjects import Subjects
from tests.bus.shipped_auth import PASSWORDS, auth_server, connect_as
from tests.waiting import wait_for_async

__all__ = ["auth_server", "connect_as"]  # fixtures, used by name

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

SUBJECTS = Subjects("pyats.v1")


def change(requester: str, device: str, command: str = "show ip bgp summary", **fields: Any) -> ChangeEvent:
    base: dict[str, Any] = {
        "requester": requester,
        "device": device,
        "port": 22,
        "command": command,
        "kind": "parsed",
        "previous": ChangeSide(request_id=f"{device}-old", time="2026-11-30T10:00:00+00:00"),
        "current": ChangeSide(request_id=f"{device}-new", time="2026-11-30T10:05:00+00:00"),
        "changed": [PathChange(path="vrf.default.neighbor['10.0.0.2'].state", old="Established", new="Idle")],
    }
    return ChangeEvent(**{**base, **fields})


async def publish(client: Client, *events: ChangeEvent) -> None:
    for event in events:
        await client.publish(SUBJECTS.changes(event.requester, event.device, event.port), encode(event))
    await client.flush()


class Watch:
    """``pyats-ro watch`` running; ``ready`` returns once it has said what it watches (subscribed)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_lines: list[str] = []

    async def ready(self, timeout: float = 30.0) -> str:
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.process.stderr.readline()).decode()
                if not line:
                    raise AssertionError(f"watch ended before it was ready: {self.stderr_lines}")
                self.stderr_lines.append(line)
                if line.startswith("watching"):
                    return line

    async def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Exit code, stdout, and all of stderr."""
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode, (stdout or b"").decode(), "".join(self.stderr_lines) + stderr.decode()


@contextlib.asynccontextmanager
async def watching(url: str, *args: str, stdout: int = asyncio.subprocess.PIPE, **env: str) -> AsyncIterator[Watch]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "watch",
        "--nats-url",
        url,
        *args,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}, **env},
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Watch(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_json_lines_of_one_device_only(nats_server: LocalNatsServer, client: Client) -> None:
    first, second = change("json-1", "r1"), change("json-1", "r1", command="show version", kind="text")
    async with watching(nats_server.url, "--requester", "json-1", "--json", "--count", "2", "--device", "r1") as watch:
        assert "pyats.v1.changes.json-1.r1 " in await watch.ready()
        await publish(client, change("json-1", "r2"), change("json-1", "r1", port=2222), first)
        await client.publish(SUBJECTS.changes("json-1", "r1"), b"{not a change event")
        await publish(client, second)
        code, stdout, stderr = await watch.finish()
    assert code == 0, stderr
    assert [json.loads(line) for line in stdout.splitlines()] == [json.loads(encode(e)) for e in (first, second)]
    assert "skipped 1 message(s)" in stderr and "Traceback" not in stderr


async def test_group_and_command_filters(nats_server: LocalNatsServer, client: Client) -> None:
    wanted = change("filter-1", "r3", command="show ip bgp neighbors", groups=["core"])
    args = ["--requester", "filter-1", "--json", "--count", "1", "--group", "core", "--command", "show ip bgp*"]
    async with watching(nats_server.url, *args) as watch:
        assert "on pyats.v1.changes.filter-1.>; groups: core; commands: show ip bgp*" in await watch.ready()
        await publish(
            client,
            change("filter-1", "r1", command="show version", groups=["core"]),  # not the command
            change("filter-1", "r2", groups=["edge"]),  # not the group
            change("filter-2", "r1", groups=["core"]),  # another requester's
            wanted,
        )
        code, stdout, stderr = await watch.finish()
    assert code == 0, stderr
    assert [json.loads(line)["device"] for line in stdout.splitlines()] == ["r3"]


async def test_readable_lines(nats_server: LocalNatsServer, client: Client) -> None:
    event = change(
        "rich-1",
        "r1",
        schedule="bgp-5m",
        added=[PathValue(path="vrf.default.neighbor['10.0.0.9'].state", value="Idle")],
        removed=[PathValue(path="vrf.default.neighbor['10.0.0.3']", value="x" * 300)],
        truncated=True,
    )
    async with watching(nats_server.url, "--requester", "rich-1", "--count", "1") as watch:
        await watch.ready()
        await publish(client, event)
        code, stdout, stderr = await watch.finish()
    assert code == 0, stderr
    header, *lines = stdout.splitlines()
    assert header.endswith("| r1 | show ip bgp summary | schedule bgp-5m | r1-old → r1-new")
    assert lines[:2] == [
        "  ~ vrf.default.neighbor['10.0.0.2'].state: Established → Idle",
        "  + vrf.default.neighbor['10.0.0.9'].state: Idle",
    ]
    assert lines[2].startswith("  - vrf.default.neighbor['10.0.0.3']: xxx") and lines[2].endswith("(300 characters)")
    assert lines[3].startswith("  truncated:") and "pyats-ro diff --a r1-old --b r1-new" in lines[3]


async def test_for_seconds_and_ctrl_c_end_it_with_0(nats_server: LocalNatsServer) -> None:
    async with watching(nats_server.url, "--requester", "quiet-1", "--for", "0.5") as watch:
        await watch.ready()
        code, stdout, stderr = await watch.finish()
    assert (code, stdout) == (0, ""), stderr
    async with watching(nats_server.url, "--requester", "quiet-1") as watch:
        await watch.ready()
        watch.process.send_signal(signal.SIGINT)
        code, stdout, stderr = await watch.finish()
    assert (code, stdout) == (0, ""), stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


async def test_no_bus_is_a_clear_error() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    async with watching(url, "--requester", "nobody") as watch:
        code, stdout, stderr = await watch.finish()
    assert (code, stdout) == (3, "")
    assert f"pyats-ro watch: cannot reach NATS at {url}" in stderr and "Traceback" not in stderr


async def test_watch_changes_unsubscribes_when_closed(nats_server: LocalNatsServer, client: Client) -> None:
    events = watch_changes(client, "pyats.v1", "api-1", device="r1")
    async with contextlib.aclosing(events):
        waiting = asyncio.ensure_future(anext(events))
        # the same connection: its SUB reaches the server before the PUB below
        await wait_for_async(lambda: len(client._subs) == 1, what="subscribed")
        await publish(client, change("api-1", "r1"))
        assert (await asyncio.wait_for(waiting, 10)).device == "r1"
    assert client._subs == {}


async def test_shipped_auth_alice_watches_her_own_changes_only(
    auth_server: LocalNatsServer, connect_as: Callable[..., Any]
) -> None:
    admin = await connect_as("admin")
    alice_env = {"PYATS_NATS_PASSWORD": PASSWORDS["alice"]}
    async with watching(auth_server.url, "--nats-user", "alice", "--json", "--count", "1", **alice_env) as watch:
        assert "requester alice on pyats.v1.changes.alice.>" in await watch.ready()
        await publish(admin.client, change("bob", "r1"), change("alice", "r2"))
        code, stdout, stderr = await watch.finish()
    assert code == 0, stderr
    assert [json.loads(line)["device"] for line in stdout.splitlines()] == ["r2"]

    args = ["--nats-user", "alice", "--requester", "bob", "--json"]
    async with watching(auth_server.url, *args, **alice_env) as watch:
        code, stdout, stderr = await watch.finish()
    assert (code, stdout) == (2, "")
    assert "refused the subscription to pyats.v1.changes.bob.>" in stderr
    assert "a requester may only watch its own changes" in stderr and "Traceback" not in stderr

    for _ in range(10):  # fresh connections: the refusal is seen right after connecting, every time
        alice = await connect_as("alice")
        with pytest.raises(WatchRefusedError):
            async with contextlib.aclosing(watch_changes(alice.client, "pyats.v1", "bob")) as events:
                await asyncio.wait_for(anext(events), 10)


async def test_a_reader_that_goes_away_ends_it_quietly(nats_server: LocalNatsServer, client: Client) -> None:
    """``pyats-ro watch --json | head -1``: the pipe closes after the first line."""
    read_end, write_end = os.pipe()
    async with watching(nats_server.url, "--requester", "pipe-1", "--json", stdout=write_end) as watch:
        os.close(write_end)  # the child holds it now
        await watch.ready()
        await publish(client, change("pipe-1", "r1"))
        with os.fdopen(read_end, "rb") as reader:
            first = await asyncio.wait_for(asyncio.to_thread(reader.readline), 10)
        assert json.loads(first)["device"] == "r1"
        await publish(client, change("pipe-1", "r2"))  # written into a closed pipe
        code, _, stderr = await watch.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


async def test_a_lost_bus_is_a_clear_error(tmp_path: Path) -> None:
    server = LocalNatsServer(tmp_path / "nats", jetstream=False)
    server.start()
    try:
        async with watching(server.url, "--requester", "lost-1") as watch:
            await watch.ready()
            server.stop()
            code, stdout, stderr = await watch.finish()
    finally:
        server.stop()
    assert (code, stdout) == (3, "")
    assert "pyats-ro watch: lost the connection to NATS while watching pyats.v1.changes.lost-1.>" in stderr
    assert "Traceback" not in stderr
