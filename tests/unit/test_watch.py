"""`pyats-ro watch` without a bus: rendering, filters, options, and the watch over a hand-written client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import pytest
from rich.console import Console

from service.cli.main import parser
from service.cli.watch import render, requester_of, shorten
from service.client.changes import (
    ChangeFilter,
    ChangeWatch,
    WatchLostError,
    WatchRefusedError,
    command_matches,
    watch_changes,
)
from service.contract.codec import encode
from service.contract.messages import ChangeEvent, ChangeSide, PathChange, PathValue

pytestmark = pytest.mark.unit


def event(**fields: Any) -> ChangeEvent:
    base: dict[str, Any] = {
        "requester": "alice",
        "device": "r1",
        "port": 22,
        "command": "show ip bgp summary",
        "kind": "parsed",
        "previous": ChangeSide(request_id="req-old", time="2026-11-30T10:00:00+00:00"),
        "current": ChangeSide(request_id="req-new", time="2026-11-30T10:05:00+00:00"),
    }
    return ChangeEvent(**{**base, **fields})


def plain(lines: list[Any]) -> list[str]:
    return [line.plain for line in lines]


def test_a_parsed_event_shows_changed_added_and_removed_paths() -> None:
    lines = render(
        event(
            schedule="bgp-5m",
            changed=[PathChange(path="vrf.default.neighbor['10.0.0.2'].state", old="Established", new="Idle")],
            added=[PathValue(path="vrf.default.neighbor['10.0.0.9']", value={"as": 65009})],
            removed=[PathValue(path="vrf.default.neighbor['10.0.0.3'].uptime", value=42)],
        )
    )
    text = plain(lines)
    assert "r1 | show ip bgp summary | schedule bgp-5m | req-old → req-new" in text[0]
    assert text[1:] == [
        "  ~ vrf.default.neighbor['10.0.0.2'].state: Established → Idle",
        "  + vrf.default.neighbor['10.0.0.9']: {\"as\": 65009}",
        "  - vrf.default.neighbor['10.0.0.3'].uptime: 42",
    ]
    assert [str(line.style) for line in lines[1:]] == ["yellow", "green", "red"]


def test_the_header_shows_local_time_and_a_port_other_than_22() -> None:
    header = plain(render(event(port=2222)))[0]
    assert header.startswith("2026-11-30 ")  # local time, seconds included
    assert "| r1:2222 |" in header and "schedule" not in header
    named = plain(render(event(device="10.0.0.1", port=2222, name="core-1")))[0]
    assert "| core-1 (10.0.0.1:2222) |" in named  # the inventory name first


def test_a_text_event_shows_removed_then_added_lines() -> None:
    lines = render(event(kind="text", command="show clock", lines_removed=["old [bold]line"], lines_added=["new"]))
    assert plain(lines)[1:] == ["  - old [bold]line", "  + new"]  # markup in device output stays text
    assert [str(line.style) for line in lines[1:]] == ["red", "green"]


def test_truncated_is_said_plainly_with_how_to_see_everything() -> None:
    text = plain(render(event(truncated=True, added=[PathValue(path="a", value=1)])))
    assert text[-1] == (
        "  truncated: the service kept only the first differences; "
        "see all of them with pyats-ro diff --a req-old --b req-new"
    )
    assert not any("truncated" in line for line in plain(render(event())))


def test_long_values_are_shortened() -> None:
    assert shorten("Established") == "Established"
    assert shorten("") == '""' and shorten(None) == "null" and shorten(" padded") == '" padded"'
    long = shorten("x" * 500)
    assert long.startswith("x" * 79 + "…") and long.endswith("(500 characters)") and len(long) < 100


def test_rendered_output_fits_a_console() -> None:
    console = Console(record=True, width=200, color_system=None)
    for line in render(event(changed=[PathChange(path="p", old=1, new=2)])):
        console.print(line)
    assert "~ p: 1 → 2" in console.export_text()


@pytest.mark.parametrize(
    ("pattern", "command", "expected"),
    [
        ("show ip bgp summary", "show ip bgp summary", True),
        ("Show  IP bgp summary", "show ip  bgp summary", True),  # case and spaces do not matter
        ("show ip bgp", "show ip bgp summary", False),  # exact without a glob
        ("show ip bgp*", "show ip bgp summary", True),
        ("show ip bgp*", "show ip bgp", True),
        ("show ip bgp*", "show ip route", False),
        ("show ip int* brief", "show ip interface brief", True),
        ("SHOW IP BGP*", "show ip bgp neighbors", True),
    ],
)
def test_command_filter(pattern: str, command: str, expected: bool) -> None:
    assert command_matches(pattern, command) is expected


def test_group_and_command_filters() -> None:
    core = event(groups=["core", "dc1"])
    edge = event(groups=["edge"], command="show version")
    assert ChangeFilter().matches(core) and ChangeFilter().matches(edge)
    assert ChangeFilter(groups=("core",)).matches(core)
    assert not ChangeFilter(groups=("core",)).matches(edge)
    assert ChangeFilter(groups=("edge", "core")).matches(edge)  # any of the groups
    assert not ChangeFilter(groups=("core",)).matches(event(groups=[]))
    both = ChangeFilter(groups=("core", "edge"), commands=("show ip bgp*",))
    assert both.matches(core) and not both.matches(edge)


def test_options() -> None:
    args = parser().parse_args(
        [
            "watch",
            "--device",
            "r1:2222",
            "--group",
            "core",
            "--group",
            "edge",
            "--command",
            "show ip bgp*",
            "--json",
            "--count",
            "3",
            "--for",
            "2.5",
        ]
    )
    assert (args.device, args.group, args.command) == ("r1:2222", ["core", "edge"], ["show ip bgp*"])
    assert (args.json, args.count, args.for_) == (True, 3, 2.5)
    defaults = parser().parse_args(["watch"])
    assert (defaults.group, defaults.command, defaults.count, defaults.for_) == ([], [], None, None)
    assert defaults.json is False


@pytest.mark.parametrize(
    "argv",
    [["watch", "--count", "0"], ["watch", "--for", "-1"], ["watch", "--grou", "core"], ["watch", "--js"]],
)
def test_bad_or_abbreviated_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)


def test_the_requester_is_the_nats_user_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "engineer")
    assert requester_of(parser().parse_args(["watch"])) == "engineer"
    assert requester_of(parser().parse_args(["watch", "--nats-user", "alice"])) == "alice"
    assert requester_of(parser().parse_args(["watch", "--nats-user", "alice", "--requester", "ops"])) == "ops"


def test_help_ends_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["watch", "--help"])
    examples = capsys.readouterr().out.split("examples:", 1)[1]
    assert "pyats-ro watch --device r1" in examples and "--json" in examples


class FakeMsg:
    def __init__(self, data: bytes) -> None:
        self.data = data


class FakeSubscription:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    async def unsubscribe(self) -> None:
        self.client.subscriptions.remove(self)


class FakeClient:
    """What the watch uses of a nats-py client; ``refuse`` makes the server's answer a permissions violation."""

    def __init__(self, refuse: bool = False, stale_pongs: int = 0) -> None:
        self.refuse = refuse
        self.stale_pongs = stale_pongs  # round trips answered early, by a PONG owed from the handshake
        self.refused: str | None = None
        self.subjects: list[str] = []
        self.subscriptions: list[FakeSubscription] = []
        self.last_error: Exception | None = None
        self.is_closed = False
        self.deliver: Callable[[FakeMsg], Awaitable[None]] | None = None
        self.subscribed = asyncio.Event()

    async def subscribe(self, subject: str, cb: Callable[[FakeMsg], Awaitable[None]]) -> FakeSubscription:
        self.subjects.append(subject)
        self.deliver = cb
        if self.refuse:
            self.refused = subject
        subscription = FakeSubscription(self)
        self.subscriptions.append(subscription)
        self.subscribed.set()
        return subscription

    async def flush(self) -> None:
        if self.stale_pongs:
            self.stale_pongs -= 1
        elif self.refused is not None:
            self.last_error = Exception(f'nats: permissions violation for subscription to "{self.refused}"')

    async def send(self, data: bytes) -> None:
        assert self.deliver is not None
        await self.deliver(FakeMsg(data))


