"""``pyats-ro schedule``: add, list, show, pause, resume and remove your schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from service.cli.common import add_bus_arguments, bus_address
from service.client.connect import BusUnreachableError, connect_bus
from service.client.execute import ServiceReplyError
from service.client.schedules import manage_schedules
from service.contract.messages import CommandSpec, DeviceSpec, Schedule, ScheduleRequest, ScheduleState

EXAMPLES = """examples:
  pyats-ro schedule add bgp-watch --group core -c 'show ip bgp summary' --every 5m --jitter 20
  pyats-ro schedule add nightly --device 'edge-*' -c 'show version' -c 'show inventory' --cron '0 2 * * *'
  pyats-ro schedule list
  pyats-ro schedule pause bgp-watch
  pyats-ro schedule rm bgp-watch"""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class UsageError(ValueError):
    """The command line names no valid schedule."""


def seconds(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``1d`` as seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"{text!r} is not a duration (e.g. 60, 90s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_parser(commands: Any) -> None:
    schedule = commands.add_parser(
        "schedule",
        epilog=EXAMPLES,
        help="manage your schedules (polling on the bus)",
        description=(
            "Schedules run show commands on inventory devices at an interval or on a cron expression, "
            "once per tick across replicas; results land in history and changes become change events "
            "(pyats-ro watch)."
        ),
    )
    ops = schedule.add_subparsers(dest="op", required=True, metavar="{add,list,show,pause,resume,rm}")
    add = ops.add_parser("add", help="add (or with --replace, replace) a schedule", epilog=EXAMPLES)
    add.add_argument("name", help="1-32 characters: a-z, 0-9, '_' and '-'")
    add.add_argument("-d", "--device", action="append", default=[], help="inventory name or glob (repeatable)")
    add.add_argument("-g", "--group", action="append", default=[], help="inventory group (repeatable)")
    add.add_argument("-c", "--command", action="append", default=[], help="a show command (repeatable)")
    add.add_argument("--every", help="interval: 60, 90s, 5m, 1h (ticks at multiples of it since the epoch)")
    add.add_argument("--cron", help="5-field cron expression in UTC, e.g. '*/5 * * * *'")
    add.add_argument("--jitter", default="0", help="up to this long a delay per tick (e.g. 10s)")
    add.add_argument("--format", choices=["raw", "parsed", "both"], default="parsed", help="output format")
    add.add_argument("--timeout", type=float, help="per-command timeout in seconds")
    add.add_argument("--paused", action="store_true", help="store it paused")
    add.add_argument("--replace", action="store_true", help="replace a schedule of the same name")
    others = [ops.add_parser("list", help="your schedules", epilog=EXAMPLES)]
    for op, text in (
        ("show", "one schedule"),
        ("pause", "stop its ticks"),
        ("resume", "start its ticks again"),
        ("rm", "remove a schedule"),
    ):
        others.append(ops.add_parser(op, help=text, epilog=EXAMPLES))
        others[-1].add_argument("name")
    for parser in (add, *others):
        parser.add_argument(
            "--requester", default=os.environ.get("USER", "cli"), help="whose schedules (subject token)"
        )
        parser.add_argument("--json", action="store_true", help="print the service's JSON reply")
        add_bus_arguments(parser)


def schedule_of(args: argparse.Namespace) -> Schedule:
    if not args.command:
        raise UsageError("give at least one --command")
    if not (args.device or args.group):
        raise UsageError("give at least one --device or --group")
    if (args.every is None) == (args.cron is None):
        raise UsageError("give exactly one of --every and --cron")
    return Schedule(
        name=args.name,
        devices=[DeviceSpec(name=name) for name in args.device] + [DeviceSpec(group=group) for group in args.group],
        commands=[CommandSpec(command=command) for command in args.command],
        output_format=args.format,
        timeout=args.timeout,
        interval=seconds(args.every) if args.every is not None else None,
        cron=args.cron,
        jitter=seconds(args.jitter),
        paused=args.paused,
    )


def request_of(args: argparse.Namespace) -> ScheduleRequest:
    if args.op == "add":
        return ScheduleRequest(op="add", schedule=schedule_of(args), replace=args.replace)
    return ScheduleRequest(op=args.op, name=getattr(args, "name", None))


def cadence_text(schedule: Schedule) -> str:
    text = f"every {schedule.interval:g}s" if schedule.interval is not None else f"cron {schedule.cron}"
    return f"{text} (+{schedule.jitter:g}s jitter)" if schedule.jitter else text


def devices_text(schedule: Schedule) -> str:
    return ", ".join(f"group {d.group}" if d.group else str(d.name) for d in schedule.devices)


def schedules_table(states: list[ScheduleState], title: str) -> Table:
    table = Table(title=title)
    for column in ("name", "devices", "commands", "when", "format", "state", "next tick", "last tick"):
        table.add_column(column)
    for state in states:
        s = state.schedule
        table.add_row(
            s.name,
            devices_text(s),
            "\n".join(c.command for c in s.commands),
            cadence_text(s),
            s.output_format,
            "[yellow]paused[/yellow]" if s.paused else "[green]running[/green]",
            state.next_tick or "-",
            state.last_tick or "-",
        )
    return table


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_schedule(args))


async def run_schedule(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        request = request_of(args)
        client = await connect_bus(bus_address(args))
    except UsageError as exc:
        err.print(f"[red]pyats-ro schedule {args.op}[/red]: {exc}")
        return 2
    except BusUnreachableError as exc:
        err.print(f"[red]{exc}[/red]")
        return 3
    try:
        reply = await manage_schedules(client, args.prefix, args.requester, request)
    except ServiceReplyError as exc:
        error = exc.reply.error
        if args.json:
            sys.stdout.write(msgspec.json.encode(exc.reply).decode() + "\n")
        err.print(f"[red]pyats-ro schedule {args.op}[/red]: {error.code}: {error.message}")
        return 2
    except TimeoutError:
        err.print("[red]no replica answered[/red]: is the service running with schedules on (JetStream)?")
        return 3
    finally:
        await client.close()
    if args.json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(reply)) + "\n")
        return 0
    titles = {"add": "Added", "list": "Your schedules", "show": "Schedule", "pause": "Paused", "resume": "Resumed"}
    Console().print(schedules_table(reply.schedules, titles.get(args.op, "Removed")))
    return 0
