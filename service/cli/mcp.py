"""``pyats-ro mcp``: the MCP server for AI agents, over stdio or streamable HTTP."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from typing import Any

from service.cli.common import load_settings_and_logging

EXAMPLES = """examples:
  pyats-ro mcp                               # stdio, for an MCP host that starts it (Claude Desktop, VS Code)
  PYATS_MCP_REQUESTER=agents PYATS_INVENTORY_FILE=testbed.yaml pyats-ro mcp --transport stdio
  pyats-ro mcp --transport http --port 8765  # streamable HTTP at http://127.0.0.1:8765/mcp (+ /healthz, /metrics)"""


def add_parser(commands: Any) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="an MCP server for AI agents: show commands on inventory devices through the service",
        description=(
            "An MCP server (tools run_show, list_devices, history, diff, status) that asks the service over "
            "NATS as its own requester (PYATS_MCP_*); it never touches a device. Logs go to stderr."
        ),
        epilog=EXAMPLES,
    )
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="stdio (default) or http")
    mcp.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    mcp.add_argument("--host", default=None, help="HTTP bind address (default PYATS_MCP_HOST)")
    mcp.add_argument("--port", type=int, default=None, help="HTTP port (default PYATS_MCP_PORT)")


def run(args: argparse.Namespace) -> int:
    from loguru import logger

    from service.mcp.options import McpOptions
    from service.mcp.server import serve

    settings = load_settings_and_logging(args.env_file)
    if settings is None:
        return 2
    options = McpOptions.of(settings)
    if args.host is not None:
        options = dataclasses.replace(options, host=args.host)
    if args.port is not None:
        options = dataclasses.replace(options, port=args.port)
    where = "stdio" if args.transport == "stdio" else f"http://{options.host}:{options.port}/mcp"
    logger.info("mcp server on {} asking as {} on {}", where, options.requester, options.execute_subject)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C on a terminal: a normal stop
        serve(options, args.transport)
    return 0
