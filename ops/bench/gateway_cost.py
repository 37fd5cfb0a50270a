"""The HTTP gateway's cost: a warm 1-device request through ``pyats-ro http`` against the same on NATS.

Starts nats-server, a lab of one device, the service and the gateway (``python -m service
http`` on a free port, one API key made up for the run and never printed), warms the
device's session, then sends N sequential ``show clock`` requests each way, interleaved
(direct, gateway, direct, ...) so the machine's noise hits both alike:

- direct: nats-py request/reply on ``<prefix>.execute.<requester>`` with the JSON body, the
  reply decoded (what any NATS requester does);
- gateway: ``POST /api/v1/execute`` with one keep-alive ``httpx.Client`` and the key header,
  the reply decoded.

Prints p50/p90/p99/mean of each, the p50 difference (gateway - direct) against the target
(``--target-ms``, 2 ms), and the gateway process's CPU per request (/proc/<pid>/stat).
Exit code 1 when a request failed or the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))

import httpx  # noqa: E402
import nats  # noqa: E402
import spy  # noqa: E402
from procfs import CLOCK_TICKS, stat_fields  # noqa: E402
from report import header, table  # noqa: E402
from run import start_lab  # noqa: E402
from scenarios import progress  # noqa: E402
from stack import ServiceProcess, service_env  # noqa: E402

from service.devtools.child import ServiceProcess as ChildService  # noqa: E402
from service.devtools.local_server import LocalNatsServer, free_port  # noqa: E402
from service.gateway.keys import hash_key  # noqa: E402

PREFIX = "pyats.v1"
REQUESTER = "benchgw"
PASSWORD = "bench-password"  # the lab's own fake device  # noqa: S105
GATEWAY_START_TIMEOUT = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests each way")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests each way first")
    parser.add_argument("--latency", type=float, default=0.1, help="lab seconds before each answer")
    parser.add_argument("--backend", default="paramiko", help="the service's SSH backend")
    parser.add_argument("--target-ms", type=float, default=2.0, help="most the gateway may add to the p50")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--profile", action="store_true", help="sample the gateway with py-spy while measured")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    return parser.parse_args(argv)


class GatewayProcess(ChildService):
    """``pyats-ro http`` on a free port, ready once its /readyz answers; stopped with SIGTERM (then kill)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "service", "http", "--port", str(self.port), "--env-file", os.devnull]
        super().__init__(env, log, command, ready_url=f"{self.url}/readyz")
        self.start()

    def cpu_seconds(self) -> float:
        fields = stat_fields(self.pid)
        if fields is None:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def request_body(device: dict[str, Any]) -> dict[str, Any]:
    return {
        "devices": [
            {
                "hostname": device["host"],
                "port": device["port"],
                "os": device["os"],
                "username": "admin",
                "password": PASSWORD,
            }
        ],
        "commands": [{"command": "show clock"}],
    }


def check(document: dict[str, Any], how: str) -> None:
    if document.get("successful_devices") != 1:
        raise RuntimeError(f"{how}: the request did not succeed: {json.dumps(document)[:500]}")


