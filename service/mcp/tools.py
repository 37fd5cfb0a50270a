"""The tools: each one request to the service over the bus, as the MCP server's own requester.

A refusal by the service (bad command, rate limit, unknown device) raises ``ToolError`` with
the service's error code and message, which the SDK answers as an ``isError`` result: the
agent reads why and may correct itself; the server goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

import msgspec
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from service.client.connect import BusClient, BusUnreachableError, connect_bus
from service.client.execute import ServiceReplyError, execute_streamed
from service.client.history import latest as newest_each
from service.client.history import query_results, result_at
from service.client.outputs import OutputFetchError, OutputMismatchError, OutputRoute, resolve_outputs
from service.client.status import collect_status
from service.contract.errors import ErrorCode
from service.contract.messages import DeviceResult
from service.domain.diff import diff_outputs
from service.mcp.catalog import Catalog, CatalogError, load_catalog
from service.mcp.models import (
    DeviceList,
    DeviceOutcome,
    DiffResult,
    DiffSide,
    HistoryRecord,
    HistoryResults,
    InventoryDevice,
    ShowCommand,
    ShowResults,
    StatusResult,
    Summary,
)
from service.mcp.options import McpOptions
from service.transport.history import HistoryError, HistoryQuery, StoredResult, parse_time

DeviceNames = Annotated[
    list[str], Field(description="Inventory device names or globs (core-*); see list_devices. No addresses.")
]
GroupNames = Annotated[list[str], Field(description="Inventory group names; see list_devices.")]
Commands = Annotated[list[ShowCommand], Field(min_length=1, description="Show commands, run in order on each device.")]
OutputFormat = Annotated[Literal["raw", "parsed", "both"], Field(description="raw text, Genie-parsed data, or both.")]


def refusal(code: str, message: str) -> ToolError:
    return ToolError(f"{code}: {message}")


def _outcome(result: DeviceResult) -> DeviceOutcome:
    return DeviceOutcome.model_validate(msgspec.to_builtins(result))


class BusLink:
    """One NATS connection for the server's life, opened at the first call and again after it closed."""

    def __init__(self, options: McpOptions) -> None:
        self._options = options
        self._client: BusClient | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def client(self) -> BusClient:
        async with self._lock:
            if self._client is None or self._client.is_closed:
                try:
                    self._client = await connect_bus(self._options.address)
                except BusUnreachableError:
                    # the URL may carry a user and password: not for the agent
                    raise refusal(ErrorCode.SERVICE_UNAVAILABLE, "the MCP server cannot reach NATS") from None
            return self._client

    async def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.close()
        self._client = None


