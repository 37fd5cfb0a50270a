from __future__ import annotations

from typing import Any

import pytest

from service.contract.errors import ErrorCode, PolicyError
from service.contract.messages import CommandSpec, DeviceSpec, ExecuteRequest
from service.domain.models import DeviceOS, OutputFormat, PipeOption, Secret, Timeouts
from service.domain.policy import Limits, build_plan, check_hostname

pytestmark = pytest.mark.unit

LIMITS = Limits(max_devices=5, max_commands=3, max_payload_bytes=10_000, max_command_length=100, command_timeout_max=60)
TIMEOUTS = Timeouts(connect=5, command=10, device=100)


def device(**overrides: Any) -> DeviceSpec:
    values: dict[str, Any] = {"hostname": "r1.example.net", "username": "admin", "password": "pw", "os": "iosxe"}
    values.update(overrides)
    return DeviceSpec(**values)


def request(
    devices: list[DeviceSpec] | None = None, commands: list[CommandSpec] | None = None, **extra: Any
) -> ExecuteRequest:
    return ExecuteRequest(
        devices=devices if devices is not None else [device()],
        commands=commands if commands is not None else [CommandSpec(command="show version")],
        **extra,
    )


def plan_of(req: ExecuteRequest, limits: Limits = LIMITS) -> Any:
    return build_plan(req, requester="alice", request_id="r-1", limits=limits, timeouts=TIMEOUTS)


def refusal(req: ExecuteRequest, limits: Limits = LIMITS) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        plan_of(req, limits)
    return caught.value


def test_a_good_request_becomes_a_plan() -> None:
    plan = plan_of(request(commands=[CommandSpec(command="SHOW  ip   route", pipe_option="include", pipe_value="^O")]))
    assert plan.targets[0].os is DeviceOS.IOSXE
    assert plan.targets[0].password == Secret("pw")
    assert plan.commands[0].line == "show ip route | include ^O"
    assert plan.commands[0].pipe_option is PipeOption.INCLUDE
    assert plan.output_format is OutputFormat.RAW
    assert plan.timeouts.command == 10


def test_request_timeout_overrides_the_default() -> None:
    assert plan_of(request(timeout=42)).timeouts.command == 42


# Every payload here must be refused before any device is touched.
INJECTION_COMMANDS = [
    "configure terminal",
    "conf t",
    "reload",
    "write memory",
    "copy running-config tftp:",
    "sh ver",
    "show",
    "show version; reload",
    "show version && reload",
    "show version | redirect flash:x",
    "show version > flash:x",
    "show version < x",
    "show $(reload)",
    "show `reload`",
    "show version\nconfigure terminal",
    "show version\rreload",
    "show version\r\nend",
    "show version\x00",
    "show version\x1b[A",
    "show version\t",
    "show version\x7f",
    "show version ?",
    "show !reload",
    "show version & reload",
    "show version\u2028reload",
    "show v\u00e9rsion",
    "\nshow version",
    "",
    "   ",
]


@pytest.mark.parametrize("command", INJECTION_COMMANDS)
def test_injection_corpus_commands_are_refused(command: str) -> None:
    error = refusal(request(commands=[CommandSpec(command=command)]))
    assert error.code in {ErrorCode.COMMAND_NOT_ALLOWED, ErrorCode.FORBIDDEN_CHARACTERS}
    assert error.details["rule"]


INJECTION_PIPE_VALUES = [
    "x; reload",
    "x\nconf t",
    "x | redirect y",
    "$(x)",
    "`x`",
    "a > b",
    "a&b",
    "a!b",
    "a?b",
    "a\x00",
]


@pytest.mark.parametrize("value", INJECTION_PIPE_VALUES)
def test_injection_corpus_pipe_values_are_refused(value: str) -> None:
    error = refusal(request(commands=[CommandSpec(command="show version", pipe_option="include", pipe_value=value)]))
    assert error.code is ErrorCode.FORBIDDEN_CHARACTERS


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("username", "-oProxyCommand=reboot", ErrorCode.INVALID_REQUEST),
        ("username", "admin reload", ErrorCode.INVALID_REQUEST),
        ("username", "", ErrorCode.INVALID_REQUEST),
        ("hostname", "-oProxyCommand=x", ErrorCode.INVALID_HOSTNAME),
        ("hostname", "r1 r2", ErrorCode.INVALID_HOSTNAME),
        ("hostname", "r1;reboot", ErrorCode.INVALID_HOSTNAME),
        ("hostname", "", ErrorCode.INVALID_HOSTNAME),
        ("hostname", "a" * 300, ErrorCode.INVALID_HOSTNAME),
        ("password", "pw\rconfigure terminal", ErrorCode.FORBIDDEN_CHARACTERS),
        ("password", "", ErrorCode.INVALID_REQUEST),
        ("enable_password", "en\nreload", ErrorCode.FORBIDDEN_CHARACTERS),
        ("port", 0, ErrorCode.INVALID_PORT),
        ("port", 70000, ErrorCode.INVALID_PORT),
    ],
)
def test_injection_corpus_device_fields_are_refused(field: str, value: Any, code: ErrorCode) -> None:
    error = refusal(request(devices=[device(**{field: value})]))
    assert error.code is code
    assert "pw" not in error.message or field != "password"


