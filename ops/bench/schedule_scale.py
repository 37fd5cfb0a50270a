"""Schedules at scale: N lab devices polled by one schedule every interval on this machine's cores.

Starts nats-server (JetStream, temp dir), one lab of N devices plus one probe device, an
inventory file (the N devices in group ``bench``), and ``pyats-ro serve`` with the service's
own defaults (device workers: one per core) except what a schedule of N devices needs
(``PYATS_SCHEDULES_MAX_DEVICES`` = N when above its default of 2000), a session idle TTL longer than the interval (the
warm case of a device polled every interval) and no request rate limit for the probe.
Then, as requester ``noc``, adds a schedule on the group (``--interval``, show version and
show ip interface brief, parsed) and follows ``--ticks`` ticks:

- lag (due -> run start, from ``pyats_schedule_tick_lag_seconds``) and completion (due -> the
  summary on ``<prefix>.results.noc.<request id>._summary``), results per second;
- CPU of the service (front + device workers), of the lab and of nats-server over the tick
  (due -> summary) and over the whole interval, and the service's peak RSS;
- a fairness probe: requester ``ops`` sends a 1-device ``show clock`` (the probe device, not in
  the group) every ~0.5 s; p50/p95 while idle (before the first tick) and during each tick.

Afterwards scrapli (``peers.py``) polls the same N devices with the same commands, cold then
warm, in its own process, as text and with Genie's parse (what ``parsed`` does): the CPU per
device ratio service/peer is measured in the same run. Whether change detection ran is
printed (the ``PYATS_CHANGES`` stream exists after the ticks); ``--no-changes`` turns it off.
``--profile``: py-spy on the front and the first device worker during the 2nd tick and after it.

    .venv/bin/python ops/bench/schedule_scale.py --devices 50 --interval 15 --ticks 2   # smoke, ~1 min
    .venv/bin/python ops/bench/schedule_scale.py                                          # 1000 / 60 s / 3

Exit code 1 when a tick failed a device, did not finish inside its interval, or the probe's
p95 during a tick broke the bound (``--probe-bound``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))

import nats  # noqa: E402
import nats.js.errors  # noqa: E402
import peers  # noqa: E402
import spy  # noqa: E402
from measure import percentile  # noqa: E402
from procfs import PeakRss, ProcessTree, cpu_seconds, machine_busy_seconds  # noqa: E402
from report import header, table  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from run import start_lab  # noqa: E402
from scenarios import progress  # noqa: E402
from stack import ServiceProcess  # noqa: E402

from service.client.execute import execute  # noqa: E402
from service.client.schedules import manage_schedules  # noqa: E402
from service.contract.messages import CommandSpec, DeviceSpec, Schedule, ScheduleRequest  # noqa: E402
from service.devtools.local_server import LocalNatsServer, free_port  # noqa: E402
from service.domain.schedules import tick_request_id  # noqa: E402
from service.transport.subjects import sanitize_token  # noqa: E402

PREFIX = "pyats.v1"
REQUESTER = "noc"
PROBER = "ops"
SCHEDULE = "scale"
GROUP = "bench"
PROBE_DEVICE = "probe-1"
PASSWORD = "bench-password"  # the lab's own fake devices  # noqa: S105
COMMANDS = ("show version", "show ip interface brief")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000, help="N: devices in the scheduled group")
    parser.add_argument("--interval", type=float, default=60.0, help="the schedule's interval in seconds")
    parser.add_argument("--ticks", type=int, default=3, help="ticks followed (the first one logs in)")
    parser.add_argument("--commands", type=int, default=2, choices=(1, 2), help="show version [, show ip int brief]")
    parser.add_argument("--latency", type=float, default=0.1, help="lab seconds before each answer")
    parser.add_argument(
        "--idle-ttl",
        type=float,
        default=None,
        help="PYATS_SESSION_IDLE_TTL (default 1.5 x interval: warm ticks; 0: every tick logs in)",
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="fairness probe before the schedule")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between probe starts")
    parser.add_argument("--probe-bound", type=float, default=2.0, help="PASS when the probe's p95 in a tick is below")
    parser.add_argument("--no-changes", action="store_true", help="PYATS_CHANGES_ENABLED=false")
    parser.add_argument("--peers", default="scrapli", help="'scrapli' or 'none'")
    parser.add_argument("--peer-concurrency", type=int, default=50, help="scrapli's concurrency")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the front and a worker during the 2nd tick and after it"
    )
    args = parser.parse_args(argv)
    if args.idle_ttl is None:
        args.idle_ttl = 1.5 * args.interval
    return args


def render_testbed(devices: list[dict[str, Any]]) -> str:
    lines = ["testbed:", "  credentials:", "    default: {username: admin, password: '%ENV{LAB_DEVICE_PASSWORD}'}"]
    lines.append("devices:")
    for index, device in enumerate(devices):
        last = index == len(devices) - 1
        name, group = (PROBE_DEVICE, "probe") if last else (f"dev-{index + 1:04d}", GROUP)
        lines += [
            f"  {name}:",
            f"    os: {device['os']}",
            f"    connections: {{cli: {{protocol: ssh, ip: {device['host']}, port: {device['port']}}}}}",
            f"    groups: [{group}]",
        ]
    return "\n".join(lines) + "\n"


def service_env(args: argparse.Namespace, nats_url: str, inventory: Path) -> dict[str, str]:
    """The service's defaults, except what the bench needs (each named in docs/PERFORMANCE.md)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYATS_")}
    env.update(
        {
            "PYATS_NATS_URL": nats_url,
            "PYATS_METRICS_PORT": str(free_port()),
            "PYATS_SSH_STRICT_HOST_KEY_CHECKING": "no",
            "PYATS_INVENTORY_FILE": str(inventory),
            "LAB_DEVICE_PASSWORD": PASSWORD,
            "PYATS_SCHEDULES_MAX_DEVICES": str(max(args.devices, 2000)),
            "PYATS_RATE_LIMIT_REQUESTS": "0",  # the probe sends ~120 requests a minute
            "PYATS_RATE_LIMIT_DEVICES": "0",
            "PYATS_SESSION_IDLE_TTL": f"{args.idle_ttl:g}",
            "PYATS_MAX_WARM_SESSIONS": str(max(1000, args.devices + 10)),
        }
    )
    if args.no_changes:
        env["PYATS_CHANGES_ENABLED"] = "false"
    return env


