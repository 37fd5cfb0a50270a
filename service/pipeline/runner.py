"""Everything that happens to one device, in one worker thread: login, commands, parse.

A failed device is data: every path returns a ``DeviceResult``; nothing raises out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from loguru import logger

from service.contract.messages import CommandResult, DeviceResult
from service.domain.models import DeviceTarget, OutputFormat, ParseStatus, ShowCommand, Timeouts
from service.errors import CommandError, ConnectError, DeviceError, ErrorCode
from service.pipeline.ports import DeviceSession, DeviceSessionFactory, OutputParser

RETRYABLE_CONNECT = frozenset({ErrorCode.CONNECT_REFUSED, ErrorCode.CONNECT_TIMEOUT})


class DeviceRunner:
    """Runs a plan's commands on one device, with connect retries and deadlines."""

    def __init__(
        self,
        factory: DeviceSessionFactory,
        parser: OutputParser,
        connect_retries: int,
        connect_retry_delay: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._parser = parser
        self._retries = connect_retries
        self._retry_delay = connect_retry_delay
        self._sleep = sleep
        self._clock = clock

    def run(
        self,
        request_id: str,
        target: DeviceTarget,
        commands: Sequence[ShowCommand],
        output_format: OutputFormat,
        timeouts: Timeouts,
    ) -> DeviceResult:
        started = self._clock()
        deadline = started + timeouts.device
        try:
            session = self._open(target, timeouts, deadline)
        except DeviceError as exc:
            logger.warning("login failed: {} ({})", exc.message, exc.code)
            return self._device_result(request_id, target, [], started, exc)
        try:
            results = [
                self._run_command(session, target, command, output_format, timeouts, deadline) for command in commands
            ]
        finally:
            session.close()
        return self._device_result(request_id, target, results, started, None)

    def _open(self, target: DeviceTarget, timeouts: Timeouts, deadline: float) -> DeviceSession:
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            try:
                return self._factory.open(target, min(timeouts.connect, max(remaining, 0.001)))
            except ConnectError as exc:
                if exc.code not in RETRYABLE_CONNECT or attempt > self._retries or self._clock() + delay >= deadline:
                    raise
                logger.info("connect attempt {} failed ({}); retrying in {:.1f}s", attempt, exc.code, delay)
                self._sleep(delay)
                delay *= 2

    def _run_command(
        self,
        session: DeviceSession,
        target: DeviceTarget,
        command: ShowCommand,
        output_format: OutputFormat,
        timeouts: Timeouts,
        deadline: float,
    ) -> CommandResult:
        started = self._clock()
        line = command.line
        remaining = deadline - started
        if remaining <= 0:
            return CommandResult(
                command=line,
                success=False,
                error="the device deadline passed before this command could run",
                error_code=ErrorCode.DEVICE_TIMEOUT,
            )
        try:
            output = session.execute(line, min(timeouts.command, remaining))
        except CommandError as exc:
            logger.warning("command failed: {} ({})", exc.message, exc.code)
            return CommandResult(
                command=line,
                success=False,
                output=exc.output,
                error=exc.message,
                error_code=exc.code,
                duration_s=round(self._clock() - started, 4),
            )
        parsed = parse_status = parse_error = None
        if output_format.wants_parse:
            outcome = self._parser.parse(target.os, line, output)
            parse_status = outcome.status.value
            parsed = outcome.parsed
            parse_error = outcome.message if outcome.status is not ParseStatus.OK else None
        keep_raw = output_format.wants_raw or parsed is None
        return CommandResult(
            command=line,
            success=True,
            output=output if keep_raw else None,
            parsed=parsed,
            parse_status=parse_status,
            parse_error=parse_error,
            duration_s=round(self._clock() - started, 4),
        )

    def _device_result(
        self,
        request_id: str,
        target: DeviceTarget,
        commands: list[CommandResult],
        started: float,
        error: DeviceError | None,
    ) -> DeviceResult:
        failed = [c for c in commands if not c.success]
        if error is not None:
            code: str | None = error.code
            message: str | None = error.message
        elif failed:
            code = failed[0].error_code
            message = f"{len(failed)} of {len(commands)} commands failed"
        else:
            code = message = None
        return DeviceResult(
            request_id=request_id,
            hostname=target.hostname,
            port=target.port,
            os=target.os.value,
            success=error is None and not failed,
            commands=commands,
            error=message,
            error_code=code,
            duration_s=round(self._clock() - started, 4),
        )
