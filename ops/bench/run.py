"""``make bench``: how fast the service answers, against a lab of fake devices.

Starts nats-server and a lab (child processes on free ports), then for each SSH
backend a fresh service per scenario group, and prints one markdown table per
scenario (see docs/PERFORMANCE.md).  Examples::

    .venv/bin/python ops/bench/run.py                      # cold,warm,warm1,sequential; 100 devices
    .venv/bin/python ops/bench/run.py --scenarios fairness,big --backend pty,paramiko
    .venv/bin/python ops/bench/run.py --devices 20 --latency 0.05 --scenarios cold,warm
    .venv/bin/python ops/bench/run.py --backend paramiko:w0,paramiko:w1,paramiko:w2,paramiko:x2

A backend may name the device workers after a colon: ``w2`` (serve starts 2), ``w0`` (none:
the device work in the service's own process), ``x2`` (2 separate ``pyats-ro worker``
commands beside a front that starts none); without it, the service's default (one per core).

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
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))

import peers  # noqa: E402
import scenarios  # noqa: E402
import spy  # noqa: E402
from measure import Row  # noqa: E402
from report import header, scenario_tables, table  # noqa: E402
from scenarios import FAIRNESS_SPARES, Config, Group, progress  # noqa: E402
from stack import ServiceStartError  # noqa: E402

from service.devtools.lab.runner import LabProcess, LabStartError  # noqa: E402
from service.devtools.local_server import LocalNatsServer  # noqa: E402

ALL_SCENARIOS = ("cold", "warm", "warm1", "fairness", "big", "sequential")
DEFAULT_SCENARIOS = "cold,warm,warm1,sequential"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"comma list of {','.join(ALL_SCENARIOS)}")
    parser.add_argument(
        "--backend",
        default="paramiko",
        help="comma list of SSH backends: pty, paramiko; with device workers: paramiko:w2, :w0, :x2",
    )
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
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the service with py-spy during each measured request (bench group) and print the top functions",
    )
    parser.add_argument(
        "--peers",
        default="scrapli,nornir",
        help="peers run on the same lab for cold/warm (comma list of scrapli, nornir; 'none' for none)",
    )
    args = parser.parse_args(argv)
    args.scenario_set = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = args.scenario_set - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    args.backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    args.peer_list = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    if set(args.peer_list) - set(peers.PEERS):
        parser.error(f"unknown peer(s); expected {', '.join(peers.PEERS)} or none")
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


def run_peers(args: argparse.Namespace, cfg: Config, devices: list[dict[str, Any]]) -> list[Any]:
    """Each peer on the same devices, cold then warm, after the service (the lab is idle again)."""
    found: list[Any] = []
    for name in args.peer_list:
        why = peers.installed(name)
        if why is not None:
            progress(f"peer {name} skipped: {why}")
            found.append(name)
            continue
        progress(f"peer {name}: {len(devices)} devices x {cfg.commands} commands, cold then warm")
        try:
            found += peers.run(name, devices, cfg.commands, cfg.concurrency, cfg.password, cfg.timeout)
        except Exception as exc:  # noqa: BLE001 - a peer that breaks is reported, the bench goes on
            progress(f"peer {name} failed: {type(exc).__name__}: {str(exc)[-300:]}")
            found.append(name)
    return found


def peer_tables(rows: list[Row], found: list[Any]) -> str:
    """The peers' figures, and each service figure as a ratio to each peer's (same run, same lab)."""
    figures = [f for f in found if isinstance(f, peers.PeerFigures)]
    skipped = [f for f in found if isinstance(f, str)]
    lines = ["### peers (same lab, same run)\n"]
    lines.append(
        table(
            {
                "peer": f.peer,
                "phase": f.phase,
                "devices": f.devices,
                "ok": f.ok,
                "wall (s)": f.wall_s,
                "CPU ms/device": f.cpu_s * 1000 / max(f.devices, 1),
                "peak RSS (MB)": f.peak_rss_mb,
            }
            for f in figures
        )
    )
    ratios = []
    for row in rows:
        for f in figures:
            if row.scenario == f.phase and f.wall_s > 0:
                service_cpu = row.cpu_ms_per_device
                peer_cpu = f.cpu_s * 1000 / max(f.devices, 1)
                ratios.append(
                    {
                        "scenario": row.scenario,
                        "backend": row.backend,
                        "peer": f.peer,
                        "wall service/peer": row.wall_s / f.wall_s,
                        "CPU/device service/peer": (service_cpu / peer_cpu) if service_cpu and peer_cpu else None,
                    }
                )
    if ratios:
        lines.append("\n### service / peer\n\n" + table(ratios))
    if skipped:
        lines.append("\nskipped peers: " + ", ".join(skipped) + " (pip install -e '.[bench]')")
    return "\n".join(lines)


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
        profile=args.profile and spy.available(),
    )
    if args.profile and not cfg.profile:
        progress("--profile: py-spy is not installed (make bench-deps); running without profiles")
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
            peer_rows = (
                run_peers(args, cfg, lab.devices[: args.devices]) if args.scenario_set & {"cold", "warm"} else []
            )
        finally:
            lab.stop()
    print(  # noqa: T201
        f"lab: {size} devices, latency {args.latency} s; ideal = ceil(devices / concurrency) x commands x latency\n"
    )
    print(scenario_tables(rows))  # noqa: T201
    if peer_rows:
        print("\n" + peer_tables(rows, peer_rows))  # noqa: T201
    for raw in cfg.profiles:
        print("\n### profile: " + raw.stem.removeprefix("profile-") + "\n\n" + spy.summary(raw))  # noqa: T201
    if skipped:
        print("\n### skipped backends\n\n" + "\n".join(skipped))  # noqa: T201
    failed = any(r.failed or r.errors for r in rows)
    if args.keep_logs or cfg.profile or failed or skipped:
        print(f"\nservice logs: {workdir}")  # noqa: T201
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
