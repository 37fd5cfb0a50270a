"""``pyats-ro demo``: a bundled nats-server, a lab of fake devices, the service, one request.

Everything runs as child processes on free local ports and stops at the end, so the
demo is safe to run beside a ``make run`` that already uses port 4222.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from service.cli.request import run_request
from service.devtools.child import ServiceProcess
from service.devtools.lab.runner import LabProcess, config_lines, read_log
from service.devtools.local_server import LocalNatsServer, free_port

EXAMPLES = """examples:
  pyats-ro demo                              # nats-server, 10 lab devices, the service, one request
  pyats-ro demo --devices 50 --latency 0.2"""
DEMO_PASSWORD = "demo-password"  # the lab's own fake devices; not a real credential  # noqa: S105


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="nats-server + lab + service, one sample request, results printed", epilog=EXAMPLES
    )
    demo.add_argument("--devices", type=int, default=10)
    demo.add_argument("--latency", type=float, default=0.1)
    demo.add_argument("--data-dir", default=".data/demo")


def run(args: argparse.Namespace) -> int:
    return run_demo(devices=args.devices, latency=args.latency, data_dir=Path(args.data_dir))


def run_demo(devices: int, latency: float, data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"demo: starting nats-server, a lab of {devices} fake devices and the service ...", file=sys.stderr)  # noqa: T201
    with (
        LocalNatsServer(data_dir / "nats") as server,
        LabProcess(
            [
                "--count",
                str(devices),
                "--os",
                "iosxe,ios,nxos,iosxr,asa",
                "--password",
                DEMO_PASSWORD,
                "--latency",
                str(latency),
            ],
            log_path=data_dir / "lab.jsonl",
        ) as lab,
    ):
        env = {
            **os.environ,
            "PYATS_NATS_URL": server.url,
            "PYATS_METRICS_PORT": str(free_port()),
            "PYATS_SSH_STRICT_HOST_KEY_CHECKING": "no",
            "PYATS_LOG_LEVEL": "WARNING",
        }
        with ServiceProcess(env, data_dir / "service.log").start() as service:
            service.wait_ready(90)
            targets: list[dict[str, Any]] = [
                {"hostname": d["host"], "port": d["port"], "os": d["os"], "username": d["username"]}
                for d in lab.devices
            ]
            commands = [{"command": "show version"}, {"command": "show clock"}]
            shown = {"devices": [{**d, "password": "<lab password>"} for d in targets], "commands": commands}
            (data_dir / "request.json").write_text(json.dumps(shown, indent=2) + "\n")
            request = {
                "devices": [{**d, "password": DEMO_PASSWORD} for d in targets],
                "commands": commands,
                "output_format": "both",
            }
            args = argparse.Namespace(
                prefix="pyats.v1", requester="demo", nats_url=server.url, wait=60.0, json=False, show_output=False
            )
            code = asyncio.run(run_request(args, request))
            config = config_lines(lab.log_path)
            print(  # noqa: T201
                f"demo: lab received {len(read_log(lab.log_path))} lines, {len(config)} in config mode "
                f"(read-only proof: {'OK' if not config else 'FAILED'})",
                file=sys.stderr,
            )
            return code if not config else 4
