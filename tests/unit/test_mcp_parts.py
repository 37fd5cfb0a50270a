"""The MCP server's pure parts: the inventory catalog, the settings glue, the argument guard,
the metrics labels and the tools' declared schemas and annotations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp.types import CallToolResult

from service.config import Settings
from service.mcp.catalog import CatalogError, parse_catalog
from service.mcp.guard import ToolCallGuard, unexpected
from service.mcp.metrics import McpMetrics
from service.mcp.options import McpOptions
from service.mcp.server import TOOLS, build_server

pytestmark = pytest.mark.unit

TESTBED = """
testbed:
  credentials:
    default: {username: admin, password: '%ENV{NOT_SET_ANYWHERE}'}
devices:
  core-1:
    os: IOS
    credentials: {default: {username: u, password: hunter2-secret}}
    connections: {cli: {protocol: ssh, ip: 10.0.0.1}}
    groups: [core, dc1]
  core-2:
    os: nxos
    connections: {cli: {protocol: ssh, ip: 10.0.0.2, port: 2222}}
    custom: {groups: [core]}
  edge-1:
    os: iosxe
    connections: {cli: {ip: 10.0.0.3}}
"""


def test_the_catalog_reads_names_groups_and_os_without_resolving_credentials() -> None:
    catalog = parse_catalog(TESTBED)  # %ENV{NOT_SET_ANYWHERE} would fail the service's loader
    assert [d.public() for d in catalog.devices.values()] == [
        {"name": "core-1", "os": "ios", "groups": ["core", "dc1"]},
        {"name": "core-2", "os": "nxos", "groups": ["core"]},
        {"name": "edge-1", "os": "iosxe", "groups": []},
    ]
    assert catalog.groups == ["core", "dc1"]
    assert catalog.devices["core-1"].address == "10.0.0.1"
    assert catalog.devices["core-2"].address == "10.0.0.2:2222"
    assert "hunter2" not in repr(catalog)


def test_the_catalog_counts_the_devices_a_request_names() -> None:
    catalog = parse_catalog(TESTBED)
    assert catalog.count(["core-*", "edge-1"], ["core"]) == 3
    assert catalog.count([], ["dc1"]) == 1
    assert catalog.count(["nowhere"], []) is None  # the service decides, and says so
    assert catalog.count([], ["nogroup"]) is None


def test_a_broken_catalog_names_the_place_not_the_value() -> None:
    with pytest.raises(CatalogError, match="devices must be a mapping"):
        parse_catalog("devices: [hunter2-secret]")
    with pytest.raises(CatalogError, match="not valid YAML") as caught:
        parse_catalog("devices: {a: [hunter2-secret")
    assert "hunter2" not in str(caught.value)


def test_options_come_from_the_mcp_section() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        PYATS_NATS_URL="nats://a:4222,nats://b:4222",
        PYATS_NATS_PASSWORD="pw-1",
        PYATS_MCP_NATS_USER="agents",
        PYATS_MCP_REQUESTER="claude",
        PYATS_SUBJECT_PREFIX="lab.v1",
    )
    options = McpOptions.of(settings)
    assert options.execute_subject == "lab.v1.execute.claude"
    assert options.address.url == "nats://a:4222"
    assert options.address.user == "agents"
    assert options.address.inbox_prefix == "_INBOX.agents"  # auto, as the shipped auth.conf wants
    assert options.address.password == "pw-1"
    assert "pw-1" not in repr(options)
    anonymous = McpOptions.of(Settings(_env_file=None))  # type: ignore[call-arg]
    assert anonymous.address.inbox_prefix == "_INBOX"
    assert anonymous.address.password is None
    assert anonymous.requester == "mcp"


def test_unexpected_arguments_are_named_shortened_and_never_valued() -> None:
    allowed = frozenset({"devices", "commands"})
    assert unexpected({"devices": [], "password": "x", "hostname": "h"}, allowed) == ["hostname", "password"]
    assert unexpected({"devices": []}, allowed) == []
    assert unexpected(None, allowed) == []
    assert unexpected(["x"], allowed) == ["(not an object)"]
    assert unexpected({"p" * 100: 1}, allowed) == ["p" * 40]


class FakeContext:
    def __init__(self, method: str, params: dict[str, Any]) -> None:
        self.method = method
        self.params = params


@pytest.mark.asyncio
async def test_the_guard_refuses_undeclared_arguments_and_counts_every_call() -> None:
    metrics = McpMetrics(("run_show",))
    calls: list[Any] = []

    async def arguments() -> dict[str, frozenset[str]]:
        return {"run_show": frozenset({"devices", "commands"})}

    async def call_next(ctx: Any) -> CallToolResult:
        calls.append(ctx)
        return CallToolResult(content=[], is_error=ctx.params["arguments"].get("devices") == ["bad"])

    guard = ToolCallGuard(arguments, metrics)
    smuggled = FakeContext("tools/call", {"name": "run_show", "arguments": {"devices": ["a"], "password": "s3cret"}})
    refused = await guard(smuggled, call_next)  # type: ignore[arg-type]
    assert isinstance(refused, CallToolResult)
    assert refused.is_error
    assert "password" in refused.content[0].text  # type: ignore[union-attr]
    assert "s3cret" not in refused.model_dump_json()
    assert calls == []
    await guard(FakeContext("tools/call", {"name": "run_show", "arguments": {"devices": ["a"]}}), call_next)  # type: ignore[arg-type]
    await guard(FakeContext("tools/call", {"name": "run_show", "arguments": {"devices": ["bad"]}}), call_next)  # type: ignore[arg-type]
    await guard(FakeContext("tools/call", {"name": "rm -rf", "arguments": {}}), call_next)  # type: ignore[arg-type]
    text = metrics.exposition().decode()
    for status in ("ok", "error", "refused"):
        assert f'pyats_mcp_tool_calls_total{{status="{status}",tool="run_show"}} 1.0' in text
    assert 'tool="unknown"' in text
    assert "rm -rf" not in text


def test_every_tool_is_read_only_with_schemas_and_no_credential_field() -> None:
    server, _, _ = build_server(McpOptions())
    tools = {tool.name: tool for tool in asyncio.run(server.list_tools())}
    assert set(tools) == set(TOOLS)
    for tool in tools.values():
        assert tool.annotations is not None
        assert (tool.annotations.read_only_hint, tool.annotations.destructive_hint) == (True, False)
        assert tool.output_schema is not None
        text = json.dumps(tool.input_schema).lower()
        assert "password" not in text
        assert "username" not in text
    assert tools["run_show"].annotations.open_world_hint is True  # type: ignore[union-attr]
    assert tools["run_show"].input_schema["required"] == ["commands"]
    assert tools["status"].annotations.idempotent_hint is True  # type: ignore[union-attr]
