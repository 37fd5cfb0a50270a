"""The device layer (Unicon over SSH, both backends) against Cisco's own Unicon mock devices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.contract.errors import CommandError, ErrorCode
from service.device.genie_parser import GenieOutputParser
from service.device.unicon_session import UniconSessionFactory
from service.devtools.lab.runner import LabProcess
from service.domain.models import DeviceOS, DeviceTarget
from tests.mockdevice.cases import MOCK_CASES, MockCase

pytestmark = pytest.mark.mockdevice


@pytest.fixture(scope="module")
def parser() -> GenieOutputParser:
    return GenieOutputParser()


def dig(parsed: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = parsed
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("case", [case.param() for case in MOCK_CASES])
def test_login_two_show_commands_and_their_parse(
    factory: UniconSessionFactory,
    mock_target: Callable[[MockCase], DeviceTarget],
    parser: GenieOutputParser,
    lab: LabProcess,
    case: MockCase,
) -> None:
    target = mock_target(case)
    before = len(lab.read_log())
    session = factory.open(target, connect_timeout=20)
    try:
        outputs = [session.execute(command.line, timeout=20) for command in case.commands]
        privilege = session.privilege
    finally:
        session.close()
    sent = [entry["line"] for entry in lab.read_log()[before:] if entry["device"] == case.name]
    if case.state in ("exec", "general_exec", "asa_disable") and case.enable_password is None:
        assert privilege == "user"
        assert not [line for line in sent if line.lower().startswith("en")], sent  # no enable without a password
    else:
        assert privilege == "enabled"
    for command, output in zip(case.commands, outputs, strict=True):
        assert command.marker in output, f"{command.line!r} on {case.name}: {output[:300]!r}"
        outcome = parser.parse(DeviceOS(case.os), command.line, output)
        assert outcome.status is command.parse, f"{command.line!r} on {case.name}: {outcome.message}"
        if command.parsed is not None:
            path, expected = command.parsed
            assert outcome.parsed is not None
            assert dig(outcome.parsed, path) == expected
    received = [entry["line"] for entry in lab.read_log() if entry["device"] == case.name]
    assert all(command.line in received for command in case.commands), "the lab log missed a mock session's line"


def test_a_command_the_mock_does_not_know_is_an_invalid_command(
    factory: UniconSessionFactory, mock_target: Callable[[MockCase], DeviceTarget]
) -> None:
    """The peer's own refusal wording (``% Invalid command '...'``) is recognised as a refusal."""
    [iosxr] = [case for case in MOCK_CASES if case.os == "iosxr"]
    session = factory.open(mock_target(iosxr), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as caught:
            session.execute("show clock", timeout=20)
        after = session.execute("show version", timeout=20)  # the session survives the refusal
    finally:
        session.close()
    assert caught.value.code is ErrorCode.INVALID_COMMAND
    assert "Cisco IOS XR Software" in after
