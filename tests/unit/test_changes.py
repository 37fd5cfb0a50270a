"""Change detection, pure: path patterns, text normalisation, and every shipped rule on the corpus."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from service.domain.changes import (
    DEFAULT_RULES,
    SHIPPED_RULES,
    ChangeRules,
    check_path_pattern,
    comparable,
    compare,
    normalise_command,
    normalised_lines,
    rule,
    without_paths,
)
from service.domain.diff import diff_parsed
from tests.conftest import corpus_pairs

pytestmark = pytest.mark.unit

# For each shipped rule: leaf keys that are volatile in its corpus samples, and state keys preferred
# when a sample is mutated for a real change (the first found wins; any kept leaf otherwise).
VOLATILE_KEYS = {
    "show version": {"uptime", "seconds", "minutes"},
    "show interfaces": {"in_pkts", "out_octets", "last_input", "txload", "in_rate"},
    "show interface summary": set(),
    "show ip bgp summary": {"up_down", "msg_rcvd", "tbl_ver"},
    "show bgp vrf all all summary": {"up_down", "msg_sent", "neighbor_table_version"},
    "show bgp instance summary": {"up_down", "msg_rcvd", "rcvtblver"},
    "show ip ospf neighbor": {"dead_time"},
    "show cdp neighbors": {"hold_time"},
    "show lldp neighbors": {"hold_time"},
    "show arp": {"age"},
    "show ip route": {"updated", "date"},
    "show clock": {"time", "year"},
    "show processes cpu": {"five_sec_cpu", "invoked", "zero_cpu_processes"},
    "show platform": set(),
}
STATE_KEYS = ("state", "state_pfxrcd", "oper_status", "line_protocol", "next_hop", "device_id", "port_id", "route")


def _corpus_cases() -> list[Any]:
    cases = []
    for pair in corpus_pairs():
        found = DEFAULT_RULES.for_command(pair["os"], pair["command"])
        if found is not None:
            cases.append(pytest.param(pair, found.name, id=f"{pair['os']}-{pair['command']}-{pair['folder'].name}"))
    return cases


CORPUS_CASES = _corpus_cases()


def _leaves(value: Any, keys: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*keys, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*keys, index))]
    return [keys]


def _mutated(data: Any, keys: tuple[Any, ...]) -> Any:
    copied = copy.deepcopy(data)
    holder = copied
    for key in keys[:-1]:
        holder = holder[key]
    value = holder[keys[-1]]
    if isinstance(value, bool):
        holder[keys[-1]] = not value
    elif isinstance(value, int | float):
        holder[keys[-1]] = value + 7
    else:
        holder[keys[-1]] = f"{value}-changed"
    return copied


def _compare_parsed(os: str, command: str, old: Any, new: Any) -> Any:
    found = DEFAULT_RULES.for_command(os, command)
    before = comparable(os, command, old, None, found)
    after = comparable(os, command, new, None, found)
    assert before is not None and after is not None
    return compare(before, after, 500)


# ---- path patterns and normalisation ------------------------------------------------------------


def test_path_patterns_remove_one_key_any_depth_and_list_items() -> None:
    data = {
        "vrf": {"default": {"neighbor": {"10.0.0.2": {"up_down": "1d", "state": "Idle"}}}},
        "interfaces": {"Gi0/1": {"counters": {"in_pkts": 1}, "status": "up"}},
        "sort": [{"pid": 1, "runtime": 9}, {"pid": 2, "runtime": 8}],
        "up_down": "top level too",
    }
    pruned = without_paths(data, ("**.up_down", "interfaces.*.counters", "sort.*.runtime"))
    assert pruned == {
        "vrf": {"default": {"neighbor": {"10.0.0.2": {"state": "Idle"}}}},
        "interfaces": {"Gi0/1": {"status": "up"}},
        "sort": [{"pid": 1}, {"pid": 2}],
    }


def test_a_single_star_is_exactly_one_key() -> None:
    data = {"a": {"b": {"c": 1}}, "x": {"c": 2}}
    assert without_paths(data, ("*.c",)) == {"a": {"b": {"c": 1}}, "x": {}}
    assert without_paths(data, ("**",)) == {}
    assert without_paths({1: {2: "x"}}, ()) == {"1": {"2": "x"}}


def test_bad_path_patterns_are_named() -> None:
    assert check_path_pattern("**.up_down") is None
    assert check_path_pattern("a..b") is not None
    assert check_path_pattern("a.b*") is not None


def test_commands_are_normalised_with_their_pipe() -> None:
    assert normalise_command("  Show   IP  BGP summary | inc  Idle ") == "show ip bgp summary | inc idle"
    assert DEFAULT_RULES.for_command("iosxe", "SHOW  ip bgp   summary").name == "show ip bgp summary"  # type: ignore[union-attr]
    assert DEFAULT_RULES.for_command("iosxe", "show version | include uptime") is None
    assert DEFAULT_RULES.for_command("iosxe", "show inventory") is None


def test_extra_rules_are_tried_first() -> None:
    mine = rule("mine", [r"show version"], ignore=["**"])
    rules = DEFAULT_RULES.extended([mine])
    assert rules.for_command("ios", "show version") is mine
    assert ChangeRules(SHIPPED_RULES).for_command("ios", "show version").name == "show version"  # type: ignore[union-attr]


def test_os_restricted_rules_apply_to_their_os_only() -> None:
    assert DEFAULT_RULES.for_command("nxos", "show bgp vrf all all summary").name == "show bgp vrf all all summary"  # type: ignore[union-attr]
    assert DEFAULT_RULES.for_command("iosxr", "show bgp summary").name == "show bgp instance summary"  # type: ignore[union-attr]


def test_text_normalisation_drops_headers_blank_lines_and_masks_volatile_parts() -> None:
    output = (
        "Load for five secs: 1%/0%; one minute: 2%; five minutes: 3%\n"
        "Time source is NTP, 20:39:33.145 EST Wed Jun 2 2016\n"
        "\n"
        "R1 uptime is 2 days, 3 hours, 4 minutes   \n"
        "Cisco IOS XE Software, Version 17.3.1\n"
    )
    found = DEFAULT_RULES.for_command("iosxe", "show version")
    assert normalised_lines(output, found) == ("R1 uptime is <uptime>", "Cisco IOS XE Software, Version 17.3.1")
    assert normalised_lines(output, None)[0] == "R1 uptime is 2 days, 3 hours, 4 minutes"


def test_text_comparison_names_the_changed_lines_only() -> None:
    found = DEFAULT_RULES.for_command("iosxe", "show ip bgp summary")
    old = "Neighbor V AS\n10.0.0.2        4        65001     100     120       55    0    0 01:02:03        5\n"
    uptime_only = "Neighbor V AS\n10.0.0.2        4        65001     900     920       95    0    0 09:02:03        5\n"
    down = "Neighbor V AS\n10.0.0.2        4        65001     900     920       95    0    0 00:00:03 Idle\n"
    before = comparable("iosxe", "show ip bgp summary", None, old, found)
    assert before is not None
    assert compare(before, comparable("iosxe", "show ip bgp summary", None, uptime_only, found), 10) is None  # type: ignore[arg-type]
    changes = compare(before, comparable("iosxe", "show ip bgp summary", None, down, found), 10)  # type: ignore[arg-type]
    assert changes is not None and changes.kind == "text"
    assert changes.lines_removed == ("10.0.0.2        4        65001 <counters> <up_down>        5",)
    assert changes.lines_added == ("10.0.0.2        4        65001 <counters> <up_down> Idle",)


@pytest.mark.parametrize(
    ("os", "command", "row", "later"),
    [
        (
            "iosxr",
            "show bgp instance all all all summary",
            "10.36.3.3           0   60000.60001      68      58       43    0    0 00:47:11         10",
            "10.36.3.3           0   60000.60001      98      88       53    1    0 01:07:11         10",
        ),
        (
            "nxos",
            "show bgp vrf all all summary",
            "10.16.2.10        4     0       0       0        0    0    0 5w6d     Idle",
            "10.16.2.10        4     0       3       9        2    0    0 5w7d     Idle",
        ),
    ],
)
def test_bgp_neighbour_rows_mask_counters_and_timers_only(os: str, command: str, row: str, later: str) -> None:
    found = DEFAULT_RULES.for_command(os, command)
    before, after = comparable(os, command, None, row, found), comparable(os, command, None, later, found)
    assert before is not None and after is not None and compare(before, after, 10) is None
    down = comparable(os, command, None, later.rsplit(" ", 1)[0] + " Active", found)
    assert down is not None and compare(before, down, 10) is not None


def test_reordered_lines_are_no_change_and_lists_are_cut_at_max_paths() -> None:
    a = comparable("ios", "show x", None, "one\ntwo\nthree", None)
    b = comparable("ios", "show x", None, "three\none\ntwo", None)
    c = comparable("ios", "show x", None, "four\nfive\nsix", None)
    assert a is not None and b is not None and c is not None
    assert a.digest != b.digest and compare(a, b, 10) is None
    cut = compare(a, c, 4)
    assert cut is not None and cut.truncated
    assert len(cut.lines_added) + len(cut.lines_removed) == 4


def test_parsed_and_text_forms_are_not_compared_and_failed_commands_have_no_form() -> None:
    parsed = comparable("ios", "show x", {"a": 1}, "a 1", None)
    text = comparable("ios", "show x", None, "a 1", None)
    assert parsed is not None and text is not None and parsed.kind == "parsed"
    assert compare(parsed, text, 10) is None
    assert comparable("ios", "show x", None, None, None) is None


def test_parsed_changes_are_cut_at_max_paths() -> None:
    old = comparable("ios", "show x", {f"k{i}": i for i in range(10)}, None, None)
    new = comparable("ios", "show x", {f"k{i}": i + 1 for i in range(10)}, None, None)
    changes = compare(old, new, 3)  # type: ignore[arg-type]
    assert changes is not None and changes.truncated and len(changes.changed) == 3


def test_digest_is_stable_across_key_order_and_int_keys() -> None:
    one = comparable("ios", "show x", {"b": {2: "x"}, "a": 1}, None, None)
    two = comparable("ios", "show x", {"a": 1, "b": {"2": "x"}}, None, None)
    assert one is not None and two is not None and one.digest == two.digest


# ---- every shipped rule on the corpus -------------------------------------------------------


def test_every_shipped_rule_has_volatile_keys_listed_here() -> None:
    assert {shipped.name for shipped in SHIPPED_RULES} == set(VOLATILE_KEYS)


@pytest.mark.parametrize(("pair", "rule_name"), CORPUS_CASES)
def test_a_corpus_result_compared_with_itself_is_no_change(pair: dict[str, Any], rule_name: str) -> None:
    expected = json.loads((pair["folder"] / "expected.json").read_text())
    assert _compare_parsed(pair["os"], pair["command"], expected, copy.deepcopy(expected)) is None
    output = (pair["folder"] / "output.txt").read_text(errors="replace")
    found = DEFAULT_RULES.for_command(pair["os"], pair["command"])
    text = comparable(pair["os"], pair["command"], None, output, found)
    assert text is not None and compare(text, comparable(pair["os"], pair["command"], None, output, found), 9) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("pair", "rule_name"), CORPUS_CASES)
def test_a_volatile_field_changed_is_no_change(pair: dict[str, Any], rule_name: str) -> None:
    expected = json.loads((pair["folder"] / "expected.json").read_text())
    volatile = [leaf for leaf in _leaves(expected) if leaf and leaf[-1] in VOLATILE_KEYS[rule_name]]
    if not volatile:
        pytest.skip(f"no volatile field of {rule_name} in this sample")
    mutated = expected
    for leaf in volatile:
        mutated = _mutated(mutated, leaf)
    assert _compare_parsed(pair["os"], pair["command"], expected, mutated) is None


@pytest.mark.parametrize(("pair", "rule_name"), CORPUS_CASES)
def test_a_state_field_changed_is_a_change_at_exactly_that_path(pair: dict[str, Any], rule_name: str) -> None:
    expected = json.loads((pair["folder"] / "expected.json").read_text())
    found = DEFAULT_RULES.for_command(pair["os"], pair["command"])
    assert found is not None
    kept = [leaf for leaf in _leaves(expected) if _kept(expected, leaf, found.ignore)]
    if not kept:
        pytest.skip(f"{rule_name} ignores everything")
    preferred = [leaf for key in STATE_KEYS for leaf in kept if leaf and leaf[-1] == key]
    leaf = (preferred or kept)[0]
    mutated = _mutated(expected, leaf)
    (wanted,) = diff_parsed(expected, mutated)
    changes = _compare_parsed(pair["os"], pair["command"], expected, mutated)
    assert changes is not None
    assert [path for path, *_ in changes.changed] == [wanted.path]
    assert changes.changed[0][1:] == (wanted.old, wanted.new)
    assert not changes.added and not changes.removed


def _kept(data: Any, leaf: tuple[Any, ...], ignore: tuple[str, ...]) -> bool:
    """The leaf is still there once the rule's paths are removed."""
    node: Any = without_paths(data, ignore)
    for key in leaf:
        lookup = str(key) if isinstance(node, dict) else key
        if (isinstance(node, dict) and lookup in node) or (
            isinstance(node, list) and isinstance(lookup, int) and lookup < len(node)
        ):
            node = node[lookup]
        else:
            return False
    return not isinstance(node, dict | list)


def test_the_corpus_covers_the_shipped_rules() -> None:
    if not CORPUS_CASES:
        pytest.skip("the shared corpus folder is absent")
    covered = {case.values[1] for case in CORPUS_CASES}
    assert covered >= set(VOLATILE_KEYS) - {"show interface summary"}, sorted(set(VOLATILE_KEYS) - covered)


def test_uptime_in_raw_show_version_outputs_is_masked() -> None:
    samples = [p for p in corpus_pairs() if normalise_command(p["command"]) == "show version"]
    if not samples:
        pytest.skip("the shared corpus folder is absent")
    for pair in samples:
        found = DEFAULT_RULES.for_command(pair["os"], pair["command"])
        output = (pair["folder"] / "output.txt").read_text(errors="replace")
        bumped = re.sub(r"(uptime is |\S+ up )(\d+)", lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", output)
        assert bumped != output, pair["folder"]
        old = comparable(pair["os"], pair["command"], None, output, found)
        new = comparable(pair["os"], pair["command"], None, bumped, found)
        assert old is not None and new is not None
        assert compare(old, new, 10) is None, pair["folder"]
