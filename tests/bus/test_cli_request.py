"""`pyats-ro request` against the running service: progress, tables, JSON, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from service.devtools.local_server import LocalNatsServer
from tests.conftest import LAB_PASSWORD, ServiceProcess

pytestmark = pytest.mark.bus


def run_cli(nats_server: LocalNatsServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYATS_DEVICE_PASSWORD": LAB_PASSWORD, "PYATS_NATS_URL": nats_server.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "service", "request", "--requester", "cli-test", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_prints_tables_and_succeeds(
    service: ServiceProcess, nats_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    a, b = lab_device("ios-1"), lab_device("iosxe-1")
    result = run_cli(
        nats_server,
        "--os",
        "iosxe",
        "-u",
        "admin",
        "-d",
        f"{a['host']}:{a['port']}",
        "-d",
        f"{b['host']}:{b['port']}",
        "-c",
        "show version",
        "-c",
        "show running-config | include hostname",
        "--format",
        "both",
    )
    assert result.returncode == 0, result.stderr
    assert "Results per device" in result.stdout
    assert "2/2 devices ok" in result.stdout
    assert "show running-config | include hostname" in result.stdout
    assert f"{a['host']}:{a['port']} ok" in result.stderr  # progress per device


def test_cli_json_and_non_zero_exit_when_a_device_fails(
    service: ServiceProcess, nats_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    good, locked = lab_device("iosxe-1"), lab_device("locked")
    result = run_cli(
        nats_server,
        "-u",
        "admin",
        "--json",
        "-d",
        f"{good['host']}:{good['port']}",
        "-d",
        f"{locked['host']}:{locked['port']}",
        "-c",
        "show clock",
    )
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    assert payload["summary"]["failed_devices"] == 1
    assert {r["error_code"] for r in payload["results"]} == {None, "auth_failed"}


def test_cli_reports_a_refused_request(service: ServiceProcess, nats_server: LocalNatsServer) -> None:
    result = run_cli(nats_server, "-u", "admin", "-d", "10.0.0.1", "-c", "reload")
    assert result.returncode == 2
    assert "command_not_allowed" in result.stderr


def test_cli_builds_a_request_from_a_file(
    service: ServiceProcess, nats_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]], tmp_path: Any
) -> None:
    device = lab_device("nxos-1")
    request = {
        "devices": [
            {
                "hostname": device["host"],
                "port": device["port"],
                "os": "nxos",
                "username": "admin",
                "password": LAB_PASSWORD,
            }
        ],
        "commands": [{"command": "show version"}],
        "output_format": "parsed",
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    result = run_cli(nats_server, "--file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    [device_result] = json.loads(result.stdout)["results"]
    assert device_result["commands"][0]["parse_status"] == "ok"
