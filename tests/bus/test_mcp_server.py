"""``pyats-ro mcp`` through the SDK's own client, over stdio and streamable HTTP, against a
service that names lab devices from an inventory file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from service.devtools.child import ServiceProcess
from service.devtools.local_server import LocalNatsServer, free_port
from tests.bus.test_inventory_reload import render_testbed
from tests.conftest import LAB_PASSWORD
from tests.front_doors import marker_command
from tests.waiting import wait_for

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]
PREFIX = "mcp.v1"
REPO = Path(__file__).resolve().parents[2]
STREAM = "RESULTS_MCP_V1"


@dataclass
class McpSetup:
    env: dict[str, str]
    stderr: Path
    env_file: Path


@pytest.fixture(scope="module")
def mcp_setup(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> McpSetup:
    folder = tmp_path_factory.mktemp("mcp")
    testbed = folder / "testbed.yaml"
    testbed.write_text(
        render_testbed(
            {
                "core-1": {**lab_device("ios-1"), "groups": ["core"]},
                "core-2": {**lab_device("nxos-1"), "groups": ["core"]},
                "edge-1": {**lab_device("iosxe-1"), "groups": ["edge"]},
            }
        )
    )
    service_factory(
        PYATS_SUBJECT_PREFIX=PREFIX,
        PYATS_INVENTORY_FILE=str(testbed),
        PYATS_ALLOW_INLINE_CREDENTIALS="false",
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
    ).wait_ready()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYATS_NATS_URL": nats_server.url,
            "PYATS_SUBJECT_PREFIX": PREFIX,
            "PYATS_RESULTS_STREAM": STREAM,
            "PYATS_INVENTORY_FILE": str(testbed),
            "PYATS_MCP_REQUESTER": "agent",
            "PYATS_LOG_LEVEL": "DEBUG",
            # the MCP server needs no device password; given one, it must still never show it
            "LAB_DEVICE_PASSWORD": LAB_PASSWORD,
        }
    )
    return McpSetup(env, folder / "mcp-stderr.log", folder / "absent.env")


def command(setup: McpSetup, *args: str) -> list[str]:
    return ["-m", "service", "mcp", "--env-file", str(setup.env_file), *args]


@asynccontextmanager
async def stdio_session(setup: McpSetup) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=command(setup, "--transport", "stdio"), env=setup.env, cwd=str(REPO)
    )
    with setup.stderr.open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.fixture(scope="module")
def http_server(mcp_setup: McpSetup) -> Iterator[str]:
    port = free_port()
    with mcp_setup.stderr.open("a") as errlog:
        process = subprocess.Popen(
            [sys.executable, *command(mcp_setup, "--transport", "http", "--port", str(port))],
            env=mcp_setup.env,
            cwd=REPO,
            stdout=errlog,
            stderr=errlog,
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=30)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@asynccontextmanager
async def http_session(base: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(f"{base}/mcp") as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def run_show_with_progress(session: ClientSession, **arguments: Any) -> tuple[CallToolResult, list[Any]]:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    result = await session.call_tool("run_show", arguments, progress_callback=on_progress)
    return result, progress


async def test_stdio_tools_run_show_progress_and_errors(mcp_setup: McpSetup) -> None:
    async with stdio_session(mcp_setup) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"run_show", "list_devices", "history", "diff", "status"}
        for tool in tools.values():
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is True
            assert tool.annotations.destructive_hint is False
            assert tool.output_schema is not None
        assert tools["run_show"].annotations.open_world_hint is True  # type: ignore[union-attr]
        assert tools["list_devices"].annotations.idempotent_hint is True  # type: ignore[union-attr]
        properties = set(tools["run_show"].input_schema["properties"])
        assert properties == {"devices", "groups", "commands", "output_format"}
        schema_text = json.dumps(tools["run_show"].input_schema).lower()
        assert "password" not in schema_text
        assert "hostname" not in schema_text

        listed = await session.call_tool("list_devices", {})
        assert not listed.is_error
        assert listed.structured_content == {
            "inventory": True,
            "devices": [
                {"name": "core-1", "os": "ios", "groups": ["core"]},
                {"name": "core-2", "os": "nxos", "groups": ["core"]},
                {"name": "edge-1", "os": "iosxe", "groups": ["edge"]},
            ],
            "groups": ["core", "edge"],
        }

        result, progress = await run_show_with_progress(
            session, groups=["core"], devices=["edge-*"], commands=[{"command": "show clock"}]
        )
        assert not result.is_error, text_of(result)
        answer = result.structured_content
        assert answer is not None
        assert answer["requester"] == "agent"
        assert answer["summary"]["total_devices"] == 3
        assert answer["summary"]["status"] == "ok"
        assert {r["os"] for r in answer["results"]} == {"ios", "nxos", "iosxe"}
        assert all(r["commands"][0]["output"] for r in answer["results"])
        assert [done for done, _ in progress] == [1, 2, 3]  # one notification per device
        assert {total for _, total in progress} == {3}

        unknown = await session.call_tool(
            "run_show", {"devices": ["nowhere-9"], "commands": [{"command": "show clock"}]}
        )
        assert unknown.is_error
        assert "unknown_device" in text_of(unknown)

        refused = await session.call_tool("run_show", {"devices": ["core-1"], "commands": [{"command": "reload"}]})
        assert refused.is_error
        assert "command_not_allowed" in text_of(refused)

        smuggled = await session.call_tool(
            "run_show",
            {"devices": ["core-1"], "commands": [{"command": "show clock"}], "password": LAB_PASSWORD},
        )
        assert smuggled.is_error
        assert "password" in text_of(smuggled)
        assert LAB_PASSWORD not in text_of(smuggled)

        marked = await session.call_tool("run_show", {"devices": ["core-1"], "commands": [marker_command("mcp")]})
        assert not marked.is_error, text_of(marked)  # the read-only proof finds it in the session lab's log

        status = await session.call_tool("status", {})
        assert not status.is_error
        assert status.structured_content is not None
        assert any(row["subject_prefix"] == PREFIX for row in status.structured_content["replicas"])

        history = await session.call_tool("history", {"device": "core-1", "command": "show clock", "latest": True})
        assert not history.is_error, text_of(history)
        assert history.structured_content is not None
        records = history.structured_content["records"]
        assert [r["request_id"] for r in records] == [answer["request_id"]]

        await session.call_tool("run_show", {"devices": ["core-1"], "commands": [{"command": "show clock"}]})
        diff = await session.call_tool("diff", {"device": "core-1", "command": "show clock", "older": "1h"})
        assert not diff.is_error, text_of(diff)
        assert diff.structured_content is not None
        assert diff.structured_content["kind"] == "text"
        answers = json.dumps([listed.structured_content, answer, history.structured_content, diff.structured_content])
        assert LAB_PASSWORD not in answers
    log = mcp_setup.stderr.read_text()
    assert "mcp server on stdio asking as agent" in log  # the log is there, and DEBUG
    assert LAB_PASSWORD not in log


async def test_http_transport_health_metrics_and_run_show(mcp_setup: McpSetup, http_server: str) -> None:
    async with httpx.AsyncClient(timeout=5) as web:
        health = (await web.get(f"{http_server}/healthz")).json()
    assert health["status"] == "ok"
    async with http_session(http_server) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert "run_show" in tools
        result, progress = await run_show_with_progress(
            session, devices=["core-1", "core-2"], commands=[{"command": "show version"}], output_format="both"
        )
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["summary"]["successful_devices"] == 2
        assert len(progress) == 2
        refused = await session.call_tool("run_show", {"devices": ["core-1"], "commands": [{"command": "conf t"}]})
        assert refused.is_error
    async with httpx.AsyncClient(timeout=5) as web:
        metrics = (await web.get(f"{http_server}/metrics")).text
    assert 'pyats_mcp_tool_calls_total{status="ok",tool="run_show"} 1.0' in metrics
    assert 'pyats_mcp_tool_calls_total{status="error",tool="run_show"} 1.0' in metrics
    assert LAB_PASSWORD not in metrics
    assert LAB_PASSWORD not in mcp_setup.stderr.read_text()
