"""The lab as a process: CLI flags, spec file, ready file, signals, and real clients.

Also serves the shared corpus (``../shared/device-outputs``) and checks that what
comes back over SSH still parses with Genie to the pair's ``expected.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from service.devtools.lab.runner import LabProcess, LabStartError, config_lines, read_log

pytestmark = pytest.mark.lab

SHARED = Path(
    os.environ.get("PYATS_DEVICE_OUTPUTS_DIR", Path(__file__).resolve().parents[3] / "shared" / "device-outputs")
)


def test_lab_process_starts_devices_on_consecutive_ports(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    with LabProcess(["--count", "5", "--os", "ios,iosxe,nxos,iosxr,asa"], log_path=log) as lab:
        ports = [d["port"] for d in lab.devices]
        assert ports == list(range(ports[0], ports[0] + 5))
        assert [d["name"] for d in lab.devices] == [
            "lab-ios-01",
            "lab-iosxe-02",
            "lab-nxos-03",
            "lab-iosxr-04",
            "lab-asa-05",
        ]
        assert all(d["host"] == "127.0.0.1" and d["username"] == "admin" for d in lab.devices)
        assert lab.log_path == log


def test_spec_file_overrides_per_device(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "defaults": {"password": "pw-1", "latency": 0.0},
                "devices": [{"name": "core-1", "os": "nxos"}, {"os": "asa", "enable_password": "en-2"}],
            }
        )
    )
    with LabProcess(["--spec", str(spec)]) as lab:
        assert [(d["name"], d["os"]) for d in lab.devices] == [("core-1", "nxos"), ("lab-asa-02", "asa")]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                "127.0.0.1",
                lab.devices[0]["port"],
                username="admin",
                password="pw-1",
                look_for_keys=False,
                allow_agent=False,
            )
        finally:
            client.close()


def test_paramiko_keyboard_interactive_and_config_log(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    with LabProcess(["--os", "iosxe", "--password", "pw-9"], log_path=log) as lab:
        device = lab.devices[0]
        transport = paramiko.Transport(("127.0.0.1", device["port"]))
        try:
            transport.start_client(timeout=10)
            transport.auth_interactive("admin", lambda title, instructions, prompts: ["pw-9"] * len(prompts))
            channel = transport.open_session()
            channel.get_pty()
            channel.invoke_shell()
            channel.settimeout(5)
            received = read_until(channel, "lab-iosxe-01#")
            assert received.endswith("\r\nlab-iosxe-01#")
            channel.send(b"configure terminal\nhostname evil\nend\nshow clock\n")
            received = read_until(channel, "UTC Tue Mar 26 2024\r\nlab-iosxe-01#")
            assert "lab-iosxe-01(config)#hostname evil" in received
        finally:
            transport.close()
        deadline = time.monotonic() + 5
        while len(read_log(log)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e["line"] for e in config_lines(log)] == ["configure terminal", "hostname evil", "end"]
        assert lab.config_lines() == config_lines(log)


def read_until(channel: paramiko.Channel, marker: str) -> str:
    data = b""
    while not data.decode(errors="replace").endswith(marker):
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_wrong_password_is_rejected_by_paramiko() -> None:
    with LabProcess(["--os", "nxos"]) as lab:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            with pytest.raises(paramiko.AuthenticationException):
                client.connect(
                    "127.0.0.1",
                    lab.devices[0]["port"],
                    username="admin",
                    password="nope",
                    look_for_keys=False,
                    allow_agent=False,
                )
        finally:
            client.close()


def test_bad_spec_fails_fast_with_its_message(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"devices": [{"os": "junos"}]}))
    with pytest.raises(LabStartError, match="unsupported os 'junos'"):
        LabProcess(["--spec", str(spec)]).start()


def test_cli_prints_ready_line_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    key = tmp_path / "host_key"
    fingerprints = []
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-m", "service.devtools.lab", "--count", "2", "--host-key", str(key)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert process.stdout is not None
            ready = json.loads(process.stdout.readline())
            assert len(ready["devices"]) == 2 and ready["log"] is None
            fingerprints.append(server_key(ready["devices"][0]["port"]))
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
    assert key.is_file() and fingerprints[0] == fingerprints[1]


def server_key(port: int) -> str:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.start_client(timeout=10)
        return transport.get_remote_server_key().get_base64()
    finally:
        transport.close()


def corpus() -> list[dict[str, Any]]:
    index = SHARED / "index.json"
    if not index.is_file():
        return []
    return list(json.loads(index.read_text())["pairs"])


@pytest.mark.asyncio
@pytest.mark.skipif(not corpus(), reason="shared device-outputs folder absent")
async def test_shared_corpus_served_over_ssh_parses_to_expected(tmp_path: Path) -> None:
    from genie.conf.base import Device

    pairs = corpus()
    spec = tmp_path / "spec.json"
    devices = [
        {"name": f"corpus-{i:02d}", "os": p["os"], "outputs_dir": str(SHARED / p["path"])} for i, p in enumerate(pairs)
    ]
    spec.write_text(json.dumps({"defaults": {"terminal_length": 0}, "devices": devices}))
    with LabProcess(["--spec", str(spec)]) as lab:
        outputs = await asyncio.gather(
            *(
                fetch(d, json.loads((SHARED / p["path"] / "meta.json").read_text())["command"])
                for d, p in zip(lab.devices, pairs, strict=True)
            )
        )
    failures = []
    for pair, output in zip(pairs, outputs, strict=True):
        folder = SHARED / pair["path"]
        meta = json.loads((folder / "meta.json").read_text())
        raw = (folder / "output.txt").read_bytes().decode()
        assert output.replace("\r\n", "\n").rstrip("\n") == raw.replace("\r\n", "\n").rstrip("\n"), pair["path"]
        device = Device("corpus", os=meta["os"])
        device.custom["abstraction"] = {"order": ["os"]}
        parsed = json.loads(json.dumps(device.parse(meta["command"], output=output)))
        if parsed != json.loads((folder / "expected.json").read_text()):
            failures.append(pair["path"])
    assert failures == []


async def fetch(device: dict[str, Any], command: str) -> str:
    """Run one command interactively; return what lies between the echo and the prompt."""
    async with asyncssh.connect(
        device["host"], device["port"], username="admin", password="admin", known_hosts=None
    ) as connection:
        process = await connection.create_process(term_type="vt100", encoding="utf-8")
        buffer = ""
        while not buffer.rstrip().endswith(("#", ">")):
            buffer += await asyncio.wait_for(process.stdout.read(65536), 10)
        prompt = buffer.lstrip("\r\n")
        process.stdin.write(command + "\r")
        buffer = ""
        while not buffer.endswith("\r\n" + prompt):
            chunk = await asyncio.wait_for(process.stdout.read(65536), 10)
            assert chunk, buffer[-200:]
            buffer += chunk
        process.close()
        return buffer[len(command) + 2 : -len(prompt)]
