"""``pyats-ro status``: every replica's $SRV.INFO and $SRV.STATS as one table."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
from rich.console import Console
from rich.table import Table


async def _gather(client: Any, subject: str, wait: float) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        if msg.data:
            replies.append(json.loads(msg.data))

    inbox = client.new_inbox()
    subscription = await client.subscribe(inbox, cb=collect)
    await client.publish(subject, b"", reply=inbox)
    await asyncio.sleep(wait)
    await subscription.unsubscribe()
    return replies


def _uptime(started: str | None) -> str:
    if not started:
        return "-"
    try:
        begun = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if begun.tzinfo is None:
        begun = begun.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - begun).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


async def collect_status(url: str, service: str, wait: float, **connect: Any) -> list[dict[str, Any]]:
    """One row per replica: id, version, uptime, the execute endpoint's numbers and the device
    workers it sends to."""
    client = await nats.connect(url, **connect)
    try:
        infos, stats = await asyncio.gather(
            _gather(client, f"$SRV.INFO.{service}", wait), _gather(client, f"$SRV.STATS.{service}", wait)
        )
    finally:
        await client.close()
    by_id = {info["id"]: info for info in infos}
    rows = []
    for stat in stats:
        data: dict[str, Any] = {}
        for endpoint in stat.get("endpoints", []):
            if endpoint.get("name") == "execute" and isinstance(endpoint.get("data"), dict):
                data = endpoint["data"]
        info = by_id.get(stat["id"], {})
        rows.append(
            {
                "replica": stat["id"],
                "version": stat.get("version") or info.get("version", "-"),
                "uptime": _uptime(stat.get("started")),
                "requests": data.get("requests", 0),
                "errors": data.get("errors", 0),
                "average_latency_s": data.get("average_latency_s", 0.0),
                "in_flight": data.get("in_flight", 0),
                "subject_prefix": info.get("metadata", {}).get("subject_prefix", "-"),
                "workers": data.get("workers", []),
            }
        )
    return sorted(rows, key=lambda row: row["replica"])


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


def run_status(args: argparse.Namespace) -> int:
    import os

    connect: dict[str, Any] = {"connect_timeout": 5, "max_reconnect_attempts": 1}
    if args.nats_user:
        connect.update(user=args.nats_user, password=os.environ.get("PYATS_NATS_PASSWORD"))
    try:
        rows = asyncio.run(collect_status(args.nats_url, args.service, args.wait, **connect))
    except (OSError, TimeoutError, nats.errors.Error):
        print(f"pyats-ro status: cannot reach NATS at {args.nats_url}", file=sys.stderr)  # noqa: T201
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
