"""Jump hosts, device keys, ssh_config files and host keys with the in-process SSH backend.

A lab of its own: one bastion (a jump host: no shell, ``direct-tcpip`` to loopback only)
and three devices, one of which also accepts a public key. Devices are named by
ssh_config aliases (``lab-*``) that the file maps to 127.0.0.1 through the bastion.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.device import paramiko_backend
from service.device.paramiko_backend import (
    SshCommandLineError,
    SshHostKeyChangedError,
    SshJumpError,
    parse_ssh_command,
)
from service.device.unicon_session import SessionOptions, UniconSession, UniconSessionFactory, ssh_command
from service.devtools.lab.runner import LabProcess
from service.domain.errors import ConnectError, ErrorCode
from service.domain.models import DeviceOS, DeviceTarget, Secret
from tests.lab.expected_output import expected, lines

pytestmark = pytest.mark.lab

PASSWORD = "dev-pass-5K"
JUMP_PASSWORD = "jump-pass-8W"
DEVICES = {"lab-iosxe-1": "iosxe", "lab-nxos-1": "nxos", "lab-ios-1": "ios"}
KEYED = "lab-ios-1"  # also accepts the device key


def write_key(path: Path) -> str:
    """A passphrase-less ed25519 key in OpenSSH format at ``path``; returns its public line."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " test"


def other_key_line(name: str) -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return f"{name} " + public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@dataclass
class JumpLab:
    lab: LabProcess
    folder: Path
    bastion_port: int
    ports: dict[str, int]
    bastion_key: Path
    device_key: Path

    def config(
        self, name: str, extra_bastion: str = "", jump_alias: str = "bastion", known: Path | None = None
    ) -> Path:
        """An ssh_config: ``lab-*`` through ``jump_alias``; OpenSSH reads it too (pty backend)."""
        known = known or self.folder / f"{name}.known_hosts"
        path = self.folder / f"{name}.ssh_config"
        path.write_text(
            "IgnoreUnknown Pyats*\n"
            f"Host {jump_alias}\n"
            "    HostName 127.0.0.1\n"
            f"    Port {self.bastion_port}\n"
            "    User jumper\n"
            "    BatchMode yes\n"
            f"{extra_bastion}"
            "Host lab-*\n"
            "    HostName 127.0.0.1\n"
            f"    ProxyJump {jump_alias}\n"
            "Host *\n"
            f"    UserKnownHostsFile {known}\n"
            "    StrictHostKeyChecking accept-new\n"
        )
        return path

    def keyed_config(self, name: str) -> Path:
        return self.config(name, extra_bastion=f"    IdentityFile {self.bastion_key}\n")

    def target(self, name: str, password: str = PASSWORD) -> DeviceTarget:
        return DeviceTarget(name, self.ports[name], DeviceOS(DEVICES[name]), "admin", Secret(password))

    def events(self) -> list[dict[str, Any]]:
        return self.lab.read_events()


@pytest.fixture(scope="module")
def jump_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JumpLab]:
    folder = tmp_path_factory.mktemp("jump-lab")
    bastion_public = write_key(folder / "bastion_key")
    device_public = write_key(folder / "device_key")
    devices: list[dict[str, Any]] = [
        {
            "name": "bastion",
            "bastion": True,
            "username": "jumper",
            "password": JUMP_PASSWORD,
            "authorized_keys": [bastion_public],
        },
    ]
    for name, os_name in DEVICES.items():
        entry: dict[str, Any] = {"name": name, "os": os_name}
        if name == KEYED:
            entry["authorized_keys"] = [device_public]
        devices.append(entry)
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"defaults": {"password": PASSWORD}, "devices": devices}))
    paramiko_backend.close_jump_hosts()
    with LabProcess(["--spec", str(spec)], log_path=folder / "lab.jsonl") as lab:
        ports = {d["name"]: d["port"] for d in lab.devices}
        yield JumpLab(lab, folder, ports.pop("bastion"), ports, folder / "bastion_key", folder / "device_key")
        paramiko_backend.close_jump_hosts()


