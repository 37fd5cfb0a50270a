"""Small hand-written fakes behind the pipeline's Protocols."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.domain.models import DeviceOS, DeviceTarget, ParseOutcome, ParseStatus
from service.errors import CommandError, ConnectError, ErrorCode


@dataclass
class FakeDevice:
    outputs: dict[str, str] = field(default_factory=dict)
    connect_errors: list[ErrorCode] = field(default_factory=list)  # consumed one per open
    command_errors: dict[str, ErrorCode] = field(default_factory=dict)


class FakeSession:
    def __init__(self, device: FakeDevice, log: list[str]) -> None:
        self._device = device
        self._log = log
        self.closed = False

    def execute(self, line: str, timeout: float) -> str:
        self._log.append(line)
        if line in self._device.command_errors:
            raise CommandError(self._device.command_errors[line], "fake failure", output="% fake")
        return self._device.outputs.get(line, f"output of {line}")

    def close(self) -> None:
        self.closed = True


class FakeSessionFactory:
    """Records every open and every line, so tests can prove nothing reached a device."""

    def __init__(self, devices: dict[str, FakeDevice] | None = None) -> None:
        self.devices = devices or {}
        self.opened: list[str] = []
        self.lines: list[str] = []
        self.sessions: list[FakeSession] = []
        self._lock = threading.Lock()

    def open(self, target: DeviceTarget, connect_timeout: float) -> FakeSession:
        with self._lock:
            self.opened.append(target.hostname)
            device = self.devices.setdefault(target.hostname, FakeDevice())
            if device.connect_errors:
                code = device.connect_errors.pop(0)
                raise ConnectError(code, f"fake {code}")
            session = FakeSession(device, self.lines)
            self.sessions.append(session)
            return session


class FakeParser:
    def __init__(self) -> None:
        self.prewarmed: list[tuple[DeviceOS, str]] = []

    def parse(self, os: DeviceOS, line: str, output: str) -> ParseOutcome:
        if not output.strip():
            return ParseOutcome(ParseStatus.EMPTY_OUTPUT, message="empty")
        if line == "show version":
            return ParseOutcome(ParseStatus.OK, {"version": {"os": os.value, 1: "int key"}})
        return ParseOutcome(ParseStatus.NO_PARSER, message=f"no parser for {line!r}")

    def prewarm(self, pairs: Iterable[tuple[DeviceOS, str]]) -> None:
        self.prewarmed.extend(pairs)
