"""The terminal side of ``pyats-ro history`` and ``pyats-ro diff``: arguments, tables, JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from rich.console import Console
from rich.table import Table
from rich.text import Text

from service.client.history import latest, per_command, query_results, result_at, result_of_request
from service.client.outputs import OutputRoute, resolve_outputs
from service.domain.diff import OutputDiff, diff_outputs
from service.transport.history import HistoryError, HistoryQuery, StoredResult, parse_time


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats-url", default=os.environ.get("PYATS_NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--prefix", default=os.environ.get("PYATS_SUBJECT_PREFIX", "pyats.v1"))
    parser.add_argument(
        "--stream", default=os.environ.get("PYATS_RESULTS_STREAM", "PYATS_RESULTS"), help="the results stream"
    )
    parser.add_argument(
        "--inbox-prefix",
        default=os.environ.get("PYATS_INBOX_PREFIX", "_INBOX"),
        help="reply inbox prefix; with the shipped nats-server config use _INBOX.<your user>",
    )
    parser.add_argument(
        "--nats-user", default=os.environ.get("PYATS_NATS_USER"), help="NATS user (password from PYATS_NATS_PASSWORD)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_history_parser(commands: Any, epilog: str | None = None) -> None:
    history = commands.add_parser(
        "history",
        epilog=epilog,
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
    add_connection_arguments(history)


def add_diff_parser(commands: Any, epilog: str | None = None) -> None:
    diff = commands.add_parser(
        "diff",
        epilog=epilog,
        help="compare two stored results of one command on one device",
        description=(
            "Compare two stored results: by time (--from 24h --to latest; a time picks the newest result "
            "stored at or before it) or by request id (--a REQ1 --b REQ2). Parsed data gives a structured "
            "diff, raw output a unified diff. Exit status: 0 same, 1 different, 2 error."
        ),
    )
    diff.add_argument("-d", "--device", help="HOST or HOST:PORT (needed with --from/--to)")
    diff.add_argument("-c", "--command", help="the command (needed with --from/--to)")
    diff.add_argument("--requester", help="only results asked for by this requester")
    diff.add_argument("--from", dest="from_", metavar="WHEN", help="'latest', ISO timestamp or relative (24h)")
    diff.add_argument("--to", metavar="WHEN", default=None, help="as --from; default latest")
    diff.add_argument("--a", dest="a", metavar="REQUEST_ID", help="the older request")
    diff.add_argument("--b", dest="b", metavar="REQUEST_ID", help="the newer request")
    diff.add_argument("--text", action="store_true", help="a text diff even when both sides were parsed")
    add_connection_arguments(diff)


async def _connect(args: argparse.Namespace) -> Client:
    async def quiet(_: Exception) -> None:
        return

    return await nats.connect(
        args.nats_url,
        connect_timeout=5,
        max_reconnect_attempts=2,
        error_cb=quiet,
        inbox_prefix=args.inbox_prefix,
        user=args.nats_user,
        password=os.environ.get("PYATS_NATS_PASSWORD") if args.nats_user else None,
    )


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
        client = await _connect(args)
    except HistoryError as exc:
        err.print(f"[red]pyats-ro history[/red]: {exc}")
        return 2
    except (OSError, TimeoutError, nats.errors.Error):
        err.print(f"[red]cannot reach NATS at {args.nats_url}[/red]")
        return 3
    try:
        records = await query_results(client, query, prefix=args.prefix, stream=args.stream)
        if args.latest:
            records = latest(records)
        if args.show_output or args.json:
            records = [await _with_outputs(client, record) for record in records]
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


async def _with_outputs(client: Client, record: StoredResult) -> StoredResult:
    """Large outputs live in the object store: ask the service for them, as their requester
    (or read the bucket when no replica answers); sha256 checked."""
    route = OutputRoute(record.subject.rpartition(".results.")[0], record.requester)
    resolved = await resolve_outputs(client, record.result, route)
    return record if resolved is record.result else dataclasses.replace(record, result=resolved)


def _label(record: StoredResult) -> str:
    return f"{record.request_id} @ {record.stored_at.astimezone().isoformat(timespec='seconds')}"


def compare(a: StoredResult, b: StoredResult, text: bool = False) -> OutputDiff:
    """The diff of the (single) command of two records."""
    old, new = a.result.commands[0], b.result.commands[0]
    return diff_outputs(old.parsed, old.output, new.parsed, new.output, _label(a), _label(b), text=text)


async def _pick(args: argparse.Namespace, client: Client) -> tuple[StoredResult, StoredResult]:
    common: dict[str, Any] = {"prefix": args.prefix, "stream": args.stream, "requester": args.requester}
    if args.a or args.b:
        if not (args.a and args.b):
            raise HistoryError("give both --a and --b")
        first = await result_of_request(client, args.a, device=args.device, command=args.command, **common)
        command = args.command or first.result.commands[0].command
        device = args.device or f"{first.result.hostname}:{first.result.port}"
        second = await result_of_request(client, args.b, device=device, command=command, **common)
        return first, second
    if not (args.device and args.command and args.from_):
        raise HistoryError("give --device, --command and --from (and --to, default latest), or --a and --b")
    older = await result_at(client, args.device, args.command, args.from_, **common)
    newer = await result_at(client, args.device, args.command, args.to or "latest", **common)
    if older is None or newer is None:
        raise HistoryError(f"no stored result of {args.command!r} on {args.device}")
    return older, newer


def _diff_json(a: StoredResult, b: StoredResult, diff: OutputDiff) -> dict[str, Any]:
    def side(record: StoredResult) -> dict[str, Any]:
        return {
            "stored_at": record.stored_at.isoformat(),
            "requester": record.requester,
            "request_id": record.request_id,
            "device": record.device,
            "hostname": record.result.hostname,
            "port": record.result.port,
            "command": record.result.commands[0].command,
        }

    return {"a": side(a), "b": side(b), **diff.as_dict()}


async def run_diff(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        if args.from_ and (args.a or args.b):
            raise HistoryError("give --from/--to or --a/--b, not both")
        client = await _connect(args)
    except HistoryError as exc:
        err.print(f"[red]pyats-ro diff[/red]: {exc}")
        return 2
    except (OSError, TimeoutError, nats.errors.Error):
        err.print(f"[red]cannot reach NATS at {args.nats_url}[/red]")
        return 3
    try:
        a, b = await _pick(args, client)
        a, b = await _with_outputs(client, a), await _with_outputs(client, b)
    except HistoryError as exc:
        err.print(f"[red]pyats-ro diff[/red]: {exc}")
        return 2
    finally:
        await client.close()
    diff = compare(a, b, text=args.text)
    if args.json:
        sys.stdout.write(json.dumps(_diff_json(a, b, diff), default=str) + "\n")
        return 1 if not diff.identical else 0
    out = Console()
    out.print(f"[bold]a[/bold] {a.result.hostname}:{a.result.port} | {a.result.commands[0].command} | {_label(a)}")
    out.print(f"[bold]b[/bold] {b.result.hostname}:{b.result.port} | {b.result.commands[0].command} | {_label(b)}")
    if diff.identical:
        out.print(f"no differences ({diff.kind})")
        return 0
    styles = {"added": "green", "removed": "red", "changed": "yellow"}
    for change in diff.changes:
        out.print(Text(str(change), style=styles[change.kind]))
    for line in diff.text:
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")
        out.print(Text(line, style=style))
    return 1


def history_main(args: argparse.Namespace) -> int:
    return asyncio.run(run_history(args))


def diff_main(args: argparse.Namespace) -> int:
    return asyncio.run(run_diff(args))