class Cpu:
    """CPU seconds of the service tree, the lab, nats-server and the machine at one moment."""

    def __init__(self, service: int, lab: int | None, server: int | None) -> None:
        self.pids = (service, lab, server)

    def now(self) -> dict[str, float]:
        service, lab, server = self.pids
        return {
            "service": ProcessTree(service).cpu_seconds(),
            "front": cpu_seconds([service]),
            "lab": ProcessTree(lab).cpu_seconds() if lab else 0.0,
            "nats": ProcessTree(server).cpu_seconds() if server else 0.0,
            "machine": machine_busy_seconds(),
        }


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in after}


def scrape(port: int) -> dict[str, float]:
    """The schedule metrics of the front's /metrics (summed over label values)."""
    wanted = (
        "pyats_schedule_tick_lag_seconds_sum",
        "pyats_schedule_tick_lag_seconds_count",
        "pyats_schedule_ticks_run_total",
        "pyats_schedule_ticks_late_total",
        "pyats_schedule_ticks_missed_total",
    )
    figures = dict.fromkeys(wanted, 0.0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in figures:
                figures[name] += float(line.rsplit(" ", 1)[1])
    return figures


@dataclass
class Results:
    """Arrival times of the schedule's results, per request id."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)
    summaries: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    first: dict[str, asyncio.Event] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)

    def watch(self, request_id: str) -> None:
        self.first.setdefault(request_id, asyncio.Event())
        self.done.setdefault(request_id, asyncio.Event())

    async def on_message(self, msg: Any) -> None:
        now = time.time()
        rest = msg.subject.removeprefix(f"{PREFIX}.results.{REQUESTER}.")
        request_id, _, device = rest.partition(".")
        self.watch(request_id)
        if device == "_summary":
            self.summaries[request_id] = (now, json.loads(msg.data))
            self.done[request_id].set()
            return
        self.arrivals.setdefault(request_id, []).append(now)
        self.first[request_id].set()


@dataclass
class Probe:
    started: float
    latency_s: float
    ok: bool


async def probe_loop(url: str, every: float, into: list[Probe], stop: asyncio.Event) -> None:
    """A 1-device show clock from another requester, one at a time, a start every ``every`` seconds."""
    client = await nats.connect(url)
    request = {"devices": [{"name": PROBE_DEVICE}], "commands": [{"command": "show clock"}]}
    try:
        while not stop.is_set():
            started = time.time()
            ok = False
            try:
                reply = await execute(client, f"{PREFIX}.execute.{PROBER}", request, timeout=30)
                ok = reply.successful_devices == 1
            except Exception as exc:  # noqa: BLE001 - a failed probe is a data point
                progress(f"probe failed: {type(exc).__name__}: {exc}")
            into.append(Probe(started, time.time() - started, ok))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, every - (time.time() - started)))
    finally:
        await client.close()


def probe_figures(probes: list[Probe], start: float, end: float) -> dict[str, Any]:
    mine = [p for p in probes if start <= p.started < end]
    latencies = [p.latency_s for p in mine]
    return {
        "probes": len(mine),
        "probe failed": sum(1 for p in mine if not p.ok),
        "probe p50 (s)": percentile(latencies, 0.5),
        "probe p95 (s)": percentile(latencies, 0.95),
        "probe max (s)": max(latencies) if latencies else None,
    }


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def changes_state(client: Any) -> str:
    try:
        info = await client.jetstream().stream_info("PYATS_CHANGES")
    except nats.js.errors.NotFoundError:
        return "off (no PYATS_CHANGES stream: the detector is not in this build, or it is disabled)"
    return f"on (stream PYATS_CHANGES, {info.state.messages} change events)"


@dataclass
class Session:
    """What following the ticks needs: the bus, the service, the probe, the results seen."""

    args: argparse.Namespace
    client: Any
    service: ServiceProcess
    cpu: Cpu
    results: Results = field(default_factory=Results)
    probes: list[Probe] = field(default_factory=list)

    async def metrics(self) -> dict[str, float]:
        return await asyncio.to_thread(scrape, self.service.metrics_port)

    def profiling(self, index: int, phase: str) -> contextlib.ExitStack:
        """py-spy on the front and the first device worker during the second tick (``--profile``)."""
        stack = contextlib.ExitStack()
        if not self.args.profile or index != min(1, self.args.ticks - 1):
            return stack
        workers = sorted(p for p in ProcessTree(self.service.pid).members() if p != self.service.pid)
        for label, pid in [("front", self.service.pid), *(("worker", p) for p in workers[:1])]:
            out = self.args.workdir / f"profile-{phase}-{label}.raw"
            self.args.profiles.append(out)
            stack.enter_context(spy.recording(pid, out))
        return stack

    async def tick(self, index: int, due: float, before: dict[str, float], last: bool) -> dict[str, Any]:
        """Follow one tick from its due time to the next tick's; CPU over the tick and the interval."""
        interval = self.args.interval
        request_id = sanitize_token(tick_request_id(REQUESTER, SCHEDULE, due))
        self.results.watch(request_id)
        await sleep_until(due)
        cpu_start = self.cpu.now()
        with PeakRss(self.service.pid, interval=0.2) as peak:
            with self.profiling(index, "tick"):
                try:
                    await asyncio.wait_for(self.results.first[request_id].wait(), timeout=3 * interval)
                    after = await self.metrics()
                    await asyncio.wait_for(self.results.done[request_id].wait(), timeout=3 * interval)
                except TimeoutError:
                    progress(f"tick {index + 1}: no summary within {3 * interval:g} s")
                    after = await self.metrics()
            cpu_done = self.cpu.now()
            if last:  # no tick after the measured ones
                await manage_schedules(
                    self.client, PREFIX, REQUESTER, ScheduleRequest(op="rm", name=SCHEDULE), timeout=30
                )
            with self.profiling(index, "after-tick"):
                await sleep_until(due + interval - 1.0)
            await sleep_until(due + interval - 0.5)
            next_before = await self.metrics()  # before the next tick starts: its lag is the only new one
            await sleep_until(due + interval)
            cpu_end = self.cpu.now()
        window = Window(due, interval, before, after, cpu_start, cpu_done, cpu_end)
        figures = tick_figures(index, request_id, self.results, window, self.args.idle_ttl > interval)
        figures["_metrics_end"] = next_before
        figures["peak RSS (MB)"] = peak.peak_bytes / 2**20
        ended = self.results.summaries.get(request_id, (due + interval,))[0]
        figures.update(probe_figures(self.probes, due, ended))
        progress(f"tick {index + 1}: {figures['ok']}/{figures['ok'] + figures['failed']} ok")
        return figures


async def follow(args: argparse.Namespace, url: str, service: ServiceProcess, cpu: Cpu) -> dict[str, Any]:
    """Add the schedule, follow its ticks, remove it; every figure of the service side."""
    client = await nats.connect(url)
    session = Session(args, client, service, cpu)
    await client.subscribe(f"{PREFIX}.results.{REQUESTER}.>", cb=session.results.on_message)
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_loop(url, args.probe_every, session.probes, stop))
    await asyncio.sleep(2.0)  # the probe device's login
    idle_from, idle_cpu = time.time(), cpu.now()
    await asyncio.sleep(args.idle_seconds)
    idle_cpu = delta(cpu.now(), idle_cpu)
    background = idle_cpu["service"] / (time.time() - idle_from)
    schedule = Schedule(
        name=SCHEDULE,
        devices=[DeviceSpec(group=GROUP)],
        commands=[CommandSpec(command=c) for c in COMMANDS[: args.commands]],
        output_format="parsed",
        interval=args.interval,
    )
    reply = await manage_schedules(
        client, PREFIX, REQUESTER, ScheduleRequest(op="add", schedule=schedule, replace=True), timeout=60
    )
    next_tick = reply.schedules[0].next_tick
    assert next_tick is not None
    first_due = datetime.fromisoformat(next_tick).timestamp()
    progress(f"schedule added; first tick due {next_tick} (in {first_due - time.time():.0f} s)")
    ticks: list[dict[str, Any]] = []
    before = await session.metrics()
    for index in range(args.ticks):
        due = first_due + index * args.interval
        ticks.append(await session.tick(index, due, before, last=index == args.ticks - 1))
        before = ticks[-1].pop("_metrics_end")
    stop.set()
    await prober
    totals = await session.metrics()
    changes = await changes_state(client)
    await client.close()
    idle = probe_figures(session.probes, idle_from, first_due - 0.5)
    for tick in ticks:  # the probe's own cost (measured idle) taken out of the tick's CPU
        net = tick["service CPU tick (s)"] - background * (tick["completion (s)"] or args.interval)
        tick["net CPU ms/device"] = max(0.0, net) * 1000 / tick["_devices"]
    return {
        "ticks": ticks,
        "idle": idle,
        "background cores": background,
        "metrics": totals,
        "changes": changes,
    }


