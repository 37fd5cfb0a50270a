"""The best Python peers on the same lab, each in its own process: scrapli (async, over
asyncssh) and Nornir + netmiko (threads). Optional: ``pip install -e '.[bench]'``; a peer
that is not installed is reported as skipped.

Each peer logs in to every device and runs the same commands (cold), then runs them
again on the open connections (warm), with the same concurrency as the service.
``run(...)`` starts the child and returns its figures: wall seconds, CPU seconds of the
peer's process, peak RSS, and how many devices answered every command.

    .venv/bin/python ops/bench/peers.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

PEERS = {"scrapli": ("scrapli", "asyncssh"), "nornir": ("nornir", "nornir_netmiko", "netmiko")}
from bus import COMMANDS  # the service's own scenario commands, in the same order


@dataclass(frozen=True)
class PeerFigures:
    peer: str
    phase: str  # cold | warm
    devices: int
    ok: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def installed(peer: str) -> str | None:
    """None when the peer can run here, else why not."""
    missing = [module for module in PEERS[peer] if importlib.util.find_spec(module) is None]
    return f"not installed ({', '.join(missing)}): pip install -e '.[bench]'" if missing else None


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


async def _scrapli(
    devices: list[dict[str, Any]], commands: list[str], concurrency: int, password: str, parse: bool = False
) -> list[dict]:
    """``parse``: each output through Genie too (scrapli's ``genie_parse_output``), as the service's
    ``parsed`` format does; Genie's parsers are loaded before the clock starts, as the service's are."""
    from scrapli.driver.core import AsyncIOSXEDriver
    from scrapli.helper import genie_parse

    gate = asyncio.Semaphore(concurrency)
    connections: dict[int, Any] = {}
    if parse:
        for command in commands:
            genie_parse("iosxe", command, "")

    async def run_all(conn: Any) -> bool:
        ok = True
        for command in commands:
            response = await conn.send_command(command)
            ok = not response.failed and ok
            if parse:
                ok = bool(response.genie_parse_output()) and ok
        return ok

    async def cold(index: int, device: dict[str, Any]) -> bool:
        async with gate:
            conn = AsyncIOSXEDriver(
                host=device["host"],
                port=device["port"],
                auth_username="admin",
                auth_password=password,
                auth_strict_key=False,
                transport="asyncssh",
                timeout_socket=60,
                timeout_transport=120,
                timeout_ops=120,
            )
            await conn.open()
            connections[index] = conn
            return await run_all(conn)

    async def warm(index: int) -> bool:
        async with gate:
            return await run_all(connections[index])

    figures = []
    for phase in ("cold", "warm"):
        cpu, _ = _usage()
        started = time.monotonic()
        if phase == "cold":
            oks = await asyncio.gather(*(cold(i, d) for i, d in enumerate(devices)), return_exceptions=True)
        else:
            oks = await asyncio.gather(*(warm(i) for i in connections), return_exceptions=True)
        wall = time.monotonic() - started
        cpu_after, rss = _usage()
        ok = sum(1 for item in oks if item is True)
        figures.append({"phase": phase, "ok": ok, "wall_s": wall, "cpu_s": cpu_after - cpu, "peak_rss_mb": rss})
    await asyncio.gather(*(conn.close() for conn in connections.values()), return_exceptions=True)
    return figures


def _nornir(devices: list[dict[str, Any]], commands: list[str], concurrency: int, password: str) -> list[dict]:
    from nornir.core import Nornir
    from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory
    from nornir.core.plugins.connections import ConnectionPluginRegister
    from nornir.core.task import Result, Task
    from nornir.plugins.runners import ThreadedRunner
    from nornir_netmiko.tasks import netmiko_send_command

    ConnectionPluginRegister.auto_register()  # what InitNornir does: finds nornir_netmiko's "netmiko"

    hosts = Hosts(
        {
            f"d{i}": Host(
                name=f"d{i}",
                hostname=d["host"],
                port=d["port"],
                username="admin",
                password=password,
                platform="cisco_xe",
                connection_options={"netmiko": ConnectionOptions(extras={"fast_cli": True})},
            )
            for i, d in enumerate(devices)
        }
    )
    nr = Nornir(
        inventory=Inventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
        runner=ThreadedRunner(num_workers=concurrency),
    )

    def show(task: Task) -> Result:
        for command in commands:
            task.run(task=netmiko_send_command, command_string=command)
        return Result(host=task.host)

    figures = []
    for phase in ("cold", "warm"):
        cpu, _ = _usage()
        started = time.monotonic()
        result = nr.run(task=show)
        wall = time.monotonic() - started
        cpu_after, rss = _usage()
        ok = sum(1 for name in result if not result[name].failed)
        figures.append({"phase": phase, "ok": ok, "wall_s": wall, "cpu_s": cpu_after - cpu, "peak_rss_mb": rss})
    with ThreadPoolExecutor(max_workers=1) as pool:  # closing can block on slow devices
        pool.submit(nr.close_connections).result(timeout=120)
    return figures


def run(
    peer: str,
    devices: list[dict[str, Any]],
    commands: int,
    concurrency: int,
    password: str,
    timeout: float,
    parse: bool = False,
) -> list[PeerFigures]:
    """One peer in its own interpreter, so its CPU and RSS are its own (``parse``: scrapli only)."""
    spec = json.dumps({"devices": devices, "commands": commands, "concurrency": concurrency, "password": password})
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--peer", peer, *(["--parse"] if parse else [])],
        input=spec,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return [PeerFigures(peer=peer, devices=len(devices), **row) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", choices=sorted(PEERS), required=True)
    parser.add_argument("--parse", action="store_true", help="scrapli: Genie-parse each output")
    args = parser.parse_args()
    spec = json.loads(sys.stdin.read())
    commands = list(COMMANDS[: spec["commands"]])
    if args.peer == "scrapli":
        rows = asyncio.run(_scrapli(spec["devices"], commands, spec["concurrency"], spec["password"], args.parse))
    else:
        rows = _nornir(spec["devices"], commands, spec["concurrency"], spec["password"])
    sys.stdout.write(json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
