"""Everything that happens to one device, in one worker thread: login, then each command.

A failed device is data: every path returns a ``DeviceResult``; nothing raises out.
Parsing is not done here (see ``ResultParser``): a worker and the device's VTY line are
freed as soon as the last output has arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec
from loguru import logger

from service.contract.errors import CommandError, ConnectError, DeviceError, ErrorCode, SessionOutOfStepError
from service.contract.messages import CommandResult, DeviceResult
from service.domain.models import DeviceTarget, Privilege, ShowCommand, Timeouts
from service.pipeline.ports import DeviceSession
from service.pipeline.session_pool import SessionPool

RETRYABLE_CONNECT = frozenset({ErrorCode.CONNECT_REFUSED, ErrorCode.CONNECT_TIMEOUT, ErrorCode.OVERLOADED})

# (request id, device, seconds, reused): told after every session that became usable, for the
# connect histogram and the login counters (a device worker passes them on to its front).
ConnectObserver = Callable[[str, DeviceTarget, float, bool], None]


class AbortHandle:
    """Lets the event loop tear down a session whose worker is past its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: DeviceSession | None = None
        self.aborted = False

    def attach(self, session: DeviceSession | None) -> None:
        with self._lock:
            self._session = session
            if self.aborted and session is not None:
                session.close()

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            session, self._session = self._session, None
        if session is not None:
            session.close()


@dataclass(slots=True)
class _DeviceRun:
    """One device's run in progress: the session may be replaced by a fresh login on the way."""

    target: DeviceTarget
    timeouts: Timeouts
    deadline: float
    abort: AbortHandle
    session: DeviceSession
    reused: bool
    results: list[CommandResult] = field(default_factory=list)
    healthy: bool = True
    login_lost: DeviceError | None = None