@pytest.mark.asyncio
async def test_undecodable_messages_are_skipped_and_counted() -> None:
    client = FakeClient()
    async with ChangeWatch(client, "pyats.v1.changes.alice.>") as watch:  # type: ignore[arg-type]
        for data in (b"not json", b'{"device": "r1"}', encode(event(command="show version"))):
            await client.send(data)
        got = await asyncio.wait_for(anext(watch), 1)
        assert got.command == "show version" and watch.skipped == 2
    assert not client.subscriptions


@pytest.mark.asyncio
async def test_watch_changes_subscribes_narrowly_filters_and_unsubscribes_when_closed() -> None:
    client = FakeClient()
    events = watch_changes(client, "pyats.v1", "alice", device="10.0.0.1", port=2222, commands=["show ip bgp*"])  # type: ignore[arg-type]
    async with contextlib.aclosing(events):
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.wait_for(client.subscribed.wait(), 1)
        assert client.subjects == ["pyats.v1.changes.alice.10_0_0_1-p2222"]
        await client.send(encode(event(command="show version")))
        await client.send(encode(event(command="show ip bgp summary")))
        assert (await asyncio.wait_for(waiting, 1)).command == "show ip bgp summary"
        assert len(client.subscriptions) == 1
    assert not client.subscriptions


@pytest.mark.asyncio
async def test_a_refused_subscription_raises_and_leaves_nothing_subscribed() -> None:
    client = FakeClient(refuse=True)
    with pytest.raises(WatchRefusedError, match=r"pyats\.v1\.changes\.bob\.>.*only watch its own changes"):
        async with ChangeWatch(client, "pyats.v1.changes.bob.>"):  # type: ignore[arg-type]
            pass
    assert not client.subscriptions


@pytest.mark.asyncio
async def test_a_refusal_is_seen_even_when_the_handshake_s_pong_answers_the_first_round_trip() -> None:
    client = FakeClient(refuse=True, stale_pongs=1)
    with pytest.raises(WatchRefusedError):
        async with ChangeWatch(client, "pyats.v1.changes.bob.>"):  # type: ignore[arg-type]
            pass


@pytest.mark.asyncio
async def test_a_connection_closed_while_subscribing_is_a_lost_watch() -> None:
    client = FakeClient()

    async def closed() -> None:
        raise nats.errors.ConnectionClosedError

    client.flush = closed  # type: ignore[method-assign]
    with pytest.raises(WatchLostError, match=r"while subscribing to pyats\.v1\.changes\.alice\.>"):
        async with ChangeWatch(client, "pyats.v1.changes.alice.>"):  # type: ignore[arg-type]
            pass
