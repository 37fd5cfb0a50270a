"""The lab's built-in outputs parse with Genie to sensible data; store, filters and spec rules.

These read the templates directly (no SSH): they prove the text a lab device
serves is text the service's parser layer can handle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.devtools.lab.filters import FilterError, parse_filter
from service.devtools.lab.outputs import OutputStore
from service.devtools.lab.spec import DeviceSpec, SpecError, apply_overrides, build_devices, load_spec_file

pytestmark = pytest.mark.lab

HOST = "lab-test-09"
Check = Callable[[dict[str, Any]], None]


def _version_ios(parsed: dict[str, Any]) -> None:
    assert parsed["version"]["hostname"] == HOST
    assert parsed["version"]["version"]


def _ip_brief_ios(parsed: dict[str, Any]) -> None:
    interfaces = parsed["interface"]
    assert len(interfaces) >= 5
    assert any(v["ip_address"] == "unassigned" for v in interfaces.values())
    assert all(v["status"] in ("up", "down", "administratively down") for v in interfaces.values())


def _inventory_ios(parsed: dict[str, Any]) -> None:
    assert parsed["main"]["chassis"]


def _clock(parsed: dict[str, Any]) -> None:
    assert parsed["year"] == "2024" and parsed["timezone"] == "UTC"


CHECKS: dict[tuple[str, str], Check] = {
    ("ios", "show version"): _version_ios,
    ("ios", "show ip interface brief"): _ip_brief_ios,
    ("ios", "show inventory"): _inventory_ios,
    ("ios", "show clock"): _clock,
    ("iosxe", "show version"): lambda p: (
        _version_ios(p),
        p["version"]["router_operating_mode"] == "Autonomous" or pytest.fail("operating mode"),
    ),
    ("iosxe", "show ip interface brief"): _ip_brief_ios,
    ("iosxe", "show inventory"): _inventory_ios,
    ("iosxe", "show clock"): _clock,
    ("nxos", "show version"): lambda p: (
        p["platform"]["hardware"]["device_name"] == HOST or pytest.fail("device name"),
        p["platform"]["software"]["system_version"] == "10.3(4a)" or pytest.fail("version"),
    ),
    ("nxos", "show interface brief"): lambda p: (
        len(p["interface"]["ethernet"]) == 6 or pytest.fail("ethernet"),
        p["interface"]["port_channel"]["Port-channel10"]["protocol"] == "lacp" or pytest.fail("po"),
    ),
    ("nxos", "show ip interface brief"): lambda p: (
        p["interface"]["Eth1/3"]["ip_address"] == "172.16.31.1" or pytest.fail("eth1/3"),
    ),
    ("nxos", "show inventory"): lambda p: (p["name"]["Chassis"]["pid"] == "N9K-C9300v" or pytest.fail("chassis"),),
    ("iosxr", "show version"): lambda p: (
        p["software_version"] == "7.9.2" or pytest.fail("version"),
        p["operating_system"] == "IOSXR" or pytest.fail("os"),
    ),
    ("iosxr", "show ip interface brief"): lambda p: (
        p["interface"]["GigabitEthernet0/0/0/3"]["vrf_name"] == "CUSTOMER-A" or pytest.fail("vrf"),
    ),
    ("iosxr", "show inventory"): lambda p: (
        p["module_name"]["0/RP0"]["pid"] == "R-IOSXRV9000-RP-C" or pytest.fail("rp"),
    ),
    ("asa", "show version"): lambda p: (
        p["version"]["hostname"] == HOST or pytest.fail("hostname"),
        p["version"]["asa_version"] == "9.18(3)56" or pytest.fail("version"),
    ),
    ("asa", "show interface ip brief"): lambda p: (
        p["interfaces"]["Ethernet1/1"]["ipv4"]["198.51.100.2"]["ip"] == "198.51.100.2" or pytest.fail("ip"),
    ),
    ("asa", "show inventory"): lambda p: (p["module 0"]["pid"] == "FPR-1120" or pytest.fail("pid"),),
}

# Genie 26.9 has no parser for these; the lab still serves them (tested over SSH).
NO_PARSER = [("nxos", "show clock"), ("iosxr", "show clock"), ("asa", "show clock")]
OSES = ["ios", "iosxe", "nxos", "iosxr", "asa"]


def render(os_name: str, command: str) -> str:
    stored = OutputStore(os_name, None).lookup(command)
    assert stored is not None, f"{os_name}: no built-in output for {command!r}"
    return stored.render(HOST)


def genie_device(os_name: str) -> Any:
    from genie.conf.base import Device

    device = Device(HOST, os=os_name)
    device.custom["abstraction"] = {"order": ["os"]}
    return device


@pytest.mark.parametrize(("os_name", "command"), sorted(CHECKS), ids=lambda v: str(v).replace(" ", "_"))
def test_builtin_output_parses_with_genie(os_name: str, command: str) -> None:
    parsed = genie_device(os_name).parse(command, output=render(os_name, command))
    assert parsed
    CHECKS[(os_name, command)](parsed)


@pytest.mark.parametrize(("os_name", "command"), NO_PARSER)
def test_commands_without_a_genie_parser_are_still_served(os_name: str, command: str) -> None:
    from genie.libs.parser.utils.common import ParserNotFound

    text = render(os_name, command)
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} UTC \w{3} \w{3} \d+ 2024", text)
    with pytest.raises(ParserNotFound):
        genie_device(os_name).parse(command, output=text)


@pytest.mark.parametrize("os_name", OSES)
def test_running_config_parses_to_a_config_tree(os_name: str) -> None:
    """Genie routes ``show running-config`` to an API that runs the command itself,
    so offline parsing goes through the same helper, ``get_config_dict``."""
    from genie.libs.sdk.apis.utils import get_config_dict

    tree = get_config_dict(render(os_name, "show running-config"))
    assert f"hostname {HOST}" in tree
    assert any(key.startswith("interface ") for key in tree)


def test_iosxe_running_config_has_a_prompt_like_banner_line() -> None:
    lines = render("iosxe", "show running-config").splitlines()
    assert "Router#" in lines
    assert lines.index("Router#") > lines.index("banner motd ^C")


@pytest.mark.parametrize("os_name", OSES)
def test_every_os_has_the_five_commands_with_its_hostname(os_name: str) -> None:
    brief = {"nxos": "show interface brief", "asa": "show interface ip brief"}.get(os_name, "show ip interface brief")
    for command in ("show version", brief, "show inventory", "show clock", "show running-config"):
        assert render(os_name, command).strip()
    assert f"\nhostname {HOST}\n" in render(os_name, "show running-config")
    if os_name != "iosxr":  # IOS XR 7 prints "System uptime is", without the name
        assert HOST in render(os_name, "show version")


def test_store_matches_case_whitespace_and_abbreviations() -> None:
    store = OutputStore("iosxe", None)
    expected = store.lookup("show ip interface brief")
    assert expected is not None
    assert store.lookup("  SHOW   ip Interface  brief ") == expected
    assert store.lookup("sh ip int br") == expected
    assert store.lookup("show ip interface") is None
    assert store.matched_words("show ip flux") == 2


def test_store_reads_device_outputs_layout_byte_for_byte(tmp_path: Path) -> None:
    for number, text in (("01", "first\r\nsample\n"), ("02", "second\n")):
        folder = tmp_path / "iosxe" / "show_vlan" / number
        folder.mkdir(parents=True)
        (folder / "output.txt").write_bytes(text.encode())
        (folder / "meta.json").write_text(json.dumps({"os": "iosxe", "command": "show vlan"}))
    store = OutputStore("iosxe", tmp_path)
    stored = store.lookup("show vlan")
    assert stored is not None and stored.render("x") == "first\r\nsample\n"
    assert OutputStore("nxos", tmp_path).lookup("show vlan") is None
    single = OutputStore("iosxe", tmp_path / "iosxe" / "show_vlan" / "02").lookup("show vlan")
    assert single is not None and single.render("x") == "second\n"


def test_store_reads_flat_templates(tmp_path: Path) -> None:
    (tmp_path / "iosxe").mkdir()
    (tmp_path / "iosxe" / "show_clock.txt").write_text("{hostname} clock\n")
    stored = OutputStore("iosxe", tmp_path).lookup("show clock")
    assert stored is not None and stored.render("r9") == "r9 clock\n"


LINES = ["router bgp 1", " neighbor 1.1.1.1", "  x", "interface Gi1", " ip address 1.1.1.1", "!", "end"]


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("include neighbor|^end", [" neighbor 1.1.1.1", "end"]),
        ("inc 1\\.1", [" neighbor 1.1.1.1", " ip address 1.1.1.1"]),
        ("exclude ^ ", ["router bgp 1", "interface Gi1", "!", "end"]),
        ("begin interface", ["interface Gi1", " ip address 1.1.1.1", "!", "end"]),
        ("begin nomatch", []),
        ("section bgp", ["router bgp 1", " neighbor 1.1.1.1", "  x"]),
        ("sec ip address", [" ip address 1.1.1.1"]),
    ],
)
def test_filters(clause: str, expected: list[str]) -> None:
    assert parse_filter(clause).apply(LINES) == expected


@pytest.mark.parametrize("clause", ["include", "frob x", "include [", "count x", "begin   "])
def test_bad_filters_are_refused(clause: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(clause)


def test_build_devices_cycles_oses_and_numbers_ports() -> None:
    template = DeviceSpec(name="t")
    devices = build_devices(template, 3, ["ios", "nxos"], 2200, [{}, {"latency": 0.5, "hang_commands": ["show clock"]}])
    assert [(d.name, d.os, d.port) for d in devices] == [
        ("lab-ios-01", "ios", 2200),
        ("lab-nxos-02", "nxos", 2201),
        ("lab-ios-03", "ios", 2202),
    ]
    assert devices[1].latency == 0.5 and devices[1].hang_commands == ("show clock",)


def test_spec_overrides_grow_the_lab_and_rename_by_os() -> None:
    devices = build_devices(DeviceSpec(name="t"), 1, ["iosxe"], 0, [{}, {"os": "asa"}, {"name": "core"}])
    assert [d.name for d in devices] == ["lab-iosxe-01", "lab-asa-02", "core"]


@pytest.mark.parametrize(
    "override",
    [{"os": "junos"}, {"colour": "red"}, {"latency": "fast"}, {"port": 70000}, {"auth_failure": "yes"}],
)
def test_invalid_overrides_are_refused(override: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        apply_overrides(DeviceSpec(name="t"), override)


def test_spec_file_shape(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"defaults": {"latency": 0.1}, "devices": [{"os": "nxos"}]}))
    assert load_spec_file(path) == ({"latency": 0.1}, [{"os": "nxos"}])
    path.write_text("[]")
    with pytest.raises(SpecError):
        load_spec_file(path)
