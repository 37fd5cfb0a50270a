"""``pyats-ro watch``: change events as the service publishes them, readable or as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from service.cli.common import add_bus_arguments, bus_address
from service.client.changes import ChangeFilter, ChangeWatch, WatchLostError, WatchRefusedError, changes_subject
from service.client.connect import BusClient, BusUnreachableError, connect_bus
from service.contract.codec import encode
from service.contract.messages import ChangeEvent
from service.transport.history import HistoryError, split_device

EXAMPLES = """examples:
  pyats-ro watch                                   # every change of your requester, as it happens
  pyats-ro watch --device r1 --command 'show ip bgp*'
  pyats-ro watch --group core --count 1 --for 300  # wait up to 5 minutes for one change in group core
  pyats-ro watch --nats-user alice --json | jq .device   # for scripts: one event per line"""

LONGEST_VALUE = 80
STYLES = {"+": "green", "-": "red", "~": "yellow"}


def add_parser(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        epilog=EXAMPLES,
        help="show change events live: what changed on a device since its previous result",
        description=(
            "Show the change events the service publishes when a result differs from the previous one "
            "(scheduled or asked for), as they happen. Events published while nothing watches are not shown "
            "here; look back with 'pyats-ro diff'. Exit status: 0 on Ctrl-C, --count or --for; 2 when NATS "
            "refuses the subscription; 3 when NATS cannot be reached."
        ),
    )
    watch.add_argument("--device", metavar="NAME[:PORT]", help="only this device (port 22 when left out)")
    watch.add_argument("--group", action="append", default=[], help="only devices in this inventory group; repeat")
    watch.add_argument(
        "--command", action="append", default=[], help="only this command, or a glob like 'show ip bgp*'; repeat"
    )
    watch.add_argument(
        "--requester",
        help="whose changes (default: --nats-user, else $USER); a NATS user may watch only its own",
    )
    watch.add_argument("--json", action="store_true", help="one JSON object per event and line, nothing else")
    watch.add_argument("--count", type=_positive_int, metavar="N", help="stop after N events")
    watch.add_argument("--for", dest="for_", type=_positive_float, metavar="SECONDS", help="stop after this long")
    add_bus_arguments(watch)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def requester_of(args: argparse.Namespace) -> str:
    return str(args.requester or args.nats_user or os.environ.get("USER") or "cli")


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        return asyncio.run(run_watch(args, err))
    except KeyboardInterrupt:
        err.print("stopped")
        return 0
    except BrokenPipeError:  # the reader went away (| head -1): done, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second failure at exit
        return 0


def _subject(args: argparse.Namespace) -> str:
    host, port = split_device(args.device) if args.device else (None, 22)
    return changes_subject(args.prefix, requester_of(args), host, port)


def _watching(args: argparse.Namespace, subject: str) -> str:
    parts = [f"watching the changes of requester {requester_of(args)} on {subject}"]
    if args.group:
        parts.append(f"groups: {', '.join(args.group)}")
    if args.command:
        parts.append(f"commands: {', '.join(args.command)}")
    return "; ".join(parts) + " (Ctrl-C to stop)"


async def run_watch(args: argparse.Namespace, err: Console) -> int:
    try:
        subject = _subject(args)
        client = await connect_bus(bus_address(args))
    except HistoryError as exc:
        _say(err, exc)
        return 2
    except BusUnreachableError as exc:
        _say(err, exc)
        return 3
    try:
        return await _watch(client, subject, args, err)
    finally:
        await client.close()


async def _watch(client: BusClient, subject: str, args: argparse.Namespace, err: Console) -> int:
    out = Console(highlight=False)
    shown = 0
    watch = ChangeWatch(client, subject, ChangeFilter(tuple(args.group), tuple(args.command)))
    try:
        async with watch:
            err.print(Text(_watching(args, subject)), soft_wrap=True)
            async with asyncio.timeout(args.for_):
                async for event in watch:
                    show(event, out, as_json=args.json)
                    shown += 1
                    if args.count is not None and shown >= args.count:
                        break
    except WatchRefusedError as exc:
        _say(err, exc)
        return 2
    except WatchLostError as exc:
        _say(err, exc)
        return 3
    except TimeoutError:
        pass  # --for ran out
    if watch.skipped:
        err.print(f"skipped {watch.skipped} message(s) on {subject} that were not change events")
    return 0


def _say(err: Console, problem: Exception) -> None:
    err.print(Text(f"pyats-ro watch: {problem}", style="red"), soft_wrap=True)


def show(event: ChangeEvent, out: Console, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(encode(event).decode() + "\n")
        sys.stdout.flush()  # a pipe into jq sees each event as it comes
        return
    for line in render(event):
        out.print(line, soft_wrap=True)  # one event line is one line, piped or not


def render(event: ChangeEvent) -> list[Text]:
    """A header, then one line per difference; values cut at ``LONGEST_VALUE`` characters."""
    lines = [header(event)]
    if event.kind == "text":
        lines += [_line("-", text) for text in event.lines_removed]
        lines += [_line("+", text) for text in event.lines_added]
    else:
        lines += [_line("~", f"{c.path}: {shorten(c.old)} → {shorten(c.new)}") for c in event.changed]
        lines += [_line("+", f"{a.path}: {shorten(a.value)}") for a in event.added]
        lines += [_line("-", f"{r.path}: {shorten(r.value)}") for r in event.removed]
    if event.truncated:
        lines.append(
            Text(
                "  truncated: the service kept only the first differences; see all of them with "
                f"pyats-ro diff --a {event.previous.request_id} --b {event.current.request_id}",
                style="bold",
            )
        )
    return lines


def header(event: ChangeEvent) -> Text:
    device = event.device if event.port == 22 else f"{event.device}:{event.port}"
    if event.name and event.name != event.device:
        device = f"{event.name} ({device})"  # the inventory name engineers know it by
    parts = [local_time(event.current.time), device, event.command]
    if event.schedule:
        parts.append(f"schedule {event.schedule}")
    parts.append(f"{event.previous.request_id} → {event.current.request_id}")
    return Text(" | ".join(parts), style="bold")


def _line(sign: str, text: str) -> Text:
    return Text(f"  {sign} {text}", style=STYLES[sign])


def local_time(stamp: str) -> str:
    """An ISO time (UTC) as local time; left as it is when it is not one."""
    with contextlib.suppress(ValueError):
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return stamp


def shorten(value: Any) -> str:
    """Text as it is, anything else as compact JSON; cut to ``LONGEST_VALUE`` characters."""
    text = value if isinstance(value, str) and value.strip() == value and value else json.dumps(value, default=str)
    if len(text) <= LONGEST_VALUE:
        return text
    return f"{text[: LONGEST_VALUE - 1]}… ({len(text)} characters)"