async def measure(
    nats_url: str, gateway: GatewayProcess, http: httpx.Client, body: dict[str, Any], args: argparse.Namespace
) -> tuple[list[float], list[float], float]:
    """Wall times (s) direct and through the gateway, and the gateway's CPU seconds over the measured ones."""
    subject = f"{PREFIX}.execute.{REQUESTER}"
    raw = json.dumps(body).encode()
    client = await nats.connect(nats_url)

    async def direct() -> float:
        started = time.perf_counter()
        message = await client.request(subject, raw, timeout=args.timeout)
        document = json.loads(message.data)
        wall = time.perf_counter() - started
        check(document, "direct")
        return wall

    def through_gateway() -> float:
        started = time.perf_counter()
        answer = http.post("/api/v1/execute", content=raw, headers={"Content-Type": "application/json"})
        document = answer.json()
        wall = time.perf_counter() - started
        check(document, f"gateway (HTTP {answer.status_code})")
        return wall

    try:
        for _ in range(args.warmup):
            await direct()
            through_gateway()
        direct_s: list[float] = []
        gateway_s: list[float] = []
        cpu_before = gateway.cpu_seconds()
        for _ in range(args.requests):
            direct_s.append(await direct())
            # the HTTP request blocks this loop: nothing else runs here meanwhile (nats-py's
            # reader waits for the next direct request), and a thread would add its own cost
            gateway_s.append(through_gateway())
        cpu = gateway.cpu_seconds() - cpu_before
    finally:
        await client.close()
    return direct_s, gateway_s, cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def figures(name: str, walls: list[float]) -> dict[str, Any]:
    ms = [w * 1000 for w in walls]
    return {
        "path": name,
        "requests": len(ms),
        "p50 (ms)": f"{statistics.median(ms):.2f}",
        "p90 (ms)": f"{percentile(ms, 90):.2f}",
        "p99 (ms)": f"{percentile(ms, 99):.2f}",
        "mean (ms)": f"{statistics.fmean(ms):.2f}",
    }


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one run, start to report
    args = parse_args(argv)
    command = "python ops/bench/gateway_cost.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print("## pyats-ro bench: the HTTP gateway's cost\n\n" + header(REPO, command.strip()) + "\n", flush=True)  # noqa: T201
    workdir = Path(tempfile.mkdtemp(prefix="pyats-bench-gw-"))
    key = "pyro_bench_" + secrets.token_urlsafe(24)  # made up for this run; never printed
    keys = {"bench": {"sha256": hash_key(key), "requester": REQUESTER}}
    profile = workdir / "profile-gateway.txt" if args.profile and spy.available() else None
    progress(f"starting nats-server, a lab of 1 device (latency {args.latency} s), the service and the gateway")
    with LocalNatsServer(workdir / "nats", jetstream=False) as server:
        lab = start_lab(1, args.latency, PASSWORD)
        try:
            env = service_env(server.url, args.backend, 1, 1, subject_prefix=PREFIX)
            with ServiceProcess(env, workdir / "service.log", server.url):
                gw_env = service_env(
                    server.url,
                    args.backend,
                    1,
                    1,
                    subject_prefix=PREFIX,
                    gateway_keys=json.dumps(keys),
                    gateway_request_timeout=str(args.timeout),
                )
                gateway = GatewayProcess(gw_env, workdir / "gateway.log")
                try:
                    gateway.wait_ready(GATEWAY_START_TIMEOUT)
                    progress(f"{args.warmup} warm-up then {args.requests} measured requests each way, interleaved")
                    headers = {"X-API-Key": key}
                    profiling = spy.recording(gateway.pid, profile) if profile else contextlib.nullcontext()
                    with (
                        httpx.Client(base_url=gateway.url, headers=headers, timeout=args.timeout) as http,
                        profiling,
                    ):
                        direct_s, gateway_s, cpu = asyncio.run(
                            measure(server.url, gateway, http, request_body(lab.devices[0]), args)
                        )
                finally:
                    gateway.stop()
        finally:
            lab.stop()
    rows = [figures("direct NATS", direct_s), figures("HTTP gateway", gateway_s)]
    added = (statistics.median(gateway_s) - statistics.median(direct_s)) * 1000
    verdict = "PASS" if added <= args.target_ms else "FAIL"
    paired = statistics.median((g - d) * 1000 for d, g in zip(direct_s, gateway_s, strict=True))
    print(f"lab: 1 device, latency {args.latency} s; `show clock`, warm session\n")  # noqa: T201
    print(table(rows))  # noqa: T201
    print(  # noqa: T201
        f"\ngateway adds (p50 gateway - p50 direct): {added:.2f} ms; target <= {args.target_ms:g} ms: {verdict}"
        f"\nmedian of the paired differences: {paired:.2f} ms"
        f"\ngateway CPU per request: {cpu * 1000 / max(args.requests, 1):.2f} ms"
        f" ({cpu:.2f} s over {args.requests} requests; /proc tick {1000 / CLOCK_TICKS:g} ms)"
    )
    if profile is not None:
        print("\n### profile: the gateway (warm-up included)\n\n" + spy.summary(profile))  # noqa: T201
    failed = verdict == "FAIL"
    if args.keep_logs or failed:
        print(f"\nlogs: {workdir}")  # noqa: T201
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
