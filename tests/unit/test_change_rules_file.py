"""The operator's change rules file: YAML or JSON, every problem named with its file and rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.contract.errors import ConfigError
from service.domain.changes import DEFAULT_RULES, comparable, compare
from service.pipeline.change_rules_file import load_change_rules

pytestmark = pytest.mark.unit

YAML_RULES = r"""
rules:
  - name: show bgp l2vpn evpn summary
    commands: ["show bgp l2vpn evpn summary( .*)?"]
    os: [nxos]
    ignore: ["**.up_down", "vrf.*.counters"]
    ignore_lines: ['\s*BGP table version is .*']
    mask:
      - {pattern: '\d+:\d+:\d+', replace: "<time>"}
  - name: everything in show users
    commands: ["show users"]
    ignore: ["**"]
"""


def test_a_yaml_file_gives_rules_in_order_tried_before_the_shipped_ones(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML_RULES)
    rules = load_change_rules(path)
    assert [r.name for r in rules] == ["show bgp l2vpn evpn summary", "everything in show users"]
    first = rules[0]
    assert first.os == frozenset({"nxos"}) and first.ignore == ("**.up_down", "vrf.*.counters")
    combined = DEFAULT_RULES.extended(rules)
    assert combined.for_command("nxos", "show bgp l2vpn evpn summary") is first
    assert combined.for_command("iosxe", "show bgp l2vpn evpn summary") is not first  # os: [nxos] only
    old = comparable("nxos", "show bgp l2vpn evpn summary", None, "BGP table version is 5\npeer 01:02:03 Up", first)
    new = comparable("nxos", "show bgp l2vpn evpn summary", None, "BGP table version is 9\npeer 04:05:06 Up", first)
    assert old is not None and new is not None and compare(old, new, 10) is None


def test_a_json_file_and_no_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"name": "x", "commands": ["show x"], "ignore": ["a.*"]}]}))
    (only,) = load_change_rules(path)
    assert only.name == "x" and only.os == frozenset()
    assert load_change_rules(None) == ()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("rules: [{name: bad, commands: ['(']}]", "rules[0] ('bad'): commands: bad regex"),
        ("rules: [{name: bad, commands: [x], ignore_lines: ['[']}]", "ignore_lines: bad regex"),
        ("rules: [{name: bad, commands: [x], mask: [{pattern: ')', replace: y}]}]", "mask: bad regex"),
        ("rules: [{name: bad, commands: [x], ignore: ['a..b']}]", "empty segment"),
        ("rules: [{name: bad, commands: [x], colour: blue}]", "colour"),
        ("rules: [{name: ok, commands: [x]}, {name: bad, commands: []}]", "rules[1] ('bad')"),
        ("rules: {}", "rules"),
        (": : :", "rules.yaml"),
    ],
)
def test_a_broken_rules_file_is_a_clear_config_error(tmp_path: Path, content: str, named: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_change_rules(path)
    assert str(path) in caught.value.message
    assert named in caught.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_change_rules(tmp_path / "absent.yaml")
    assert "absent.yaml" in caught.value.message
