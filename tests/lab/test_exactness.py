"""Unicon's fixed waits are off; these prove every output still arrives exactly.

Structured commands run with no after-prompt wait; free-text commands (running-config,
logging, ...) keep one short re-check. See service/device/unicon_session.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from service.contract.errors import CommandError, ErrorCode
from service.device.device_text import DeviceText
from service.device.unicon_session import SessionOptions, UniconSessionFactory
from service.devtools.lab.generated import generated_output
from service.devtools.lab.outputs import builtin_outputs
from service.devtools.lab.shell import CHATTER_LINE
from service.domain.models import DeviceTarget, ShowCommand, Timeouts
from service.pipeline.runner import DeviceRunner
from service.pipeline.session_pool import SessionPool
from tests.lab.expected_output import lines

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]


def run(factory: UniconSessionFactory, target: DeviceTarget, *commands: str) -> list[str]:
    session = factory.open(target, connect_timeout=20)
    try:
        return [session.execute(command, timeout=60) for command in commands]
    finally:
        session.close()


def test_banner_prompt_line_followed_by_a_pause_does_not_cut_the_running_config(
    factory: UniconSessionFactory, target: Target
) -> None:
    config, clock = run(factory, target("banner-pause"), "show running-config", "show clock")
    want = lines(builtin_outputs("iosxe")["show running-config"].render("banner-pause"))
    assert "Router#" in want
    assert lines(config) == want
    assert len(lines(clock)) == 1  # nothing of the config leaked into the next command


def test_outputs_arriving_in_pieces_are_complete(factory: UniconSessionFactory, target: Target) -> None:
    config, brief = run(factory, target("pieces"), "show running-config", "show ip interface brief")
    assert lines(config) == lines(builtin_outputs("iosxe")["show running-config"].render("pieces"))
    assert lines(brief) == lines(builtin_outputs("iosxe")["show ip interface brief"].render("pieces"))


def test_one_megabyte_outputs_are_exact_even_with_the_device_prompt_inside(
    factory: UniconSessionFactory, target: Target
) -> None:
    logging_output, brief, clock = run(
        factory, target("bulky"), "show logging", "show ip interface brief", "show clock"
    )
    want_logging = generated_output("logging", 1_000_000, "bulky", prompt_line="bulky#")
    assert "bulky#" in want_logging.splitlines()
    assert lines(logging_output) == lines(want_logging)
    assert lines(brief) == lines(generated_output("ip-brief", 1_000_000, "bulky"))
    assert len(lines(clock)) == 1


def test_a_large_output_is_read_in_few_large_reads(
    factory: UniconSessionFactory, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unicon looks for the prompt again over its whole buffer after each read: the number of
    reads is what makes reading an output linear or quadratic in its size. Reads of what has
    arrived (device_text.READ_AHEAD), not 4 KB at a time, keep it linear; the speed itself is
    measured by ops/bench/large_output.py."""
    reads: list[int] = []
    feed = DeviceText.feed

    def counted(self: DeviceText, data: bytes) -> bytes:
        reads.append(len(data))
        return feed(self, data)

    session = factory.open(target("bulky"), connect_timeout=20)
    try:
        monkeypatch.setattr(DeviceText, "feed", counted)
        brief = session.execute("show ip interface brief", timeout=60)
    finally:
        session.close()
    assert lines(brief) == lines(generated_output("ip-brief", 1_000_000, "bulky"))
    # a few reads (3-4 measured); 4 KB reads took 125 (pty, 8 KB at most) and 249 (paramiko)
    assert len(reads) < 40, f"{len(reads)} reads for 1 MB"


def test_a_prompt_like_line_and_a_long_pause_neither_cut_the_output_nor_leak_into_the_next(
    factory: UniconSessionFactory, target: Target
) -> None:
    """The device prints its own prompt as a line of the output, then pauses 300 ms (longer
    than any after-prompt re-check): the reader goes on to the real prompt."""
    logging_output, clock = run(factory, target("prompt-pause"), "show logging", "show clock")
    want = generated_output("logging", 20_000, "prompt-pause", prompt_line="prompt-pause#")
    assert "prompt-pause#" in want.splitlines()
    assert lines(logging_output) == lines(want)
    assert lines(clock) == lines(builtin_outputs("iosxe")["show clock"].render("prompt-pause"))


