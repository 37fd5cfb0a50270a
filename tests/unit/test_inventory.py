from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.contract.errors import ConfigError, ErrorCode, PolicyError
from service.contract.messages import CommandSpec, DeviceSpec, ExecuteRequest
from service.device.inventory import InventoryStore, parse_testbed
from service.domain.models import DeviceOS, Secret, Timeouts
from service.domain.policy import Limits, build_plan

pytestmark = pytest.mark.unit

TESTBED = """
testbed:
  name: lab
  credentials:
    default: {username: netops, password: "%ENV{INV_TEST_PASSWORD}"}
devices:
  core-1:
    os: iosxe
    connections: {cli: {protocol: ssh, ip: 10.0.0.1}}
    groups: [core, dc1]
  core-2:
    os: nxos
    connections: {mgmt: {protocol: ssh, ip: 10.0.0.2, port: 2222}}
    custom: {groups: [core]}
  edge-1:
    os: asa
    credentials:
      default: {username: fw, password: "%ENV{INV_TEST_PASSWORD}"}
      enable: {password: "%ENV{INV_TEST_ENABLE}"}
    connections: {telnet: {protocol: telnet, ip: 10.9.9.9}, a: {protocol: ssh, ip: 10.0.1.1}}
"""
LIMITS = Limits(50, 5, 100_000, 200, 60)


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INV_TEST_PASSWORD", "inv-canary-pw")
    monkeypatch.setenv("INV_TEST_ENABLE", "inv-canary-en")


def plan(devices: list[dict[str, Any]], inventory: Any, inline: bool = True) -> Any:
    limits = Limits(50, 5, 100_000, 200, 60, inline_credentials=inline)
    request = ExecuteRequest(devices=[DeviceSpec(**d) for d in devices], commands=[CommandSpec(command="show version")])
    return build_plan(
        request, requester="a", request_id="r", limits=limits, timeouts=Timeouts(5, 5, 5), inventory=inventory
    )


def test_testbed_credentials_env_and_connections() -> None:
    inventory = parse_testbed(TESTBED)
    core1, core2, edge = (inventory.devices[n] for n in ("core-1", "core-2", "edge-1"))
    assert (core1.hostname, core1.port, core1.os, core1.username) == ("10.0.0.1", 22, DeviceOS.IOSXE, "netops")
    assert core1.password == Secret("inv-canary-pw") and core1.groups == {"core", "dc1"}
    assert (core2.port, core2.groups) == (2222, frozenset({"core"}))
    assert (edge.hostname, edge.username, edge.enable_password) == ("10.0.1.1", "fw", Secret("inv-canary-en"))
    assert "inv-canary" not in repr(inventory)


def test_requests_name_devices_by_name_glob_and_group() -> None:
    inventory = parse_testbed(TESTBED)
    assert [t.hostname for t in plan([{"name": "edge-1"}], inventory).targets] == ["10.0.1.1"]
    assert [t.hostname for t in plan([{"name": "core-*"}], inventory).targets] == ["10.0.0.1", "10.0.0.2"]
    both = plan([{"group": "core"}, {"name": "core-1"}], inventory).targets
    assert [t.hostname for t in both] == ["10.0.0.1", "10.0.0.2"]  # named twice, run once


@pytest.mark.parametrize(
    ("devices", "code", "rule"),
    [
        ([{"name": "nope-*"}], ErrorCode.UNKNOWN_DEVICE, "inventory"),
        ([{"group": "dc9"}], ErrorCode.UNKNOWN_DEVICE, "inventory"),
        ([{"name": "core-1", "group": "core"}], ErrorCode.INVALID_REQUEST, "device_reference"),
        ([{"name": "core-1", "password": "x"}], ErrorCode.INVALID_REQUEST, "device_reference"),
        ([{"hostname": "10.0.0.1", "os": "ios"}], ErrorCode.INVALID_REQUEST, "device_fields"),
    ],
)
def test_bad_references(devices: list[dict[str, Any]], code: ErrorCode, rule: str) -> None:
    with pytest.raises(PolicyError) as caught:
        plan(devices, parse_testbed(TESTBED))
    assert caught.value.code is code and caught.value.details["rule"] == rule


def test_inline_credentials_can_be_forbidden() -> None:
    inline = {"hostname": "10.0.0.1", "os": "ios", "username": "u", "password": "p"}
    with pytest.raises(PolicyError) as caught:
        plan([inline], parse_testbed(TESTBED), inline=False)
    assert caught.value.details["rule"] == "inline_credentials"
    assert plan([{"name": "core-1"}], parse_testbed(TESTBED), inline=False).targets


def test_references_without_an_inventory_are_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        plan([{"name": "core-1"}], None)
    assert caught.value.code is ErrorCode.FEATURE_DISABLED


def test_expanded_groups_count_against_max_devices() -> None:
    inventory = parse_testbed(TESTBED)
    limits = Limits(1, 5, 100_000, 200, 60)
    request = ExecuteRequest(devices=[DeviceSpec(group="core")], commands=[CommandSpec(command="show version")])
    with pytest.raises(PolicyError) as caught:
        build_plan(
            request, requester="a", request_id="r", limits=limits, timeouts=Timeouts(5, 5, 5), inventory=inventory
        )
    assert caught.value.code is ErrorCode.TOO_MANY_DEVICES


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("devices: [", "not valid YAML at line"),
        ("devices: {r1: {os: junos, connections: {a: {ip: 1.1.1.1}}}}", "devices.r1.os"),
        (
            "devices: {r1: {os: ios, credentials: {default: {username: u, password: p}}, connections: {}}}",
            "no connection with an ip",
        ),
        (
            "devices: {r1: {os: ios, credentials: {default: {username: u, password: '%ENV{INV_MISSING}'}}, "
            "connections: {a: {ip: 1.1.1.1}}}}",
            "INV_MISSING is not set",
        ),
        ("devices: {r1: {os: ios, connections: {a: {ip: 1.1.1.1}}}}", "needs username and password"),
        (
            "devices: {r1: {os: ios, credentials: {default: {username: u, password: p}}, "
            "connections: {a: {ip: '-oProxyCommand=x'}}}}",
            "connections.ip",
        ),
    ],
)
def test_broken_testbeds_say_where_without_values(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_testbed(text, "tb.yaml")
    assert fragment in caught.value.message
    assert "inv-canary" not in caught.value.message


def test_store_reloads_and_keeps_the_last_good_inventory(tmp_path: Path) -> None:
    path = tmp_path / "testbed.yaml"
    path.write_text(TESTBED)
    store = InventoryStore(path)
    assert store.current is not None and len(store.current.devices) == 3
    path.write_text(TESTBED.replace("edge-1:", "edge-2:"))
    os.utime(path, (1, 1))
    assert store.changed_on_disk() and store.reload()
    assert store.current is not None and "edge-2" in store.current.devices
    path.write_text("devices: [broken")
    os.utime(path, (2, 2))
    assert store.changed_on_disk()
    assert not store.reload()
    assert not store.changed_on_disk()  # reported once, not on every poll
    assert store.current is not None and "edge-2" in store.current.devices
    assert InventoryStore(None).current is None
