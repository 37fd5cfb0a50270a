"""The bench scenarios.  Each group starts its own fresh service and returns rows.

- ``cold_warm``: cold (fresh service), warm (same request again), warm1 (1 device x
  1 command, repeated, on a warm session).
- ``fairness``: a 1-device request 0.3 s after a 500-device request started.
- ``big``: 1000 devices in one request.
- ``sequential``: the ancestor's way, one device at a time with a fresh login each.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import spy
from bus import Reply, build_request, send
from measure import Row, percentile
from procfs import Usage
from stack import ServiceProcess, service_env

FAIRNESS_SPARES = 2  # devices outside the big request: one measured idle and warm, one cold under load


@dataclass
class Config:
    devices: int = 100
    latency: float = 0.1
    concurrency: int = 100
    commands: int = 2
    warm1_runs: int = 30
    sample: int = 10
    fairness_devices: int = 500
    fairness_delay: float = 0.3
    fairness_concurrency: int = 100
    big_devices: int = 1000
    big_concurrency: int = 100
    stream_over: int = 200  # requests with more devices ask for streamed replies
    timeout: float = 600.0
    rss_interval: float = 0.05
    password: str = "bench-password"  # the lab's own fake devices  # noqa: S105
    workdir: Path = Path("/tmp")  # noqa: S108 - replaced by run.py with a fresh temporary folder
    profile: bool = False  # py-spy records the service during each measured request
    profiles: list[Path] = field(default_factory=list)
    cold_wall: dict[str, float] = field(default_factory=dict)  # backend -> cold wall, for sequential's speed-up


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)  # noqa: T201


class Group:
    """A fresh service for one scenario group, and the lab's devices."""

    def __init__(
        self, cfg: Config, nats_url: str, lab_devices: list[dict[str, Any]], backend: str, lab_pid: int | None
    ) -> None:
        self.cfg = cfg
        self.lab_pid = lab_pid
        self.nats_url = nats_url
        self.lab = lab_devices
        # "paramiko", or with the device workers: "paramiko:w2" (serve starts 2), "paramiko:w0" (none: the
        # device work in the service's own process), "paramiko:x2" (2 separate `pyats-ro worker` commands)
        self.backend = backend
        self.ssh_backend, _, workers = backend.partition(":")
        self.workers: dict[str, str] = {}
        self.external_workers = 0
        if workers.startswith("w"):
            self.workers = {"device_workers": workers[1:]}
        elif workers.startswith("x"):
            self.external_workers = int(workers[1:])
            self.workers = {"device_workers": "0", "external_workers": "true"}

    def service(self, name: str, concurrency: int, max_devices: int, **extra: str) -> ServiceProcess:
        env = service_env(self.nats_url, self.ssh_backend, concurrency, max_devices, **{**self.workers, **extra})
        log = self.cfg.workdir / f"service-{name}-{self.backend.replace(':', '-')}.log"
        return ServiceProcess(env, log, self.nats_url, self.external_workers)

    def request(self, devices: list[dict[str, Any]], commands: int | None = None) -> dict[str, Any]:
        return build_request(devices, self.cfg.password, self.cfg.commands if commands is None else commands)

    async def send(self, client: Any, request: dict[str, Any]) -> Reply:
        stream = len(request["devices"]) > self.cfg.stream_over
        return await send(client, request, self.cfg.timeout, stream=stream)

    async def measured(
        self, client: Any, service: ServiceProcess, name: str, request: dict[str, Any], concurrency: int
    ) -> Row:
        """Send one request, measuring the service's CPU and peak RSS over it."""
        progress(f"{name} [{self.backend}]: {len(request['devices'])} devices x {len(request['commands'])} commands")
        with contextlib.ExitStack() as stack:
            if self.cfg.profile:
                raw = self.cfg.workdir / f"profile-{name}-{self.backend.replace(':', '-')}.txt"
                self.cfg.profiles.append(raw)
                stack.enter_context(spy.recording(service.pid, raw))
            usage = stack.enter_context(Usage(service.pid, self.cfg.rss_interval, self.lab_pid))
            reply = await self.send(client, request)
        row = self.row(name, request, concurrency, reply, usage)
        if usage.cpu_s > usage.root_cpu_s * 1.05 and row.devices:  # device workers: the front's share apart
            row.extra["front CPU ms/device"] = usage.root_cpu_s * 1000 / row.devices
        return row

    def row(self, name: str, request: dict[str, Any], concurrency: int, reply: Reply, usage: Usage | None) -> Row:
        row = Row(
            scenario=name,
            backend=self.backend,
            devices=len(request["devices"]),
            commands=len(request["commands"]),
            concurrency=concurrency,
            latency=self.cfg.latency,
            wall_s=reply.wall_s,
            device_latencies=reply.device_durations,
            ok=sum(1 for r in reply.results if r.get("success")),
            failed=len(request["devices"]) - sum(1 for r in reply.results if r.get("success")),
            errors=reply.error_summary(),
        )
        if usage is not None:
            row.cpu_s, row.peak_rss_mb, row.peak_processes = usage.cpu_s, usage.peak_rss_mb, usage.peak_processes
            row.lab_cpu_s, row.other_cpu_s = usage.neighbour_cpu_s, usage.other_cpu_s
        return row


