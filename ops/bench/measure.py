"""One measured row: wall time, per-device latency percentiles, service CPU and peak RSS."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..1); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ideal_seconds(devices: int, concurrency: int, commands: int, latency: float) -> float:
    """Lab latency alone: ceil(N / concurrency) waves x commands x latency (login not counted)."""
    return math.ceil(devices / max(concurrency, 1)) * commands * latency


@dataclass
class Row:
    scenario: str
    backend: str
    devices: int
    commands: int
    concurrency: int
    latency: float
    wall_s: float
    device_latencies: list[float] = field(default_factory=list)
    cpu_s: float | None = None
    lab_cpu_s: float | None = None
    other_cpu_s: float | None = None
    peak_rss_mb: float | None = None
    peak_processes: int | None = None
    ok: int = 0
    failed: int = 0
    errors: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # scenario-specific columns, in order

    @property
    def ideal_s(self) -> float:
        return ideal_seconds(self.devices, self.concurrency, self.commands, self.latency)

    @property
    def ratio(self) -> float | None:
        return self.wall_s / self.ideal_s if self.ideal_s > 0 else None

    @property
    def devices_per_s(self) -> float | None:
        return self.devices / self.wall_s if self.wall_s > 0 else None

    @property
    def cpu_ms_per_device(self) -> float | None:
        if self.cpu_s is None or not self.devices:
            return None
        return self.cpu_s * 1000 / self.devices

    def common(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "backend": self.backend,
            "devices": self.devices,
            "commands": self.commands,
            "concurrency": self.concurrency,
            "wall (s)": self.wall_s,
            "devices/s": self.devices_per_s,
            "p50 device (s)": percentile(self.device_latencies, 0.5),
            "p99 device (s)": percentile(self.device_latencies, 0.99),
            "service peak RSS (MB)": self.peak_rss_mb,
            "service CPU (s)": self.cpu_s,
            "CPU ms/device": self.cpu_ms_per_device,
            "lab CPU (s)": self.lab_cpu_s,
            "other CPU (s)": self.other_cpu_s,
            "ideal (s)": self.ideal_s,
            "ratio": self.ratio,
            "ok/failed": f"{self.ok}/{self.failed}",
        }