@pytest.mark.parametrize("hostname", ["10.1.2.3", "2001:db8::1", "core-sw1", "r1.lab.example.com", "R1"])
def test_good_hostnames(hostname: str) -> None:
    assert check_hostname(hostname) is None


def test_junos_is_refused_with_an_explanation() -> None:
    error = refusal(request(devices=[device(os="junos")]))
    assert error.code is ErrorCode.UNSUPPORTED_OS
    assert "match" in error.message and "iosxe" in error.message


def test_unknown_os_lists_the_supported_ones() -> None:
    error = refusal(request(devices=[device(os="windows")]))
    assert "ios, iosxe, iosxr, nxos, asa" in error.message


def test_os_is_case_insensitive() -> None:
    assert plan_of(request(devices=[device(os="NXOS")])).targets[0].os is DeviceOS.NXOS


@pytest.mark.parametrize("os_name", ["iosxr", "asa"])
def test_section_is_refused_where_the_os_has_none(os_name: str) -> None:
    error = refusal(
        request(
            devices=[device(os=os_name)],
            commands=[CommandSpec(command="show running-config", pipe_option="section", pipe_value="bgp")],
        )
    )
    assert error.code is ErrorCode.UNSUPPORTED_PIPE
    assert os_name in error.message and "include" in error.message


def test_unknown_pipe_option_and_half_pipes() -> None:
    assert refusal(request(commands=[CommandSpec(command="show x", pipe_option="grep", pipe_value="a")])).code is (
        ErrorCode.UNSUPPORTED_PIPE
    )
    assert (
        refusal(request(commands=[CommandSpec(command="show x", pipe_option="include")])).details["rule"] == "pipe_pair"
    )
    assert refusal(request(commands=[CommandSpec(command="show x", pipe_value="a")])).details["rule"] == "pipe_pair"


def test_limits_on_devices_and_commands() -> None:
    assert refusal(request(devices=[device()] * 6)).code is ErrorCode.TOO_MANY_DEVICES
    assert refusal(request(commands=[CommandSpec(command="show version")] * 4)).code is ErrorCode.TOO_MANY_COMMANDS
    assert refusal(request(devices=[])).details["rule"] == "devices_required"
    assert refusal(request(commands=[])).details["rule"] == "commands_required"


def test_command_length_limit() -> None:
    error = refusal(request(commands=[CommandSpec(command="show " + "x" * 200)]))
    assert error.details["rule"] == "command_length"
    at_limit = "show " + "x" * (LIMITS.max_command_length - 5)
    assert plan_of(request(commands=[CommandSpec(command=at_limit)])).commands[0].line == at_limit
    assert refusal(request(commands=[CommandSpec(command=at_limit + "x")])).details["rule"] == "command_length"


def test_pipe_value_length_limit() -> None:
    roomy = Limits(5, 3, 10_000, max_command_length=1000, command_timeout_max=60)
    value = "x" * 200
    plan = plan_of(request(commands=[CommandSpec(command="show x", pipe_option="include", pipe_value=value)]), roomy)
    assert plan.commands[0].pipe_value == value
    error = refusal(
        request(commands=[CommandSpec(command="show x", pipe_option="include", pipe_value=value + "x")]), roomy
    )
    assert error.details["rule"] == "pipe_value_length"


@pytest.mark.parametrize("timeout", [0, -1, 61])
def test_timeout_range(timeout: float) -> None:
    assert refusal(request(timeout=timeout)).code is ErrorCode.INVALID_TIMEOUT


def test_feature_flags() -> None:
    off = Limits(1, 1, 1000, 100, 10, parsing_enabled=False, streaming_enabled=False)
    assert refusal(request(output_format="parsed"), off).code is ErrorCode.FEATURE_DISABLED
    assert refusal(request(stream=True), off).details["rule"] == "streaming_disabled"


def test_every_problem_is_listed() -> None:
    error = refusal(
        request(
            devices=[device(os="junos"), device(port=0)],
            commands=[CommandSpec(command="reload"), CommandSpec(command="show x; y")],
        )
    )
    rules = {p["rule"] for p in error.details["problems"]}
    assert rules == {"supported_os", "port", "show_only", "forbidden_characters"}
    assert "(and 3 more problems)" in error.message
