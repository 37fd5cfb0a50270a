"""Memory and CPU of a process tree, read from /proc (Linux only).

``ProcessTree(pid)`` finds the process and all its descendants through the ppid
field of ``/proc/<pid>/stat``.  ``cpu_seconds()`` is utime+stime of the root and its
live descendants plus cutime+cstime of each of them (children they already
reaped, e.g. the ``ssh`` clients of closed sessions).  ``PeakRss`` samples the
summed VmRSS of the tree in a background thread and keeps the peak.

The sampler caches each pid's parent (read once per pid) so a scan costs one
``listdir`` plus one ``statm`` read per descendant, not one ``stat`` per process on
the machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class ProcessTree:
    """A root pid and its descendants, with a ppid cache refreshed on each scan."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._parent: dict[int, int] = {}

    def members(self) -> list[int]:
        """The root and every live descendant (the root only if it still exists)."""
        live = _pids()
        alive = set(live)
        for pid in list(self._parent):
            if pid not in alive:
                del self._parent[pid]
        for pid in live:
            if pid not in self._parent:
                fields = stat_fields(pid)
                if fields is not None:
                    self._parent[pid] = int(fields[1])
        children: dict[int, list[int]] = {}
        for pid, parent in self._parent.items():
            children.setdefault(parent, []).append(pid)
        if self.root not in self._parent:
            return []
        found, stack = [], [self.root]
        while stack and len(found) < 100_000:  # bounded: a pid tree cannot be larger than the pid space
            pid = stack.pop()
            found.append(pid)
            stack.extend(children.get(pid, ()))
        return found

    def rss_bytes(self) -> int:
        return sum(_rss_bytes(pid) for pid in self.members())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.members())

    def count(self) -> int:
        return len(self.members())


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime+stime+cutime+cstime of each pid, in seconds."""
    ticks = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is None:
            continue
        # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from the first line of /proc/stat."""
    with open("/proc/stat", "rb") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class PeakRss:
    """``with PeakRss(pid) as peak: ...``; then ``peak.peak_bytes``, ``peak.peak_processes``."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self._tree = ProcessTree(root)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0

    def _sample(self) -> None:
        members = self._tree.members()
        total = sum(_rss_bytes(pid) for pid in members)
        self.samples += 1
        self.peak_bytes = max(self.peak_bytes, total)
        self.peak_processes = max(self.peak_processes, len(members))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()


class Usage:
    """CPU seconds and peak RSS of a process tree over a ``with`` block."""

    def __init__(self, root: int, interval: float = 0.05, neighbour: int | None = None) -> None:
        self._root = root
        self._neighbour = neighbour  # another tree whose CPU is counted apart (the lab, on the same cores)
        self._peak = PeakRss(root, interval)
        self._cpu_start = 0.0
        self._neighbour_start = 0.0
        self.cpu_s = 0.0
        self._root_start = 0.0
        self.root_cpu_s = 0.0  # the root process alone (the front, when device workers are its children)
        self.neighbour_cpu_s: float | None = None
        self._machine_start = 0.0
        self.other_cpu_s = 0.0  # the rest of the machine: requester, nats-server, anything else running
        self.peak_rss_mb = 0.0
        self.peak_processes = 0

    def __enter__(self) -> Usage:
        self._cpu_start = ProcessTree(self._root).cpu_seconds()
        self._root_start = cpu_seconds([self._root])
        if self._neighbour is not None:
            self._neighbour_start = ProcessTree(self._neighbour).cpu_seconds()
        self._machine_start = machine_busy_seconds()
        self._peak.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._peak.__exit__(*exc)
        self.cpu_s = ProcessTree(self._root).cpu_seconds() - self._cpu_start
        self.root_cpu_s = cpu_seconds([self._root]) - self._root_start
        if self._neighbour is not None:
            self.neighbour_cpu_s = ProcessTree(self._neighbour).cpu_seconds() - self._neighbour_start
        machine = machine_busy_seconds() - self._machine_start
        self.other_cpu_s = max(0.0, machine - self.cpu_s - (self.neighbour_cpu_s or 0.0))
        self.peak_rss_mb = self._peak.peak_bytes / 2**20
        self.peak_processes = self._peak.peak_processes
