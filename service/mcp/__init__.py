"""``pyats-ro mcp``: an MCP server for AI agents, a thin client of the bus.

It never touches a device: every tool is a request to the service over NATS (``service.client``),
as its own requester, so the service's identity, rate limits, permissions and stored results
apply to agents as to any client. Devices are named from the inventory only; no password or
address ever passes through an agent.
"""
