"""``pyats-ro request``: build a request from options (or a file), show progress per device, then tables or JSON."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.cli.common import add_bus_arguments, bus_address
from service.client.connect import BusClient, BusUnreachableError, connect_bus
from service.client.execute import ServiceReplyError, StreamedResult, execute_streamed
from service.contract.messages import DeviceResult
from service.transport.subjects import sanitize_token

EXAMPLES = """examples:
  pyats-ro request -d 10.0.0.1 -c 'show version' --os iosxe
  pyats-ro request -d r1:2222 -d r2 -c 'show ip interface brief | include up' -f parsed
  pyats-ro request -d r1 -c 'show clock' --requester alice --nats-user alice --inbox-prefix _INBOX.alice
  pyats-ro request --file request.json --json"""


def add_parser(commands: Any) -> None:
    request = commands.add_parser("request", help="send a request and show results per device", epilog=EXAMPLES)
    request.add_argument("--file", help="a request as JSON (the wire format)")
    request.add_argument("-d", "--device", action="append", help="host or host:port; repeat for more devices")
    request.add_argument(
        "-c", "--command", action="append", help="a show command, e.g. 'show ip int brief | include up'; repeat"
    )
    request.add_argument("--os", default="iosxe", help="device OS: ios, iosxe, iosxr, nxos, asa")
    request.add_argument("-u", "--username", default=os.environ.get("USER", "admin"))
    request.add_argument(
        "--password-env", default="PYATS_DEVICE_PASSWORD", help="variable holding the device password (else prompted)"
    )
    request.add_argument("--enable-password-env", help="variable holding the enable password")
    request.add_argument("-f", "--format", choices=["raw", "parsed", "both"], default="raw")
    request.add_argument("--timeout", type=float, help="per-command timeout in seconds")
    request.add_argument("--requester", default=os.environ.get("USER", "cli"), help="last subject token: who is asking")
    add_bus_arguments(request)
    request.add_argument("--wait", type=float, default=120.0, help="seconds to wait between two replies")
    request.add_argument("--json", action="store_true", help="print JSON instead of tables")
    request.add_argument("--show-output", action="store_true", help="print each command's output under the table")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_request(args, build_request(args)))


def parse_command(text: str) -> dict[str, Any]:
    """'show run | section bgp' -> command with pipe_option/pipe_value, as an engineer types it."""
    command, sep, pipe = text.partition("|")
    entry: dict[str, Any] = {"command": command.strip()}
    if sep:
        option, _, value = pipe.strip().partition(" ")
        entry["pipe_option"] = option.strip()
        entry["pipe_value"] = value.strip()
    return entry


def _device_entry(spec: str, args: argparse.Namespace, password: str, enable: str | None) -> dict[str, Any]:
    host, port = spec, 22
    if spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    elif spec.startswith("[") and "]:" in spec:
        host, _, port_text = spec[1:].partition("]:")
        port = int(port_text)
    entry: dict[str, Any] = {
        "hostname": host,
        "port": port,
        "os": args.os,
        "username": args.username,
        "password": password,
    }
    if enable:
        entry["enable_password"] = enable
    return entry


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        request: dict[str, Any] = json.loads(Path(args.file).read_text())
        return request
    if not args.device or not args.command:
        raise SystemExit("pyats-ro request: give --device and --command, or --file request.json")
    password = os.environ.get(args.password_env) or getpass.getpass("Device password: ")
    enable = os.environ.get(args.enable_password_env) if args.enable_password_env else None
    request = {
        "devices": [_device_entry(d, args, password, enable) for d in args.device],
        "commands": [parse_command(c) for c in args.command],
        "output_format": args.format,
    }
    if args.timeout:
        request["timeout"] = args.timeout
    return request


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

    try:
        client = await connect_bus(bus_address(args))
    except BusUnreachableError as exc:
        console.print(f"[red]{exc}[/red]: is the service running (make run)?")
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


async def _with_progress(
    client: BusClient, subject: str, request: dict[str, Any], args: argparse.Namespace, console: Console
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
