"""The safety rules: what may reach a device at all, checked before anything does.

Every refusal names its rule, so a requester knows what to change. All problems of a
request are reported at once; the first one sets the error code.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from service.contract.errors import ErrorCode, PolicyError
from service.contract.messages import CommandSpec, DeviceSpec, ExecuteRequest
from service.domain.inventory import Inventory
from service.domain.models import (
    DeviceOS,
    DeviceTarget,
    ExecutionPlan,
    OutputFormat,
    PipeOption,
    Secret,
    ShowCommand,
    Timeouts,
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_devices: int
    max_commands: int
    max_payload_bytes: int
    max_command_length: int
    command_timeout_max: float
    parsing_enabled: bool = True
    streaming_enabled: bool = True
    inline_credentials: bool = True


# Shell and CLI metacharacters: chaining, redirection, substitution, history, and '?' (CLI help).
FORBIDDEN_CHARACTERS = frozenset(";|&$`><!?")

PIPES_BY_OS: dict[DeviceOS, frozenset[PipeOption]] = {
    DeviceOS.IOS: frozenset(PipeOption),
    DeviceOS.IOSXE: frozenset(PipeOption),
    DeviceOS.NXOS: frozenset(PipeOption),
    DeviceOS.IOSXR: frozenset({PipeOption.INCLUDE, PipeOption.EXCLUDE, PipeOption.BEGIN}),
    DeviceOS.ASA: frozenset({PipeOption.INCLUDE, PipeOption.EXCLUDE, PipeOption.BEGIN}),
}

_NOT_CISCO_OS = {
    "junos": "Junos is not supported: this service speaks Cisco CLI only, and Junos filters output with "
    "'| match', not '| include'.",
    "eos": "Arista EOS is not supported: this service speaks Cisco CLI only.",
}

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\\-]{0,63}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_PIPE_VALUE = 200
_MAX_SECRET = 1024


@dataclass(frozen=True, slots=True)
class Problem:
    code: ErrorCode
    rule: str
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "rule": self.rule, "path": self.path, "message": self.message}


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029"


def _character_problem(text: str, path: str) -> Problem | None:
    for char in text:
        if char in FORBIDDEN_CHARACTERS:
            return Problem(
                ErrorCode.FORBIDDEN_CHARACTERS,
                "forbidden_characters",
                path,
                f"character {char!r} is not allowed (refused: {' '.join(sorted(FORBIDDEN_CHARACTERS))}); "
                "use pipe_option and pipe_value to filter output",
            )
        if _is_control(char) or not char.isprintable():
            return Problem(
                ErrorCode.FORBIDDEN_CHARACTERS,
                "control_characters",
                path,
                f"control or non-printable character U+{ord(char):04X} is not allowed",
            )
        if not char.isascii():
            return Problem(
                ErrorCode.FORBIDDEN_CHARACTERS, "ascii_only", path, "only ASCII characters are allowed in CLI input"
            )
    return None


def check_hostname(hostname: str) -> str | None:
    """Return why ``hostname`` is not an IP address or a DNS name, or None."""
    if not hostname:
        return "hostname is empty"
    try:
        ipaddress.ip_address(hostname)
        return None
    except ValueError:
        pass
    if len(hostname) > 253:
        return "hostname is longer than 253 characters"
    labels = hostname.rstrip(".").split(".")
    if all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit():
        return None
    return "hostname must be an IPv4/IPv6 address or a DNS name (letters, digits, '-' and '.')"


def _secret_problem(value: str, path: str) -> Problem | None:
    if not value:
        return Problem(ErrorCode.INVALID_REQUEST, "secret_required", path, "must not be empty")
    if len(value) > _MAX_SECRET:
        return Problem(ErrorCode.INVALID_REQUEST, "secret_length", path, f"longer than {_MAX_SECRET} characters")
    if any(_is_control(c) for c in value):
        # A newline in a password would be typed into the device as a second line.
        return Problem(ErrorCode.FORBIDDEN_CHARACTERS, "control_characters", path, "control characters are not allowed")
    return None


def _inline_problems(spec: DeviceSpec, path: str) -> list[Problem]:
    problems: list[Problem] = []
    missing = [f for f in ("hostname", "username", "password", "os") if getattr(spec, f) is None]
    if missing:
        return [
            Problem(
                ErrorCode.INVALID_REQUEST,
                "device_fields",
                f"{path}.{missing[0]}",
                f"an inline device needs hostname, username, password and os (missing: {', '.join(missing)}); "
                "or name an inventory device with 'name' or 'group'",
            )
        ]
    assert spec.hostname is not None and spec.username is not None and spec.os is not None
    why = check_hostname(spec.hostname)
    if why:
        problems.append(Problem(ErrorCode.INVALID_HOSTNAME, "hostname", f"{path}.hostname", why))
    if spec.port is not None and not 1 <= spec.port <= 65535:
        problems.append(Problem(ErrorCode.INVALID_PORT, "port", f"{path}.port", "port must be between 1 and 65535"))
    if not _USERNAME.match(spec.username):
        problems.append(
            Problem(
                ErrorCode.INVALID_REQUEST,
                "username",
                f"{path}.username",
                "username must be 1-64 of letters, digits, '_', '.', '@', '\\', '-' and not start with '-' or '.'",
            )
        )
    for name in ("password", "enable_password"):
        value = getattr(spec, name)
        if value is not None:
            problem = _secret_problem(value, f"{path}.{name}")
            if problem:
                problems.append(problem)
    os_name = spec.os.strip().lower()
    if os_name not in set(DeviceOS):
        explanation = _NOT_CISCO_OS.get(os_name, f"os {spec.os!r} is not supported")
        problems.append(
            Problem(
                ErrorCode.UNSUPPORTED_OS,
                "supported_os",
                f"{path}.os",
                f"{explanation}; supported: {', '.join(DeviceOS)}",
            )
        )
    return problems


def _resolve_devices(
    spec: DeviceSpec, path: str, inventory: Inventory | None, inline_allowed: bool
) -> tuple[list[DeviceTarget], list[Problem]]:
    """One request entry to targets: inline credentials, or inventory names, globs and groups."""
    reference = spec.name is not None or spec.group is not None
    inline = any(
        getattr(spec, f) is not None for f in ("hostname", "username", "password", "os", "port", "enable_password")
    )
    if reference and inline:
        return [], [
            Problem(
                ErrorCode.INVALID_REQUEST,
                "device_reference",
                path,
                "give either an inventory reference (name or group) or inline device fields, not both",
            )
        ]
    if not reference:
        if not inline_allowed:
            return [], [
                Problem(
                    ErrorCode.FEATURE_DISABLED,
                    "inline_credentials",
                    path,
                    "this service accepts no credentials in requests; name inventory devices with 'name' or 'group'",
                )
            ]
        problems = _inline_problems(spec, path)
        if problems:
            return [], problems
        assert spec.hostname and spec.username and spec.password and spec.os
        return [
            DeviceTarget(
                hostname=spec.hostname,
                port=spec.port if spec.port is not None else 22,
                os=DeviceOS(spec.os.strip().lower()),
                username=spec.username,
                password=Secret(spec.password),
                enable_password=Secret(spec.enable_password) if spec.enable_password else None,
            )
        ], []
    if inventory is None:
        return [], [
            Problem(
                ErrorCode.FEATURE_DISABLED, "inventory", path, "this service has no inventory (PYATS_INVENTORY_FILE)"
            )
        ]
    if spec.name is not None and spec.group is not None:
        return [], [Problem(ErrorCode.INVALID_REQUEST, "device_reference", path, "give name or group, not both")]
    found = inventory.by_name(spec.name) if spec.name is not None else inventory.by_group(spec.group or "")
    if not found:
        what = f"name {spec.name!r}" if spec.name is not None else f"group {spec.group!r}"
        return [], [Problem(ErrorCode.UNKNOWN_DEVICE, "inventory", path, f"no inventory device matches {what}")]
    return [device.target() for device in found], []


def _command_problems(spec: CommandSpec, path: str, limits: Limits) -> tuple[ShowCommand | None, list[Problem]]:
    text = " ".join(spec.command.split())
    problem = _show_problem(spec.command, text, f"{path}.command")
    if problem:
        return None, [problem]
    pipe_option, pipe_value, problems = _pipe_of(spec, path)
    if problems:
        return None, problems
    command = ShowCommand("show" + text[4:], pipe_option, pipe_value)
    if len(command.line) > limits.max_command_length:
        return None, [
            Problem(
                ErrorCode.INVALID_REQUEST,
                "command_length",
                f"{path}.command",
                f"command line is longer than {limits.max_command_length} characters",
            )
        ]
    return command, []


def _show_problem(command: str, text: str, path: str) -> Problem | None:
    """Why ``command`` (``text`` is it with spaces folded) is not a plain show command, or None."""
    problem = _character_problem(command, path)
    if problem:
        return problem
    words = text.split(" ")
    if words[0].lower() != "show" or len(words) < 2:
        return Problem(
            ErrorCode.COMMAND_NOT_ALLOWED,
            "show_only",
            path,
            "only show commands are allowed: begin with the full word 'show' followed by what to show",
        )
    return None


def _pipe_of(spec: CommandSpec, path: str) -> tuple[PipeOption | None, str | None, list[Problem]]:
    """The command's output filter: both halves or neither, a known option, a safe value."""
    if spec.pipe_option is None and spec.pipe_value is None:
        return None, None, []
    if spec.pipe_option is None or not spec.pipe_value:
        return (
            None,
            None,
            [
                Problem(
                    ErrorCode.INVALID_REQUEST,
                    "pipe_pair",
                    f"{path}.pipe_option",
                    "pipe_option and pipe_value go together: give both or neither",
                )
            ],
        )
    problems: list[Problem] = []
    try:
        pipe_option: PipeOption | None = PipeOption(spec.pipe_option.strip().lower())
    except ValueError:
        pipe_option = None
        problems.append(
            Problem(
                ErrorCode.UNSUPPORTED_PIPE,
                "pipe_option",
                f"{path}.pipe_option",
                f"pipe option {spec.pipe_option!r} is not one of {', '.join(PipeOption)}",
            )
        )
    value_problem = _pipe_value_problem(spec.pipe_value, f"{path}.pipe_value")
    if value_problem:
        problems.append(value_problem)
    return pipe_option, spec.pipe_value.strip(), problems