@dataclass(frozen=True)
class Window:
    """One tick's interval: due time, metrics before and after its start, CPU at due, done and next due."""

    due: float
    interval: float
    before: dict[str, float]
    after: dict[str, float]
    cpu_start: dict[str, float]
    cpu_done: dict[str, float]
    cpu_end: dict[str, float]


def tick_figures(index: int, request_id: str, results: Results, window: Window, warm: bool) -> dict[str, Any]:
    arrivals = results.arrivals.get(request_id, [])
    summary_at, summary = results.summaries.get(request_id, (None, {}))
    before, after = window.before, window.after
    count = after["pyats_schedule_tick_lag_seconds_count"] - before["pyats_schedule_tick_lag_seconds_count"]
    lag_sum = after["pyats_schedule_tick_lag_seconds_sum"] - before["pyats_schedule_tick_lag_seconds_sum"]
    lag = lag_sum / count if count else None
    busy = delta(window.cpu_done, window.cpu_start)
    whole = delta(window.cpu_end, window.cpu_start)
    devices = int(summary.get("total_devices", len(arrivals))) or 1
    completion = (summary_at - window.due) if summary_at else None
    run_start = window.due + (lag or 0.0)
    return {
        "tick": f"{index + 1} ({'steady' if index and warm else 'logins'})",
        "ok": int(summary.get("successful_devices", 0)),
        "failed": int(summary.get("failed_devices", 0)) if summary else devices,
        "lag (s)": lag,
        "completion (s)": completion,
        "first result (s)": (arrivals[0] - window.due) if arrivals else None,
        "results/s": len(arrivals) / (summary_at - run_start) if summary_at and summary_at > run_start else None,
        "service CPU tick (s)": busy["service"],
        "front CPU tick (s)": busy["front"],
        "CPU ms/device": busy["service"] * 1000 / devices,
        "service CPU interval (s)": whole["service"],
        "service cores (interval)": whole["service"] / window.interval,
        "lab CPU tick (s)": busy["lab"],
        "nats CPU tick (s)": busy["nats"],
        "other CPU tick (s)": max(0.0, busy["machine"] - busy["service"] - busy["lab"] - busy["nats"]),
        "in interval": "PASS" if completion is not None and completion < window.interval else "FAIL",
        "_devices": devices,
        "_request_id": request_id,
    }


