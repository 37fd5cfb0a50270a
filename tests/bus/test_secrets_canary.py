"""Canary passwords never leak: not in logs at DEBUG (ours and the libraries'), replies,
bus traffic, error messages or the process list."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from service.devtools.lab.runner import LabProcess
from tests.conftest import ServiceProcess

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

CANARY = "Canary-PW-7f3a9q"
CANARY_ENABLE = "Canary-EN-2k8w"
WRONG = "Canary-WRONG-5x1z"
PREFIX = "canary.v1"


@pytest.fixture(scope="module")
def canary_lab() -> Iterator[LabProcess]:
    folder = Path(tempfile.mkdtemp(prefix="canary-lab-"))
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "defaults": {"password": CANARY, "latency": 0.2},
                "devices": [
                    {"name": "c-iosxe", "os": "iosxe", "enable_password": CANARY_ENABLE},
                    {"name": "c-nxos", "os": "nxos"},
                    {"name": "c-asa", "os": "asa", "enable_password": CANARY_ENABLE},
                ],
            }
        )
    )
    with LabProcess(["--spec", str(spec)], log_path=folder / "lab.jsonl") as lab:
        yield lab


def ps_snapshot() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout


async def test_canary_passwords_never_leak(
    service_factory: Callable[..., ServiceProcess], client: Client, canary_lab: LabProcess, tmp_path: Path
) -> None:
    for backend in ("pty", "paramiko"):
        service = service_factory(
            PYATS_SUBJECT_PREFIX=f"{PREFIX}-{backend}",
            PYATS_LOG_LEVEL="TRACE",
            PYATS_LOG_LIBRARY_LEVEL="DEBUG",
            PYATS_LOG_FORMAT="json",
            PYATS_LOG_FILE=str(tmp_path / f"service-{backend}.jsonl"),
            PYATS_SSH_BACKEND=backend,
        ).wait_ready()
        traffic: list[bytes] = []

        async def tap(msg: Any, traffic: list[bytes] = traffic) -> None:
            traffic.append(msg.subject.encode() + b" " + json.dumps(msg.headers or {}).encode() + b" " + msg.data)

        subscription = await client.subscribe(">", cb=tap)
        devices = [
            {"hostname": d["host"], "port": d["port"], "os": d["os"], "username": "admin", "password": CANARY}
            | ({"enable_password": CANARY_ENABLE} if d["name"] != "c-nxos" else {})
            for d in canary_lab.devices
        ]
        bodies = [
            {"devices": devices, "commands": [{"command": "show version"}, {"command": "show running-config"}]},
            {"devices": [{**devices[0], "password": WRONG}], "commands": [{"command": "show clock"}]},
            {"devices": [{**devices[0], "enable_password": WRONG}], "commands": [{"command": "show clock"}]},
            {"devices": [{**devices[0], "port": WRONG}], "commands": [{"command": "show clock"}]},
            {"devices": [{**devices[0], "password": WRONG + "\n"}], "commands": [{"command": "show clock"}]},
            {"devices": devices, "commands": [{"command": "show clock"}], "stream": True, "output_format": "both"},
        ]
        snapshots: list[str] = []
        for body in bodies:
            task = asyncio.create_task(
                client.request(f"{PREFIX}-{backend}.execute.canary", json.dumps(body).encode(), timeout=60)
            )
            while not task.done():
                snapshots.append(ps_snapshot())
                await asyncio.sleep(0.1)
            replies = json.loads((await task).data)
            assert "error" in replies or replies["total_devices"] >= 1
        await client.flush()
        await subscription.unsubscribe()
        assert service.stop() == 0

        # The only messages that may carry a password: the requests themselves, and the front's jobs to its
        # device workers (internal subjects only the service's user may use; never stored). Everything
        # else is scanned: replies, results (what JetStream stores), heartbeats, the workers' answers.
        request = f"{PREFIX}-{backend}.execute.canary ".encode()
        job = re.compile(rb"^" + re.escape(f"{PREFIX}-{backend}.internal.".encode()) + rb"[\w-]+\.work\.")
        jobs = [t for t in traffic if job.match(t)]
        assert any(CANARY.encode() in t for t in jobs)  # the scan sees the jobs, and the secrets travel there
        scanned = [t for t in traffic if not t.startswith(request) and not job.match(t)]
        assert any(t.startswith(f"{PREFIX}-{backend}.results.".encode()) for t in scanned)
        assert any(t.startswith(b"$KV.") for t in scanned)  # the change baselines written are scanned too
        places = {
            "service output": service.log(),
            "service log file": (tmp_path / f"service-{backend}.jsonl").read_text(),
            "bus traffic": b"\n".join(scanned).decode(errors="replace"),
            "process list": "\n".join(snapshots),
            "lab log": canary_lab.log_path.read_text(),
        }
        assert "DEBUG" in places["service log file"]  # the scan saw verbose logs
        # Unicon's per-connection lines reach the log (the device layer routes them), the
        # password answers among them masked
        assert '"module": "unicon.' in places["service log file"]
        assert "*****" in places["service log file"]
        assert len(traffic) > 5
        for place, text in places.items():
            for secret in (CANARY, CANARY_ENABLE, WRONG):
                assert secret not in text, f"{secret} leaked into the {place} ({backend})"
