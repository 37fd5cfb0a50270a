"""Every ``tools/call`` passes here: arguments a tool does not declare are refused, and the call
is counted and timed.

The SDK ignores arguments its input schema does not name; here they are refused, so an agent
that tries to pass a password, a hostname or any credential learns at once that it cannot.
The refusal names the unexpected arguments (shortened), never their values.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult, TextContent

from service.contract.errors import ErrorCode
from service.mcp.metrics import McpMetrics

ToolArguments = Callable[[], Awaitable[Mapping[str, frozenset[str]]]]


def unexpected(arguments: object, allowed: frozenset[str]) -> list[str]:
    """Argument names outside ``allowed``, shortened; everything when ``arguments`` is not a mapping."""
    if arguments is None:
        return []
    if not isinstance(arguments, Mapping):
        return ["(not an object)"]
    return sorted(str(name)[:40] for name in arguments if name not in allowed)


def is_error(result: HandlerResult) -> bool:
    if isinstance(result, CallToolResult):
        return bool(result.is_error)
    if isinstance(result, Mapping):
        return bool(result.get("isError") or result.get("is_error"))
    return False


class ToolCallGuard:
    def __init__(self, tool_arguments: ToolArguments, metrics: McpMetrics) -> None:
        self._tool_arguments = tool_arguments
        self._metrics = metrics

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = ctx.params or {}
        name = params.get("name")
        tool = self._metrics.label(name)
        started = time.monotonic()
        known = await self._tool_arguments()
        extra = unexpected(params.get("arguments"), known[tool]) if tool in known else []
        if extra:
            self._metrics.observe(tool, "refused", time.monotonic() - started)
            text = (
                f"{ErrorCode.INVALID_REQUEST}: {tool} takes no argument {', '.join(extra)}; devices are named "
                "from the inventory, never with addresses or credentials"
            )
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        status = "error"
        try:
            result = await call_next(ctx)
            status = "error" if is_error(result) else "ok"
            return result
        finally:
            self._metrics.observe(tool, status, time.monotonic() - started)
