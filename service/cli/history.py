"""``pyats-ro history``: past results kept in JetStream, as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from service.cli.common import add_bus_arguments, bus_address
from service.client.connect import BusClient, BusUnreachableError, connect_bus
from service.client.history import latest, per_command, query_results
from service.client.outputs import OutputRoute, resolve_outputs
from service.transport.history import HistoryError, HistoryQuery, StoredResult, parse_time

EXAMPLES = """examples:
  pyats-ro history -d 10.0.0.1 -c 'show version' --since 24h
  pyats-ro history --requester alice --latest --json"""


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_history(args))


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """The bus options, the results stream and ``--json``: what history and diff share."""
    add_bus_arguments(parser)
    parser.add_argument(
        "--stream", default=os.environ.get("PYATS_RESULTS_STREAM", "PYATS_RESULTS"), help="the results stream"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_parser(commands: Any) -> None:
    history = commands.add_parser(
        "history",
        epilog=EXAMPLES,
        help="list past results kept in JetStream",
        description="Past results, filtered by device, command, requester, request id and time.",
    )
    history.add_argument("-d", "--device", help="HOST or HOST:PORT (port 22 when left out)")
    history.add_argument("-c", "--command", help="only this command, e.g. 'show version'")
    history.add_argument(
        "--requester",
        help="who asked (the last token of the execute subject); replayed by the service, as that NATS user may",
    )
    history.add_argument("--request-id", help="one request")
    history.add_argument("--since", help="ISO timestamp or relative: 30m, 24h, 7d")
    history.add_argument("--until", help="ISO timestamp or relative: 30m, 24h, 7d")
    history.add_argument("--latest", action="store_true", help="only the newest result per device and command")
    history.add_argument("--show-output", action="store_true", help="print each command's output under the table")
    add_store_arguments(history)


def _local(record: StoredResult) -> str:
    return record.stored_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def history_table(records: list[StoredResult]) -> Table:
    table = Table(title=f"Stored results ({len(records)})")
    for column in ("stored", "requester", "request id", "device", "os", "command", "status", "parse", "lines"):
        table.add_column(column)
    for record in records:
        result = record.result
        device = f"{result.hostname}:{result.port}"
        if not result.commands:
            table.add_row(
                _local(record),
                record.requester,
                record.request_id,
                device,
                result.os,
                "-",
                f"[red]{result.error_code or 'failed'}[/red]",
                "-",
                "0",
            )
        for command in result.commands:
            status = "[green]ok[/green]" if command.success else f"[red]{command.error_code or 'failed'}[/red]"
            table.add_row(
                _local(record),
                record.requester,
                record.request_id,
                device,
                result.os,
                command.command,
                status,
                command.parse_status or "-",
                str(len(command.output.splitlines()) if command.output else 0),
            )
    return table


def _times(args: argparse.Namespace, *names: str) -> list[Any]:
    return [parse_time(getattr(args, name)) if getattr(args, name) else None for name in names]


async def run_history(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        since, until = _times(args, "since", "until")
        query = HistoryQuery(
            requester=args.requester,
            request_id=args.request_id,
            device=args.device,
            command=args.command,
            since=since,
            until=until,
        )
        client = await connect_bus(bus_address(args))
    except HistoryError as exc:
        err.print(f"[red]pyats-ro history[/red]: {exc}")
        return 2
    except BusUnreachableError as exc:
        err.print(f"[red]{exc}[/red]")
        return 3
    try:
        records = await query_results(client, query, prefix=args.prefix, stream=args.stream)
        if args.latest:
            records = latest(records)
        if args.show_output or args.json:
            records = [await with_outputs(client, record) for record in records]
    except HistoryError as exc:
        err.print(f"[red]pyats-ro history[/red]: {exc}")
        return 2
    finally:
        await client.close()
    if args.json:
        sys.stdout.write(json.dumps([r.as_dict() for r in records]) + "\n")
        return 0
    out = Console()
    out.print(history_table(records))
    if args.show_output:
        for record in per_command(records):
            for command in record.result.commands:
                out.rule(f"{_local(record)} {record.result.hostname} | {command.command} ({record.request_id})")
                out.print(command.output or "", markup=False, highlight=False)
    return 0


async def with_outputs(client: BusClient, record: StoredResult) -> StoredResult:
    """Large outputs live in the object store: ask the service for them, as their requester
    (or read the bucket when no replica answers); sha256 checked."""
    route = OutputRoute(record.subject.rpartition(".results.")[0], record.requester)
    resolved = await resolve_outputs(client, record.result, route)
    return record if resolved is record.result else dataclasses.replace(record, result=resolved)
