"""``pyats-ro status``: every replica's $SRV.INFO and $SRV.STATS as one table, then its device workers."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from service.cli.common import add_bus_arguments, bus_address, fail
from service.client.connect import BusUnreachableError
from service.client.status import collect_status

EXAMPLES = """examples:
  pyats-ro status                            # replicas, then their device workers
  pyats-ro status --json --wait 2"""


def add_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="every replica's version, uptime, requests, errors and latency", epilog=EXAMPLES
    )
    add_bus_arguments(status, requester_side=False)
    status.add_argument("--service", default="pyats-ro", help="nats.micro service name")
    status.add_argument("--wait", type=float, default=1.0, help="seconds to collect replies")
    status.add_argument("--json", action="store_true")


def _worker_table(rows: list[dict[str, Any]]) -> Table | None:
    """Every device worker any replica sends to, once (replicas of one group share them)."""
    workers: dict[str, dict[str, Any]] = {}
    for row in rows:
        for worker in row.get("workers", []):
            workers.setdefault(worker["id"], worker)
    if not workers:
        return None
    table = Table(title=f"{len(workers)} device worker(s)")
    for column in ("worker", "host", "pid", "partitions", "busy", "at once", "warm sessions", "devices sent"):
        table.add_column(column)
    for worker in sorted(workers.values(), key=lambda w: w["id"]):
        table.add_row(
            worker["id"],
            worker["host"],
            str(worker["pid"]),
            str(worker["partitions"]),
            str(worker["busy"]),
            str(worker["capacity"]),
            str(worker["warm_sessions"]),
            str(worker["jobs"]),
        )
    return table


def run(args: argparse.Namespace) -> int:
    try:
        rows = asyncio.run(collect_status(bus_address(args), args.service, args.wait))
    except BusUnreachableError as exc:
        fail(f"status: {exc}")
        return 3
    if args.json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        table = Table(title=f"{args.service}: {len(rows)} replica(s)")
        for column in ("replica", "version", "uptime", "requests", "errors", "avg latency (s)", "in flight", "prefix"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["replica"],
                row["version"],
                row["uptime"],
                str(row["requests"]),
                str(row["errors"]),
                f"{row['average_latency_s']:.3f}",
                str(row["in_flight"]),
                row["subject_prefix"],
            )
        Console().print(table)
        workers = _worker_table(rows)
        if workers is not None:
            Console().print(workers)
    return 0 if rows else 1
