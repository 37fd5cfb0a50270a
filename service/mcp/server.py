"""The MCP server: the tools with their annotations, the guard, and the two transports (stdio,
streamable HTTP with ``/healthz`` and ``/metrics`` beside ``/mcp``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service import __version__
from service.mcp.guard import ToolCallGuard
from service.mcp.metrics import McpMetrics
from service.mcp.options import McpOptions
from service.mcp.tools import BusLink, BusTools

Transport = Literal["stdio", "http"]

INSTRUCTIONS = (
    "Read-only Cisco show commands through the pyats-ro service. Devices are named from the "
    "inventory (list_devices), by name, glob or group; never pass addresses or credentials. "
    "Only show commands are accepted. history and diff see this server's own earlier requests."
)


def _annotations(title: str, *, idempotent: bool, open_world: bool) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


# name -> (title, idempotent, open world); run_show reads live devices whose state changes
TOOLS: dict[str, tuple[str, bool, bool]] = {
    "run_show": ("Run show commands", False, True),
    "list_devices": ("List inventory devices", True, False),
    "history": ("Stored results", True, False),
    "diff": ("Compare two stored results", True, False),
    "status": ("Service status", True, False),
}


def build_server(options: McpOptions) -> tuple[MCPServer[Any], McpMetrics, BusLink]:
    link = BusLink(options)
    tools = BusTools(options, link)
    metrics = McpMetrics(tuple(TOOLS))
    arguments: dict[str, frozenset[str]] = {}

    async def tool_arguments() -> Mapping[str, frozenset[str]]:
        if not arguments:
            for tool in await server.list_tools():
                arguments[tool.name] = frozenset(tool.input_schema.get("properties", {}))
        return arguments

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            await link.close()

    server: MCPServer[Any] = MCPServer(
        name="pyats-ro",
        title="pyats-ro: read-only Cisco show commands",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level="WARNING",
        middleware=[ToolCallGuard(tool_arguments, metrics)],
    )
    for name, (title, idempotent, open_world) in TOOLS.items():
        server.add_tool(
            getattr(tools, name),
            name=name,
            title=title,
            annotations=_annotations(title, idempotent=idempotent, open_world=open_world),
            structured_output=True,
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "nats_connected": link.connected, "requester": options.requester})

    async def metrics_route(_: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # the SDK's custom_route decorator is untyped: called, not used as a decorator
    server.custom_route("/healthz", methods=["GET"])(healthz)
    server.custom_route("/metrics", methods=["GET"])(metrics_route)
    return server, metrics, link


def serve(options: McpOptions, transport: Transport) -> None:
    server, _, _ = build_server(options)
    if transport == "stdio":
        anyio.run(server.run_stdio_async)
    else:
        anyio.run(lambda: server.run_streamable_http_async(host=options.host, port=options.port))