class BusTools:
    def __init__(self, options: McpOptions, link: BusLink) -> None:
        self.options = options
        self.link = link

    def _catalog(self) -> Catalog | None:
        try:
            return load_catalog(self.options.inventory_file)
        except CatalogError as exc:
            raise refusal(ErrorCode.CONFIG_INVALID, str(exc)) from None

    async def run_show(
        self,
        commands: Commands,
        ctx: Context,
        devices: DeviceNames | None = None,
        groups: GroupNames | None = None,
        output_format: OutputFormat = "raw",
    ) -> ShowResults:
        """Run read-only show commands on inventory devices (by name, glob or group) through the
        pyats-ro service; one progress notification per finished device. The service allows
        show commands only."""
        names, group_names = devices or [], groups or []
        if not names and not group_names:
            raise refusal(ErrorCode.INVALID_REQUEST, "name at least one inventory device or group (see list_devices)")
        entries = [{"name": name} for name in names] + [{"group": group} for group in group_names]
        request: dict[str, Any] = {
            "devices": entries,
            "commands": [command.model_dump(exclude_none=True) for command in commands],
            "output_format": output_format,
        }
        catalog = self._catalog()
        total = catalog.count(names, group_names) if catalog is not None else None
        done = 0

        async def finished(result: DeviceResult) -> None:
            nonlocal done
            done += 1
            await ctx.report_progress(
                done, total, f"{result.hostname}: {'ok' if result.success else result.error_code}"
            )

        client = await self.link.client()
        try:
            outcome = await execute_streamed(
                client, self.options.execute_subject, request, self.options.request_timeout, on_result=finished
            )
        except ServiceReplyError as exc:
            raise refusal(exc.reply.error.code, exc.reply.error.message) from None
        except TimeoutError:
            raise refusal(
                ErrorCode.REQUEST_TIMEOUT, f"no message from the service within {self.options.request_timeout:g}s"
            ) from None
        except (OutputFetchError, OutputMismatchError) as exc:
            raise refusal(ErrorCode.OUTPUT_NOT_FOUND, str(exc)) from None
        summary = outcome.summary
        if summary is None and not outcome.results:  # the bare end marker: no replica listens
            raise refusal(ErrorCode.SERVICE_UNAVAILABLE, "no pyats-ro replica answered")
        return ShowResults(
            requester=self.options.requester,
            request_id=summary.request_id if summary else (outcome.results[0].request_id if outcome.results else None),
            summary=(
                Summary(
                    request_id=summary.request_id,
                    total_devices=summary.total_devices,
                    successful_devices=summary.successful_devices,
                    failed_devices=summary.failed_devices,
                    duration_s=summary.duration_s,
                    status=summary.status,  # type: ignore[arg-type]
                )
                if summary
                else None
            ),
            results=[_outcome(result) for result in outcome.results],
        )

    async def list_devices(self) -> DeviceList:
        """The inventory's device names, groups and OS (never addresses or credentials): what
        run_show may name."""
        catalog = self._catalog()
        if catalog is None:
            return DeviceList(inventory=False, devices=[], groups=[])
        return DeviceList(
            inventory=True,
            devices=[InventoryDevice.model_validate(d.public()) for _, d in sorted(catalog.devices.items())],
            groups=catalog.groups,
        )

    def _device(self, device: str | None) -> str | None:
        """An inventory name as the HOST[:PORT] history keys results by; anything else as given."""
        if device is None:
            return None
        catalog = self._catalog()
        known = catalog.devices.get(device) if catalog is not None else None
        return known.address or device if known is not None else device

    async def _with_outputs(self, client: BusClient, record: StoredResult) -> StoredResult:
        route = OutputRoute(record.subject.rpartition(".results.")[0], record.requester)
        resolved = await resolve_outputs(client, record.result, route)
        return record if resolved is record.result else dataclasses.replace(record, result=resolved)

    async def history(
        self,
        device: Annotated[str | None, Field(description="Inventory name, or HOST[:PORT].")] = None,
        command: Annotated[str | None, Field(description="Only this command (case and spaces ignored).")] = None,
        since: Annotated[str | None, Field(description="ISO time or relative (24h, 30m, 7d).")] = None,
        until: Annotated[str | None, Field(description="ISO time or relative.")] = None,
        latest: Annotated[bool, Field(description="Only the newest result per device and command.")] = False,
        limit: Annotated[int, Field(ge=1, le=500, description="At most this many records, the newest.")] = 50,
    ) -> HistoryResults:
        """Stored results of this MCP server's earlier requests, oldest first, replayed by the service."""
        try:
            query = HistoryQuery(
                requester=self.options.requester,
                device=self._device(device),
                command=command,
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
            )
            client = await self.link.client()
            records = await query_results(client, query, prefix=self.options.prefix, stream=self.options.stream)
        except HistoryError as exc:
            raise refusal(ErrorCode.INVALID_REQUEST, str(exc)) from None
        if latest:
            records = newest_each(records)
        kept = records[-limit:]
        kept = [await self._with_outputs(client, record) for record in kept]
        return HistoryResults(
            requester=self.options.requester,
            records=[
                HistoryRecord(
                    stored_at=r.stored_at.isoformat(),
                    request_id=r.request_id,
                    device=r.device,
                    result=_outcome(r.result),
                )
                for r in kept
            ],
            more=len(records) - len(kept),
        )

    async def diff(
        self,
        device: Annotated[str, Field(description="Inventory name, or HOST[:PORT].")],
        command: Annotated[str, Field(description="The show command.")],
        older: Annotated[
            str,
            Field(
                description="The first side ('from'): 'latest', an ISO time or relative (24h); the newest "
                "result stored at or before it."
            ),
        ] = "24h",
        newer: Annotated[str, Field(description="The second side ('to'), as older; default latest.")] = "latest",
    ) -> DiffResult:
        """Compare two stored results of one command on one device (this server's requests):
        a structured diff of parsed data, else a unified text diff."""
        address = self._device(device) or device
        try:
            client = await self.link.client()
            common: dict[str, Any] = {
                "requester": self.options.requester,
                "prefix": self.options.prefix,
                "stream": self.options.stream,
            }
            first = await result_at(client, address, command, older, **common)
            second = await result_at(client, address, command, newer, **common)
            if first is None or second is None:
                raise HistoryError(f"no stored result of {command!r} on {device}")
            first, second = await self._with_outputs(client, first), await self._with_outputs(client, second)
        except HistoryError as exc:
            raise refusal(ErrorCode.INVALID_REQUEST, str(exc)) from None
        old, new = first.command(command), second.command(command)
        if old is None or new is None:
            raise refusal(ErrorCode.INVALID_REQUEST, f"{command!r} is missing from one of the two results")
        found = diff_outputs(old.parsed, old.output, new.parsed, new.output, first.request_id, second.request_id)

        def side(record: StoredResult, line: str) -> DiffSide:
            return DiffSide(
                stored_at=record.stored_at.isoformat(),
                request_id=record.request_id,
                hostname=record.result.hostname,
                port=record.result.port,
                command=line,
            )

        return DiffResult.model_validate(
            {"a": side(first, old.command), "b": side(second, new.command), **found.as_dict()}
        )

    async def status(self) -> StatusResult:
        """Every pyats-ro replica (version, uptime, requests, errors, latency) and its device workers."""
        try:
            rows = await collect_status(self.options.address, self.options.service_name, 1.0)
        except BusUnreachableError:
            raise refusal(ErrorCode.SERVICE_UNAVAILABLE, "the MCP server cannot reach NATS") from None
        return StatusResult.model_validate({"replicas": rows})