class DeviceRunner:
    """Runs a plan's commands on one device, with connect retries, warm sessions and deadlines."""

    def __init__(
        self,
        pool: SessionPool,
        connect_retries: int,
        connect_retry_delay: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_connect: ConnectObserver | None = None,
    ) -> None:
        self._pool = pool
        self._on_connect = on_connect
        self._retries = connect_retries
        self._retry_delay = connect_retry_delay
        self._sleep = sleep
        self._clock = clock

    def run(
        self,
        request_id: str,
        target: DeviceTarget,
        commands: Sequence[ShowCommand],
        timeouts: Timeouts,
        abort: AbortHandle | None = None,
    ) -> DeviceResult:
        abort = abort or AbortHandle()
        started = self._clock()
        deadline = started + timeouts.device
        try:
            session, reused = self._open(target, timeouts, deadline)
        except DeviceError as exc:
            logger.warning("login failed: {} ({})", exc.message, exc.code)
            return device_result(request_id, target, [], self._clock() - started, exc)
        if self._on_connect is not None:
            self._on_connect(request_id, target, self._clock() - started, reused)
        abort.attach(session)
        run = _DeviceRun(target, timeouts, deadline, abort, session, reused)
        self._run_commands(run, commands)
        if run.login_lost is not None:  # a fresh login, needed to go on, failed
            return device_result(request_id, target, run.results, self._clock() - started, run.login_lost)
        abort.attach(None)
        self._pool.release(target, run.session, run.healthy and not abort.aborted)
        return device_result(request_id, target, run.results, self._clock() - started, None, run.session.privilege)

    def _run_commands(self, run: _DeviceRun, commands: Sequence[ShowCommand]) -> None:
        """Each command in turn until the session breaks; those left are reported as not run."""
        for index, command in enumerate(commands):
            outcome = self._run_once(run, command, first=index == 0)
            if outcome is None:
                return
            result, broken = outcome
            run.results.append(result)
            if broken:
                run.healthy = False
                break
        run.results.extend(
            CommandResult(
                command=command.line,
                success=False,
                error="not run: the session to the device was lost",
                error_code=ErrorCode.DISCONNECTED,
            )
            for command in commands[len(run.results) :]
        )

    def _run_once(self, run: _DeviceRun, command: ShowCommand, *, first: bool) -> tuple[CommandResult, bool] | None:
        """One command, rerun on a fresh login when the session proved stale; None when that
        login failed (``run.login_lost``)."""
        try:
            result, broken = self._run_command(run.session, command, run.timeouts, run.deadline, run.abort)
        except SessionOutOfStepError as exc:
            # late output of an earlier command: never part of this one; the session is dropped
            logger.warning("{}; {!r} runs on a fresh login", exc.message, command.line)
            if run.results:
                run.results[-1] = possibly_cut(run.results[-1])
            return self._rerun(run, command)
        if broken and run.reused and first and not run.abort.aborted:
            # the device closed a warm session while it sat idle: show commands are safe to retry once
            logger.info("warm session was closed by the device; retrying on a fresh login")
            return self._rerun(run, command)
        return result, broken

    def _rerun(self, run: _DeviceRun, command: ShowCommand) -> tuple[CommandResult, bool] | None:
        try:
            run.session = self._replace(run.session, run.target, run.timeouts, run.deadline, run.abort)
        except DeviceError as exc:
            run.login_lost = exc
            return None
        run.reused = False
        return self._run_command(run.session, command, run.timeouts, run.deadline, run.abort)

    def _replace(
        self, session: DeviceSession, target: DeviceTarget, timeouts: Timeouts, deadline: float, abort: AbortHandle
    ) -> DeviceSession:
        """Close ``session`` and log in afresh within the device deadline."""
        session.close()
        try:
            fresh = self._pool.acquire_fresh(target, min(timeouts.connect, max(deadline - self._clock(), 0.001)))
        except DeviceError:
            abort.attach(None)
            raise
        abort.attach(fresh)
        return fresh

    def _open(self, target: DeviceTarget, timeouts: Timeouts, deadline: float) -> tuple[DeviceSession, bool]:
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            try:
                return self._pool.acquire(target, min(timeouts.connect, max(remaining, 0.001)))
            except ConnectError as exc:
                if exc.code not in RETRYABLE_CONNECT or attempt > self._retries or self._clock() + delay >= deadline:
                    raise
                logger.info("connect attempt {} failed ({}); retrying in {:.1f}s", attempt, exc.code, delay)
                self._sleep(delay)
                delay *= 2

    def _run_command(
        self,
        session: DeviceSession,
        command: ShowCommand,
        timeouts: Timeouts,
        deadline: float,
        abort: AbortHandle,
    ) -> tuple[CommandResult, bool]:
        """One command; the flag says the session can no longer be trusted."""
        started = self._clock()
        line = command.line
        remaining = deadline - started
        if remaining <= 0 or abort.aborted:
            return (
                CommandResult(
                    command=line,
                    success=False,
                    error="the device deadline passed before this command could run",
                    error_code=ErrorCode.DEVICE_TIMEOUT,
                ),
                True,
            )
        try:
            output = session.execute(line, min(timeouts.command, remaining))
        except SessionOutOfStepError:
            raise
        except CommandError as exc:
            error = exc
            if abort.aborted or (exc.code is ErrorCode.COMMAND_TIMEOUT and remaining < timeouts.command):
                error = CommandError(ErrorCode.DEVICE_TIMEOUT, "the device deadline passed during this command")
            logger.warning("command failed: {} ({})", error.message, error.code)
            broken = error.code not in (ErrorCode.INVALID_COMMAND, ErrorCode.NOT_AUTHORIZED)
            return (
                CommandResult(
                    command=line,
                    success=False,
                    output=error.output,
                    error=error.message,
                    error_code=error.code,
                    duration_s=round(self._clock() - started, 4),
                ),
                broken,
            )
        return CommandResult(
            command=line,
            success=True,
            output=output,
            duration_s=round(self._clock() - started, 4),
            transformed=list(session.last_transformed) or None,
        ), False


def possibly_cut(result: CommandResult) -> CommandResult:
    """The device went on sending after this output's prompt: it may be cut short."""
    return msgspec.structs.replace(
        result,
        complete=False,
        incomplete_reason="the device sent more text after this output's prompt; the output may be cut short",
    )


def device_result(
    request_id: str,
    target: DeviceTarget,
    commands: list[CommandResult],
    duration: float,
    error: DeviceError | None,
    privilege: Privilege | None = None,
) -> DeviceResult:
    failed = [c for c in commands if not c.success]
    code: str | None = None
    message: str | None = None
    if error is not None:
        code, message = error.code, error.message
    elif failed:
        code, message = failed[0].error_code, f"{len(failed)} of {len(commands)} commands failed"
    return DeviceResult(
        request_id=request_id,
        hostname=target.hostname,
        port=target.port,
        os=target.os.value,
        success=error is None and not failed,
        commands=commands,
        error=message,
        error_code=code,
        duration_s=round(duration, 4),
        privilege=_PRIVILEGE_ON_WIRE[privilege],
    )


_PRIVILEGE_ON_WIRE: dict[Privilege | None, Literal["user", "enabled"] | None] = {
    Privilege.USER: "user",
    Privilege.ENABLED: "enabled",
    None: None,
}