def options(config: Path, known: Path, backend: str = "paramiko", **extra: Any) -> SessionOptions:
    return SessionOptions(
        strict_host_key_checking="accept-new", known_hosts_file=known, backend=backend, ssh_config_file=config, **extra
    )


@contextlib.contextmanager
def opened(target: DeviceTarget, opts: SessionOptions) -> Iterator[UniconSession]:
    session = UniconSessionFactory(opts).open(target, connect_timeout=20)
    try:
        yield session
    finally:
        session.close()


def stamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["ts"]).timestamp()


def bastion_logins(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "session_open" and e["device"] == "bastion"]


def forwards(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "forward"]


def in_threads(count: int, work: Any) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads at once; re-raise the first failure."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


# -- the start command -------------------------------------------------------------------


def test_jump_options_parse_like_openssh(tmp_path: Path) -> None:
    parsed = parse_ssh_command("ssh -J ops@jump1:2201,[2001:db8::9]:2202 -i /keys/dev -l admin -p 22 -- 10.0.0.5")
    assert (parsed.jumps[0].username, parsed.jumps[0].host, parsed.jumps[0].port) == ("ops", "jump1", 2201)
    assert (parsed.jumps[1].host, parsed.jumps[1].port) == ("2001:db8::9", 2202)
    assert parsed.identity_files == ("/keys/dev",)
    via_option = parse_ssh_command("ssh -o ProxyJump=jump1 -o PyatsJumpRate=3 -l a -- h")
    assert [j.host for j in via_option.jumps] == ["jump1"]
    assert via_option.jumps[0].jump_rate == 3
    assert not parse_ssh_command("ssh -o PubkeyAuthentication=no -i /k -l a -- h").pubkey_authentication


def test_ssh_config_resolves_hostname_jump_identity_and_known_hosts(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "IgnoreUnknown Pyats*\n"
        "Host bastion\n  HostName 192.0.2.1\n  Port 2222\n  User jumper\n  IdentityFile /keys/jump\n"
        "  PyatsPasswordEnv JUMP_PW\n  PyatsJumpRate 4\n  StrictHostKeyChecking yes\n"
        "Host core-*\n  HostName 10.9.9.9\n  ProxyJump bastion\n  IdentityFile /keys/core\n  User netops\n"
        "Host *\n  UserKnownHostsFile /var/kh\n"
    )
    device = DeviceTarget("core-1", 22, DeviceOS.IOSXE, "admin", Secret("pw-canary"))
    line = ssh_command(device, SessionOptions(backend="paramiko", ssh_config_file=config), 9)
    assert "canary" not in line
    assert f"-F {config}" in line
    parsed = parse_ssh_command(line)
    assert (parsed.host, parsed.port, parsed.username) == ("10.9.9.9", 22, "admin")  # the request's user wins
    assert parsed.identity_files == ("/keys/core",)
    assert parsed.strict_host_key_checking == "accept-new"
    (jump,) = parsed.jumps
    assert (jump.host, jump.port, jump.username) == ("192.0.2.1", 2222, "jumper")
    assert jump.identity_files == ("/keys/jump",)
    assert (jump.password_env, jump.jump_rate, jump.strict_host_key_checking) == ("JUMP_PW", 4, "yes")
    assert jump.known_hosts_files == ("/var/kh",)
    assert jump.connect_timeout == 9


def test_pyats_only_options_stay_off_the_openssh_command_line(tmp_path: Path) -> None:
    device = DeviceTarget("10.0.0.1", 22, DeviceOS.IOS, "admin", Secret("x"))
    extra = {"jump_host": "ops@jump:2200", "jump_rate": 2.5, "jump_password_env": "JUMP_PW"}
    pty = ssh_command(device, SessionOptions(identity_file=tmp_path / "k", **extra), 5)
    assert "Pyats" not in pty
    assert "PubkeyAuthentication=no" not in pty
    assert "-J ops@jump:2200" in pty
    in_process = parse_ssh_command(ssh_command(device, SessionOptions(backend="paramiko", **extra), 5))
    assert in_process.jumps[0].jump_rate == 2.5
    assert in_process.jumps[0].password_env == "JUMP_PW"
    assert not parse_ssh_command(ssh_command(device, SessionOptions(backend="paramiko"), 5)).pubkey_authentication


