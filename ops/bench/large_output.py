"""One large output through the device layer: wall, CPU and peak RSS of this process.

A lab device in this process answers ``show logging`` with ``--size`` characters (a device
prompt line in the middle, as in the exactness tests); one session reads it.

    .venv/bin/python ops/bench/large_output.py --backend paramiko --size 20000000
    .venv/bin/python ops/bench/large_output.py --backend pty --size 100000000 --limit 0
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main() -> None:
    from service.contract.errors import CommandError
    from service.device import prepare_process
    from service.device.unicon_session import SessionOptions, UniconSessionFactory
    from service.devtools.lab.server import LabServer
    from service.devtools.lab.spec import DeviceSpec, LargeOutput
    from service.domain.models import DeviceOS, DeviceTarget, Secret

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["pty", "paramiko"], default="paramiko")
    parser.add_argument("--size", type=int, default=20_000_000)
    parser.add_argument(
        "--limit", type=int, default=SessionOptions().max_output_bytes, help="max output bytes (0: none)"
    )
    args = parser.parse_args()

    started = threading.Event()
    devices: list[DeviceSpec] = []

    async def serve() -> None:
        spec = DeviceSpec(
            name="big", os="iosxe", large_outputs=(LargeOutput("show logging", args.size, "logging", True),)
        )
        devices.extend(await LabServer([spec]).start())
        started.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    started.wait()
    prepare_process()  # as the service does at start-up
    options = SessionOptions(strict_host_key_checking="no", backend=args.backend, max_output_bytes=args.limit)
    session = UniconSessionFactory(options).open(
        DeviceTarget("127.0.0.1", devices[0].port, DeviceOS.IOSXE, "admin", Secret("admin")), 20
    )
    wall, cpu = time.monotonic(), time.process_time()
    try:
        outcome = f"{len(session.execute('show logging', 900))} characters"
    except CommandError as exc:
        outcome = exc.code.value
    finally:
        session.close()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(
        f"{args.backend}, {args.size} characters, limit {args.limit}: {outcome}; "
        f"wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:.0f} MB\n"
    )


if __name__ == "__main__":
    main()
