"""``python -m service.lab`` / ``pyats-ro lab``: start a lab and serve until signalled.

The one line this prints (or writes to ``--ready-file``) is the contract with
whoever started the lab: the devices with their real ports and the log path.

Example::

    python -m service.lab --count 10 --os iosxe,nxos --latency 0.1 \
        --spec spec.json --log lab.jsonl --ready-file ready.json

``spec.json`` is ``{"defaults": {...}, "devices": [{...}, ...]}``; keys are the
fields of ``DeviceSpec`` (``name``, ``os``, ``port``, ``password``,
``enable_password``, ``latency``, ``jitter``, ``auth_failure``,
``hang_commands``, ``disconnect_commands``, ``outputs_dir``, ``terminal_length``,
...).  Device entries apply by position and may grow the lab past ``--count``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from service.lab.server import LabServer, load_host_key
from service.lab.spec import DeviceSpec, SpecError, apply_overrides, build_devices, load_spec_file


def build_parser() -> argparse.ArgumentParser:
    """The lab's flags; the spec file can override any device field per device."""
    parser = argparse.ArgumentParser(prog="pyats-ro lab", description="Fake Cisco SSH device lab.")
    parser.add_argument("--count", type=int, default=1, help="number of devices")
    parser.add_argument("--base-port", type=int, default=0, help="first port; 0 picks a free consecutive range")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--os", default="iosxe", help="OS, or a comma list cycled over devices")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--enable-password", default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra random 0..J seconds per answer")
    parser.add_argument("--terminal-length", type=int, default=24, help="page length at login; 0 = no paging")
    parser.add_argument("--spec", type=Path, default=None, help='JSON {"defaults": {...}, "devices": [...]}')
    parser.add_argument("--outputs-dir", type=Path, default=None, help="extra outputs folder for every device")
    parser.add_argument("--log", type=Path, default=None, help="JSON-lines log of received lines")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the ready JSON here, not stdout")
    parser.add_argument("--host-key", type=Path, default=None, help="host key file, created once and reused")
    return parser


def devices_from_args(args: argparse.Namespace) -> tuple[DeviceSpec, ...]:
    """CLI defaults, then spec-file defaults, then per-device overrides."""
    template = DeviceSpec(
        name="template",
        os=args.os.split(",")[0].strip(),
        host=args.host,
        username=args.username,
        password=args.password,
        enable_password=args.enable_password,
        latency=args.latency,
        jitter=args.jitter,
        outputs_dir=args.outputs_dir,
        terminal_length=args.terminal_length,
    )
    defaults: dict[str, Any] = {}
    overrides: list[dict[str, Any]] = []
    if args.spec is not None:
        defaults, overrides = load_spec_file(args.spec)
    template = apply_overrides(template, {k: v for k, v in defaults.items() if k not in ("name", "port")})
    os_cycle = [item.strip() for item in args.os.split(",") if item.strip()]
    if "os" in defaults:
        os_cycle = [template.os]
    base_port = int(defaults.get("port", args.base_port))
    template = replace(template, port=0)
    return build_devices(template, args.count, os_cycle, base_port, overrides)


def ready_document(lab: LabServer) -> dict[str, Any]:
    """What a starter needs to reach the devices (never the passwords)."""
    return {
        "devices": [
            {"name": d.name, "os": d.os, "host": d.host, "port": d.port, "username": d.username} for d in lab.devices
        ],
        "log": None if lab.log_path is None else str(lab.log_path),
    }


async def serve(args: argparse.Namespace) -> int:
    """Start the lab, announce it, and wait for SIGINT or SIGTERM."""
    devices = devices_from_args(args)
    lab = LabServer(devices, log_path=args.log, host_key=load_host_key(args.host_key))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await lab.start()
    try:
        line = json.dumps(ready_document(lab))
        if args.ready_file is not None:
            partial = args.ready_file.with_name(args.ready_file.name + ".tmp")
            partial.write_text(line + "\n", encoding="utf-8")
            partial.replace(args.ready_file)
        else:
            print(line, flush=True)  # noqa: T201 - the ready line is the CLI's output
        await stop.wait()
    finally:
        await lab.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the lab; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except (SpecError, OSError) as exc:
        sys.stderr.write(f"pyats-ro lab: {exc}\n")
        return 2
