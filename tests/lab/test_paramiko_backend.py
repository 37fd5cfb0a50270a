"""The paramiko spawn backend under Unicon, against the fake lab.

Connections are built as ``UniconSessionFactory.open`` builds them, with the Unicon
settings of ``paramiko_backend.unicon_settings``; errors go through the same
``classify_connect_error``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from unicon import Connection

from service.contract.errors import CommandError, ConnectError, ErrorCode
from service.device.connect_errors import classify_connect_error
from service.device.ssh import paramiko_backend
from service.device.ssh.errors import (
    SshBackendError,
    SshConnectRefusedError,
    SshHandshakeTimeoutError,
    SshHostKeyChangedError,
    SshHostKeyUnknownError,
    SshOptionsError,
)
from service.device.ssh.jumps import JumpHosts
from service.device.ssh.options import HostKeyPolicy, openssh_command
from service.device.ssh.paramiko_patches import IDLE_CHECK_SECONDS
from service.device.ssh.target import resolve
from service.device.unicon_session import (
    BASE_SETTINGS,
    PTY_BACKEND,
    SessionOptions,
    UniconSession,
    UniconSessionFactory,
    settle,
)
from service.devtools.lab.runner import LabProcess
from service.devtools.local_server import free_port
from service.domain.models import DeviceOS, DeviceTarget, Secret
from tests.conftest import LAB_ENABLE, LAB_PASSWORD
from tests.lab.expected_output import expected, lines

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]
JUMP_HOSTS = JumpHosts()  # none used here: the devices are reached directly
NO_CHECK = SessionOptions(strict_host_key_checking="no")
USED_DEVICES = {"ios-1", "iosxe-1", "nxos-1", "iosxr-1", "asa-1", "iosxe-enable", "asa-enable"}
USED_DEVICES |= {"locked", "hangs", "drops"}


def open_paramiko(
    target: DeviceTarget, options: SessionOptions = NO_CHECK, connect_timeout: float = 20
) -> tuple[UniconSession, Any]:
    """``UniconSessionFactory.open`` with ``BACKEND`` set; the cause stays on the ConnectError."""
    credentials = {"default": {"username": target.username, "password": target.password.reveal()}}
    if target.enable_password is not None:
        credentials["enable"] = {"password": target.enable_password.reveal()}
    ssh = options.ssh_for(target, connect_timeout)
    connection = Connection(
        hostname=target.hostname,
        start=[openssh_command(ssh)],
        os=target.os.value,
        credentials=credentials,
        mit=True,
        init_exec_commands=[],
        init_config_commands=[],
        learn_hostname=True,
        connection_timeout=connect_timeout,
        settings={**BASE_SETTINGS, **paramiko_backend.unicon_settings(ssh, JUMP_HOSTS)},
        log_stdout=False,
        logfile=os.devnull,
        no_pyats_tasklog=True,
    )
    try:
        connection.connect()
        privilege, pages = settle(connection, target, connect_timeout)
    except Exception as exc:
        buffer = str(getattr(connection.spawn, "buffer", "") or "") if connection.spawn is not None else ""
        release(connection)
        raise classify_connect_error(exc, buffer) from exc
    return UniconSession(connection, target, options, [], privilege, pages), connection


def release(connection: Any) -> None:
    """As ``UniconSession.close``: disconnect and close Unicon's log file handler."""
    with contextlib.suppress(Exception):
        connection.disconnect()
    for handler in list(connection.log.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            connection.log.removeHandler(handler)


def backend_cause(error: BaseException) -> BaseException | None:
    """The backend's own exception: Unicon wraps it in its ConnectionError, as ``__cause__``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, SshBackendError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def opened(target: DeviceTarget, options: SessionOptions = NO_CHECK) -> Iterator[tuple[UniconSession, Any]]:
    session, connection = open_paramiko(target, options)
    try:
        yield session, connection
    finally:
        session.close()


def other_key_line(name: str) -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return f"{name} " + public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


# -- the options -----------------------------------------------------------------------


def test_the_service_options_reach_the_backend_typed(tmp_path: Path) -> None:
    device = DeviceTarget("10.0.0.1", 2222, DeviceOS.IOS, "admin", Secret("pw-canary"))
    options = SessionOptions(strict_host_key_checking="yes", known_hosts_file=tmp_path / "k h")
    resolved = resolve(options.ssh_for(device, 7))
    assert (resolved.host, resolved.port, resolved.username) == ("10.0.0.1", 2222, "admin")
    assert resolved.host_key_policy is HostKeyPolicy.YES
    assert resolved.known_hosts_files == (str(tmp_path / "k h"),)  # a space in a path is no word break
    assert resolved.connect_timeout == 7
    assert resolved.known_hosts_name == "[10.0.0.1]:2222"
    assert not resolved.pubkey_authentication  # no key named, no ssh_config: the password only


def test_an_ipv6_literal_in_brackets_is_the_host() -> None:
    device = DeviceTarget("[2001:db8::1]", 2200, DeviceOS.IOS, "ops", Secret("x"))
    resolved = resolve(SessionOptions("accept-new").ssh_for(device, 5))
    assert (resolved.host, resolved.port, resolved.username) == ("2001:db8::1", 2200, "ops")
    assert resolved.host_key_policy is HostKeyPolicy.ACCEPT_NEW


def test_the_backend_takes_its_options_from_the_settings_not_the_start_command(target: Target) -> None:
    """A connection that selects this backend without ``unicon_settings`` is refused, not guessed from text."""
    device = target("iosxe-1")
    connection = Connection(
        hostname=device.hostname,
        start=[openssh_command(NO_CHECK.ssh_for(device, 5))],
        os=device.os.value,
        credentials={"default": {"username": device.username, "password": device.password.reveal()}},
        mit=True,
        connection_timeout=5,
        settings={**BASE_SETTINGS, "BACKEND": paramiko_backend.__name__},
        log_stdout=False,
        logfile=os.devnull,
        no_pyats_tasklog=True,
    )
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - Unicon wraps it in its own error
            connection.connect()
    finally:
        release(connection)
    assert isinstance(backend_cause(caught.value), SshOptionsError)
    assert classify_connect_error(caught.value, "").code is ErrorCode.CONNECT_FAILED


def test_the_factory_selects_the_backend_per_connection() -> None:
    pty = UniconSessionFactory(SessionOptions(backend="pty"))
    assert pty.jump_hosts is None
    paramiko = UniconSessionFactory(SessionOptions(backend="paramiko"))
    ssh = NO_CHECK.ssh_for(DeviceTarget("10.0.0.1", 22, DeviceOS.IOS, "admin", Secret("x")), 5)
    assert pty._settings(ssh)["BACKEND"] == PTY_BACKEND
    settings = paramiko._settings(ssh)
    assert settings["BACKEND"] == paramiko_backend.__name__
    request = settings[paramiko_backend.REQUEST_SETTING]
    assert request.options is ssh
    assert request.jump_hosts is paramiko.jump_hosts


# -- login and output ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["ios-1", "iosxe-1", "nxos-1", "iosxr-1", "asa-1"])
def test_every_os_logs_in_and_show_version_matches_the_template(target: Target, name: str) -> None:
    with opened(target(name)) as (session, connection):
        assert type(connection.spawn) is paramiko_backend.Spawn
        output = session.execute("show version", timeout=20)
    assert lines(output) == expected(target(name).os.value, "show version", name)


def test_the_session_factory_selects_this_backend(target: Target) -> None:
    factory = UniconSessionFactory(SessionOptions(strict_host_key_checking="no", backend="paramiko"))
    session = factory.open(target("iosxe-1"), connect_timeout=20)
    try:
        assert session.is_alive()
        output = session.execute("show version", timeout=20)
    finally:
        session.close()
    assert not session.is_alive()
    assert lines(output) == expected("iosxe", "show version", "iosxe-1")


@pytest.mark.parametrize("name", ["iosxe-enable", "asa-enable"])
def test_enable_with_password_reaches_privileged_commands(target: Target, name: str) -> None:
    with opened(target(name, enable=LAB_ENABLE)) as (session, _):
        output = session.execute("show running-config", timeout=20)
    assert f"hostname {name}" in output


@pytest.mark.parametrize("name", ["iosxe-1", "asa-1", "locked"])
def test_wrong_password_is_an_auth_failure(target: Target, name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        open_paramiko(target(name, password="wrong-password"))
    assert caught.value.code is ErrorCode.AUTH_FAILED
    assert "wrong-password" not in str(caught.value)
    assert time.monotonic() - started < 5


def test_passwords_reach_no_log_record(target: Target) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    root, paramiko_logger = logging.getLogger(), logging.getLogger("paramiko")
    levels = root.level, paramiko_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    paramiko_logger.setLevel(logging.DEBUG)
    try:
        with opened(target("iosxe-enable", enable=LAB_ENABLE)) as (session, _):
            session.execute("show clock", timeout=20)
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        paramiko_logger.setLevel(levels[1])
    assert records, "paramiko logged nothing at DEBUG: the check would be empty"
    text = "\n".join(record.getMessage() for record in records)
    assert LAB_PASSWORD not in text
    assert LAB_ENABLE not in text


# -- connect errors --------------------------------------------------------------------


def test_refused_port_is_connect_refused() -> None:
    closed = DeviceTarget("127.0.0.1", free_port(), DeviceOS.IOSXE, "admin", Secret("x"))
    with pytest.raises(ConnectError) as caught:
        open_paramiko(closed, connect_timeout=5)
    assert caught.value.code is ErrorCode.CONNECT_REFUSED
    assert isinstance(backend_cause(caught.value), SshConnectRefusedError)


def test_a_port_that_never_speaks_ssh_is_a_connect_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        device = DeviceTarget("127.0.0.1", port, DeviceOS.IOSXE, "admin", Secret("x"))
        started = time.monotonic()
        with pytest.raises(ConnectError) as caught:
            open_paramiko(device, connect_timeout=1)
    assert caught.value.code is ErrorCode.CONNECT_TIMEOUT
    assert isinstance(backend_cause(caught.value), SshHandshakeTimeoutError)
    assert time.monotonic() - started < 5


def test_unknown_host_key_is_refused_under_strict_checking(target: Target, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(ConnectError) as caught:
        open_paramiko(target("iosxe-1"), SessionOptions("yes", known))
    assert caught.value.code is ErrorCode.CONNECT_FAILED
    assert "host key" in caught.value.message
    assert isinstance(backend_cause(caught.value), SshHostKeyUnknownError)
    assert known.read_text() == ""


@pytest.mark.parametrize("policy", ["yes", "accept-new"])
def test_changed_host_key_is_refused(target: Target, tmp_path: Path, policy: str) -> None:
    device = target("iosxe-1")
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{device.port}") + "\n")
    before = known.read_text()
    with pytest.raises(ConnectError) as caught:
        open_paramiko(device, SessionOptions(policy, known))
    assert caught.value.code is ErrorCode.HOST_KEY_MISMATCH
    assert isinstance(backend_cause(caught.value), SshHostKeyChangedError)
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in str(backend_cause(caught.value))
    assert known.read_text() == before


def test_accept_new_records_the_key_then_strict_checking_accepts_it(target: Target, tmp_path: Path) -> None:
    device = target("iosxe-1")
    known = tmp_path / "ssh" / "known_hosts"
    with opened(device, SessionOptions("accept-new", known)) as (session, _):
        assert session.execute("show clock", timeout=20)
    entries = known.read_text().splitlines()
    assert len(entries) == 1
    assert entries[0].startswith(f"[127.0.0.1]:{device.port} ssh-ed25519 ")
    assert known.stat().st_mode & 0o077 == 0
    with opened(device, SessionOptions("yes", known)) as (session, _):
        assert session.execute("show clock", timeout=20)
    assert known.read_text().splitlines() == entries


# -- faults after login ------------------------------------------------------------------


def test_a_hung_command_times_out(target: Target) -> None:
    with opened(target("hangs")) as (session, _), pytest.raises(CommandError) as caught:
        session.execute("show clock", timeout=1)  # "hangs" never answers it: any timeout is reached
    assert caught.value.code is ErrorCode.COMMAND_TIMEOUT


def test_disconnect_mid_output_is_reported_and_the_spawn_is_no_longer_alive(target: Target) -> None:
    with opened(target("drops")) as (session, connection):
        spawn = connection.spawn
        assert spawn.is_alive()
        with pytest.raises(CommandError) as caught:
            session.execute("show running-config", timeout=10)
        deadline = time.monotonic() + 5
        while spawn.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not spawn.is_alive()
        assert spawn.is_closed()
    assert caught.value.code is ErrorCode.DISCONNECTED


def test_is_alive_is_cheap_and_close_is_idempotent(target: Target) -> None:
    session, connection = open_paramiko(target("iosxe-1"))
    spawn = connection.spawn
    started = time.perf_counter()
    for _ in range(1000):
        assert spawn.is_alive()
    assert (time.perf_counter() - started) / 1000 < 0.001
    session.close()
    assert not spawn.is_alive()
    spawn.close()
    spawn.close()
    assert spawn.is_closed()


def _wakeups(thread_id: int) -> int:
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts the thread's wake-ups in /proc")
def test_an_idle_transport_wakes_once_a_second_and_still_closes_at_once(target: Target) -> None:
    """Fix 4 of paramiko_patches: 1000 warm sessions each polling every 0.1 s cost ~0.2 cores."""
    session, connection = open_paramiko(target("iosxe-1"))
    transport = connection.spawn._transport
    assert transport.sock.gettimeout() == IDLE_CHECK_SECONDS
    before = _wakeups(transport.native_id)
    time.sleep(3)
    assert _wakeups(transport.native_id) - before <= 3 / IDLE_CHECK_SECONDS + 3  # paramiko's 0.1 s: ~30
    assert "UTC" in session.execute("show clock", timeout=20)  # data still wakes it at once
    started = time.perf_counter()
    session.close()
    assert time.perf_counter() - started < 0.5
    transport.join(IDLE_CHECK_SECONDS + 2)
    assert not transport.is_alive()


def test_no_child_process_is_created(target: Target) -> None:
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    with opened(target("iosxe-1")) as (session, _):
        session.execute("show clock", timeout=20)
        during = {child.pid for child in me.children(recursive=True)}
    assert during - before == set()


def test_these_sessions_sent_no_configuration_line(lab: LabProcess) -> None:
    """Runs last in this module: every device above, every login, zero config-mode lines."""
    received = [entry for entry in lab.read_log() if entry["device"] in USED_DEVICES]
    assert received
    assert [entry for entry in lab.config_lines() if entry["device"] in USED_DEVICES] == []
    assert not any(entry["line"].strip().lower().startswith(("conf", "write", "copy", "reload")) for entry in received)