async def _connect(url: str) -> Any:
    return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)


def cold_warm(group: Group, which: set[str]) -> list[Row]:
    cfg = group.cfg
    with group.service("cold-warm", cfg.concurrency, cfg.devices) as service:
        return asyncio.run(_cold_warm(group, service, which))


async def _cold_warm(group: Group, service: ServiceProcess, which: set[str]) -> list[Row]:
    cfg = group.cfg
    rows: list[Row] = []
    request = group.request(group.lab[: cfg.devices])
    client = await _connect(group.nats_url)
    try:
        if "cold" in which:
            rows.append(await group.measured(client, service, "cold", request, cfg.concurrency))
            cfg.cold_wall[group.backend] = rows[-1].wall_s
        if "warm" in which:
            if "cold" not in which:
                await group.send(client, request)  # warm the sessions first
            rows.append(await group.measured(client, service, "warm", request, cfg.concurrency))
        if "warm1" in which:
            rows.append(await _warm1(group, client, service))
    finally:
        await client.close()
    return rows


async def _warm1(group: Group, client: Any, service: ServiceProcess) -> Row:
    cfg = group.cfg
    request = group.request(group.lab[:1], commands=1)
    primer = await group.send(client, request)  # a warm session, whatever ran before
    progress(f"warm1 [{group.backend}]: 1 device x 1 command, {cfg.warm1_runs} times")
    replies: list[Reply] = []
    with Usage(service.pid, cfg.rss_interval, group.lab_pid) as usage:
        for _ in range(cfg.warm1_runs):
            replies.append(await group.send(client, request))
    walls = [r.wall_s for r in replies]
    p50, p99 = percentile(walls, 0.5) or 0.0, percentile(walls, 0.99) or 0.0
    merged = Reply(wall_s=p50, results=[res for r in replies for res in r.results])
    errors = [r.error_summary() for r in [primer, *replies] if r.error_summary()]
    merged.error = errors[0] if errors else None
    row = group.row("warm1", request, 1, merged, usage)
    row.ok = sum(1 for r in replies if r.successful == 1)
    row.failed = len(replies) - row.ok
    row.cpu_s = usage.cpu_s / max(len(replies), 1)  # per request
    row.lab_cpu_s = None if usage.neighbour_cpu_s is None else usage.neighbour_cpu_s / max(len(replies), 1)
    row.other_cpu_s = usage.other_cpu_s / max(len(replies), 1)
    row.extra = {
        "runs": len(replies),
        "reply p50 (s)": p50,
        "reply p99 (s)": p99,
        "p50 - latency (ms)": (p50 - cfg.latency) * 1000,
        "p99 - latency (ms)": (p99 - cfg.latency) * 1000,
        "service duration_s p50 (ms)": (percentile([r.service_duration_s or 0.0 for r in replies], 0.5) or 0) * 1000,
    }
    return row


def fairness(group: Group) -> list[Row]:
    cfg = group.cfg
    with group.service("fairness", cfg.fairness_concurrency, cfg.fairness_devices + FAIRNESS_SPARES) as service:
        return asyncio.run(_fairness(group, service))


