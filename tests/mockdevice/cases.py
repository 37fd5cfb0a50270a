"""What the mockdevice tier asks of each Unicon mock: its state, two commands, what to expect.

The commands and values come from the mock data shipped in the installed unicon
(``unicon/plugins/tests/mock_data/<os>/*.yaml``), read at run time by the lab;
nothing of it is copied here but the few strings the tests assert on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pytest

from service.devtools.lab.mock import MockUnavailableError, check_mock
from service.devtools.lab.spec import MockSpec
from service.domain.models import ParseStatus

# The enable password the mock data of every OS expects (its ``Password:`` state accepts only this).
MOCK_ENABLE = "cisco"


@dataclass(frozen=True)
class MockCommand:
    """A command the mock answers, a text its raw output holds, and Genie's verdict on it.

    ``parsed`` is a path of keys into the parsed result and the value expected there.
    """

    line: str
    marker: str
    parse: ParseStatus
    parsed: tuple[tuple[str, ...], str] | None = None


@dataclass(frozen=True)
class MockCase:
    """One lab device served by a Unicon mock; ``os`` is both the request's and the mock's."""

    name: str
    os: str
    state: str
    commands: tuple[MockCommand, MockCommand]
    enable_password: str | None = None

    @cached_property
    def unavailable(self) -> str | None:
        """Why this mock cannot be served here (no unicon mock program or data), or ``None``."""
        try:
            check_mock(MockSpec(self.os, self.state))
        except MockUnavailableError as exc:
            return str(exc)
        return None

    def param(self) -> object:
        return pytest.param(self, id=self.name)


MOCK_CASES: tuple[MockCase, ...] = (
    MockCase(
        name="mock-ios",
        os="ios",
        state="exec",  # user mode (>)
        commands=(
            MockCommand(
                "show version", "Cisco IOS Software, 7200 Software", ParseStatus.OK, (("version", "platform"), "7200")
            ),
            MockCommand("show int e0/0", "Ethernet0/0 is up", ParseStatus.OK, (("Ethernet0/0", "oper_status"), "up")),
        ),
    ),
    MockCase(
        name="mock-iosxe",
        os="iosxe",
        state="general_exec",  # user mode (>)
        commands=(
            MockCommand("show version", "IOS-XE Software", ParseStatus.OK, (("version", "version_short"), "15.2")),
            MockCommand("show version | include operating mode", "", ParseStatus.EMPTY_OUTPUT),
        ),
    ),
    MockCase(
        name="mock-iosxe-enable",
        os="iosxe",
        state="general_exec",
        commands=(
            MockCommand(
                "show ip interface brief",
                "GigabitEthernet0/0/0",
                ParseStatus.OK,
                (("interface", "GigabitEthernet0/0/0", "ip_address"), "127.0.0.1"),
            ),
            MockCommand("show version", "IOS-XE Software", ParseStatus.OK, (("version", "version_short"), "15.2")),
        ),
        enable_password=MOCK_ENABLE,
    ),
    MockCase(
        name="mock-iosxr",
        os="iosxr",
        state="enable",
        commands=(
            MockCommand(
                "show version",
                "Cisco IOS XR Software, Version 5.2.3.12I",
                ParseStatus.OK,
                (("software_version",), "5.2.3.12I"),
            ),
            MockCommand(
                "show platform", "A9K-RSP-4G", ParseStatus.OK, (("slot", "rp", "0/RSP0", "state"), "IOS XR RUN")
            ),
        ),
    ),
    MockCase(
        name="mock-nxos",
        os="nxos",
        state="n9k_exec2",  # plain `exec` has an empty `show version`
        commands=(
            MockCommand(
                "show version",
                "Cisco Nexus Operating System (NX-OS) Software",
                ParseStatus.OK,
                (("platform", "software", "system_version"), "10.3(2uu)I9(1uu)"),
            ),
            MockCommand(
                "show inventory", "N9K-C93180YC-FX", ParseStatus.OK, (("name", "Chassis", "pid"), "N9K-C93180YC-FX")
            ),
        ),
    ),
    MockCase(
        name="mock-asa",
        os="asa",
        state="asa_disable",  # user mode: only `enable` is valid before the enable password
        commands=(
            # The mock's recorded `show version` has two lines: Genie's schema wants more.
            MockCommand(
                "show version", "Cisco Adaptive Security Appliance Software Version 9.6(4)8", ParseStatus.SCHEMA_ERROR
            ),
            MockCommand("show version 2", "Device Manager Version 7.12(1)", ParseStatus.NO_PARSER),
        ),
        enable_password=MOCK_ENABLE,
    ),
)


def lab_devices() -> list[dict[str, object]]:
    """Spec entries of the session lab for every mock this machine can serve."""
    return [
        {"name": case.name, "os": case.os, "mock": {"os": case.os, "state": case.state}}
        for case in MOCK_CASES
        if case.unavailable is None
    ]


def skip_if_unavailable(case: MockCase) -> None:
    """Skip with the reason when unicon's mock program or data is missing."""
    if case.unavailable is not None:
        pytest.skip(f"Unicon mock device unavailable: {case.unavailable}")