def _pipe_value_problem(value: str, path: str) -> Problem | None:
    problem = _character_problem(value, path)
    if problem is None and len(value) > _MAX_PIPE_VALUE:
        problem = Problem(
            ErrorCode.INVALID_REQUEST,
            "pipe_value_length",
            path,
            f"pipe_value is longer than {_MAX_PIPE_VALUE} characters",
        )
    return problem


def _raise(problems: list[Problem]) -> None:
    if problems:
        first = problems[0]
        message = first.message if len(problems) == 1 else f"{first.message} (and {len(problems) - 1} more problems)"
        raise PolicyError(
            first.code,
            f"{first.path}: {message}",
            {"rule": first.rule, "problems": [p.as_dict() for p in problems[:50]]},
        )


def build_plan(
    request: ExecuteRequest,
    *,
    requester: str,
    request_id: str,
    limits: Limits,
    timeouts: Timeouts,
    inventory: Inventory | None = None,
) -> ExecutionPlan:
    """Check every rule and return a plan; raise ``PolicyError`` listing every problem."""
    _raise(_size_problems(request, limits))  # size problems first: do not walk a huge request
    output_format = OutputFormat(request.output_format)
    problems = _option_problems(request, output_format, limits)
    targets, device_problems = _targets(request, inventory, limits)
    commands, command_problems = _commands(request, limits)
    _raise([*problems, *device_problems, *command_problems, *_pipe_problems(targets, commands)])
    return ExecutionPlan(
        request_id=request_id,
        requester=requester,
        targets=tuple(targets),
        commands=tuple(commands),
        output_format=output_format,
        timeouts=Timeouts(
            connect=timeouts.connect,
            command=request.timeout if request.timeout is not None else timeouts.command,
            device=timeouts.device,
        ),
        stream=request.stream,
    )


