"""The whole service on a real nats-server, logging in over SSH to Cisco's Unicon mock devices."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import ServiceProcess, wire_device
from tests.mockdevice.cases import MOCK_CASES, MockCase, skip_if_unavailable

pytestmark = [pytest.mark.mockdevice, pytest.mark.asyncio]

PREFIX = "mockdev"


@pytest.fixture(scope="module", params=["pty", "paramiko"])
def backend_service(
    request: pytest.FixtureRequest, service_factory: Callable[..., ServiceProcess]
) -> Iterator[tuple[str, ServiceProcess]]:
    """One service per SSH backend, each under its own subject prefix (its own queue group)."""
    backend: str = request.param
    service = service_factory(
        PYATS_SUBJECT_PREFIX=f"{PREFIX}-{backend}",
        PYATS_SSH_BACKEND=backend,
    ).wait_ready()
    try:
        yield backend, service
    finally:
        service.stop()


def command_body(line: str) -> dict[str, str]:
    """A wire command: a piped line becomes the request's pipe fields."""
    command, pipe, rest = line.partition(" | ")
    if not pipe:
        return {"command": line}
    option, _, value = rest.partition(" ")
    return {"command": command, "pipe_option": option, "pipe_value": value}


@pytest.mark.parametrize("case", [case.param() for case in MOCK_CASES])
async def test_request_on_the_bus_logs_in_runs_two_commands_and_parses(
    backend_service: tuple[str, ServiceProcess],
    client: Client,
    lab_device: Callable[[str], dict[str, Any]],
    case: MockCase,
) -> None:
    skip_if_unavailable(case)
    backend, _ = backend_service
    extra = {"enable_password": case.enable_password} if case.enable_password else {}
    body = {
        "devices": [wire_device(lab_device(case.name), **extra)],
        "commands": [command_body(command.line) for command in case.commands],
        "output_format": "both",
    }
    msg = await client.request(f"{PREFIX}-{backend}.execute.alice", json.dumps(body).encode(), timeout=90)
    reply = json.loads(msg.data)
    [device] = reply["results"]
    assert device["success"], device.get("error")
    user_mode = case.state in ("exec", "general_exec", "asa_disable") and case.enable_password is None
    assert device["privilege"] == ("user" if user_mode else "enabled")
    for command, result in zip(case.commands, device["commands"], strict=True):
        assert result["success"], result
        assert command.marker in result["output"]
        assert result["parse_status"] == command.parse.value, result.get("parse_error")
        if command.parsed is not None:
            path, expected = command.parsed
            value: Any = result["parsed"]
            for key in path:
                value = value[key]
            assert value == expected
