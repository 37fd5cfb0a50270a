"""`make run`'s command: the service starts the bundled nats-server and Ctrl-C stops both."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.devtools.local_server import free_port
from tests.conftest import serve_until_exit, wait_for_services

pytestmark = pytest.mark.bus


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_with_nats_starts_the_server_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    nats_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
    env.update({"PYATS_METRICS_PORT": str(metrics_port), "PYATS_PARSER_PREWARM": "iosxe:show version"})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "serve",
            "--with-nats",
            "--nats-port",
            str(nats_port),
            "--data-dir",
            str(tmp_path / "data"),
            "--env-file",
            os.devnull,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        asyncio.run(wait_for_services(f"nats://127.0.0.1:{nats_port}", 1))
        assert (tmp_path / "data" / "nats" / "jetstream").is_dir()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    text = output.decode()
    assert process.returncode == 0, text
    assert "started bundled nats-server" in text and "stopped" in text
    assert "Traceback" not in text
    assert not port_open(nats_port)


def test_a_bad_setting_stops_start_up_with_the_variable_named(tmp_path: Path) -> None:
    result = serve_until_exit({"PYATS_MAX_CONCURRENT_DEVICES": "lots"})
    assert result.returncode == 2
    assert "PYATS_MAX_CONCURRENT_DEVICES" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_nats_server_is_a_clear_start_up_error(tmp_path: Path) -> None:
    result = serve_until_exit(
        {
            "PYATS_NATS_URL": f"nats://127.0.0.1:{free_port()}",
            "PYATS_METRICS_PORT": "0",
            "PYATS_NATS_CONNECT_TIMEOUT": "1",
            "PYATS_NATS_STARTUP_WAIT": "3",
            "PYATS_PARSER_PREWARM": "iosxe:show version",
        }
    )
    assert result.returncode == 2, result.stderr
    assert "cannot connect to NATS" in result.stderr
