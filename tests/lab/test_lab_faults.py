"""Slow, big and busy devices: chunked outputs, pauses after prompt-like lines,
generated large outputs, session accounting with ``max_sessions``, slow login.

Generated outputs are pure functions, so the tests compute the exact text a
device must send (``device_output`` / ``generated_output``) and compare bytes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import AsyncExitStack
from pathlib import Path

import asyncssh
import pytest

from service.devtools.lab.cli import build_parser, devices_from_args
from service.devtools.lab.generated import GENERATED_KINDS, generated_output, infer_kind, minimum_size
from service.devtools.lab.log import config_lines, max_concurrent_sessions, read_entries, read_events, read_log
from service.devtools.lab.outputs import device_output
from service.devtools.lab.runner import LabProcess
from service.devtools.lab.spec import DeviceSpec, LargeOutput, SpecError, apply_overrides, parse_large_output
from service.devtools.lab.terminal import Pacing
from tests.lab.test_lab_shell import Terminal, iosxe, lab_of, session

pytestmark = pytest.mark.lab

PROMPT = "lab-iosxe-01#"


def wire(text: str) -> str:
    """What the shell sends for a stored text: ``\\r\\n`` per line."""
    return text.replace("\n", "\r\n")


# --- generated outputs -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED_KINDS)
@pytest.mark.parametrize("size", [2_000, 10_001, 250_000])
def test_generated_output_has_the_exact_size_and_is_deterministic(kind: str, size: int) -> None:
    text = generated_output(kind, size, "edge-1")
    assert len(text) == size == len(text.encode())
    assert text == generated_output(kind, size, "edge-1")
    assert text.endswith("\n") and "\r" not in text
    assert text != generated_output(kind, size, "edge-2") or kind != "running-config"


@pytest.mark.parametrize("kind", GENERATED_KINDS)
def test_generated_output_prompt_line_sits_in_the_middle(kind: str) -> None:
    text = generated_output(kind, 20_000, "edge-1", prompt_line="edge-1#")
    lines = text.split("\n")
    assert len(text) == 20_000
    assert lines.count("edge-1#") == 1
    position = lines.index("edge-1#")
    assert len(lines) // 4 < position < len(lines) * 3 // 4


def test_generated_output_small_sizes_give_the_minimum_and_bad_input_fails() -> None:
    smallest = minimum_size("ip-brief", "r1")
    assert generated_output("ip-brief", 0, "r1") == generated_output("ip-brief", smallest, "r1")
    assert len(generated_output("ip-brief", smallest + 1, "r1")) == smallest + 1
    with pytest.raises(ValueError, match="unknown generated output kind"):
        generated_output("bgp", 100, "r1")
    with pytest.raises(ValueError, match="size"):
        generated_output("logging", -1, "r1")


def test_generated_ip_brief_rows_look_real() -> None:
    lines = generated_output("ip-brief", 5_000, "r1").split("\n")
    assert lines[0].startswith("Interface              IP-Address      OK? Method Status")
    assert re.fullmatch(r"GigabitEthernet1/0/1 +10\.0\.0\.1 +YES manual up +up *", lines[1])
    assert "administratively down" in "\n".join(lines)


def test_generated_ip_brief_parses_with_genie() -> None:
    from genie.conf.base import Device

    device = Device("r1", os="iosxe")
    device.custom["abstraction"] = {"order": ["os"]}
    text = generated_output("ip-brief", 30_000, "r1")
    parsed = device.parse("show ip interface brief", output=text)
    rows = len(text.strip("\n").split("\n")) - 1
    assert len(parsed["interface"]) == rows
    assert parsed["interface"]["GigabitEthernet1/0/1"]["ip_address"] == "10.0.0.1"


def test_kind_is_inferred_from_the_command() -> None:
    assert infer_kind("show ip interface brief") == "ip-brief"
    assert infer_kind("sh ip int br") == "ip-brief"
    assert infer_kind("show running-config") == "running-config"
    assert infer_kind("show run") == "running-config"
    assert infer_kind("show logging") == "logging"


# --- spec and CLI ------------------------------------------------------------------------------


def test_spec_json_accepts_the_new_fields() -> None:
    device = apply_overrides(
        DeviceSpec(name="r1"),
        {
            "chunk_size": 512,
            "chunk_delay": 0.05,
            "pause_after": "^{hostname}#$",
            "pause_seconds": 1,
            "large_outputs": {
                "show logging": 5000,
                "show ip interface brief": {"size": 9000, "prompt_line": True},
                "show running-config": {"size": 7000, "kind": "running-config"},
            },
            "max_sessions": 2,
            "login_delay": 1.5,
        },
    )
    assert device.chunk_size == 512 and device.chunk_delay == 0.05
    assert device.pause_after == ("^{hostname}#$",) and device.pause_seconds == 1.0
    assert device.large_outputs == (
        LargeOutput("show logging", 5000, "logging"),
        LargeOutput("show ip interface brief", 9000, "ip-brief", prompt_line=True),
        LargeOutput("show running-config", 7000, "running-config"),
    )
    assert device.max_sessions == 2 and device.login_delay == 1.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"chunk_size": -1}, "chunk_size"),
        ({"chunk_size": 1.5}, "integer"),
        ({"login_delay": -1}, "login_delay"),
        ({"pause_after": ["("]}, "invalid pause_after regex"),
        ({"large_outputs": ["show logging"]}, "large_outputs must be an object"),
        ({"large_outputs": {"show logging": "big"}}, "size or"),
        ({"large_outputs": {"show logging": {"size": 10, "kind": "bgp"}}}, "unknown large_outputs kind"),
        ({"large_outputs": {"show logging": {"size": 10, "colour": "red"}}}, "size or"),
        ({"max_sessions": True}, "integer"),
    ],
)
def test_spec_rejects_bad_new_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        apply_overrides(DeviceSpec(name="r1"), overrides)


def test_cli_flags_fill_the_template() -> None:
    args = build_parser().parse_args(
        [
            "--chunk-size",
            "64",
            "--chunk-delay",
            "0.01",
            "--pause-after",
            "^Router#$",
            "--pause-after",
            "^{hostname}#$",
            "--pause-seconds",
            "0.5",
            "--large-output",
            "show logging=10000",
            "--large-output",
            "show ip interface brief=20000:ip-brief:prompt",
            "--max-sessions",
            "3",
            "--login-delay",
            "0.2",
        ]
    )
    (device,) = devices_from_args(args)
    assert (device.chunk_size, device.chunk_delay, device.pause_seconds) == (64, 0.01, 0.5)
    assert device.pause_after == ("^Router#$", "^{hostname}#$")
    assert device.large_outputs == (
        LargeOutput("show logging", 10000, "logging"),
        LargeOutput("show ip interface brief", 20000, "ip-brief", prompt_line=True),
    )
    assert (device.max_sessions, device.login_delay) == (3, 0.2)


@pytest.mark.parametrize("text", ["show logging", "show logging=big", "show logging=10:logging:ip-brief"])
def test_bad_large_output_flag(text: str) -> None:
    with pytest.raises(SpecError):
        parse_large_output(text)


def test_pacing_cuts_chunks_and_pauses() -> None:
    pacing = Pacing(chunk_size=10, chunk_delay=0.1, pause_after=(re.compile("^R#$"),), pause_seconds=2.0)
    lines = ["abcdef", "R#", "xyz"]  # wire: "abcdef\r\n" (8) "R#\r\n" (12) "xyz\r\n" (17)
    assert pacing.cuts(lines) == [(10, 0.1), (12, 2.0), (17, 0.0)]
    assert Pacing(chunk_size=5).cuts(["abcdefgh"]) == [(5, 0.0), (10, 0.0)]
    assert not Pacing().active and not Pacing(pause_after=(re.compile("x"),)).active


# --- over SSH ----------------------------------------------------------------------------------


async def timed_reads(term: Terminal, until: str, timeout: float = 10.0) -> list[tuple[float, str]]:
    """Every read until ``until`` ends the received text, with its arrival time."""
    reads: list[tuple[float, str]] = []
    seen = term.buffer
    term.buffer = ""
    deadline = time.monotonic() + timeout
    while not seen.endswith(until):
        chunk = await asyncio.wait_for(term.process.stdout.read(65536), deadline - time.monotonic())
        assert chunk, seen[-200:]
        reads.append((time.monotonic(), chunk))
        seen += chunk
    return reads


@pytest.mark.asyncio
async def test_large_output_is_served_byte_for_byte() -> None:
    device = iosxe(
        terminal_length=0,
        large_outputs=(
            LargeOutput("show logging", 300_000),
            LargeOutput("show ip interface brief", 50_000, prompt_line=True),
        ),
    )
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        await term.read_until(PROMPT)
        for command, kind, size, prompt_line in (
            ("show logging", "logging", 300_000, None),
            ("show ip interface brief", "ip-brief", 50_000, PROMPT),
        ):
            expected = generated_output(kind, size, "lab-iosxe-01", prompt_line=prompt_line)
            assert device_output(lab.devices[0], command) == expected
            term.send(command + "\r")
            out = await term.read_until(re.compile(r"\r\n" + re.escape(PROMPT) + "$"))
            assert out == command + "\r\n" + wire(expected) + PROMPT
        # abbreviations and pipes work on generated outputs like on any other
        out = await term.run("sh ip int br | include ^GigabitEthernet1/0/48 ", PROMPT)
        assert out == "GigabitEthernet1/0/48  10.0.0.48       YES manual up                    up      \r\n"


@pytest.mark.asyncio
async def test_large_output_pages_with_more() -> None:
    device = iosxe(terminal_length=24, large_outputs=(LargeOutput("show logging", 100_000),))
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        await term.read_until(PROMPT)
        term.send("show logging\r")
        page = await term.read_until(" --More-- ")
        assert page.count("\r\n") == 24  # echo + 23 lines
        term.send("q")
        await term.read_until(PROMPT)


@pytest.mark.asyncio
async def test_chunked_output_arrives_in_pieces_with_delays() -> None:
    device = iosxe(
        terminal_length=0, chunk_size=200, chunk_delay=0.05, large_outputs=(LargeOutput("show logging", 2_000),)
    )
    expected = wire(generated_output("logging", 2_000, "lab-iosxe-01"))
    pieces = -(-len(expected) // 200)
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        await term.read_until(PROMPT)
        started = time.monotonic()
        term.send("show logging\r")
        reads = await timed_reads(term, "\r\n" + PROMPT)
        elapsed = time.monotonic() - started
        received = "".join(chunk for _, chunk in reads)
        assert received == "show logging\r\n" + expected + PROMPT
        assert elapsed >= (pieces - 1) * 0.05
        assert len(reads) >= 3  # pieces, not one write (a slow reader may merge a few)
        # the short built-in outputs still come out whole and right
        assert await term.run("show clock", PROMPT) == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("pattern", "large", "marker"),
    [
        ("^{hostname}#$", LargeOutput("show logging", 20_000, prompt_line=True), PROMPT + "\r\n"),
        ("^Router#$", LargeOutput("show running-config", 20_000), "\r\nRouter#\r\n"),
    ],
    ids=["device-prompt-line", "running-config-banner"],
)
async def test_pause_after_a_prompt_like_line(pattern: str, large: LargeOutput, marker: str) -> None:
    device = iosxe(terminal_length=0, pause_after=(pattern,), pause_seconds=0.8, large_outputs=(large,))
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        await term.read_until(PROMPT)
        expected = device_output(lab.devices[0], large.command)
        assert expected is not None
        term.send(large.command + "\r")
        head = await term.read_until(marker)
        assert term.buffer == ""
        with pytest.raises(TimeoutError):  # silence right after the prompt-like line
            await term.read_until("\n", timeout=0.4)
        tail = await term.read_until(re.compile(r"\r\n" + re.escape(PROMPT) + "$"), timeout=5)
        assert head + tail == large.command + "\r\n" + wire(expected) + PROMPT


@pytest.mark.asyncio
async def test_hang_still_hangs_with_chunking_and_latency_stays_per_command() -> None:
    device = iosxe(terminal_length=0, chunk_size=16, chunk_delay=0.01, latency=0.2, hang_commands=("show clock",))
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        await term.read_until(PROMPT)
        for _ in range(2):
            started = time.monotonic()
            out = await term.run("show version | include operating mode", PROMPT)
            assert out == "Router operating mode: Autonomous\r\n"
            assert time.monotonic() - started >= 0.2
        term.send("show clock\r")
        await term.read_until("show clock\r\n")
        with pytest.raises(TimeoutError):
            await term.read_until(PROMPT, timeout=0.6)
        assert term.buffer == ""


@pytest.mark.asyncio
async def test_login_delay_holds_the_first_prompt() -> None:
    async with lab_of(iosxe(login_delay=0.6)) as lab:
        async with session(lab.devices[0]) as term:
            with pytest.raises(TimeoutError):
                await term.read_until(PROMPT, timeout=0.3)
            assert (await term.read_until(PROMPT, timeout=5)).endswith("\r\n" + PROMPT)
            assert await term.run("show clock", PROMPT)  # later commands are not delayed
        device = lab.devices[0]
        async with asyncssh.connect(
            device.host, device.port, username="admin", password="admin", known_hosts=None
        ) as connection:
            started = time.monotonic()
            result = await connection.run("show clock", check=False)
            assert time.monotonic() - started >= 0.6
        assert result.stdout == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"


@pytest.mark.asyncio
async def test_sessions_are_counted_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    async with lab_of(iosxe(), DeviceSpec(name="other", os="nxos"), log=log) as lab:
        device = lab.devices[0]
        async with AsyncExitStack() as stack:
            terms = [await stack.enter_async_context(session(device)) for _ in range(3)]
            for term in terms:
                await term.read_until(PROMPT)
            stats = lab.session_stats["lab-iosxe-01"]
            assert (stats.open, stats.peak, stats.total, stats.refused) == (3, 3, 3, 0)
            await terms[0].run("show clock", PROMPT)
        async with session(lab.devices[1]) as term:
            await term.read_until("other# ")
        for _ in range(100):
            if lab.session_stats["lab-iosxe-01"].open == 0 and lab.session_stats["other"].open == 0:
                break
            await asyncio.sleep(0.02)
        assert lab.session_stats["lab-iosxe-01"].open == 0 and lab.session_stats["lab-iosxe-01"].peak == 3
        assert lab.session_stats["other"].peak == 1
    events = read_events(log)
    mine = [(e["event"], e["open"]) for e in events if e["device"] == "lab-iosxe-01"]
    assert mine == [
        ("session_open", 1),
        ("session_open", 2),
        ("session_open", 3),
        ("session_close", 2),
        ("session_close", 1),
        ("session_close", 0),
    ]
    assert all(set(e) == {"ts", "event", "device", "port", "open"} for e in events)
    assert max_concurrent_sessions(log) == {lab.devices[0].port: 3, lab.devices[1].port: 1}
    lines = read_log(log)
    assert [e["line"] for e in lines] == ["show clock"]
    assert set(lines[0]) == {"ts", "device", "port", "mode", "line", "config"}
    assert config_lines(log) == []
    assert len(read_entries(log)) == len(events) + len(lines)


@pytest.mark.asyncio
async def test_max_sessions_refuses_one_more_like_no_free_vty(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    async with lab_of(iosxe(max_sessions=2), log=log) as lab:
        device = lab.devices[0]
        async with session(device) as first, session(device) as second:
            await first.read_until(PROMPT)
            await second.read_until(PROMPT)
            async with asyncssh.connect(
                device.host, device.port, username="admin", password="admin", known_hosts=None
            ) as connection:
                process = await connection.create_process(term_type="vt100", encoding="utf-8")
                refused = await asyncio.wait_for(process.stdout.read(), 5)
                await asyncio.wait_for(process.wait_closed(), 5)
                assert "% All VTY lines are busy" in refused and PROMPT not in refused
                assert process.exit_status == 1
            stats = lab.session_stats["lab-iosxe-01"]
            assert (stats.open, stats.peak, stats.refused) == (2, 2, 1)
            assert await first.run("show clock", PROMPT)  # the admitted sessions are unaffected
        for _ in range(100):
            if lab.session_stats["lab-iosxe-01"].open == 0:
                break
            await asyncio.sleep(0.02)
        async with session(device) as again:  # a free line again
            await again.read_until(PROMPT)
    events = [(e["event"], e["open"]) for e in read_events(log)]
    assert events[:3] == [("session_open", 1), ("session_open", 2), ("session_refused", 2)]
    assert events.count(("session_refused", 2)) == 1
    assert max_concurrent_sessions(log) == {device.port: 2}


def test_lab_process_flags_and_spec_for_large_chunked_busy_devices(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "defaults": {"terminal_length": 0},
                "devices": [
                    {"name": "big-1", "large_outputs": {"show logging": {"size": 40_000, "prompt_line": True}}},
                    {"name": "busy-2", "os": "nxos", "max_sessions": 1},
                ],
            }
        )
    )
    flags = ["--spec", str(spec), "--chunk-size", "4096", "--large-output", "show ip interface brief=30000"]
    with LabProcess(flags) as lab:
        big = DeviceSpec(
            name="big-1",
            large_outputs=(
                LargeOutput("show logging", 40_000, prompt_line=True),
                LargeOutput("show ip interface brief", 30_000),
            ),
        )
        # the spec's large_outputs replace the flag's for big-1; busy-2 keeps the flag's
        logging = asyncio.run(run_command(lab.devices[0], "show logging"))
        assert logging == wire(device_output(big, "show logging") or "")
        brief = asyncio.run(run_command(lab.devices[1], "show ip interface brief"))
        assert brief == wire(generated_output("ip-brief", 30_000, "busy-2"))
        asyncio.run(run_command(lab.devices[1], "show clock"))
        deadline = time.monotonic() + 5
        while len(lab.read_events()) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        peaks = lab.max_concurrent_sessions()
        assert peaks[lab.devices[0]["port"]] == 1 and peaks[lab.devices[1]["port"]] == 1
        assert {e["event"] for e in lab.read_events()} == {"session_open", "session_close"}
        assert lab.config_lines() == []


async def run_command(device: dict[str, object], command: str) -> str:
    async with asyncssh.connect(
        str(device["host"]), int(str(device["port"])), username="admin", password="admin", known_hosts=None
    ) as connection:
        result = await connection.run(command, check=False)
    return str(result.stdout)
