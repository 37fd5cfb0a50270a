"""The lab's mock mode itself: a Unicon mock device behind the lab's SSH, every line logged."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest

from service.devtools.lab.log import PASSWORD_PLACEHOLDER, config_lines, read_log
from service.devtools.lab.mock import MockUnavailableError
from service.devtools.lab.runner import LabProcess, LabStartError
from service.devtools.lab.server import MOCK_NO_EXEC, LabServer
from service.devtools.lab.spec import DeviceSpec, MockSpec, SpecError, apply_overrides
from tests.mockdevice.cases import MOCK_CASES, MOCK_ENABLE, skip_if_unavailable

pytestmark = pytest.mark.mockdevice

NAME = "mock-lab"
IOSXE = MockSpec("iosxe", "general_exec")


@pytest.fixture(autouse=True)
def _needs_the_iosxe_mock() -> None:
    [case] = [case for case in MOCK_CASES if case.name == "mock-iosxe"]
    skip_if_unavailable(case)


class Terminal:
    """A raw interactive SSH shell: what a person at a terminal sends and sees."""

    def __init__(self, process: asyncssh.SSHClientProcess[str]) -> None:
        self._process = process
        self.seen = ""

    def send(self, text: str) -> None:
        self._process.stdin.write(text)

    async def read_until(self, text: str, timeout: float = 10.0) -> str:
        async with asyncio.timeout(timeout):
            while text not in self.seen:
                chunk = await self._process.stdout.read(4096)
                if not chunk:
                    raise EOFError(self.seen)
                self.seen += chunk
        head, _, rest = self.seen.partition(text)
        self.seen = rest
        return head + text


@asynccontextmanager
async def shell(device: DeviceSpec) -> AsyncIterator[Terminal]:
    async with asyncssh.connect(
        device.host, device.port, username="admin", password="admin", known_hosts=None
    ) as connection:
        process = await connection.create_process(term_type="vt100")
        try:
            yield Terminal(process)
        finally:
            process.close()


def mock_children(parent: int) -> list[str]:
    """Command lines of ``parent``'s children that run the Unicon mock."""
    listing = subprocess.run(["ps", "-o", "args=", "--ppid", str(parent)], capture_output=True, text=True, check=False)
    return [line for line in listing.stdout.splitlines() if "unicon.mock" in line]


@pytest.mark.asyncio
async def test_every_line_is_logged_secrets_masked_config_flagged(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    async with LabServer([DeviceSpec(name=NAME, mock=IOSXE)], log_path=log) as lab:
        async with shell(lab.devices[0]) as term:
            await term.read_until(f"{NAME}>")
            term.send("show version\r")
            assert "IOS-XE Software" in await term.read_until(f"{NAME}>")
            term.send("enable\r")
            await term.read_until("Password: ")
            term.send(MOCK_ENABLE + "\r")
            await term.read_until(f"{NAME}#")
            term.send("config term\r")
            await term.read_until(f"{NAME}(conf)#")
            term.send("no logging console\r")
            await term.read_until(f"{NAME}(conf)#")
            assert mock_children(os.getpid()) != []
        for _ in range(100):  # the child is stopped when the session ends
            if not mock_children(os.getpid()):
                break
            await asyncio.sleep(0.05)
        assert mock_children(os.getpid()) == []
    entries = [(e["mode"], e["line"], e["config"]) for e in read_log(log)]
    assert entries == [
        ("exec", "show version", False),
        ("exec", "enable", False),
        ("exec", PASSWORD_PLACEHOLDER, False),
        ("privileged", "config term", True),
        ("config", "no logging console", True),
    ]
    assert MOCK_ENABLE not in log.read_text()
    assert [e["line"] for e in config_lines(log)] == ["config term", "no logging console"]


@pytest.mark.asyncio
async def test_a_command_request_is_refused_and_logged(tmp_path: Path) -> None:
    """``ssh host 'cmd'`` has no shell for the mock to run in: refused, still on the record."""
    log = tmp_path / "lab.jsonl"
    async with LabServer([DeviceSpec(name=NAME, mock=IOSXE)], log_path=log) as lab:
        device = lab.devices[0]
        async with asyncssh.connect(
            device.host, device.port, username="admin", password="admin", known_hosts=None
        ) as connection:
            result = await connection.run("configure terminal", check=False)
    assert result.exit_status == 1
    assert MOCK_NO_EXEC in str(result.stdout)
    assert [(e["line"], e["config"]) for e in read_log(log)] == [("configure terminal", True)]


def test_an_unknown_state_stops_the_lab_at_start(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"devices": [{"name": NAME, "mock": {"os": "iosxe", "state": "no_such_state"}}]}))
    started = time.monotonic()
    with pytest.raises(LabStartError, match="no state 'no_such_state'"), LabProcess(["--spec", str(spec)]):
        pass
    assert time.monotonic() - started < 20


@pytest.mark.asyncio
async def test_an_os_without_mock_data_is_refused() -> None:
    with pytest.raises(MockUnavailableError, match="no mock data for os 'nosuchos'"):
        async with LabServer([DeviceSpec(name=NAME, mock=MockSpec("nosuchos", "exec"))]):
            pass


@pytest.mark.parametrize(
    "value",
    [{"os": "iosxe"}, {"os": "iosxe", "state": 1}, {"os": "../iosxe", "state": "exec"}, "iosxe"],
)
def test_mock_spec_values_are_checked(value: object) -> None:
    with pytest.raises(SpecError, match="mock"):
        apply_overrides(DeviceSpec(name=NAME), {"mock": value})