def run_peer(args: argparse.Namespace, devices: list[dict[str, Any]]) -> list[peers.PeerFigures]:
    """scrapli on the same devices, text only and with Genie's parse (what the service's ``parsed`` does)."""
    if args.peers == "none":
        return []
    why = peers.installed("scrapli")
    if why is not None:
        progress(f"peer scrapli skipped: {why}")
        return []
    found: list[peers.PeerFigures] = []
    for parse in (False, True):
        name = "scrapli+genie" if parse else "scrapli"
        progress(f"peer {name}: {len(devices)} devices x {args.commands} commands, cold then warm")
        try:
            figures = peers.run("scrapli", devices, args.commands, args.peer_concurrency, PASSWORD, 1800.0, parse)
        except Exception as exc:  # noqa: BLE001 - a peer that breaks is reported, the bench goes on
            progress(f"peer {name} failed: {type(exc).__name__}: {str(exc)[-300:]}")
            continue
        found += [dataclasses.replace(f, peer=name) for f in figures]
    return found


def peer_ratios(ticks: list[dict[str, Any]], figures: list[peers.PeerFigures]) -> list[dict[str, Any]]:
    """Service CPU per device over a tick / the peer's CPU per device (first tick vs cold, the rest vs warm)."""
    rows = []
    for tick in ticks:
        phase = "cold" if tick["tick"].endswith("(logins)") else "warm"
        for peer in figures:
            if peer.phase != phase or not peer.cpu_s:
                continue
            peer_ms = peer.cpu_s * 1000 / max(peer.devices, 1)
            rows.append(
                {
                    "tick": tick["tick"],
                    "peer": f"{peer.peer} {peer.phase}",
                    "service CPU ms/device": tick["CPU ms/device"],
                    "peer CPU ms/device": peer_ms,
                    "ratio service/peer": tick["CPU ms/device"] / peer_ms,
                    "ratio, net of probe": tick["net CPU ms/device"] / peer_ms,
                }
            )
    return rows