async def _fairness(group: Group, service: ServiceProcess) -> list[Row]:
    cfg = group.cfg
    big = group.request(group.lab[: cfg.fairness_devices])
    spare_a, spare_b = (group.lab[cfg.fairness_devices + i : cfg.fairness_devices + i + 1] for i in range(2))
    client = await _connect(group.nats_url)
    try:
        progress(f"fairness [{group.backend}]: 1-device request idle (cold, then warm)")
        idle_cold = await group.send(client, group.request(spare_a))
        idle_warm = await group.send(client, group.request(spare_a))
        progress(
            f"fairness [{group.backend}]: {cfg.fairness_devices} devices, "
            f"1-device requests after {cfg.fairness_delay} s"
        )
        with Usage(service.pid, cfg.rss_interval, group.lab_pid) as usage:
            started = time.perf_counter()
            big_task = asyncio.create_task(group.send(client, big))
            await asyncio.sleep(cfg.fairness_delay)
            loaded_cold, loaded_warm = await asyncio.gather(
                group.send(client, group.request(spare_b)), group.send(client, group.request(spare_a))
            )
            small_done = time.perf_counter() - started
            big_reply = await asyncio.wait_for(big_task, cfg.timeout + 10)
    finally:
        await client.close()
    row = group.row("fairness", big, cfg.fairness_concurrency, big_reply, usage)
    small_errors = [r.error_summary() for r in (idle_cold, idle_warm, loaded_cold, loaded_warm) if r.error_summary()]
    if small_errors:
        row.errors = "; ".join(filter(None, [row.errors, "1-device: " + small_errors[0]]))
    row.extra = {
        "1-dev idle cold (s)": idle_cold.wall_s,
        "1-dev loaded cold (s)": loaded_cold.wall_s,
        "cold ratio": loaded_cold.wall_s / idle_cold.wall_s,
        "1-dev idle warm (s)": idle_warm.wall_s,
        "1-dev loaded warm (s)": loaded_warm.wall_s,
        "warm ratio": loaded_warm.wall_s / idle_warm.wall_s,
        "big still running": "yes" if small_done < big_reply.wall_s else "no",
    }
    return [row]


def big(group: Group) -> list[Row]:
    cfg = group.cfg
    with group.service("big", cfg.big_concurrency, cfg.big_devices) as service:
        return asyncio.run(_big(group, service))


async def _big(group: Group, service: ServiceProcess) -> list[Row]:
    cfg = group.cfg
    request = group.request(group.lab[: cfg.big_devices])
    client = await _connect(group.nats_url)
    pinger = await _connect(group.nats_url)  # its own connection: the front's answer, not our queueing
    pings: list[float] = []
    stop = asyncio.Event()
    try:
        probe = asyncio.create_task(_ping_until(pinger, stop, pings))
        try:
            row = await group.measured(client, service, "big", request, cfg.big_concurrency)
        finally:
            stop.set()
            await probe
    finally:
        await client.close()
        await pinger.close()
    ping_ms = sorted(p * 1000 for p in pings)
    row.extra = {
        "$SRV.PING p50 (ms)": percentile(ping_ms, 0.5),
        "$SRV.PING p99 (ms)": percentile(ping_ms, 0.99),
        "$SRV.PING max (ms)": ping_ms[-1] if ping_ms else None,
        "no errors": "yes" if row.failed == 0 and not row.errors else "no",
        "peak processes": row.peak_processes,
        "RSS <= 1 GB": "yes" if (row.peak_rss_mb or 0) <= 1024 else "no",
    }
    return [row]


async def _ping_until(client: Any, stop: asyncio.Event, seen: list[float], every: float = 0.02) -> None:
    """``$SRV.PING`` round trips every ``every`` s until ``stop``: does the front stay responsive?"""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            await client.request("$SRV.PING.pyats-ro", b"", timeout=10)
            seen.append(time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a missed ping counts as the timeout
            seen.append(10.0)
        await asyncio.sleep(every)


def sequential(group: Group) -> list[Row]:
    cfg = group.cfg
    with group.service("sequential", 1, cfg.sample, max_parallel_per_request="1", session_idle_ttl="0") as service:
        return asyncio.run(_sequential(group, service))


async def _sequential(group: Group, service: ServiceProcess) -> list[Row]:
    cfg = group.cfg
    request = group.request(group.lab[: cfg.sample])
    client = await _connect(group.nats_url)
    try:
        row = await group.measured(client, service, "sequential", request, 1)
    finally:
        await client.close()
    per_device = row.wall_s / max(row.devices, 1)
    extrapolated = per_device * cfg.devices
    cold = cfg.cold_wall.get(group.backend)
    row.extra = {
        "per device (s)": per_device,
        f"extrapolated {cfg.devices} devices (s)": extrapolated,
        "cold speed-up": None if cold is None else extrapolated / cold,
    }
    return [row]