def _size_problems(request: ExecuteRequest, limits: Limits) -> list[Problem]:
    """At least one device and one command, and not more than the limits."""
    problems: list[Problem] = []
    if not request.devices:
        problems.append(Problem(ErrorCode.INVALID_REQUEST, "devices_required", "$.devices", "name at least one device"))
    if len(request.devices) > limits.max_devices:
        problems.append(
            Problem(
                ErrorCode.TOO_MANY_DEVICES,
                "max_devices",
                "$.devices",
                f"{len(request.devices)} devices; at most {limits.max_devices} per request",
            )
        )
    if not request.commands:
        problems.append(
            Problem(ErrorCode.INVALID_REQUEST, "commands_required", "$.commands", "name at least one command")
        )
    if len(request.commands) > limits.max_commands:
        problems.append(
            Problem(
                ErrorCode.TOO_MANY_COMMANDS,
                "max_commands",
                "$.commands",
                f"{len(request.commands)} commands; at most {limits.max_commands} per request",
            )
        )
    return problems


def _option_problems(request: ExecuteRequest, output_format: OutputFormat, limits: Limits) -> list[Problem]:
    """The request-wide options: a timeout in range, and only features this service has on."""
    problems: list[Problem] = []
    if request.timeout is not None and not 0 < request.timeout <= limits.command_timeout_max:
        problems.append(
            Problem(
                ErrorCode.INVALID_TIMEOUT,
                "timeout_range",
                "$.timeout",
                f"timeout must be greater than 0 and at most {limits.command_timeout_max} seconds",
            )
        )
    if output_format.wants_parse and not limits.parsing_enabled:
        problems.append(
            Problem(
                ErrorCode.FEATURE_DISABLED,
                "parsing_disabled",
                "$.output_format",
                "parsing is turned off on this service",
            )
        )
    if request.stream and not limits.streaming_enabled:
        problems.append(
            Problem(
                ErrorCode.FEATURE_DISABLED,
                "streaming_disabled",
                "$.stream",
                "streamed replies are turned off on this service",
            )
        )
    return problems


