"""One exception tree; every error carries a stable code.

::

    PyatsRoError                  code, message, details
    ├── RequestError              the request is refused before any device is touched
    │   └── PolicyError           a safety or limit rule refused it (names the rule)
    ├── DeviceError               one device failed; becomes data in its result
    │   ├── ConnectError          auth_failed, connect_refused, connect_timeout, connect_failed
    │   └── CommandError          command_timeout, disconnected, invalid_command, not_authorized, ...
    │       └── SessionOutOfStepError an earlier output arrived late; the command reruns on a fresh login
    └── ConfigError               a setting is invalid at start-up (names the variable)

Adapters turn library exceptions into these in one place (``raise ... from exc``);
messages never contain secrets, tracebacks or ``repr`` of library objects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable machine-readable codes; part of the wire contract (additive only)."""

    # the request is refused: nothing is sent to any device
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TOO_MANY_DEVICES = "too_many_devices"
    TOO_MANY_COMMANDS = "too_many_commands"
    COMMAND_NOT_ALLOWED = "command_not_allowed"
    FORBIDDEN_CHARACTERS = "forbidden_characters"
    UNSUPPORTED_PIPE = "unsupported_pipe"
    UNSUPPORTED_OS = "unsupported_os"
    INVALID_HOSTNAME = "invalid_hostname"
    INVALID_PORT = "invalid_port"
    INVALID_TIMEOUT = "invalid_timeout"
    UNKNOWN_DEVICE = "unknown_device"
    FEATURE_DISABLED = "feature_disabled"
    OUTPUT_NOT_FOUND = "output_not_found"
    REPLY_FORBIDDEN = "reply_forbidden"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # one device failed; the others go on
    AUTH_FAILED = "auth_failed"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_FAILED = "connect_failed"
    # a login cut short by load, not by the device's answer: retried like a timeout
    OVERLOADED = "overloaded"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    COMMAND_TIMEOUT = "command_timeout"
    DISCONNECTED = "disconnected"
    INVALID_COMMAND = "invalid_command"
    NOT_AUTHORIZED = "not_authorized"
    COMMAND_FAILED = "command_failed"
    OUTPUT_TOO_LARGE = "output_too_large"
    DEVICE_TIMEOUT = "device_timeout"
    QUEUE_TIMEOUT = "queue_timeout"
    REQUEST_TIMEOUT = "request_timeout"
    # schedules (<prefix>.schedules.<requester>)
    INVALID_SCHEDULE = "invalid_schedule"
    SCHEDULE_NOT_FOUND = "schedule_not_found"
    SCHEDULE_EXISTS = "schedule_exists"
    # the service itself
    CONFIG_INVALID = "config_invalid"
    INTERNAL_ERROR = "internal_error"


# NATS micro wants a numeric status in Nats-Service-Error-Code; HTTP semantics are familiar.
_STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.FEATURE_DISABLED: 403,
    ErrorCode.COMMAND_NOT_ALLOWED: 403,
    ErrorCode.OUTPUT_NOT_FOUND: 404,
    ErrorCode.REPLY_FORBIDDEN: 403,
    ErrorCode.SCHEDULE_NOT_FOUND: 404,
    ErrorCode.SCHEDULE_EXISTS: 409,
}


def status_for(code: ErrorCode) -> int:
    """Numeric status for the ``Nats-Service-Error-Code`` header."""
    return _STATUS_BY_CODE.get(code, 400)


class PyatsRoError(Exception):
    """Root of every error the service raises on purpose."""

    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class RequestError(PyatsRoError):
    """The request cannot be served as sent; the requester must change it."""


class PolicyError(RequestError):
    """A safety rule or limit refused the request; ``details['rule']`` names it."""


class DeviceError(PyatsRoError):
    """One device (or one command on it) failed."""


class ConnectError(DeviceError):
    """Login to the device failed: refused, timed out, or credentials rejected."""


class CommandError(DeviceError):
    """A command failed after login; ``output`` holds what the device printed, if anything."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        output: str | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.output = output


class SessionOutOfStepError(CommandError):
    """Before a command, the session held output nobody asked for: an earlier output went on
    after the reader stopped. The session is dropped; the command runs on a fresh login."""

    def __init__(self, leftover: int) -> None:
        super().__init__(
            ErrorCode.DISCONNECTED,
            f"the session held {leftover} characters of an earlier output; it was closed",
        )
        self.leftover = leftover


class ConfigError(PyatsRoError):
    """A setting is invalid; the message names the environment variable."""
