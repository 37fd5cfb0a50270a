"""Small hand-written fakes behind the pipeline's Protocols."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.contract.errors import CommandError, ConnectError, ErrorCode, SessionOutOfStepError
from service.domain.models import DeviceOS, DeviceTarget, ParseOutcome, ParseStatus, Privilege


@dataclass
class FakeDevice:
    outputs: dict[str, str] = field(default_factory=dict)
    connect_errors: list[ErrorCode] = field(default_factory=list)  # consumed one per open
    command_errors: dict[str, ErrorCode] = field(default_factory=dict)
    delay: float = 0.0
    ignores_close: bool = False  # a thread stuck in a read that closing the session does not end
    privilege: Privilege | None = Privilege.ENABLED
    late_output_after: str | None = None  # this command's output goes on after its prompt
    hold: threading.Event | None = None  # each command also waits until the test sets this


class FakeSession:
    def __init__(self, device: FakeDevice, log: list[str], hostname: str) -> None:
        self._device = device
        self._log = log
        self.hostname = hostname
        self.closed = False
        self.alive = True
        self.executed = 0
        self.drop_on_next = False
        self.factory: FakeSessionFactory | None = None
        self.late_output = 0

    @property
    def privilege(self) -> Privilege | None:
        return self._device.privilege

    @property
    def last_transformed(self) -> tuple[str, ...]:
        return ()

    def is_alive(self) -> bool:
        return self.alive and not self.closed

    def execute(self, line: str, timeout: float) -> str:
        if self.late_output:
            raise SessionOutOfStepError(self.late_output)
        if line == self._device.late_output_after:
            self.late_output = 42
        self._log.append(line)
        self.executed += 1
        if self.drop_on_next:
            self.drop_on_next = False
            self.alive = False
            raise CommandError(ErrorCode.DISCONNECTED, "fake: the device closed the session")
        if self.factory is not None:
            self.factory.enter(self.hostname)
        try:
            deadline = time.monotonic() + self._device.delay
            while self._busy(deadline) and not (self.closed and not self._device.ignores_close):
                time.sleep(0.005)  # a device that answers late; stops early when the session is closed
        finally:
            if self.factory is not None:
                self.factory.leave(self.hostname)
        if not self.alive or self.closed:
            raise CommandError(ErrorCode.DISCONNECTED, "fake: session closed")
        if line in self._device.command_errors:
            raise CommandError(self._device.command_errors[line], "fake failure", output="% fake")
        return self._device.outputs.get(line, f"output of {line}")

    def _busy(self, deadline: float) -> bool:
        held = self._device.hold is not None and not self._device.hold.is_set()
        return held or time.monotonic() < deadline

    def close(self) -> None:
        self.closed = True


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSessionFactory:
    """Records every open and every line, so tests can prove nothing reached a device."""

    def __init__(self, devices: dict[str, FakeDevice] | None = None) -> None:
        self.devices = devices or {}
        self.opened: list[str] = []
        self.lines: list[str] = []
        self.sessions: list[FakeSession] = []
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, hostname: str) -> None:
        with self._lock:
            self.active[hostname] = self.active.get(hostname, 0) + 1
            self.max_active[hostname] = max(self.max_active.get(hostname, 0), self.active[hostname])

    def leave(self, hostname: str) -> None:
        with self._lock:
            self.active[hostname] -= 1

    def open(self, target: DeviceTarget, connect_timeout: float) -> FakeSession:
        with self._lock:
            self.opened.append(target.hostname)
            device = self.devices.setdefault(target.hostname, FakeDevice())
            if device.connect_errors:
                code = device.connect_errors.pop(0)
                raise ConnectError(code, f"fake {code}")
            session = FakeSession(device, self.lines, target.hostname)
            session.factory = self
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