def rich_table(title: str, rows: list[dict[str, Any]]) -> Table:
    shown = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    columns: list[str] = []
    for row in shown:
        columns += [key for key in row if key not in columns]
    out = Table(title=title)
    for column in columns:
        out.add_column(column, justify="right")
    for row in shown:
        out.add_row(*(cell(row.get(column)) for column in columns))
    return out


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def verdict(args: argparse.Namespace, figures: dict[str, Any]) -> list[str]:
    problems = []
    for tick in figures["ticks"]:
        if tick["failed"]:
            problems.append(f"tick {tick['tick']}: {tick['failed']} device(s) failed")
        if tick["in interval"] != "PASS":
            problems.append(f"tick {tick['tick']}: not finished inside {args.interval:g} s")
        p95 = tick.get("probe p95 (s)")
        if p95 is None or p95 >= args.probe_bound or tick.get("probe failed"):
            problems.append(f"tick {tick['tick']}: probe p95 {cell(p95)} s (bound {args.probe_bound:g} s)")
    return problems


def measure(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], int]:
    """Run the stack, follow the ticks, then the peer; the figures and the number of device workers."""
    progress(f"nats-server (JetStream) and a lab of {args.devices} + 1 devices; logs in {workdir}")
    with LocalNatsServer(workdir / "nats", jetstream=True) as server:
        server_process = getattr(server, "_process", None)  # read-only: its pid, for its CPU
        lab = start_lab(args.devices + 1, args.latency, PASSWORD)
        try:
            lab_process = getattr(lab, "_process", None)
            inventory = workdir / "testbed.yaml"
            inventory.write_text(render_testbed(lab.devices), encoding="utf-8")
            env = service_env(args, server.url, inventory)
            with ServiceProcess(env, workdir / "service.log", server.url) as service:
                workers = len([p for p in ProcessTree(service.pid).members() if p != service.pid])
                cpu = Cpu(
                    service.pid,
                    lab_process.pid if lab_process else None,
                    server_process.pid if server_process else None,
                )
                figures = asyncio.run(follow(args, server.url, service, cpu))
            figures["peer"] = run_peer(args, lab.devices[: args.devices])
        finally:
            lab.stop()
    return figures, workers


