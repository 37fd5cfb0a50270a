"""Legacy SSH algorithms (opt-in) and keyboard-interactive-only logins, on both SSH backends.

``legacy-ios`` offers only SHA-1 key exchange, an ``ssh-rsa`` host key and CBC ciphers;
``legacy-group1-3des`` only ``diffie-hellman-group1-sha1`` / ``ssh-rsa`` / ``3des-cbc``;
``aaa-kbdint-only`` offers keyboard-interactive and no password method.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import paramiko
import pytest

from service.contract.errors import ConnectError, ErrorCode
from service.device.inventory import parse_testbed
from service.device.unicon_session import SessionOptions, UniconSessionFactory
from service.domain.models import DeviceTarget
from tests.conftest import LAB_PASSWORD

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]
LEGACY_IOS = ("diffie-hellman-group14-sha1", "ssh-rsa", "aes128-cbc")
GROUP1_3DES = ("diffie-hellman-group1-sha1", "ssh-rsa", "3des-cbc")


@pytest.fixture(params=["pty", "paramiko"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_factory(backend: str, legacy: tuple[str, ...] = ()) -> UniconSessionFactory:
    return UniconSessionFactory(
        SessionOptions(strict_host_key_checking="no", backend=backend, legacy_algorithms=legacy)
    )


def show_version(factory: UniconSessionFactory, device: DeviceTarget) -> str:
    session = factory.open(device, connect_timeout=20)
    try:
        return session.execute("show version", timeout=20)
    finally:
        session.close()


@pytest.mark.parametrize(
    ("enabled", "mismatch", "offer"),
    [
        ((), "key exchange method", ["diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"]),
        (("diffie-hellman-group14-sha1",), "host key type", ["ssh-rsa"]),
        (("diffie-hellman-group14-sha1", "ssh-rsa"), "cipher", ["aes128-cbc", "aes256-cbc", "3des-cbc"]),
    ],
)
def test_a_legacy_device_without_the_opt_in_names_the_mismatch_and_the_setting(
    backend: str, target: Target, enabled: tuple[str, ...], mismatch: str, offer: list[str]
) -> None:
    with pytest.raises(ConnectError) as caught:
        make_factory(backend, enabled).open(target("legacy-ios"), connect_timeout=20)
    error = caught.value
    assert error.code is ErrorCode.CONNECT_FAILED
    assert f"no matching {mismatch}" in error.message
    assert f"its offer: {','.join(offer)}" in error.message
    assert "PYATS_SSH_LEGACY_ALGORITHMS" in error.message
    assert "ssh_legacy_algorithms" in error.message
    assert LAB_PASSWORD not in error.message
    assert error.details == {"mismatch": mismatch, "offer": offer}


@pytest.mark.parametrize(("name", "legacy"), [("legacy-ios", LEGACY_IOS), ("legacy-group1-3des", GROUP1_3DES)])
def test_the_global_setting_opens_legacy_devices(
    backend: str, target: Target, name: str, legacy: tuple[str, ...]
) -> None:
    assert "Cisco IOS Software" in show_version(make_factory(backend, legacy), target(name))


def test_modern_devices_still_log_in_with_legacy_algorithms_enabled(backend: str, target: Target) -> None:
    everything = tuple(dict.fromkeys(LEGACY_IOS + GROUP1_3DES))
    assert "Cisco IOS XE Software" in show_version(make_factory(backend, everything), target("iosxe-1"))


def make_testbed(entries: dict[str, dict[str, Any]], group_legacy: str) -> str:
    devices = "".join(
        f"""
  {name}:
    os: ios
    connections: {{cli: {{protocol: ssh, ip: {entry["host"]}, port: {entry["port"]}}}}}
    groups: [old-ios]
    {entry.get("custom", "")}"""
        for name, entry in entries.items()
    )
    return f"""
testbed:
  name: lab
  credentials:
    default: {{username: admin, password: {LAB_PASSWORD}}}
  custom:
    groups:
      old-ios:
        ssh_legacy_algorithms: {group_legacy}
devices:{devices}
"""


def test_the_inventory_enables_legacy_algorithms_per_group_and_per_device(
    backend: str, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    entries = {
        "legacy-ios": dict(lab_device("legacy-ios")),
        "legacy-group1-3des": {
            **lab_device("legacy-group1-3des"),
            "custom": "custom: {ssh_legacy_algorithms: [diffie-hellman-group1-sha1, ssh-rsa, 3des-cbc]}",
        },
    }
    inventory = parse_testbed(make_testbed(entries, "diffie-hellman-group14-sha1,ssh-rsa,aes128-cbc"))
    factory = make_factory(backend)  # the service's own setting is empty
    for name in entries:
        assert "Cisco IOS Software" in show_version(factory, inventory.devices[name].target())


def test_an_inventory_device_with_an_empty_list_is_off_even_when_the_setting_is_on(
    backend: str, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    entries = {"legacy-ios": {**lab_device("legacy-ios"), "custom": "custom: {ssh_legacy_algorithms: []}"}}
    inventory = parse_testbed(make_testbed(entries, "ssh-rsa"))
    with pytest.raises(ConnectError) as caught:
        make_factory(backend, LEGACY_IOS).open(inventory.devices["legacy-ios"].target(), connect_timeout=20)
    assert caught.value.code is ErrorCode.CONNECT_FAILED
    assert "no matching key exchange method" in caught.value.message


def test_the_kbdint_device_offers_no_password_method(lab_device: Callable[[str], dict[str, Any]]) -> None:
    entry = lab_device("aaa-kbdint-only")
    with socket.create_connection((entry["host"], entry["port"]), timeout=10) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=10)
            with pytest.raises(paramiko.BadAuthenticationType) as caught:
                transport.auth_password("admin", LAB_PASSWORD, fallback=False)
        finally:
            transport.close()
    assert caught.value.allowed_types == ["keyboard-interactive"]


def test_a_kbdint_only_device_logs_in(backend: str, target: Target) -> None:
    assert "Cisco IOS XE Software" in show_version(make_factory(backend), target("aaa-kbdint-only"))


def test_a_wrong_password_on_a_kbdint_only_device_is_an_auth_failure(backend: str, target: Target) -> None:
    with pytest.raises(ConnectError) as caught:
        make_factory(backend).open(target("aaa-kbdint-only", password="wrong-kbdint-pw"), connect_timeout=20)
    assert caught.value.code is ErrorCode.AUTH_FAILED
    assert "wrong-kbdint-pw" not in caught.value.message
