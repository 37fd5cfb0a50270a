"""``pyats-ro diff``: two stored results of one command on one device, compared."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from service.cli.common import bus_address
from service.cli.history import add_store_arguments, with_outputs
from service.client.connect import BusClient, BusUnreachableError, connect_bus
from service.client.history import result_at, result_of_request
from service.domain.diff import OutputDiff, diff_outputs
from service.transport.history import HistoryError, StoredResult

EXAMPLES = """examples:
  pyats-ro diff -d 10.0.0.1 -c 'show ip route' --from 24h --to latest
  pyats-ro diff --a REQUEST_ID_1 --b REQUEST_ID_2 --text"""


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_diff(args))


def add_parser(commands: Any) -> None:
    diff = commands.add_parser(
        "diff",
        epilog=EXAMPLES,
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
    add_store_arguments(diff)


def _label(record: StoredResult) -> str:
    return f"{record.request_id} @ {record.stored_at.astimezone().isoformat(timespec='seconds')}"


def compare(a: StoredResult, b: StoredResult, text: bool = False) -> OutputDiff:
    """The diff of the (single) command of two records."""
    old, new = a.result.commands[0], b.result.commands[0]
    return diff_outputs(old.parsed, old.output, new.parsed, new.output, _label(a), _label(b), text=text)


async def _pick(args: argparse.Namespace, client: BusClient) -> tuple[StoredResult, StoredResult]:
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
        client = await connect_bus(bus_address(args))
    except HistoryError as exc:
        err.print(f"[red]pyats-ro diff[/red]: {exc}")
        return 2
    except BusUnreachableError as exc:
        err.print(f"[red]{exc}[/red]")
        return 3
    try:
        a, b = await _pick(args, client)
        a, b = await with_outputs(client, a), await with_outputs(client, b)
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
