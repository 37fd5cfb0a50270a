"""Accounts people really have: privilege 1 without enable, AAA command authorization,
terminal settings the device refuses. Both SSH backends; the lab's log shows what was sent."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import pytest

from service.contract.errors import CommandError, ConnectError, ErrorCode
from service.device.unicon_session import WARNED_SETTINGS, UniconSessionFactory
from service.devtools.lab.runner import LabProcess
from service.domain.models import DeviceTarget
from tests.conftest import LAB_ENABLE
from tests.lab.expected_output import expected, lines

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]


def sent(lab: LabProcess, port: int, since: int) -> list[str]:
    """Lines the device on ``port`` received after the first ``since`` log entries."""
    return [e["line"] for e in lab.read_log()[since:] if e.get("port") == port]


def test_a_privilege_1_login_without_enable_password_stays_in_user_exec(
    factory: UniconSessionFactory, target: Target, lab: LabProcess, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    before = len(lab.read_log())
    session = factory.open(target("priv1"), connect_timeout=20)
    try:
        assert session.privilege == "user"
        version = session.execute("show version", timeout=20)
        with pytest.raises(CommandError) as refused:  # user EXEC has no running-config
            session.execute("show running-config", timeout=20)
        clock = session.execute("show clock", timeout=20)  # the session goes on
    finally:
        session.close()
    assert lines(version) == expected("iosxe", "show version", "priv1")
    assert refused.value.code is ErrorCode.INVALID_COMMAND
    assert lines(clock) == expected("iosxe", "show clock", "priv1")
    received = sent(lab, lab_device("priv1")["port"], before)
    assert not [line for line in received if line.split()[0].lower().startswith("en")], received
    assert "<password>" not in received  # no password was ever typed at an enable prompt


def test_an_ios_privilege_1_login_stays_in_user_exec(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("priv1-ios"), connect_timeout=20)
    try:
        assert session.privilege == "user"
        assert lines(session.execute("show clock", timeout=20)) == expected("ios", "show clock", "priv1-ios")
    finally:
        session.close()


def test_a_privilege_1_login_with_enable_password_is_enabled(
    factory: UniconSessionFactory, target: Target, lab: LabProcess, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    before = len(lab.read_log())
    session = factory.open(target("priv1-enable", enable=LAB_ENABLE), connect_timeout=20)
    try:
        assert session.privilege == "enabled"
        output = session.execute("show running-config", timeout=20)
    finally:
        session.close()
    assert "hostname priv1-enable" in output
    assert "enable" in sent(lab, lab_device("priv1-enable")["port"], before)


def test_a_default_login_reports_enabled(factory: UniconSessionFactory, target: Target) -> None:
    session = factory.open(target("iosxe-1"), connect_timeout=20)
    try:
        assert session.privilege == "enabled"
    finally:
        session.close()


@pytest.fixture(autouse=True)
def warn_afresh() -> None:
    WARNED_SETTINGS.clear()  # warnings are once per device and process; each backend starts afresh


@pytest.mark.parametrize(("name", "refused"), [("no-term-length", "term length 0"), ("no-term-width", "term width 0")])
def test_a_refused_terminal_setting_is_a_warning_and_outputs_stay_exact(
    factory: UniconSessionFactory, target: Target, warnings: list[str], name: str, refused: str
) -> None:
    os_name = target(name).os.value
    for _ in range(2):  # the second login does not warn again
        session = factory.open(target(name), connect_timeout=20)
        try:
            output = session.execute("show running-config", timeout=20)
        finally:
            session.close()
        want = expected(os_name, "show running-config", name)
        assert len(want) > 24  # longer than a screen: the device pages where terminal length was refused
        assert lines(output) == want
        assert "--More--" not in output and "\b" not in output
        assert session.last_transformed == (("pager_prompts_removed",) if "length" in refused else ())
    assert sum(refused in w for w in warnings) == 1, warnings


def test_a_command_refused_by_authorization_is_not_authorized_and_the_rest_run(
    factory: UniconSessionFactory, target: Target
) -> None:
    session = factory.open(target("aaa-no-run"), connect_timeout=20)
    try:
        with pytest.raises(CommandError) as refused:
            session.execute("show running-config", timeout=20)
        after = session.execute("show clock", timeout=20)
    finally:
        session.close()
    assert refused.value.code is ErrorCode.NOT_AUTHORIZED
    assert refused.value.output is not None and "Authorization failed" in refused.value.output
    assert lines(after) == expected("iosxe", "show clock", "aaa-no-run")


@pytest.mark.parametrize(("name", "privilege"), [("bannered", "enabled"), ("bannered-user", "user")])
def test_a_banner_with_prompt_like_lines_neither_breaks_login_nor_reaches_an_output(
    factory: UniconSessionFactory,
    target: Target,
    lab: LabProcess,
    lab_device: Callable[[str], dict[str, Any]],
    name: str,
    privilege: str,
) -> None:
    before = len(lab.read_log())
    session = factory.open(target(name), connect_timeout=20)
    try:
        assert session.privilege == privilege
        first = session.execute("show clock", timeout=20)
        second = session.execute("show version", timeout=20)
    finally:
        session.close()
    os_name = target(name).os.value
    assert lines(first) == expected(os_name, "show clock", name)
    assert lines(second) == expected(os_name, "show version", name)
    received = sent(lab, lab_device(name)["port"], before)
    assert not [line for line in received if "config" in line or line.startswith("conf")], received


def test_a_device_that_throttles_logins_is_overloaded_not_connect_failed(
    factory: UniconSessionFactory, target: Target, lab: LabProcess, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    device = lab_device("throttled")
    # a connection that never speaks holds the device's only pre-login slot
    before = sum(1 for e in lab.read_events() if e.get("event") == "startup_dropped")
    with socket.create_connection((device["host"], device["port"]), timeout=5) as holder:
        # the lab counted the holder when it sent its SSH version line, before the login below
        assert holder.recv(64).startswith(b"SSH-")
        with pytest.raises(ConnectError) as cut:
            factory.open(target("throttled"), connect_timeout=10)
        assert cut.value.code is ErrorCode.OVERLOADED, cut.value
        assert "too many logins at once" in cut.value.message
        assert sum(1 for e in lab.read_events() if e.get("event") == "startup_dropped") == before + 1
        holder.close()
        session = factory.open(target("throttled"), connect_timeout=10)  # the slot is free again
        session.close()


def test_an_exhausted_machine_is_overloaded(factory: UniconSessionFactory) -> None:
    from service.device.connect_errors import classify_connect_error

    try:
        try:
            raise OSError(errno.EMFILE, "Too many open files")
        except OSError as exc:
            raise ConnectionError("failed to spawn") from exc
    except ConnectionError as failed:
        error = classify_connect_error(failed, "")
    assert error.code is ErrorCode.OVERLOADED
    assert "file descriptors" in error.message
