"""The pure diff of two outputs: structured paths for parsed data, unified text otherwise."""

from __future__ import annotations

import datetime as dt

import pytest

from service.client.history import latest
from service.domain.diff import Change, diff_outputs, diff_parsed, diff_text
from service.transport.history import HistoryError, parse_device, parse_time, same_command

pytestmark = pytest.mark.unit


def test_equal_structures_have_no_changes() -> None:
    data = {"version": {"uptime": "1 day", "list": [1, 2]}}
    assert diff_parsed(data, {"version": {"uptime": "1 day", "list": [1, 2]}}) == []


def test_changed_added_and_removed_paths() -> None:
    old = {"version": {"uptime": "1 day", "image": "a.bin", "gone": 1}}
    new = {"version": {"uptime": "2 days", "image": "a.bin", "serial": "X1"}}
    changes = diff_parsed(old, new)
    assert changes == [
        Change("version.gone", "removed", old=1),
        Change("version.serial", "added", new="X1"),
        Change("version.uptime", "changed", old="1 day", new="2 days"),
    ]
    assert [str(c) for c in changes] == [
        "- version.gone: 1",
        "+ version.serial: 'X1'",
        "~ version.uptime: '1 day' -> '2 days'",
    ]


def test_keys_with_dots_or_spaces_are_quoted_and_lists_are_indexed() -> None:
    old = {"interface": {"Gi0/0.100": {"ip": ["10.0.0.1"]}}, "a b": 1}
    new = {"interface": {"Gi0/0.100": {"ip": ["10.0.0.2", "10.0.0.3"]}}, "a b": 2}
    assert [str(c) for c in diff_parsed(old, new)] == [
        "~ ['a b']: 1 -> 2",
        "~ interface['Gi0/0.100'].ip[0]: '10.0.0.1' -> '10.0.0.2'",
        "+ interface['Gi0/0.100'].ip[1]: '10.0.0.3'",
    ]


def test_a_type_change_is_a_change_even_when_equal() -> None:
    assert diff_parsed({"n": 1}, {"n": 1.0}) == [Change("n", "changed", old=1, new=1.0)]
    assert diff_parsed({"n": {"x": 1}}, {"n": [1]}) == [Change("n", "changed", old={"x": 1}, new=[1])]
    assert diff_parsed("a", "b") == [Change("$", "changed", old="a", new="b")]


def test_text_diff_is_unified() -> None:
    lines = diff_text("a\nb\nc\n", "a\nB\nc\n", "old", "new")
    assert lines[:2] == ["--- old", "+++ new"]
    assert "-b" in lines and "+B" in lines
    assert diff_text("same\n", "same\n") == []


def test_outputs_use_parsed_when_both_parsed_else_text() -> None:
    parsed = diff_outputs({"a": 1}, "x", {"a": 2}, "y")
    assert parsed.kind == "parsed" and not parsed.identical and parsed.text == []
    assert parsed.as_dict()["changes"] == [{"path": "a", "kind": "changed", "old": 1, "new": 2}]
    text = diff_outputs(None, "x\n", {"a": 2}, "y\n")
    assert text.kind == "text" and "-x" in text.text and "+y" in text.text
    forced = diff_outputs({"a": 1}, "x\n", {"a": 1}, "x\n", text=True)
    assert forced.kind == "text" and forced.identical
    assert diff_outputs(None, None, None, None).identical


def test_relative_and_iso_times() -> None:
    now = dt.datetime(2024, 5, 2, 12, 0, tzinfo=dt.UTC)
    assert parse_time("24h", now) == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_time("30m", now) == dt.datetime(2024, 5, 2, 11, 30, tzinfo=dt.UTC)
    assert parse_time("7d", now) == dt.datetime(2024, 4, 25, 12, 0, tzinfo=dt.UTC)
    assert parse_time("now", now) == now
    assert parse_time("2024-05-01T10:00:00Z") == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    assert parse_time("2024-05-01T10:00:00+02:00") == dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    assert parse_time("2024-05-01T10:00:00").tzinfo is not None  # local time, made aware
    with pytest.raises(HistoryError, match="cannot read time"):
        parse_time("yesterday")


def test_devices_become_subject_tokens() -> None:
    assert parse_device("10.0.0.1") == "10_0_0_1"
    assert parse_device("10.0.0.1:22") == "10_0_0_1"
    assert parse_device("127.0.0.1:2201") == "127_0_0_1-p2201"
    assert parse_device("[2001:db8::1]:2222") == "2001_db8__1-p2222"
    assert parse_device("2001:db8::1") == "2001_db8__1"
    with pytest.raises(HistoryError, match="bad port"):
        parse_device("router:ssh")


def test_commands_match_regardless_of_case_and_spacing() -> None:
    assert same_command("Show  Version", "show version")
    assert not same_command("show version", "show clock")


def test_latest_keeps_the_newest_per_device_and_command() -> None:
    from service.contract.messages import CommandResult, DeviceResult
    from service.transport.history import StoredResult

    def record(seq: int, device: str, commands: list[str]) -> StoredResult:
        result = DeviceResult(
            request_id=f"r{seq}",
            hostname=device,
            port=22,
            os="ios",
            success=True,
            commands=[CommandResult(command=c, success=True, output=f"{c} {seq}") for c in commands],
        )
        return StoredResult(dt.datetime.now(dt.UTC), "x", f"r{seq}", device, "s", seq, result)

    found = latest(
        [record(1, "a", ["show clock", "show version"]), record(2, "a", ["show clock"]), record(3, "b", ["show clock"])]
    )
    assert [(r.device, r.request_id, r.result.commands[0].command) for r in found] == [
        ("a", "r2", "show clock"),
        ("a", "r1", "show version"),
        ("b", "r3", "show clock"),
    ]
