"""Warm CPU per command with many devices in one process, with Python's default regex cache
(512 patterns) and with the room ``service.device.regex_cache`` makes (8192; ``prepare_process``).

Each variant runs in its own interpreter (the cache is process-wide): ``--devices`` lab
devices with no latency, one warm session each, then ``--rounds`` rounds of ``show clock``
on every session, timed.

    .venv/bin/python ops/bench/regex_cache.py --devices 120 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def measure(size: int, devices: int, rounds: int) -> dict[str, float]:
    from service.device import argspec_cache, unicon_session

    argspec_cache.install()  # what ``prepare_process`` does besides the regex room
    re._MAXCACHE = size  # type: ignore[attr-defined]  # this variant's size, exactly
    from service.devtools.lab.runner import LabProcess
    from service.domain.models import DeviceOS, DeviceTarget, Secret
    from service.observability.logging import route_library_logger, setup_logging

    setup_logging(level="WARNING")
    with LabProcess(["--count", str(devices), "--os", "iosxe", "--latency", "0"]) as lab:
        factory = unicon_session.UniconSessionFactory(
            unicon_session.SessionOptions(strict_host_key_checking="no", backend="paramiko"),
            route_logs=route_library_logger,
        )
        sessions = [
            factory.open(
                DeviceTarget(d["host"], d["port"], DeviceOS.IOSXE, "admin", Secret(d.get("password", "admin"))), 20
            )
            for d in lab.devices
        ]
        for session in sessions:
            session.execute("show clock", 10)
        cpu = time.process_time()
        for _ in range(rounds):
            for session in sessions:
                session.execute("show clock", 10)
        cpu = time.process_time() - cpu
        for session in sessions:
            session.close()
    size_now = float(re._MAXCACHE)  # type: ignore[attr-defined]
    return {"cache": size_now, "cpu_ms_per_command": cpu / (rounds * devices) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size:
        sys.stdout.write(json.dumps(measure(args.size, args.devices, args.rounds)) + "\n")
        return
    rows = []
    for size in (512, 8192, 512, 8192):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--size", str(size), "--devices", str(args.devices)]
            + ["--rounds", str(args.rounds)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\n{args.devices} devices, warm `show clock`, paramiko backend")
    print("| re cache | CPU ms per command |")
    print("| ---: | ---: |")
    for row in rows:
        print(f"| {row['cache']:.0f} | {row['cpu_ms_per_command']:.2f} |")


if __name__ == "__main__":
    main()
