"""The MCP server's own Prometheus registry: tool calls by tool and status, and their latency.

Labels are the tool's name (``unknown`` for any other) and a status word, never an argument.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

STATUSES = ("ok", "error", "refused")


class McpMetrics:
    def __init__(self, tools: tuple[str, ...]) -> None:
        self.tools = tools
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "pyats_mcp_tool_calls",
            "MCP tool calls by tool and status (ok, error: an isError result, refused: unknown arguments).",
            ["tool", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pyats_mcp_tool_call_seconds",
            "Wall time of MCP tool calls.",
            ["tool"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        for tool in tools:
            for status in STATUSES:
                self.calls.labels(tool, status)

    def label(self, tool: object) -> str:
        return tool if isinstance(tool, str) and tool in self.tools else "unknown"

    def observe(self, tool: str, status: str, seconds: float) -> None:
        self.calls.labels(tool, status).inc()
        self.latency.labels(tool).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