def test_a_jump_loop_in_the_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(SshCommandLineError, match="ProxyJump chain"):
        parse_ssh_command(f"ssh -F {config} -- a")


# -- through the bastion -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(DEVICES))
def test_device_output_is_exact_through_the_jump_host(jump_lab: JumpLab, name: str) -> None:
    config = jump_lab.keyed_config("exact")
    with opened(jump_lab.target(name), options(config, jump_lab.folder / "exact.kh")) as session:
        output = session.execute("show version", timeout=20)
    assert lines(output) == expected(DEVICES[name], "show version", name)
    assert any(e["dest_port"] == jump_lab.ports[name] and e["allowed"] for e in forwards(jump_lab.events()))


def test_three_devices_share_one_bastion_login(jump_lab: JumpLab) -> None:
    paramiko_backend.close_jump_hosts()
    before = len(jump_lab.events())  # only logins and forwards after this are counted
    opts = options(jump_lab.keyed_config("shared"), jump_lab.folder / "shared.kh")
    names = list(DEVICES)
    sessions = in_threads(3, lambda i: UniconSessionFactory(opts).open(jump_lab.target(names[i]), 20))
    try:
        outputs = [session.execute("show clock", timeout=20) for session in sessions]
        assert all(outputs)
        shared = paramiko_backend.jump_host_sessions()
        assert list(shared.values()) == [3]
        assert list(shared) == [(("127.0.0.1", jump_lab.bastion_port, "jumper"),)]
    finally:
        for session in sessions:
            session.close()
    assert list(paramiko_backend.jump_host_sessions().values()) == [0]  # kept for reuse until idle
    events = jump_lab.events()[before:]
    assert len(bastion_logins(events)) == 1
    assert sorted(e["dest_port"] for e in forwards(events)) == sorted(jump_lab.ports.values())
    assert all(e["dest_host"] == "127.0.0.1" for e in forwards(events))


def test_an_idle_jump_session_is_closed(jump_lab: JumpLab, monkeypatch: pytest.MonkeyPatch) -> None:
    paramiko_backend.close_jump_hosts()
    monkeypatch.setattr(paramiko_backend, "JUMP_IDLE_SECONDS", 0.3)
    opts = options(jump_lab.keyed_config("idle"), jump_lab.folder / "idle.kh")
    with opened(jump_lab.target("lab-iosxe-1"), opts) as session:
        session.execute("show clock", timeout=20)
    deadline = time.monotonic() + 5
    while paramiko_backend.jump_host_sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paramiko_backend.jump_host_sessions() == {}


def test_the_jump_host_login_rate_spaces_new_connections(jump_lab: JumpLab) -> None:
    opts = options(jump_lab.keyed_config("rate"), jump_lab.folder / "rate.kh", jump_rate=2)
    before = len(jump_lab.events())
    names = list(DEVICES)
    sessions = in_threads(3, lambda i: UniconSessionFactory(opts).open(jump_lab.target(names[i]), 20))
    for session in sessions:
        session.close()
    times = sorted(stamp(e) for e in forwards(jump_lab.events()[before:]))
    assert len(times) == 3
    assert times[-1] - times[0] >= 0.8  # 2 per second: 3 connections span at least 1 s (loose)


