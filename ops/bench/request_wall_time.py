"""Wall time of one request: N lab devices x M commands at a fixed lab latency.

Starts its own nats-server, lab and service (child processes on free ports), sends
the request a few times and prints a table of wall times. Usage:

    .venv/bin/python ops/bench/request_wall_time.py --devices 20 --commands 2 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import nats.errors

from service.client.execute import wait_until_serving
from service.devtools.lab.runner import LabProcess
from service.devtools.local_server import LocalNatsServer, free_port

COMMANDS = ["show version", "show ip interface brief", "show clock", "show inventory"]


async def measure(url: str, body: bytes, runs: int) -> list[tuple[float, int]]:
    client = await nats.connect(url)
    samples = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            msg = await client.request("pyats.v1.execute.bench", body, timeout=300)
            elapsed = time.perf_counter() - started
            reply = json.loads(msg.data)
            samples.append((elapsed, reply["successful_devices"]))
    finally:
        await client.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--commands", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pyats-bench-"))
    with (
        LocalNatsServer(folder / "nats") as server,
        LabProcess(["--count", str(args.devices), "--latency", str(args.latency), "--password", "bench"]) as lab,
    ):
        env = {
            **os.environ,
            "PYATS_NATS_URL": server.url,
            "PYATS_METRICS_PORT": str(free_port()),
            "PYATS_SSH_STRICT_HOST_KEY_CHECKING": "no",
            "PYATS_LOG_LEVEL": "WARNING",
            "PYATS_MAX_PARALLEL_PER_REQUEST": str(max(args.devices, 1)),
            "PYATS_MAX_CONCURRENT_DEVICES": str(max(args.devices, 1)),
            "PYATS_LOGIN_RATE_PER_SECOND": "0",
        }
        service = subprocess.Popen([sys.executable, "-m", "service", "serve", "--env-file", os.devnull], env=env)  # noqa: S603
        try:
            asyncio.run(wait_until_serving(server.url, 60))
            body = json.dumps(
                {
                    "devices": [
                        {
                            "hostname": d["host"],
                            "port": d["port"],
                            "os": d["os"],
                            "username": "admin",
                            "password": "bench",
                        }
                        for d in lab.devices
                    ],
                    "commands": [{"command": c} for c in COMMANDS[: args.commands]],
                }
            ).encode()
            samples = asyncio.run(measure(server.url, body, args.runs))
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
    walls = [s for s, _ in samples]
    print(f"devices={args.devices} commands={args.commands} latency={args.latency}s runs={args.runs}")  # noqa: T201
    print("| run | wall (s) | devices ok |")  # noqa: T201
    print("| --- | --- | --- |")  # noqa: T201
    for index, (wall, ok) in enumerate(samples, 1):
        print(f"| {index} | {wall:.2f} | {ok}/{args.devices} |")  # noqa: T201
    print(f"median wall: {statistics.median(walls):.2f} s")  # noqa: T201
    return 0 if all(ok == args.devices for _, ok in samples) else 1


if __name__ == "__main__":
    sys.exit(main())
