"""The terminal side of ``pyats-ro request``: progress per device, then tables or JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import msgspec
import nats
import nats.errors
from nats.aio.client import Client
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.client.execute import ServiceReplyError, StreamedResult, execute_streamed
from service.contract.messages import DeviceResult
from service.transport.subjects import sanitize_token


def results_table(results: list[DeviceResult]) -> Table:
    table = Table(title="Results per device", show_lines=False)
    for column in ("device", "os", "status", "commands ok", "time (s)", "error"):
        table.add_column(column)
    for result in results:
        ok = sum(1 for c in result.commands if c.success)
        status = "[green]ok[/green]" if result.success else f"[red]{result.error_code or 'failed'}[/red]"
        table.add_row(
            f"{result.hostname}:{result.port}",
            result.os,
            status,
            f"{ok}/{len(result.commands)}",
            f"{result.duration_s:.2f}",
            result.error or "",
        )
    return table


def commands_table(results: list[DeviceResult]) -> Table:
    table = Table(title="Results per command")
    for column in ("device", "command", "status", "parse", "lines", "error"):
        table.add_column(column)
    for result in results:
        for command in result.commands:
            lines = len(command.output.splitlines()) if command.output else 0
            table.add_row(
                f"{result.hostname}:{result.port}",
                command.command,
                "ok" if command.success else (command.error_code or "failed"),
                command.parse_status or "-",
                str(lines),
                command.error or command.parse_error or "",
            )
    return table


async def run_request(args: argparse.Namespace, request: dict[str, Any]) -> int:
    console = Console(stderr=True)
    out = Console()
    subject = f"{args.prefix}.execute.{sanitize_token(args.requester)}"
    client = await _connect(args)
    if client is None:
        console.print(f"[red]cannot reach NATS at {args.nats_url}[/red]: is the service running (make run)?")
        return 3
    try:
        outcome = await _with_progress(client, subject, request, args, console)
    except ServiceReplyError as exc:
        if args.json:
            out.print_json(msgspec.json.encode(exc.reply).decode())
        else:
            console.print(f"[red]request refused: {exc.reply.error.code}[/red]: {exc.reply.error.message}")
        return 2
    except TimeoutError:
        console.print(f"[red]no reply within {args.wait:g}s[/red]: is the service running on {args.nats_url}?")
        return 3
    finally:
        await client.close()
    if args.json:
        payload = {"summary": outcome.summary, "results": outcome.results}
        sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    else:
        _print_outcome(outcome, out, show_output=args.show_output)
    failed = [r for r in outcome.results if not r.success]
    return 1 if failed else 0


async def _connect(args: argparse.Namespace) -> Client | None:
    """A client to the bus, or None when NATS cannot be reached."""

    async def quiet(_: Exception) -> None:  # nats-py would print a traceback per failed attempt
        return

    try:
        return await nats.connect(
            args.nats_url,
            connect_timeout=5,
            max_reconnect_attempts=2,
            error_cb=quiet,
            inbox_prefix=getattr(args, "inbox_prefix", "_INBOX"),
            user=getattr(args, "nats_user", None),
            password=os.environ.get("PYATS_NATS_PASSWORD") if getattr(args, "nats_user", None) else None,
        )
    except (OSError, TimeoutError, nats.errors.Error):
        return None


async def _with_progress(
    client: Client, subject: str, request: dict[str, Any], args: argparse.Namespace, console: Console
) -> StreamedResult:
    """The streamed request, with a progress bar and one line per device as each finishes."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=args.json,
    ) as progress:
        task = progress.add_task("devices", total=len(request.get("devices", [])))

        async def on_result(result: DeviceResult) -> None:
            mark = "[green]ok[/green]" if result.success else f"[red]{result.error_code}[/red]"
            progress.console.print(f"  {result.hostname}:{result.port} {mark} ({result.duration_s:.2f}s)")
            progress.advance(task)

        return await execute_streamed(client, subject, request, args.wait, on_result)


def _print_outcome(outcome: StreamedResult, out: Console, *, show_output: bool) -> None:
    out.print(results_table(outcome.results))
    if any(result.commands for result in outcome.results):
        out.print(commands_table(outcome.results))
    if show_output:
        for result in outcome.results:
            for command in result.commands:
                out.rule(f"{result.hostname} | {command.command}")
                out.print(command.output or "", markup=False, highlight=False)
    if outcome.summary is not None:
        s = outcome.summary
        out.print(f"request {s.request_id}: {s.successful_devices}/{s.total_devices} devices ok in {s.duration_s:.2f}s")
