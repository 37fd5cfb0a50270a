"""Legacy SSH algorithms: the setting, the inventory override, the command line, the errors."""

from __future__ import annotations

import os

import pytest
from paramiko.kex_group14 import KexGroup14SHA256

from service.config import load_settings
from service.contract.errors import ConfigError, ErrorCode
from service.device.connect_errors import classify_connect_error
from service.device.inventory import parse_testbed
from service.device.ssh.errors import AlgorithmMismatch, SshNoCommonAlgorithmError, SshOptionsError
from service.device.ssh.legacy import OAKLEY_GROUP2_PRIME
from service.device.ssh.options import SshOptions, openssh_command
from service.device.ssh.target import resolve
from service.device.unicon_session import SessionOptions
from service.domain.models import DeviceOS, DeviceTarget, Secret

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PYATS_"):
            monkeypatch.delenv(name)


def test_the_setting_is_off_by_default() -> None:
    assert load_settings(None).ssh.legacy_algorithms == []


def test_the_setting_takes_a_comma_list_in_order_without_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYATS_SSH_LEGACY_ALGORITHMS", " ssh-rsa, Diffie-Hellman-Group14-SHA1,ssh-rsa,")
    assert load_settings(None).ssh.legacy_algorithms == ["ssh-rsa", "diffie-hellman-group14-sha1"]


@pytest.mark.parametrize("value", ["arcfour", "ssh-rsa,chacha20-poly1305@openssh.com", "ssh-dss"])
def test_unknown_names_are_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PYATS_SSH_LEGACY_ALGORITHMS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.code is ErrorCode.CONFIG_INVALID
    assert "PYATS_SSH_LEGACY_ALGORITHMS" in caught.value.message
    assert "unknown legacy SSH algorithm" in caught.value.message
    assert "diffie-hellman-group14-sha1" in caught.value.message  # the known names are listed


TESTBED = """
testbed:
  credentials:
    default: {username: netops, password: inv-secret-canary}
  custom:
    groups:
      old-ios: {ssh_legacy_algorithms: [diffie-hellman-group14-sha1, ssh-rsa]}
      older-ios: {ssh_legacy_algorithms: diffie-hellman-group1-sha1,3des-cbc}
devices:
  by-group:
    os: ios
    connections: {cli: {ip: 10.0.0.1}}
    groups: [old-ios, core]
  own-list:
    os: ios
    connections: {cli: {ip: 10.0.0.2}}
    groups: [old-ios]
    custom: {ssh_legacy_algorithms: [aes128-cbc]}
  turned-off:
    os: ios
    connections: {cli: {ip: 10.0.0.3}}
    custom: {ssh_legacy_algorithms: []}
  modern:
    os: iosxe
    connections: {cli: {ip: 10.0.0.4}}
"""


def test_the_inventory_sets_legacy_algorithms_per_group_and_per_device() -> None:
    devices = parse_testbed(TESTBED).devices
    assert devices["by-group"].target().legacy_algorithms == ("diffie-hellman-group14-sha1", "ssh-rsa")
    assert devices["own-list"].target().legacy_algorithms == ("aes128-cbc",)  # the device wins over its group
    assert devices["turned-off"].target().legacy_algorithms == ()
    assert devices["modern"].target().legacy_algorithms is None  # the service's setting applies