def test_the_jump_host_password_comes_from_an_environment_variable(
    jump_lab: JumpLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    paramiko_backend.close_jump_hosts()
    config = jump_lab.config("password", extra_bastion="    PyatsPasswordEnv LAB_JUMP_PASSWORD\n")
    opts = options(config, jump_lab.folder / "password.kh")
    monkeypatch.setenv("LAB_JUMP_PASSWORD", JUMP_PASSWORD)
    with opened(jump_lab.target("lab-nxos-1"), opts) as session:
        assert lines(session.execute("show version", timeout=20)) == expected("nxos", "show version", "lab-nxos-1")
    paramiko_backend.close_jump_hosts()
    monkeypatch.setenv("LAB_JUMP_PASSWORD", "wrong-jump-password")
    with pytest.raises(ConnectError) as caught:
        UniconSessionFactory(opts).open(jump_lab.target("lab-nxos-1"), 20)
    assert caught.value.code is ErrorCode.CONNECT_FAILED
    assert "jump host" in caught.value.message
    assert "wrong-jump-password" not in caught.value.message


def test_without_jump_credentials_the_device_password_is_not_tried_on_the_bastion(jump_lab: JumpLab) -> None:
    paramiko_backend.close_jump_hosts()
    opts = options(jump_lab.config("nocreds"), jump_lab.folder / "nocreds.kh")
    before = len(jump_lab.events())
    with pytest.raises(ConnectError) as caught:
        UniconSessionFactory(opts).open(jump_lab.target("lab-iosxe-1"), 20)
    assert caught.value.code is ErrorCode.CONNECT_FAILED
    assert bastion_logins(jump_lab.events()[before:]) == []


def test_a_jump_error_is_raised_by_the_backend(jump_lab: JumpLab) -> None:
    paramiko_backend.close_jump_hosts()
    config = jump_lab.config("raw")
    command = f"ssh -F {config} -o StrictHostKeyChecking=no -p {jump_lab.ports['lab-ios-1']} -l admin -- lab-ios-1"
    with pytest.raises(SshJumpError, match="Permission denied"):
        paramiko_backend._open_transport(parse_ssh_command(command))


# -- keys to devices -------------------------------------------------------------------------


def test_key_auth_to_a_device_through_the_jump_skips_the_password(jump_lab: JumpLab) -> None:
    config = jump_lab.keyed_config("devkey")
    opts = options(config, jump_lab.folder / "devkey.kh", identity_file=jump_lab.device_key)
    # a wrong password: only the key can log this session in
    with opened(jump_lab.target(KEYED, password="not-the-password"), opts) as session:
        assert lines(session.execute("show version", timeout=20)) == expected("ios", "show version", KEYED)


@pytest.mark.parametrize("backend", ["paramiko", "pty"])
def test_key_auth_to_a_device_directly(jump_lab: JumpLab, backend: str) -> None:
    if backend == "pty" and shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    device = DeviceTarget("127.0.0.1", jump_lab.ports[KEYED], DeviceOS.IOS, "admin", Secret("not-the-password"))
    opts = SessionOptions("no", backend=backend, identity_file=jump_lab.device_key)
    with opened(device, opts) as session:
        assert lines(session.execute("show version", timeout=20)) == expected("ios", "show version", KEYED)


def test_a_refused_key_falls_back_to_the_password(jump_lab: JumpLab) -> None:
    device = DeviceTarget("127.0.0.1", jump_lab.ports["lab-iosxe-1"], DeviceOS.IOSXE, "admin", Secret(PASSWORD))
    opts = SessionOptions("no", backend="paramiko", identity_file=jump_lab.device_key)
    with opened(device, opts) as session:
        assert session.execute("show clock", timeout=20)


def test_the_pty_backend_reads_the_same_ssh_config(jump_lab: JumpLab) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    config = jump_lab.keyed_config("pty")
    before = len(jump_lab.events())
    with opened(jump_lab.target("lab-iosxe-1"), options(config, jump_lab.folder / "pty.kh", backend="pty")) as session:
        output = session.execute("show version", timeout=20)
    assert lines(output) == expected("iosxe", "show version", "lab-iosxe-1")
    assert [e["dest_port"] for e in forwards(jump_lab.events()[before:])] == [jump_lab.ports["lab-iosxe-1"]]


# -- host keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["paramiko", "pty"])
def test_a_changed_device_key_is_host_key_mismatch(jump_lab: JumpLab, backend: str, tmp_path: Path) -> None:
    if backend == "pty" and shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    port = jump_lab.ports["lab-iosxe-1"]
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{port}") + "\n")
    config = jump_lab.keyed_config(f"changed-{backend}")
    with pytest.raises(ConnectError) as caught:
        UniconSessionFactory(options(config, known, backend=backend)).open(jump_lab.target("lab-iosxe-1"), 20)
    assert caught.value.code is ErrorCode.HOST_KEY_MISMATCH


@pytest.mark.parametrize("shared", [False, True])
def test_a_changed_jump_host_key_is_host_key_mismatch(jump_lab: JumpLab, shared: bool, tmp_path: Path) -> None:
    paramiko_backend.close_jump_hosts()
    if shared:  # a session already open under another known_hosts: the key is checked again on reuse
        with opened(jump_lab.target("lab-ios-1"), options(jump_lab.keyed_config("ok"), tmp_path / "ok.kh")):
            pass
    bad = tmp_path / "bad_known_hosts"
    bad.write_text(other_key_line(f"[127.0.0.1]:{jump_lab.bastion_port}") + "\n")
    config = jump_lab.config(
        "badjump", extra_bastion=f"    IdentityFile {jump_lab.bastion_key}\n    UserKnownHostsFile {bad}\n"
    )
    command = f"ssh -F {config} -o StrictHostKeyChecking=no -p {jump_lab.ports['lab-ios-1']} -l admin -- lab-ios-1"
    with pytest.raises(SshHostKeyChangedError, match="jump host"):
        paramiko_backend._open_transport(parse_ssh_command(command))
    with pytest.raises(ConnectError) as caught:
        UniconSessionFactory(options(config, tmp_path / "device.kh")).open(jump_lab.target("lab-ios-1"), 20)
    assert caught.value.code is ErrorCode.HOST_KEY_MISMATCH


def test_an_unknown_jump_host_key_under_strict_checking_is_connect_failed(jump_lab: JumpLab, tmp_path: Path) -> None:
    paramiko_backend.close_jump_hosts()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    config = jump_lab.config(
        "strictjump",
        extra_bastion=f"    IdentityFile {jump_lab.bastion_key}\n    UserKnownHostsFile {empty}\n"
        "    StrictHostKeyChecking yes\n",
    )
    with pytest.raises(ConnectError) as caught:
        UniconSessionFactory(options(config, tmp_path / "device.kh")).open(jump_lab.target("lab-ios-1"), 20)
    assert caught.value.code is ErrorCode.CONNECT_FAILED
    assert "host key" in caught.value.message
    assert empty.read_text() == ""


def test_accept_new_records_jump_and_device_keys_in_a_private_file(jump_lab: JumpLab, tmp_path: Path) -> None:
    paramiko_backend.close_jump_hosts()
    known = tmp_path / "service" / "ssh" / "known_hosts"
    config = jump_lab.folder / "recorded.ssh_config"
    config.write_text(
        f"Host bastion\n  HostName 127.0.0.1\n  Port {jump_lab.bastion_port}\n  User jumper\n"
        f"  IdentityFile {jump_lab.bastion_key}\n"
        "Host lab-*\n  HostName 127.0.0.1\n  ProxyJump bastion\n"
    )
    with opened(jump_lab.target("lab-iosxe-1"), options(config, known)) as session:
        session.execute("show clock", timeout=20)
    names = sorted(line.split()[0] for line in known.read_text().splitlines())
    assert names == sorted([f"[127.0.0.1]:{jump_lab.bastion_port}", f"[127.0.0.1]:{jump_lab.ports['lab-iosxe-1']}"])
    assert known.stat().st_mode & 0o077 == 0


# -- read-only ---------------------------------------------------------------------------------


def test_zz_the_bastion_received_no_line_and_no_device_a_config_line(jump_lab: JumpLab) -> None:
    """Runs last here: the bastion has no shell, and nothing above entered config mode."""
    received = jump_lab.lab.read_log()
    assert received
    assert [entry for entry in received if entry["device"] == "bastion"] == []
    assert jump_lab.lab.config_lines() == []
    bastion_events = {e["event"] for e in jump_lab.events() if e["device"] == "bastion"}
    assert bastion_events <= {"session_open", "session_close", "forward"}
    assert all(e["allowed"] for e in forwards(jump_lab.events()))