def _targets(
    request: ExecuteRequest, inventory: Inventory | None, limits: Limits
) -> tuple[list[DeviceTarget], list[Problem]]:
    """Every device the request names, once each, within the device limit."""
    problems: list[Problem] = []
    targets: list[DeviceTarget] = []
    seen: set[tuple[str, int, str]] = set()
    for index, spec in enumerate(request.devices):
        resolved, device_problems = _resolve_devices(spec, f"$.devices[{index}]", inventory, limits.inline_credentials)
        problems.extend(device_problems)
        is_reference = spec.name is not None or spec.group is not None
        for target in resolved:
            key = (target.hostname, target.port, target.username)
            if is_reference and key in seen:
                continue  # a glob and a group may name the same device twice
            seen.add(key)
            targets.append(target)
    if len(targets) > limits.max_devices:
        problems.append(
            Problem(
                ErrorCode.TOO_MANY_DEVICES,
                "max_devices",
                "$.devices",
                f"the request names {len(targets)} devices; at most {limits.max_devices} per request",
            )
        )
    return targets, problems


def _commands(request: ExecuteRequest, limits: Limits) -> tuple[list[ShowCommand], list[Problem]]:
    problems: list[Problem] = []
    commands: list[ShowCommand] = []
    for index, command_spec in enumerate(request.commands):
        command, command_problems = _command_problems(command_spec, f"$.commands[{index}]", limits)
        problems.extend(command_problems)
        if command is not None:
            commands.append(command)
    return commands, problems


def _pipe_problems(targets: list[DeviceTarget], commands: list[ShowCommand]) -> list[Problem]:
    """Pipe options that some target's OS lacks (IOS XR and ASA have no ``| section``)."""
    problems: list[Problem] = []
    for os_name in sorted({target.os for target in targets}):
        allowed = PIPES_BY_OS[os_name]
        for index, command in enumerate(commands):
            if command.pipe_option is not None and command.pipe_option not in allowed:
                problems.append(
                    Problem(
                        ErrorCode.UNSUPPORTED_PIPE,
                        "pipe_for_os",
                        f"$.commands[{index}].pipe_option",
                        f"'| {command.pipe_option}' is not available on {os_name}; "
                        f"{os_name} supports: {', '.join(sorted(allowed))}",
                    )
                )
    return problems


def check_request_id(value: str) -> str | None:
    """Why a caller-chosen request id is unusable, or None."""
    if _REQUEST_ID.match(value):
        return None
    return "request_id must be 1-64 characters of letters, digits, '_' and '-'"
