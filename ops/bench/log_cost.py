"""Cost of one log line, with and without loguru's ``enqueue`` (``make bench`` runs it).

Each configuration is set up with ``service.observability.setup_logging`` exactly as the
service does (stderr sink plus a rotating file sink; stderr goes to /dev/null here), then
one thread or eight threads write lines inside ``logger.contextualize`` with a request id
and a device, like a device worker does. Printed per configuration:

- caller: time the logging call takes in the calling thread (what a worker pays),
- drained: time until every line is written (``logger.complete()`` waits for the queue),
  divided by the number of lines.

    .venv/bin/python ops/bench/log_cost.py --lines 20000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from loguru import logger  # noqa: E402

from service.observability.logging import setup_logging  # noqa: E402


def run(fmt: str, enqueue: bool, threads: int, lines: int, library: bool, folder: Path) -> tuple[float, float]:
    """(caller µs per line, drained µs per line)."""
    log_file = folder / f"bench-{fmt}-{enqueue}-{threads}-{library}.log"
    setup_logging(level="INFO", fmt=fmt, file=log_file, enqueue=enqueue, library_level="INFO")
    unicon = logging.getLogger("unicon.bench")
    per_thread = lines // threads
    caller_ns = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        barrier.wait()
        with logger.contextualize(request_id="0193a0b2-7c1e-7d4a-9f00-000000000001", device=f"r{index}"):
            started = time.perf_counter_ns()
            for n in range(per_thread):
                if library:
                    unicon.info("sending command show version (%d)", n)
                else:
                    logger.info("command done: {} in {:.3f}s", "show version", 0.1)
            caller_ns[index] = time.perf_counter_ns() - started

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    started = time.perf_counter()
    barrier.wait()
    for thread in pool:
        thread.join()
    logger.complete()
    drained = time.perf_counter() - started
    logger.remove()
    written = sum(1 for _ in log_file.open())
    if written != per_thread * threads:
        raise SystemExit(f"expected {per_thread * threads} lines in {log_file}, found {written}")
    caller_us = sum(caller_ns) / (per_thread * threads) / 1000
    return caller_us, drained * 1e6 / (per_thread * threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20000, help="lines per configuration")
    args = parser.parse_args()
    real_stderr = sys.stderr
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        sys.stderr = devnull  # the stderr sink writes here; the file sink is measured for real
        try:
            for library in (False, True):
                for fmt in ("text", "json"):
                    for threads in (1, 8):
                        for enqueue in (False, True):
                            caller, drained = run(fmt, enqueue, threads, args.lines, library, Path(tmp))
                            rows.append((library, fmt, threads, enqueue, caller, drained))
        finally:
            sys.stderr = real_stderr
    print(f"\nlog line cost, {args.lines} lines per row, stderr + file sink (python {sys.version.split()[0]})\n")
    print("| source | format | threads | enqueue | caller µs/line | drained µs/line |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for library, fmt, threads, enqueue, caller, drained in rows:
        source = "stdlib (unicon) via intercept" if library else "loguru"
        print(f"| {source} | {fmt} | {threads} | {'on' if enqueue else 'off'} | {caller:.1f} | {drained:.1f} |")


if __name__ == "__main__":
    main()
