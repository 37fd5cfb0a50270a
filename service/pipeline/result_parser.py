"""Redacts and parses one device's result after its device work is done.

It runs on the scheduler's small parsing pool, never on a device worker thread.
"""

from __future__ import annotations

import msgspec
from loguru import logger

from service.contract.messages import DeviceResult
from service.domain.models import DeviceOS, OutputFormat, ParseStatus
from service.domain.redaction import DEFAULT_REDACTOR, Redactor
from service.pipeline.ports import OutputParser


class ResultParser:
    """Redacts, then parses a device result; runs on its own small pool, not on device workers.

    Redaction comes first, so neither the output nor the parsed data carries a secret.
    """

    def __init__(self, parser: OutputParser, max_bytes: int, redactor: Redactor | None = None) -> None:
        self._parser = parser
        self._max_bytes = max_bytes
        self._redactor = redactor or DEFAULT_REDACTOR

    def apply(self, result: DeviceResult, output_format: OutputFormat, redact: bool = True) -> DeviceResult:
        if redact:
            result = self._redact(result)
        if not output_format.wants_parse:
            return result
        commands = []
        for command in result.commands:
            if not command.success or command.output is None:
                commands.append(command)
                continue
            message: str | None
            if len(command.output) > self._max_bytes:
                status, parsed = ParseStatus.TOO_LARGE.value, None
                message = f"output is {len(command.output)} bytes; parsing stops at {self._max_bytes}"
            else:
                outcome = self._parser.parse(DeviceOS(result.os), command.command, command.output)
                status, parsed = outcome.status.value, outcome.parsed
                message = outcome.message if outcome.status is not ParseStatus.OK else None
            keep_raw = output_format.wants_raw or parsed is None
            commands.append(
                msgspec.structs.replace(
                    command,
                    output=command.output if keep_raw else None,
                    parsed=parsed,
                    parse_status=status,
                    parse_error=message,
                )
            )
        return msgspec.structs.replace(result, commands=commands)

    def _redact(self, result: DeviceResult) -> DeviceResult:
        os_name = DeviceOS(result.os)
        commands = []
        for command in result.commands:
            redacted = command
            if command.output:
                redaction = self._redactor.redact(os_name, command.output)
                if redaction.count:
                    kinds = ", ".join(sorted(redaction.kinds))
                    logger.info("redacted {} secret(s) ({}) in {!r}", redaction.count, kinds, command.command)
                    redacted = msgspec.structs.replace(command, output=redaction.text)
            commands.append(redacted)
        return msgspec.structs.replace(result, commands=commands)
