"""The device layer (Unicon over OpenSSH) against the fake lab."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from service.contract.errors import CommandError, ConnectError, ErrorCode
from service.device.reading_services import READING_SERVICES
from service.device.ssh.options import openssh_command
from service.device.unicon_session import SessionOptions, UniconSessionFactory
from service.devtools.local_server import free_port
from service.domain.models import DeviceOS, DeviceTarget, Secret
from tests.conftest import LAB_ENABLE
from tests.lab.expected_output import expected, lines

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("ios-1", "Cisco IOS Software"),
        ("iosxe-1", "Cisco IOS XE Software"),
        ("nxos-1", "Cisco Nexus Operating System"),
        ("iosxr-1", "Cisco IOS XR Software"),
        ("asa-1", "Cisco Adaptive Security Appliance"),
    ],
)
def test_every_os_prompt_style_logs_in_and_runs_show_version(
    factory: UniconSessionFactory, target: Target, name: str, marker: str
) -> None:
    session = factory.open(target(name), connect_timeout=20)
    try:
        output = session.execute("show version", timeout=20)
    finally:
        session.close()
    assert marker in output
    assert lines(output) == expected(target(name).os.value, "show version", name)


@pytest.mark.parametrize("name", ["ios-1", "iosxe-1", "nxos-1", "iosxr-1", "asa-1"])
def test_a_session_has_no_service_that_changes_a_device(
    factory: UniconSessionFactory, target: Target, name: str
) -> None:
    session = factory.open(target(name), connect_timeout=20)
    try:
        connection = session._connection  # what Unicon built for this session
        services = set(vars(type(connection).subcommand_list()))
        assert services == set(READING_SERVICES)
        for writer in ("configure", "config", "reload", "copy", "tclsh", "rommon", "bash_console"):
            assert not hasattr(connection, writer), writer
    finally:
        session.close()


@pytest.mark.parametrize("name", ["iosxe-enable", "asa-enable"])
def test_enable_with_password_reaches_privileged_commands(
    factory: UniconSessionFactory, target: Target, name: str
) -> None:
    session = factory.open(target(name, enable=LAB_ENABLE), connect_timeout=20)
    try:
        output = session.execute("show running-config", timeout=20)
    finally:
        session.close()
    assert f"hostname {name}" in output


def test_wrong_enable_password_is_an_auth_failure(factory: UniconSessionFactory, target: Target) -> None:
    with pytest.raises(ConnectError) as caught:
        factory.open(target("iosxe-enable", enable="not-it"), connect_timeout=20)
    assert caught.value.code is ErrorCode.AUTH_FAILED


@pytest.mark.parametrize("name", ["iosxe-1", "locked"])
def test_wrong_password_is_an_auth_failure(factory: UniconSessionFactory, target: Target, name: str) -> None:
    wrong = target(name, password="wrong-password")
    with pytest.raises(ConnectError) as caught:
        factory.open(wrong, connect_timeout=20)
    assert caught.value.code is ErrorCode.AUTH_FAILED
    assert "wrong-password" not in caught.value.message


def test_refused_port_is_connect_refused(factory: UniconSessionFactory) -> None:
    closed = DeviceTarget("127.0.0.1", free_port(), DeviceOS.IOSXE, "admin", Secret("x"))
    with pytest.raises(ConnectError) as caught:
        factory.open(closed, connect_timeout=10)
    assert caught.value.code is ErrorCode.CONNECT_REFUSED


@pytest.mark.parametrize(
    ("pipe", "check"),
    [
        ("include hostname", lambda out: out == ["hostname iosxe-1"]),
        ("exclude interface", lambda out: out and not any("interface" in line for line in out)),
        ("begin ^line vty", lambda out: out[0].startswith("line vty")),
        (
            "section ^interface Loopback0",
            lambda out: out[0] == "interface Loopback0" and all(line.startswith(" ") for line in out[1:]),
        ),
    ],
)
def test_pipe_options(
    factory: UniconSessionFactory, target: Target, pipe: str, check: Callable[[list[str]], bool]
) -> None:
    session = factory.open(target("iosxe-1"), connect_timeout=20)
    try:
        output = lines(session.execute(f"show running-config | {pipe}", timeout=20))
    finally:
        session.close()
    assert check(output), output


def test_unknown_command_is_an_invalid_command_with_the_device_text(
    factory: UniconSessionFactory, target: Target
) -> None:
    session = factory.open(target("iosxe-1"), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as caught:
            session.execute("show bogus thing", timeout=20)
        assert session.execute("show clock", timeout=20)  # the session is still usable
    finally:
        session.close()
    assert caught.value.code is ErrorCode.INVALID_COMMAND
    assert "% Invalid input" in (caught.value.output or "")


def test_asa_refusal_is_recognised(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("asa-1"), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as caught:
            session.execute("show bogus thing", timeout=20)
    finally:
        session.close()
    assert caught.value.code is ErrorCode.INVALID_COMMAND


def test_a_hung_command_times_out(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("hangs"), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as caught:
            session.execute("show clock", timeout=1)  # "hangs" never answers it: any timeout is reached
    finally:
        session.close()
    assert caught.value.code is ErrorCode.COMMAND_TIMEOUT


def test_disconnect_mid_output_is_reported(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("drops"), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as caught:
            session.execute("show running-config", timeout=10)
    finally:
        session.close()
    assert caught.value.code is ErrorCode.DISCONNECTED


def test_long_output_is_complete_even_where_the_device_pages(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("paged"), connect_timeout=20)
    try:
        output = session.execute("show running-config", timeout=20)
    finally:
        session.close()
    want = expected("iosxe", "show running-config", "paged")
    assert len(want) > 24
    assert lines(output) == want  # includes the banner line that looks like a prompt ("Router#")


def test_the_ssh_command_line_carries_no_secret() -> None:
    device = DeviceTarget("10.0.0.1", 2222, DeviceOS.IOS, "admin", Secret("pw-canary"), Secret("en-canary"))
    line = openssh_command(SessionOptions().ssh_for(device, 10))
    assert "canary" not in line
    assert line.endswith("-p 2222 -l admin -- 10.0.0.1")
    assert "StrictHostKeyChecking=accept-new" in line


@pytest.mark.parametrize("timeout", [0.5, 1.5])
def test_a_command_timeout_waits_as_long_as_asked(
    factory: UniconSessionFactory, target: Target, timeout: float
) -> None:
    session = factory.open(target("hangs"), connect_timeout=20)
    try:
        started = time.monotonic()
        with pytest.raises(CommandError) as caught:
            session.execute("show clock", timeout=timeout)
        waited = time.monotonic() - started
    finally:
        session.close()
    assert caught.value.code is ErrorCode.COMMAND_TIMEOUT
    assert waited >= timeout * 0.9, f"a {timeout:g}s command timeout fired after {waited:.2f}s"