def test_two_groups_that_disagree_are_an_error() -> None:
    text = TESTBED.replace("groups: [old-ios, core]", "groups: [old-ios, older-ios]")
    with pytest.raises(ConfigError) as caught:
        parse_testbed(text)
    assert "devices.by-group" in caught.value.message
    assert "old-ios, older-ios" in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("ssh_legacy_algorithms: [aes128-cbc]", "ssh_legacy_algorithms: [rc4]", "devices.own-list.custom"),
        ("diffie-hellman-group1-sha1,3des-cbc", "blowfish-cbc", "testbed.custom.groups.older-ios"),
    ],
)
def test_unknown_names_in_the_inventory_say_where(old: str, new: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_testbed(TESTBED.replace(old, new))
    assert where in caught.value.message
    assert "unknown legacy SSH algorithm" in caught.value.message
    assert "inv-secret-canary" not in caught.value.message


def device(legacy: tuple[str, ...] | None = None) -> DeviceTarget:
    return DeviceTarget("10.0.0.1", 22, DeviceOS.IOS, "admin", Secret("pw-canary"), Secret("en-canary"), legacy)


def ssh_command(target: DeviceTarget, options: SessionOptions, connect_timeout: float) -> str:
    return openssh_command(options.ssh_for(target, connect_timeout))


ALL = ("diffie-hellman-group14-sha1", "ssh-rsa", "aes128-cbc", "diffie-hellman-group1-sha1", "3des-cbc")


def test_the_openssh_command_line_adds_exactly_the_named_algorithms() -> None:
    line = ssh_command(device(), SessionOptions(legacy_algorithms=ALL), 10)
    assert "-o KexAlgorithms=+diffie-hellman-group14-sha1,diffie-hellman-group1-sha1" in line
    assert "-o Ciphers=+aes128-cbc,3des-cbc" in line
    assert "-o HostKeyAlgorithms=+ssh-rsa" in line
    assert "-o PubkeyAcceptedAlgorithms=+ssh-rsa" in line
    assert "canary" not in line


def test_without_the_opt_in_the_command_line_adds_nothing() -> None:
    line = ssh_command(device(), SessionOptions(), 10)
    assert "Algorithms" not in line
    assert "Ciphers" not in line


def test_the_device_list_replaces_the_service_list() -> None:
    assert "Ciphers" not in ssh_command(device(("ssh-rsa",)), SessionOptions(legacy_algorithms=ALL), 10)
    assert "Algorithms" not in ssh_command(device(()), SessionOptions(legacy_algorithms=ALL), 10)
    assert "HostKeyAlgorithms=+ssh-rsa" in ssh_command(device(("ssh-rsa",)), SessionOptions(), 10)


def test_the_paramiko_backend_takes_the_same_options() -> None:
    resolved = resolve(SessionOptions(legacy_algorithms=ALL, jump_host="bastion").ssh_for(device(), 10))
    assert set(resolved.legacy_algorithms) == set(ALL)
    assert resolved.jumps[0].legacy_algorithms == ()  # never passed on to a jump host, as in OpenSSH


@pytest.mark.parametrize("name", ["arcfour", "chacha20-poly1305@openssh.com"])
def test_the_paramiko_backend_refuses_other_algorithms(name: str) -> None:
    with pytest.raises(SshOptionsError):
        resolve(SshOptions("10.0.0.1", 22, "admin", 10, legacy_algorithms=(name,)))


def test_the_group1_prime_is_rfc_2409s() -> None:
    """2^1024 - 2^960 - 1 + 2^64 * ([2^894 pi] + 129093); the same formula gives paramiko's group 14."""

    def arctan_inverse(x: int, one: int) -> int:
        total = term = one // x
        n, sign = 3, -1
        while term:
            term //= x * x
            total += sign * (term // n)
            n, sign = n + 2, -sign
        return total

    def floor_pi_times_2_to(bits: int) -> int:
        one = 1 << (bits + 64)
        return (4 * (4 * arctan_inverse(5, one) - arctan_inverse(239, one))) >> 64

    def oakley(bits: int, pi_bits: int, offset: int) -> int:
        return 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (floor_pi_times_2_to(pi_bits) + offset)

    assert oakley(2048, 1918, 124476) == KexGroup14SHA256.P
    assert oakley(1024, 894, 129093) == OAKLEY_GROUP2_PRIME


@pytest.mark.parametrize(
    ("text", "mismatch", "offer"),
    [
        (
            "Unable to negotiate with 10.0.0.1 port 22: no matching key exchange method found. Their offer: "
            "diffie-hellman-group14-sha1,ext-info-s,kex-strict-s-v00@openssh.com\r\n",
            "key exchange method",
            ["diffie-hellman-group14-sha1"],
        ),
        (
            "Unable to negotiate with 10.0.0.1 port 22: no matching cipher found. Their offer: aes128-cbc,3des-cbc",
            "cipher",
            ["aes128-cbc", "3des-cbc"],
        ),
    ],
)
def test_no_common_algorithm_is_connect_failed_naming_the_mismatch(text: str, mismatch: str, offer: list[str]) -> None:
    from_openssh = classify_connect_error(ConnectionError("EOF"), text)
    wrapped = RuntimeError("connect failed")
    offered = tuple(text.partition("Their offer: ")[2].strip().split(","))  # the device's KEXINIT, as paramiko saw it
    wrapped.__cause__ = SshNoCommonAlgorithmError("10.0.0.1", 22, AlgorithmMismatch(mismatch, offered))
    assert str(wrapped.__cause__).strip() == text.strip()  # worded as OpenSSH words it
    from_paramiko = classify_connect_error(wrapped, "")
    for error in (from_openssh, from_paramiko):
        assert error.code is ErrorCode.CONNECT_FAILED
        assert f"no matching {mismatch} with the device (its offer: {','.join(offer)})" in error.message
        assert "PYATS_SSH_LEGACY_ALGORITHMS" in error.message
        assert error.details == {"mismatch": mismatch, "offer": offer}
