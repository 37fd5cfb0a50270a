"""CPU of one Unicon login and one warm ``execute()``, with and without the getfullargspec cache.

Each variant runs in its own interpreter (``prepare_process`` installs the cache process-wide): a lab device with
no latency, one session, 10 warm-up commands, then ``--commands`` timed ``show version``.

    .venv/bin/python ops/bench/argspec_cost.py --commands 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def measure(cache: bool, commands: int) -> dict[str, float]:
    """In this process: login CPU, execute CPU and wall per command, in ms."""
    import inspect

    real = inspect.getfullargspec
    from service.device import prepare_process, regex_cache

    if cache:
        prepare_process()  # as the service does at start-up
    else:
        regex_cache.make_room()  # the rest of it: inspect's own getfullargspec stays
    from service.device import unicon_session

    assert (inspect.getfullargspec is real) is not cache
    from service.devtools.lab.runner import LabProcess
    from service.domain.models import DeviceOS, DeviceTarget, Secret
    from service.observability.logging import route_library_logger, setup_logging

    setup_logging(level="WARNING")
    with LabProcess(["--count", "1", "--os", "iosxe", "--latency", "0"]) as lab:
        device = lab.devices[0]
        factory = unicon_session.UniconSessionFactory(
            unicon_session.SessionOptions(
                strict_host_key_checking="no", known_hosts_file=Path(lab.log_path).parent / "kh"
            ),
            route_logs=route_library_logger,
        )
        target = DeviceTarget(
            device["host"], device["port"], DeviceOS.IOSXE, "admin", Secret(device.get("password", "admin"))
        )
        started = time.process_time()
        session = factory.open(target, 10)
        login = time.process_time() - started
        for _ in range(10):
            session.execute("show version", 10)
        cpu, wall = time.process_time(), time.monotonic()
        for _ in range(commands):
            session.execute("show version", 10)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        session.close()
    return {
        "login_ms": login * 1000,
        "execute_cpu_ms": cpu / commands * 1000,
        "execute_wall_ms": wall / commands * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--variant", choices=["cache", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        sys.stdout.write(json.dumps(measure(args.variant == "cache", args.commands)) + "\n")
        return
    rows = []
    for variant in ("plain", "cache", "plain", "cache"):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--variant", variant, "--commands", str(args.commands)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append((variant, json.loads(out.stdout.strip().splitlines()[-1])))
    print("\n| getfullargspec | login CPU ms | execute CPU ms | execute wall ms |")
    print("| --- | ---: | ---: | ---: |")
    for variant, row in rows:
        name = "cached" if variant == "cache" else "inspect's own"
        print(f"| {name} | {row['login_ms']:.1f} | {row['execute_cpu_ms']:.2f} | {row['execute_wall_ms']:.2f} |")


if __name__ == "__main__":
    main()
