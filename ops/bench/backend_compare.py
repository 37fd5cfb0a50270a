"""Unicon's pty (OpenSSH child) backend against the in-process paramiko backend.

Per backend and lab latency: memory and processes per open session, CPU per login
and per command (this process plus its ssh children), wall time of 20 concurrent
connect + 2 commands + disconnect, and warm commands/s from 20 threads. Both
backends run with Unicon's fixed waits removed and the read-only login. Usage:

    .venv/bin/python ops/bench/backend_compare.py [--latencies 0,0.1] [--seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from unicon import Connection

from service.device.ssh import paramiko_backend
from service.device.ssh.jumps import JumpHosts
from service.device.ssh.options import HostKeyPolicy, SshOptions
from service.devtools.lab.runner import LabProcess

BACKENDS = ("pty", "paramiko")
JUMP_HOSTS = JumpHosts()  # none used: the lab's devices are reached directly
SETTINGS: dict[str, Any] = {
    "CONNECTED_CHECK_COUNT": 0,
    "EXECUTE_MATCHED_RETRIES": 0,
    "POST_DISCONNECT_WAIT_SEC": 0,
    "GRACEFUL_DISCONNECT_WAIT_SEC": 0,
    "HA_INIT_CONFIG_COMMANDS": [],
    "IOSXR_INIT_CONFIG_COMMANDS": [],
}
PASSWORD = "x"  # noqa: S105 - the throwaway lab password the bench starts the lab with
COMMANDS = ("show version", "show clock")
TICK = os.sysconf("SC_CLK_TCK")


def backend_settings(device: dict[str, Any], backend: str) -> dict[str, Any]:
    """Unicon's own pty backend, or ours with its typed options (it does not read the command)."""
    if backend == "pty":
        return {"BACKEND": "unicon.eal.backend.pty_backend"}
    options = SshOptions(device["host"], device["port"], "admin", 20, HostKeyPolicy.NO)
    return paramiko_backend.unicon_settings(options, JUMP_HOSTS)


def connect(device: dict[str, Any], backend: str) -> Any:
    command = (
        "ssh -o StrictHostKeyChecking=no -o ConnectTimeout=20 -o PreferredAuthentications=password,keyboard-interactive"
        f" -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o LogLevel=ERROR -o UserKnownHostsFile={os.devnull}"
        f" -p {device['port']} -l admin -- {device['host']}"
    )
    connection = Connection(
        hostname=device["name"],
        start=[command],
        os=device["os"],
        credentials={"default": {"username": "admin", "password": PASSWORD}},
        init_exec_commands=["terminal length 0", "terminal width 0"],
        init_config_commands=[],
        learn_hostname=True,
        connection_timeout=30,
        settings={**SETTINGS, **backend_settings(device, backend)},
        log_stdout=False,
        logfile=os.devnull,
        no_pyats_tasklog=True,
    )
    connection.connect()
    return connection


def release(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.disconnect()
    for handler in list(connection.log.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            connection.log.removeHandler(handler)


def children(exclude: set[int]) -> list[int]:
    me, found = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in exclude:
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                    found.append(int(name))
    return found


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_cpu(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    return 0.0


class Meter:
    """CPU of this process, of live children (from /proc) and of reaped children (rusage)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        live = 0.0
        for pid in children(self.exclude):
            self.seen[pid] = child_cpu(pid)
            live += self.seen[pid]
        return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + live


def measure(devices: list[dict[str, Any]], backend: str, exclude: set[int], seconds: float) -> dict[str, float]:
    release(connect(devices[0], backend))  # imports and first-use costs out of the figures
    meter = Meter(exclude)
    count = len(devices)
    rss_before = rss_kib(os.getpid()) + sum(rss_kib(pid) for pid in children(exclude))
    procs_before = len(children(exclude))
    cpu0 = meter.sample()
    sessions = [connect(device, backend) for device in devices]
    cpu1 = meter.sample()
    rss_after = rss_kib(os.getpid()) + sum(rss_kib(pid) for pid in children(exclude))
    procs_after = len(children(exclude))
    for session in sessions:  # per-command CPU, sequential
        for command in COMMANDS:
            session.execute(command)
    cpu2 = meter.sample()
    done = [0] * count
    stop = threading.Event()

    def hammer(index: int) -> None:
        while not stop.is_set():
            sessions[index].execute(COMMANDS[done[index] % 2])
            done[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    warm = sum(done) / (time.perf_counter() - started)
    for session in sessions:
        release(session)

    def cold(device: dict[str, Any]) -> None:
        connection = connect(device, backend)
        try:
            for command in COMMANDS:
                connection.execute(command)
        finally:
            release(connection)

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(cold, devices))
    wall = time.perf_counter() - started
    return {
        "rss_mib_per_session": (rss_after - rss_before) / 1024 / count,
        "procs_per_session": (procs_after - procs_before) / count,
        "cpu_ms_per_login": (cpu1 - cpu0) * 1000 / count,
        "cpu_ms_per_command": (cpu2 - cpu1) * 1000 / (count * len(COMMANDS)),
        "wall_s_20_cold": wall,
        "warm_commands_per_s": warm,
    }


def table(rows: list[tuple[str, str, dict[str, float]]], write: Callable[[str], Any]) -> None:
    keys = list(rows[0][2])
    write("| latency | backend | " + " | ".join(keys) + " |\n")
    write("|---|---|" + "---|" * len(keys) + "\n")
    for latency, backend, figures in rows:
        write(f"| {latency} | {backend} | " + " | ".join(f"{figures[k]:.2f}" for k in keys) + " |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="0,0.1")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0, help="warm phase length")
    args = parser.parse_args()
    rows: list[tuple[str, str, dict[str, float]]] = []
    for latency in args.latencies.split(","):
        lab_args = ["--count", str(args.count), "--latency", latency, "--password", PASSWORD]
        with LabProcess(lab_args) as lab:
            exclude = set(children(set()))  # the lab itself
            for backend in BACKENDS:
                rows.append((latency, backend, measure(lab.devices, backend, exclude, args.seconds)))
                sys.stderr.write(f"done: latency {latency} {backend}\n")
    table(rows, sys.stdout.write)


if __name__ == "__main__":
    main()