def report(args: argparse.Namespace, command: str, figures: dict[str, Any], workers: int) -> list[str]:
    """Rich tables on the terminal, then the same as markdown (for docs/PERFORMANCE.md); the problems."""
    console = Console(width=250)
    settings = {
        "devices": args.devices,
        "interval (s)": args.interval,
        "commands": ", ".join(COMMANDS[: args.commands]) + " (parsed)",
        "lab latency (s)": args.latency,
        "session idle TTL (s)": args.idle_ttl,
        "service processes at start (front + workers)": f"1 + {workers}",
        "change detection": figures["changes"],
        "service CPU before the first tick (probe only)": f"{figures['background cores']:.3f} cores",
    }
    figures["settings"] = settings
    idle, ticks = figures["idle"], figures["ticks"]
    ratios = peer_ratios(ticks, figures["peer"])
    problems = verdict(args, figures)
    probe_rows = [{"phase": "idle (before the first tick)", **idle}] + [
        {"phase": f"tick {t['tick']}", **{k: t[k] for k in idle}} for t in ticks
    ]
    tick_rows = [{k: v for k, v in t.items() if not k.startswith(("probe", "_"))} for t in ticks]
    peer_rows = [asdict(f) for f in figures["peer"]]
    console.print(rich_table("ticks", tick_rows))
    console.print(rich_table(f"fairness probe: {PROBER} show clock on {PROBE_DEVICE}", probe_rows))
    if peer_rows:
        console.print(rich_table("peers (same lab, same run)", peer_rows))
        console.print(rich_table("service / peer (CPU per device)", ratios))
    metrics = figures["metrics"]
    lines = [
        "## schedules at scale\n",
        header(REPO, command.strip()),
        *(f"- {key}: {value}" for key, value in settings.items()),
        f"- metrics at the end: ticks run {metrics['pyats_schedule_ticks_run_total']:g}, "
        f"late {metrics['pyats_schedule_ticks_late_total']:g}, missed {metrics['pyats_schedule_ticks_missed_total']:g}",
        "\n### ticks\n",
        table(tick_rows),
        f"\n### fairness probe (every {args.probe_every:g} s)\n",
        table(probe_rows),
    ]
    if peer_rows:
        lines += ["\n### peers\n", table(peer_rows), "\n### service / peer (CPU per device)\n", table(ratios)]
    lines.append("\n" + ("FAIL:\n" + "\n".join(f"- {p}" for p in problems) if problems else "PASS"))
    sys.stdout.write("\n".join(lines) + "\n")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python ops/bench/schedule_scale.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    workdir = Path(tempfile.mkdtemp(prefix="pyats-schedule-bench-"))
    args.workdir, args.profiles = workdir, []
    figures, workers = measure(args, workdir)
    problems = report(args, command, figures, workers)
    for raw in args.profiles:
        sys.stdout.write(f"\n### profile: {raw.stem.removeprefix('profile-')}\n\n{spy.summary(raw)}\n")
    if args.json is not None:
        document = {**figures, "peer": [asdict(f) for f in figures["peer"]], "problems": problems}
        args.json.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    if args.keep_logs or problems or args.profiles:
        sys.stdout.write(f"\nlogs: {workdir}\n")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
