"""``make bench``: how fast the service answers, against a lab of fake devices.

Starts nats-server and a lab (child processes on free ports), then for each SSH
backend a fresh service per scenario group, and prints one markdown table per
scenario (see docs/PERFORMANCE.md).  Examples::

    .venv/bin/python ops/bench/run.py                      # cold,warm,warm1,sequential; 100 devices
    .venv/bin/python ops/bench/run.py --scenarios fairness,big --backend pty,paramiko
    .venv/bin/python ops/bench/run.py --devices 20 --latency 0.05 --scenarios cold,warm

A backend the service cannot start with (unknown value, import error) is skipped
with its error; the other backends still run.  Exit code 1 when any request failed
or a backend was skipped.
"""

from __future__ import annotations

import argparse
import random
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))

import scenarios  # noqa: E402
from measure import Row  # noqa: E402
from report import header, scenario_tables  # noqa: E402
from scenarios import FAIRNESS_SPARES, Config, Group, progress  # noqa: E402
from stack import ServiceStartError  # noqa: E402

from service.lab.runner import LabProcess, LabStartError  # noqa: E402
from service.transport.local_server import LocalNatsServer  # noqa: E402

ALL_SCENARIOS = ("cold", "warm", "warm1", "fairness", "big", "sequential")
DEFAULT_SCENARIOS = "cold,warm,warm1,sequential"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"comma list of {','.join(ALL_SCENARIOS)}")
    parser.add_argument("--backend", default="paramiko", help="comma list of SSH backends: pty, paramiko")
    parser.add_argument("--devices", type=int, default=100, help="N: devices of cold/warm")
    parser.add_argument("--latency", type=float, default=0.1, help="L: lab seconds before each answer")
    parser.add_argument("--concurrency", type=int, default=100, help="service concurrency for cold/warm/warm1")
    parser.add_argument("--commands", type=int, default=2, help="commands per device (1-4)")
    parser.add_argument("--warm1-runs", type=int, default=30)
    parser.add_argument("--sample", type=int, default=10, help="K: devices of the sequential scenario")
    parser.add_argument("--fairness-devices", type=int, default=500)
    parser.add_argument("--fairness-concurrency", type=int, default=100)
    parser.add_argument("--big-devices", type=int, default=1000)
    parser.add_argument("--big-concurrency", type=int, default=100)
    parser.add_argument("--stream-over", type=int, default=200, help="requests with more devices use stream: true")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one request may take")
    parser.add_argument("--rss-interval", type=float, default=0.05, help="seconds between RSS samples")
    parser.add_argument("--keep-logs", action="store_true", help="keep the service logs folder (printed at the end)")
    args = parser.parse_args(argv)
    args.scenario_set = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = args.scenario_set - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    args.backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not 1 <= args.commands <= 4:
        parser.error("--commands must be 1..4")
    return args


def lab_size(args: argparse.Namespace) -> int:
    wanted = {"cold": args.devices, "warm": args.devices, "warm1": max(args.devices, 1), "sequential": args.sample}
    wanted["fairness"] = args.fairness_devices + FAIRNESS_SPARES
    wanted["big"] = args.big_devices
    return max(wanted[s] for s in args.scenario_set)


def start_lab(size: int, latency: float, password: str, attempts: int = 5) -> LabProcess:
    """A started lab on a consecutive port range below the ephemeral range (where client sockets live).

    The lab's own free-range search looks in the ephemeral range, which a large lab can
    fail to find right after a run that left many sockets behind; a random base in
    10000..32767 and a few attempts avoid that.
    """
    last: Exception | None = None
    for _ in range(attempts):
        base = random.randint(10_000, max(10_000, 32_767 - size))  # noqa: S311 - a port, not a secret
        lab = LabProcess(
            ["--count", str(size), "--latency", str(latency), "--password", password, "--base-port", str(base)],
            ready_timeout=60 + size / 10,
        )
        try:
            return lab.start()
        except LabStartError as exc:
            last = exc
            progress(f"lab did not start on ports {base}..{base + size - 1}: {str(exc).strip()[-200:]}")
    raise RuntimeError(f"the lab did not start after {attempts} attempts: {last}")


def run_backend(cfg: Config, group: Group, selected: set[str]) -> list[Row]:
    rows: list[Row] = []
    if selected & {"cold", "warm", "warm1"}:
        rows += scenarios.cold_warm(group, selected & {"cold", "warm", "warm1"})
    if "fairness" in selected:
        rows += scenarios.fairness(group)
    if "big" in selected:
        rows += scenarios.big(group)
    if "sequential" in selected:
        rows += scenarios.sequential(group)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python ops/bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print("## pyats-ro bench\n\n" + header(REPO, command.strip()) + "\n", flush=True)  # noqa: T201
    workdir = Path(tempfile.mkdtemp(prefix="pyats-bench-"))
    cfg = Config(
        devices=args.devices,
        latency=args.latency,
        concurrency=args.concurrency,
        commands=args.commands,
        warm1_runs=args.warm1_runs,
        sample=args.sample,
        fairness_devices=args.fairness_devices,
        fairness_concurrency=args.fairness_concurrency,
        big_devices=args.big_devices,
        big_concurrency=args.big_concurrency,
        stream_over=args.stream_over,
        timeout=args.timeout,
        rss_interval=args.rss_interval,
        workdir=workdir,
    )
    size = lab_size(args)
    rows: list[Row] = []
    skipped: list[str] = []
    progress(f"starting nats-server and a lab of {size} devices (latency {args.latency} s); logs in {workdir}")
    with LocalNatsServer(workdir / "nats", jetstream=False) as server:
        lab = start_lab(size, args.latency, cfg.password)
        try:
            lab_process = getattr(lab, "_process", None)  # read-only: its pid, to count the lab's CPU apart
            lab_pid = None if lab_process is None else lab_process.pid
            for backend in args.backends:
                group = Group(cfg, server.url, lab.devices, backend, lab_pid)
                try:
                    rows += run_backend(cfg, group, args.scenario_set)
                except ServiceStartError as exc:
                    detail = str(exc).replace("\n", "\n    ")
                    skipped.append(f"- {backend}: the service did not start: {detail}")
                    progress(f"backend {backend} skipped: {exc}")
        finally:
            lab.stop()
    print(  # noqa: T201
        f"lab: {size} devices, latency {args.latency} s; ideal = ceil(devices / concurrency) x commands x latency\n"
    )
    print(scenario_tables(rows))  # noqa: T201
    if skipped:
        print("\n### skipped backends\n\n" + "\n".join(skipped))  # noqa: T201
    failed = any(r.failed or r.errors for r in rows)
    if args.keep_logs or failed or skipped:
        print(f"\nservice logs: {workdir}")  # noqa: T201
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