def test_late_text_in_a_warm_session_is_drained_and_never_part_of_a_later_result(
    factory: UniconSessionFactory, target: Target
) -> None:
    """The device prints a syslog line 0.2 s after the prompt of 'show clock', while the warm
    session sits idle in the pool: the next request finds it, drops that session and runs on a
    fresh login, so the late text is in no result."""
    pool = SessionPool(factory, idle_ttl=60, max_idle=4)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0)
    timeouts = Timeouts(connect=20, command=20, device=60)
    device = target("chatty")
    try:
        first = runner.run("late-1", device, [ShowCommand("show clock")], timeouts)
        assert first.success
        time.sleep(0.5)
        later = runner.run("late-2", device, [ShowCommand("show version"), ShowCommand("show inventory")], timeouts)
        version, inventory = later.commands
        assert later.success and pool.logins == 2  # the out-of-step warm session was replaced
        for command in later.commands:
            assert CHATTER_LINE not in (command.output or "") and command.complete is None
        assert lines(version.output or "") == lines(builtin_outputs("iosxe")["show version"].render("chatty"))
        assert lines(inventory.output or "") == lines(builtin_outputs("iosxe")["show inventory"].render("chatty"))
    finally:
        pool.close_all()


@pytest.mark.parametrize(
    ("command", "want", "transformed"),
    [
        (
            "show colours",
            "plain \x1b[31mred\x1b[0m 256:\x1b[38;5;196mX\x1b[0m true:\x1b[38;2;255;0;0mY\x1b[0m\x1b[2K end",
            (),
        ),
        ("show edits", "abcdef\b\bXY\r\nsecond line", ()),
        ("show bytes", "ok \ufffd\ufffd caf\u00e9 \u2713 \ufffd end", ("invalid_utf8_replaced",)),
        ("show split", "caf\u00e9 \u2713 end", ()),  # a character split between reads is whole again
    ],
)
def test_outputs_are_kept_as_the_device_sent_them_or_flagged(
    factory: UniconSessionFactory, target: Target, command: str, want: str, transformed: tuple[str, ...]
) -> None:
    session = factory.open(target("raw-text"), connect_timeout=20)
    try:
        output = session.execute(command, timeout=20)
        assert session.last_transformed == transformed
        session.execute("show clock", timeout=20)
        assert session.last_transformed == ()
    finally:
        session.close()
    assert output == want


def test_an_output_past_the_limit_fails_alone_and_is_not_read_further(target: Target) -> None:
    """20 MB against a 1 MB limit: output_too_large at once, memory bounded by the limit."""
    for backend in ("pty", "paramiko"):
        factory = UniconSessionFactory(
            SessionOptions(strict_host_key_checking="no", backend=backend, max_output_bytes=1_000_000)
        )
        session = factory.open(target("tech"), connect_timeout=20)
        started = time.monotonic()
        try:
            with pytest.raises(CommandError) as caught:
                session.execute("show tech-support", timeout=120)
        finally:
            session.close()
        assert caught.value.code is ErrorCode.OUTPUT_TOO_LARGE
        assert "PYATS_MAX_OUTPUT_BYTES" in caught.value.message
        assert time.monotonic() - started < 60  # not read to the end
        fresh = factory.open(target("tech"), connect_timeout=20)
        try:
            assert "Cisco IOS XE Software" in fresh.execute("show version", timeout=20)
        finally:
            fresh.close()


def test_an_output_ending_with_another_device_s_prompt_is_whole_and_the_session_stays_in_step(
    factory: UniconSessionFactory, target: Target
) -> None:
    session = factory.open(target("prompt-pause"), connect_timeout=20)
    try:
        foreign = session.execute("show foreign", timeout=20)
        clock = session.execute("show clock", timeout=20)
    finally:
        session.close()
    assert lines(foreign) == [
        "Device ID    Local Intf",
        "r2           Gi1/0/1",
        "",
        "Total: 1",
        "",
        "switch#",
    ]
    assert lines(clock) == lines(builtin_outputs("iosxe")["show clock"].render("prompt-pause"))
